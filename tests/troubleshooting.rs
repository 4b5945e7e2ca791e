//! docs/troubleshooting.md has a row for every message the policy and the sync job produce.
//!
//! The messages are enumerated from the code itself, so that a message added or changed anywhere
//! fails this test until the table says what it means: every string literal of the non-test code
//! of `src/` (the policy) and `sync/src/` (the job) with at least three words is a message or a
//! piece of one (rejection reasons, settings errors, warnings, the job's errors, conditions,
//! Events and log lines). Literals inside `debug!`/`trace!` (not shown at the default log level)
//! are left out, and the few literals that are not messages are listed below with the reason.
//!
//! A literal is found in the table when its text, with each `{...}` placeholder written `…`,
//! appears in docs/troubleshooting.md (backticks, line breaks and table escapes aside).

use std::path::{Path, PathBuf};

const DOC: &str = "docs/troubleshooting.md";

/// Literals that are no message a user meets, each with the reason.
const NOT_MESSAGES: &[(&str, &str, &str)] = &[
    (
        "src/host.rs",
        "Cannot find …/… named '…'",
        "policy-server's message, recognised (a missing Setting), not produced",
    ),
    (
        "src/host.rs",
        "the kubernetes host capability exists only in the wasm module",
        "native builds (the sync job, the tests) never call the host",
    ),
    (
        "src/payload.rs",
        "the validate payload",
        "the one-pass reading's serde expectation; when that pass fails the payload is read again \
         from raw JSON and that reading's error is the one reported",
    ),
    (
        "src/payload.rs",
        "duplicate field …",
        "the one-pass reading's error, never reported (the raw reading reports serde's own)",
    ),
    (
        "src/payload.rs",
        "the object was read for another kind",
        "an invariant of the one-pass reading, never reported (the raw reading runs instead)",
    ),
    (
        "src/skim.rs",
        "not read in one pass",
        "the skimming reader's error, never reported (the payload is read again by serde_json, \
         whose error is the one reported)",
    ),
    (
        "sync/src/http.rs",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        "the Content-Type of /metrics",
    ),
];

/// Files whose literals are not messages.
const NOT_MESSAGE_FILES: &[(&str, &str)] = &[
    (
        "src/test_support.rs",
        "the unit tests' helpers (a #[cfg(test)] module of lib.rs)",
    ),
    (
        "sync/src/metrics.rs",
        "the metrics' help texts (sync/README.md lists the metrics)",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// A string literal of the code, and the macro it is an argument of (innermost), if any.
#[derive(Debug)]
struct Literal {
    text: String,
    in_macro: Option<String>,
}

/// The string literals of `source` outside comments, up to its `#[cfg(test)]` module.
fn literals(source: &str) -> Vec<Literal> {
    let source = source.split("#[cfg(test)]").next().unwrap_or(source);
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    // The macro (or none) of each open bracket.
    let mut stack: Vec<Option<String>> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &source[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
            continue;
        }
        if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |end| end + 2);
            continue;
        }
        let c = bytes[i];
        let after_identifier =
            i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if c == b'r' && !after_identifier && matches!(bytes.get(i + 1), Some(b'"' | b'#')) {
            let hashes = rest[1..].bytes().take_while(|b| *b == b'#').count();
            if rest.as_bytes().get(1 + hashes) == Some(&b'"') {
                let start = i + 2 + hashes;
                let end_marker = format!("\"{}", "#".repeat(hashes));
                let end = source[start..]
                    .find(&end_marker)
                    .map_or(bytes.len(), |e| start + e);
                out.push(Literal {
                    text: source[start..end].to_owned(),
                    in_macro: stack.last().cloned().flatten(),
                });
                i = end + end_marker.len();
                continue;
            }
        }
        match c {
            b'\'' => {
                // A char literal ('x', '\n', '\u{..}'), or a lifetime.
                let close = rest[1..]
                    .char_indices()
                    .take(12)
                    .find(|(_, ch)| *ch == '\'')
                    .map(|(n, _)| n + 1);
                match close {
                    Some(n) if !rest[1..n].contains(char::is_whitespace) || &rest[1..n] == " " => {
                        i += n + 1;
                    }
                    _ => i += 1,
                }
            }
            b'"' => {
                let mut j = i + 1;
                let mut text = String::new();
                while j < bytes.len() && bytes[j] != b'"' {
                    if bytes[j] == b'\\' {
                        match bytes.get(j + 1) {
                            // A line continuation: the newline and the next line's indentation.
                            Some(b'\n') => {
                                j += 2;
                                while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                                    j += 1;
                                }
                                continue;
                            }
                            Some(b'"') => text.push('"'),
                            Some(b'\\') => text.push('\\'),
                            Some(b'n') => text.push('\n'),
                            Some(b't') => text.push('\t'),
                            Some(other) => {
                                text.push('\\');
                                text.push(*other as char);
                            }
                            None => {}
                        }
                        j += 2;
                        continue;
                    }
                    let ch = source[j..].chars().next().expect("a char");
                    text.push(ch);
                    j += ch.len_utf8();
                }
                out.push(Literal {
                    text,
                    in_macro: stack.last().cloned().flatten(),
                });
                i = j + 1;
            }
            b'(' | b'[' | b'{' => {
                // `name!(`: the identifier before `!`.
                let before = source[..i].trim_end();
                let in_macro = before.strip_suffix('!').map(|name| {
                    name.rsplit(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                });
                stack.push(in_macro);
                i += 1;
            }
            b')' | b']' | b'}' => {
                stack.pop();
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// Whether a literal reads as (a piece of) a sentence: at least three words apart, two of them
/// made of letters. Names, paths, field selectors and patterns (`metadata.name={}`,
/// `hooks.kubevirt.io/hookSidecars`) are single words.
fn is_message(text: &str) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    let lettered = words
        .iter()
        .filter(|word| {
            let letters = word.chars().filter(char::is_ascii_alphabetic).count();
            letters >= 2 && letters * 2 >= word.chars().count()
        })
        .count();
    words.len() >= 3 && lettered >= 2
}

/// `{...}` placeholders as `…`, `{{` and `}}` as braces, whitespace runs as one space.
fn normalized(literal: &str) -> String {
    let mut out = String::new();
    let mut chars = literal.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                for inner in chars.by_ref() {
                    if inner == '}' {
                        break;
                    }
                }
                out.push('…');
            }
            // Backticks are the doc's code spans, not part of what is compared.
            '`' => {}
            c => out.push(c),
        }
    }
    collapse(&out)
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The table's text as searched: backticks and table escapes removed, whitespace collapsed.
fn doc_text() -> String {
    let doc = std::fs::read_to_string(root().join(DOC)).expect("docs/troubleshooting.md");
    collapse(&doc.replace("\\|", "|").replace('`', ""))
}

