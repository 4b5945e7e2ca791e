//! The policy's patterns (`hook_sidecar_policy::pattern`, the code the wasm module runs, here
//! linked natively) against RE2's Go implementation, `regexp` of Go's standard library
//! (tests/go-regexp): for thousands of generated patterns built from the constructs where
//! engines differ, and values built to match them or nearly,
//! - what Go's `regexp.Compile` refuses, the policy refuses, with Go's error code;
//! - what Go accepts, the policy accepts, or refuses as a construct it does not support (`\p`) or
//!   past a limit, and never as invalid;
//! - what both accept matches exactly the same values as `^(?:P)$` does in Go.
//!
//! And the case-folding table the policy uses for `(?i)` is Go's, rune for rune.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use hook_sidecar_policy::pattern::{self, Limit, PatternError};
use serde_json::{Value, json};

mod common;
#[path = "common/go_oracle.rs"]
mod go_oracle;
use common::Rng;

/// A piece of pattern, and values that it matches or nearly does.
struct Piece {
    pattern: String,
    samples: Vec<String>,
}

fn piece(pattern: &str, samples: &[&str]) -> Piece {
    Piece {
        pattern: pattern.to_owned(),
        samples: samples.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// Atoms RE2 accepts, where engines differ: classes, `\s`, `\<`, folding with ſ and the Kelvin
/// sign, `\Q`, POSIX classes, octal, set-operation look-alikes, braces without a count, anchors,
/// newlines, NUL.
fn atoms() -> Vec<Piece> {
    vec![
        piece("a", &["a", "A"]),
        piece("k", &["k", "K", "\u{212A}"]),
        piece("s", &["s", "S", "\u{17F}"]),
        piece("K", &["K", "k", "\u{212A}"]),
        piece("\u{17F}", &["\u{17F}", "s", "S"]),
        piece("\u{212A}", &["\u{212A}", "k"]),
        piece("é", &["é", "É", "e"]),
        piece("ß", &["ß", "\u{1E9E}", "ss"]),
        piece("σ", &["σ", "Σ", "ς"]),
        piece("0", &["0"]),
        piece("\n", &["\n"]),
        piece(" ", &[" "]),
        piece("-", &["-"]),
        piece(r"\-", &["-"]),
        piece(".", &["a", "\n", "é", "\u{0}"]),
        piece(r"\.", &[".", "a"]),
        piece(r"\_", &["_"]),
        piece(r"\<", &["<", ""]),
        piece(r"\>", &[">", ""]),
        piece(r"\x00", &["\u{0}"]),
        piece(r"\0", &["\u{0}", "0"]),
        piece(r"\101", &["A", "a"]),
        piece(r"\10", &["\u{8}"]),
        piece(r"\08", &["\u{0}8"]),
        piece(r"\777", &["\u{1FF}"]),
        piece(r"\x41", &["A"]),
        piece(r"\x{17F}", &["\u{17F}", "s"]),
        piece(r"\x{212A}", &["\u{212A}", "k"]),
        piece(r"\t", &["\t"]),
        piece(r"\v", &["\u{B}"]),
        piece(r"\f", &["\u{C}"]),
        piece(r"\a", &["\u{7}"]),
        piece(r"\r", &["\r"]),
        piece(r"\s", &[" ", "\t", "\u{B}", "\u{C}", "\n", "\r", "\u{A0}"]),
        piece(r"\S", &["a", " ", "\u{B}"]),
        piece(r"\d", &["0", "9", "a", "\u{663}"]),
        piece(r"\D", &["a", "0"]),
        piece(r"\w", &["a", "_", "é", "\u{17F}", "\u{212A}"]),
        piece(r"\W", &["-", "a", "\u{17F}", "\u{212A}"]),
        piece(r"\b", &[""]),
        piece(r"\B", &[""]),
        piece(r"\A", &[""]),
        piece(r"\z", &[""]),
        piece("^", &[""]),
        piece("$", &[""]),
        piece(r"\Qa.b\E", &["a.b", "axb"]),
        piece(r"\Q*+|\E", &["*+|"]),
        piece(r"\Q\E", &[""]),
        // Quoted to the end of the pattern, whatever follows.
        piece(r"\Qx", &["x"]),
        piece("[a-z]", &["a", "z", "A", "\u{17F}", "\u{212A}"]),
        piece("[^a]", &["a", "b", "\n", "A"]),
        piece("[^\\n]", &["\n", "a"]),
        piece("[[:alpha:]]", &["a", "Z", "1", "é"]),
        piece("[[:^space:]]", &["a", " ", "\u{B}"]),
        piece("[[:space:]]", &["\u{B}", " "]),
        piece("[[:alpha:][]", &["a", "[", "]"]),
        piece("[[:word:]]", &["_", "-"]),
        piece("[[:punct:]]", &["!", "a", "~"]),
        piece("[[:upper:]]", &["A", "a", "\u{212A}"]),
        piece(r"[\d-z]", &["1", "-", "z", "a"]),
        piece("[a&&b]", &["a", "&", "b"]),
        piece("[a~~b]", &["~", "a"]),
        piece("[a-]", &["a", "-"]),
        piece("[-a]", &["-", "a"]),
        piece("[]a]", &["]", "a"]),
        piece("[^]a]", &["]", "b"]),
        piece(r"[\s]", &["\u{B}", " "]),
        piece(r"[\x{100}-\x{17F}]", &["\u{17F}", "\u{100}", "S"]),
        piece("[K-k]", &["\u{212A}", "_", "K"]),
        piece("x{,3}", &["x{,3}", "xxx", "x"]),
        piece("x{01}", &["x{01}", "x"]),
        piece("x{2}", &["xx", "x"]),
        piece("x{1,3}", &["x", "xxx", "xxxx"]),
        piece("x{2,}", &["xx", "xxxxx", "x"]),
        piece("(?s:.)", &["\n", "a"]),
        piece("(?i)", &[""]),
        piece("(?-i)", &[""]),
        piece("(?m)", &[""]),
        piece("(?s)", &[""]),
        piece("(?U)", &[""]),
        piece("(?i-s)", &[""]),
        piece("(?)", &[""]),
        piece("(?P<n>a)", &["a"]),
        piece("(?<n>b)", &["b"]),
        piece("{", &["{"]),
        piece("}", &["}"]),
        piece("]", &["]"]),
    ]
}

/// Atoms RE2 refuses, or the policy does.
fn hostile_atoms() -> Vec<Piece> {
    vec![
        piece(r"\x{D800}", &["\u{FFFD}"]),
        piece("[[:foo:]]", &["f"]),
        piece("[a--b]", &["a"]),
        piece(r"[\Q]", &["Q"]),
        piece(r"[\b]", &["\u{8}"]),
        piece("[z-a]", &["a"]),
        piece("[]", &[""]),
        piece("x{1001}", &["x"]),
        piece("x{3,2}", &["xx"]),
        piece("(?x)", &[""]),
        piece("(?P<n!>a)", &["a"]),
        piece("(?=a)", &["a"]),
        piece(r"\pL", &["a", "1"]),
        piece(r"\p{Greek}", &["α", "a"]),
        piece(r"\e", &[""]),
        piece(r"\Z", &[""]),
        piece(r"\C", &[""]),
        piece(r"\8", &[""]),
        piece(r"\1", &[""]),
        piece(r"\é", &["é"]),
        piece(")", &[""]),
        piece("(", &[""]),
        piece("[", &[""]),
        piece("*", &[""]),
    ]
}

const REPEATS: &[&str] = &[
    "*", "+", "?", "*?", "+?", "{2}", "{1,3}", "{0,2}", "{2,}", "{,3}", "{01}", "{0}",
];
const HOSTILE_REPEATS: &[&str] = &["{1001}", "{3,2}", "*+", "{2}{2}", "{0,1000}"];
const GROUPS: &[(&str, &str)] = &[
    ("(", ")"),
    ("(?:", ")"),
    ("(?i:", ")"),
    ("(?-i:", ")"),
    ("(?m:", ")"),
    ("(?s:", ")"),
    ("(?i)(?:", ")"),
    ("(?P<g>", ")"),
];

/// Swaps what `(?i)` folds: ASCII case, s and ſ, k and the Kelvin sign.
fn folded_variant(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            's' => '\u{17F}',
            'k' => '\u{212A}',
            c if c.is_ascii_lowercase() => c.to_ascii_uppercase(),
            c if c.is_ascii_uppercase() => c.to_ascii_lowercase(),
            c => c,
        })
        .collect()
}

/// An atom: one RE2 refuses (or the policy does) one time in twelve.
fn pick_atom<'a>(rng: &mut Rng, atoms: &'a [Piece], hostile: &'a [Piece]) -> &'a Piece {
    if rng.below(12) == 0 {
        &hostile[rng.below(hostile.len())]
    } else {
        &atoms[rng.below(atoms.len())]
    }
}

fn generate(rng: &mut Rng, atoms: &[Piece], hostile: &[Piece], depth: u32) -> Piece {
    let choice = if depth == 0 { 0 } else { rng.below(10) };
    match choice {
        // Concatenation.
        0..=3 => {
            let parts: Vec<Piece> = (0..1 + rng.below(3))
                .map(|_| {
                    if depth == 0 || rng.below(3) > 0 {
                        let atom = pick_atom(rng, atoms, hostile);
                        Piece {
                            pattern: atom.pattern.clone(),
                            samples: atom.samples.clone(),
                        }
                    } else {
                        generate(rng, atoms, hostile, depth - 1)
                    }
                })
                .collect();
            let pattern = parts.iter().map(|p| p.pattern.as_str()).collect();
            let samples = (0..4)
                .map(|_| {
                    parts
                        .iter()
                        .map(|p| p.samples[rng.below(p.samples.len())].as_str())
                        .collect()
                })
                .collect();
            Piece { pattern, samples }
        }
        // Repetition of a piece.
        4..=5 => {
            let sub = generate(rng, atoms, hostile, depth - 1);
            let repeat = if rng.below(12) == 0 {
                rng.pick(HOSTILE_REPEATS)
            } else {
                rng.pick(REPEATS)
            };
            let samples = (0..4)
                .map(|_| {
                    let times = rng.below(4);
                    (0..times)
                        .map(|_| sub.samples[rng.below(sub.samples.len())].as_str())
                        .collect()
                })
                .chain(sub.samples.iter().take(2).cloned())
                .collect();
            let pattern = if sub.pattern.chars().count() == 1 {
                format!("{}{repeat}", sub.pattern)
            } else {
                format!("(?:{}){repeat}", sub.pattern)
            };
            Piece { pattern, samples }
        }
        // Alternation.
        6..=7 => {
            let (a, b) = (
                generate(rng, atoms, hostile, depth - 1),
                generate(rng, atoms, hostile, depth - 1),
            );
            Piece {
                pattern: format!("{}|{}", a.pattern, b.pattern),
                samples: a.samples.into_iter().chain(b.samples).collect(),
            }
        }
        // A group, with flags.
        _ => {
            let sub = generate(rng, atoms, hostile, depth - 1);
            let (open, close) = GROUPS[rng.below(GROUPS.len())];
            let mut samples = sub.samples.clone();
            samples.extend(sub.samples.iter().map(|s| folded_variant(s)));
            Piece {
                pattern: format!("{open}{}{close}", sub.pattern),
                samples,
            }
        }
    }
}