/// Every message of the code, as (file, normalized text).
fn messages() -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("sync/src"), &mut files);
    let mut out = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(root())
            .expect("under the root")
            .display()
            .to_string();
        if NOT_MESSAGE_FILES.iter().any(|(path, _)| *path == relative) {
            continue;
        }
        let source = std::fs::read_to_string(&file).expect("source");
        for literal in literals(&source) {
            if matches!(literal.in_macro.as_deref(), Some("debug" | "trace")) {
                continue;
            }
            if !is_message(&literal.text) {
                continue;
            }
            let text = normalized(&literal.text);
            if NOT_MESSAGES
                .iter()
                .any(|(path, ignored, _)| *path == relative && *ignored == text)
            {
                continue;
            }
            out.push((relative.clone(), text));
        }
    }
    out
}

#[test]
fn every_message_of_the_policy_and_the_job_has_a_row() {
    let doc = doc_text();
    let all = messages();
    assert!(
        all.len() > 100,
        "only {} messages found: the enumeration is broken",
        all.len()
    );
    let missing: Vec<String> = all
        .iter()
        .filter(|(_, text)| !doc.contains(text.as_str()))
        .map(|(file, text)| format!("{file}: {text}"))
        .collect();
    assert!(
        missing.is_empty(),
        "{} messages of the code have no row in {DOC} (add a row with the cause, the command that \
         shows it and the fix, quoting the message with … for each placeholder):\n{}",
        missing.len(),
        missing.join("\n")
    );
}

/// The reasons the job writes in the Setting's conditions and its Events (CamelCase literals of
/// sync/src), each in the table too.
#[test]
fn every_reason_of_the_job_has_a_row() {
    let doc = doc_text();
    let mut files = Vec::new();
    rust_files(&root().join("sync/src"), &mut files);
    let mut reasons = std::collections::BTreeSet::new();
    for file in files {
        if file.ends_with("metrics.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&file).expect("source");
        for literal in literals(&source) {
            let text = literal.text;
            let camel = text.len() > 3
                && text.chars().all(|c| c.is_ascii_alphabetic())
                && text.starts_with(|c: char| c.is_ascii_uppercase())
                && text.chars().skip(1).any(|c| c.is_ascii_uppercase());
            if camel {
                reasons.insert(text);
            }
        }
    }
    assert!(reasons.contains("PolicyNotInProtectMode"), "{reasons:?}");
    let missing: Vec<&String> = reasons
        .iter()
        .filter(|reason| !doc.contains(reason.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "reasons of the job with no row in {DOC}: {missing:?}"
    );
}

#[test]
fn the_ignored_literals_still_exist() {
    // An ignore entry for a literal that is gone would hide nothing, but would rot.
    for (file, ignored, reason) in NOT_MESSAGES {
        let source = std::fs::read_to_string(root().join(file)).expect("source");
        assert!(
            literals(&source)
                .iter()
                .any(|literal| normalized(&literal.text) == *ignored),
            "{file} no longer has {ignored:?} ({reason}): remove it from NOT_MESSAGES"
        );
    }
}

#[test]
fn the_enumeration_reads_literals_as_rustc_does() {
    let source = r####"
        // "a comment with many words in it"
        fn f() {
            let a = "one two three";
            let b = r#"raw "quoted" words here"#;
            let c = 'x';
            let d: &'static str = "after a lifetime, still found";
            debug!("a debug line is not shown");
            warn!(field = %x, "a warning {x:?} with {{braces}} and \
                   a continuation");
            let e = "escaped \"quote\" words";
        }
        #[cfg(test)]
        mod tests { const T: &str = "a test literal with words"; }
    "####;
    let found: Vec<(String, Option<String>)> = literals(source)
        .into_iter()
        .map(|literal| (normalized(&literal.text), literal.in_macro))
        .collect();
    let expected: Vec<(String, Option<String>)> = vec![
        ("one two three".into(), None),
        ("raw \"quoted\" words here".into(), None),
        ("after a lifetime, still found".into(), None),
        ("a debug line is not shown".into(), Some("debug".into())),
        (
            "a warning … with {braces} and a continuation".into(),
            Some("warn".into()),
        ),
        ("escaped \"quote\" words".into(), None),
    ];
    assert_eq!(found, expected);
}