/// A generated case: the pattern and the values it is matched against.
fn corpus(count: usize, seed: u64) -> Vec<(String, Vec<String>)> {
    let (atoms, hostile) = (atoms(), hostile_atoms());
    let mut rng = Rng(seed);
    (0..count)
        .map(|_| {
            let piece = generate(&mut rng, &atoms, &hostile, 3);
            let mut values: Vec<String> = piece.samples.clone();
            // Near misses: a character added, dropped, or case-folded, newlines around.
            for sample in piece.samples.iter().take(3) {
                values.push(folded_variant(sample));
                values.push(format!("{sample}\n"));
                values.push(format!("\n{sample}"));
                values.push(format!("{sample}a"));
                let mut dropped = sample.clone();
                dropped.pop();
                values.push(dropped);
            }
            values.extend(["", "\u{0}", "\u{B}"].map(String::from));
            values.sort();
            values.dedup();
            (piece.pattern, values)
        })
        .collect()
}

/// Builds tests/go-regexp and returns the path of the binary.
fn build_go_regexp(dir: &Path) -> PathBuf {
    let binary = dir.join("goregexp");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/go-regexp"))
        .env("GOFLAGS", "-mod=mod")
        .status()
        .expect("this test needs Go (the machine toolchain) on PATH to build tests/go-regexp");
    assert!(status.success(), "go build of tests/go-regexp failed");
    binary
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Go's error code, from `error parsing regexp: <code>: `<expr>``.
fn go_code(error: &str) -> &str {
    let rest = error
        .strip_prefix("error parsing regexp: ")
        .unwrap_or(error);
    // The code holds no ": `"; the expression may (`[: `).
    rest.split_once(": `").map_or(rest, |(code, _)| code)
}

#[derive(Default, Debug)]
struct Counts {
    cases: usize,
    pairs: usize,
    both_refuse: usize,
    both_accept: usize,
    matched: usize,
    refused_by_policy_only: BTreeMap<String, usize>,
}

/// Compares every case with Go; returns the counts and every disagreement.
fn compare(binary: &Path, cases: &[(String, Vec<String>)]) -> (Counts, Vec<String>) {
    let inputs: Vec<String> = cases
        .iter()
        .map(|(pattern, values)| json!({"pattern": pattern, "values": values}).to_string())
        .collect();
    let answers = go_oracle::answer_all(binary, &inputs);
    let mut counts = Counts::default();
    let mut disagreements = Vec::new();
    for ((pattern, values), go) in cases.iter().zip(&answers) {
        counts.cases += 1;
        let ours = pattern::compile(pattern);
        match (go["error"].as_str(), &ours) {
            (Some(go_error), Ok(_)) => disagreements.push(format!(
                "{pattern:?}: Go refuses ({go_error}), the policy accepts"
            )),
            (Some(go_error), Err(PatternError::Invalid { code, .. })) => {
                counts.both_refuse += 1;
                if go_code(go_error) != *code {
                    disagreements.push(format!(
                        "{pattern:?}: Go refuses with {go_error:?}, the policy with {code:?}"
                    ));
                }
            }
            (Some(_), Err(_)) => counts.both_refuse += 1,
            (None, Err(error @ PatternError::Invalid { .. })) => disagreements.push(format!(
                "{pattern:?}: Go accepts, the policy refuses it as invalid: {error}"
            )),
            (None, Err(error)) => {
                let kind = match error {
                    PatternError::Unsupported { construct, .. } => {
                        format!("unsupported {construct}")
                    }
                    PatternError::Limit(limit) => match limit {
                        Limit::Length { .. } => "limit: length".to_owned(),
                        Limit::Nesting { .. } => "limit: nesting".to_owned(),
                        Limit::ProgramSize { .. } => "limit: program size".to_owned(),
                    },
                    PatternError::Invalid { .. } => unreachable!("matched above"),
                };
                *counts.refused_by_policy_only.entry(kind).or_default() += 1;
            }
            (None, Ok(regexp)) => {
                counts.both_accept += 1;
                let expected: Vec<bool> = go["matches"]
                    .as_array()
                    .expect("matches")
                    .iter()
                    .map(|m| m.as_bool().expect("bool"))
                    .collect();
                assert_eq!(expected.len(), values.len());
                for (value, expected) in values.iter().zip(expected) {
                    counts.pairs += 1;
                    counts.matched += usize::from(expected);
                    if regexp.is_match(value) != expected {
                        disagreements.push(format!(
                            "{pattern:?} on {value:?}: Go {expected}, the policy {}",
                            !expected
                        ));
                    }
                }
            }
        }
    }
    (counts, disagreements)
}

fn assert_agree(counts: &Counts, disagreements: &[String]) {
    assert!(
        disagreements.is_empty(),
        "{} disagreements with Go's regexp ({counts:?}), first ones:\n{}",
        disagreements.len(),
        disagreements[..disagreements.len().min(30)].join("\n")
    );
}

#[test]
fn patterns_match_exactly_as_gos_regexp() {
    let dir = temp_dir("go-regexp");
    let binary = build_go_regexp(&dir);
    let cases = corpus(6000, 0x5EED_2100);
    let (counts, disagreements) = compare(&binary, &cases);
    let _ = std::fs::remove_dir_all(&dir);
    assert_agree(&counts, &disagreements);
    println!("{counts:#?}");
    // The corpus reaches every outcome, often.
    assert!(
        counts.both_accept > 3000 && counts.both_refuse > 1000,
        "{counts:?}"
    );
    assert!(counts.pairs > 30_000 && counts.matched > 6000, "{counts:?}");
    // What the policy refuses and Go accepts is a construct it names (Unicode classes, surrogate
    // code points) or past a limit, no more.
    assert!(
        counts.refused_by_policy_only.keys().all(|kind| {
            [
                "unsupported \\p",
                "unsupported \\P",
                "unsupported \\x{D",
                "limit",
            ]
            .iter()
            .any(|named| kind.starts_with(named))
        }),
        "{:?}",
        counts.refused_by_policy_only
    );
}

/// Character soup: short strings of RE2's metacharacters, escapes and letters, most of them
/// invalid, each against a few values. Beside the agreement, what it checks is that no string
/// makes the port of Go's parser panic, read past a boundary or loop.
fn soup(count: usize, seed: u64) -> Vec<(String, Vec<String>)> {
    const PIECES: &[&str] = &[
        "\\", "(", ")", "[", "]", "{", "}", "|", "*", "+", "?", ".", "^", "$", "-", ",", ":", "=",
        "<", ">", "!", "P", "Q", "E", "p", "x", "0", "1", "7", "8", "a", "b", "z", "A", "Z", "s",
        "S", "d", "w", "k", "\u{17F}", "\u{212A}", "é", "\n", " ", "&", "~", "{2}", "{1,", "[:",
        ":]", "(?", "(?i", "(?P<", "\\x{", "\\Q", "\\E",
    ];
    let mut rng = Rng(seed);
    (0..count)
        .map(|_| {
            let pattern: String = (0..1 + rng.below(10)).map(|_| rng.pick(PIECES)).collect();
            let values = (0..4)
                .map(|_| {
                    (0..rng.below(4))
                        .map(|_| {
                            rng.pick(&["a", "b", "A", "s", "\u{17F}", "-", ":", "\n", "{", "x"])
                        })
                        .collect()
                })
                .chain(["", "a", "aa"].map(String::from))
                .collect();
            (pattern, values)
        })
        .collect()
}

#[test]
fn character_soup_agrees_with_gos_regexp() {
    let dir = temp_dir("go-regexp-soup");
    let binary = build_go_regexp(&dir);
    let (counts, disagreements) = compare(&binary, &soup(20_000, 0x50_0B));
    let _ = std::fs::remove_dir_all(&dir);
    assert_agree(&counts, &disagreements);
    println!("{counts:#?}");
    assert!(
        counts.both_accept > 2000 && counts.both_refuse > 10_000,
        "{counts:?}"
    );
}

/// The issue's cases, and the limits' edges, exactly.
#[test]
fn known_cases_agree_with_gos_regexp() {
    let dir = temp_dir("go-regexp-known");
    let binary = build_go_regexp(&dir);
    let values = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let cases: Vec<(String, Vec<String>)> = vec![
        (r"\s".into(), values(&["\u{B}", " ", "\t"])),
        (r"\<a\>".into(), values(&["a", "<a>"])),
        (r"a\<b".into(), values(&["a<b", "ab"])),
        (r"(?i)s".into(), values(&["\u{17F}", "S"])),
        (r"(?i)k".into(), values(&["\u{212A}"])),
        (r"\Qa.b\E".into(), values(&["a.b", "axb"])),
        (r"[[:alpha:][]".into(), values(&["[", "a", "]"])),
        (r"x{,3}".into(), values(&["x{,3}", "xxx"])),
        (r"\101".into(), values(&["A"])),
        (r"[\d-z]".into(), values(&["-", "5", "z", "y"])),
        (r"[a&&b]".into(), values(&["&", "a"])),
        (r"[a~~b]".into(), values(&["~"])),
        (r"x{1001}".into(), values(&[])),
        (r"x{1,1001}".into(), values(&[])),
        (r"(?:(?:[a-z]{0,30},?){0,30} ?){0,30}".into(), values(&[])),
        (
            r"(?:(?:[a-z]{0,10},?){0,10} ?){0,10}".into(),
            values(&["ab,cd ef", "ab,,"]),
        ),
        (r"(?:a{7}){142}".into(), values(&["a"])),
        (r"(?:a{7}){143}".into(), values(&[])),
        (r"...[0-9]+)|(x".into(), values(&[])),
        (
            r"(?:[A-Za-z0-9_.=/-]+,?)*".into(),
            values(&["a=b,c/d", "a b"]),
        ),
        (
            r"-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+".into(),
            values(&[
                "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536",
                "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536 -drive file=/dev/sda",
            ]),
        ),
    ];
    let (counts, disagreements) = compare(&binary, &cases);
    let _ = std::fs::remove_dir_all(&dir);
    assert_agree(&counts, &disagreements);
}

/// `src/pattern/fold_table.rs` is what Go writes, and the policy's lookup in it is Go's
/// `unicode.SimpleFold` for every code point.
#[test]
fn case_folding_is_gos() {
    let dir = temp_dir("go-regexp-fold");
    let binary = build_go_regexp(&dir);
    let run = |flag: &str| {
        let output = Command::new(&binary)
            .arg(flag)
            .output()
            .expect("run go-regexp");
        assert!(output.status.success(), "{flag}: {output:?}");
        String::from_utf8(output.stdout).expect("UTF-8")
    };
    let table = run("-fold-table");
    let moved = run("-fold-map");
    let _ = std::fs::remove_dir_all(&dir);
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/pattern/fold_table.rs"
    ))
    .expect("fold table");
    assert!(
        committed == table,
        "src/pattern/fold_table.rs is not what this Go writes: regenerate it with \
         `(cd tests/go-regexp && go run . -fold-table) > src/pattern/fold_table.rs`"
    );
    let mut go: BTreeMap<u32, u32> = BTreeMap::new();
    for line in moved.lines() {
        let pair: Value = serde_json::from_str(line).expect("JSON line");
        let rune = |i: usize| u32::try_from(pair[i].as_u64().expect("rune")).expect("u32");
        go.insert(rune(0), rune(1));
    }
    assert!(go.len() > 2800, "{} runes fold", go.len());
    for c in 0..=0x10_FFFF_u32 {
        let expected = go.get(&c).copied().unwrap_or(c);
        assert_eq!(pattern::simple_fold(c), expected, "U+{c:04X}");
    }
}
