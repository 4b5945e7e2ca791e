//! The patterns of sidecar profiles: RE2's syntax and meaning, as Go's `regexp` has them, matched
//! against a whole value, with a cost bounded by construction.
//!
//! A pattern is read by a port of Go's parser ([`parse`]), which refuses what `regexp.Compile`
//! refuses (with Go's message), what the policy would not match as RE2 does (Unicode classes), and
//! what is past the limits below. The tree is then spelt out for regex-lite with nothing left to
//! its reading: every character a code point, every class its ranges (`\s` is `[\t\n\f\r ]`, a
//! POSIX class its ASCII ranges), `(?i)` expanded into each character's case-folding orbit with
//! Go's own table ([`fold_table`], Unicode of Go's `unicode` package), anchors as `\A`, `\z` and
//! `(?m:^)`; the whole compiled alone, as `\A(?:...)\z`. One function, [`compile`], does this for
//! `validate_settings`, for requests and for the rules an instance keeps, so a pattern has one
//! meaning everywhere; one that does not compile matches nothing.
//!
//! `tests/pattern_differential.rs` holds the result to Go's `regexp` itself on generated patterns
//! and values. docs/matching.md says why regex-lite, and what the limits cost.

mod class;
mod fold_table;
mod parse;

use std::fmt;
use std::fmt::Write as _;

use regex_lite::{Regex, RegexBuilder};

pub use class::simple_fold;
pub use fold_table::UNICODE_VERSION;
pub use parse::REPEAT_MAX;

use parse::{Look, Node};

/// The longest pattern, in bytes.
pub const PATTERN_BYTES_MAX: usize = 4096;
/// The most groups open at once.
pub const NESTING_MAX: u32 = 50;
/// The largest program, in instructions as Go's parser estimates them (Go allows some 3.3
/// million): what matching a value costs per byte, at most.
pub const PROGRAM_SIZE_MAX: u64 = 2000;

/// Why a pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// What Go's `regexp.Compile` refuses: its error code and the part of the pattern at fault.
    Invalid {
        code: &'static str,
        expr: String,
        note: Option<&'static str>,
    },
    /// What RE2 accepts but the policy does not match as RE2 does.
    Unsupported { construct: String, reason: String },
    /// Past one of the policy's limits.
    Limit(Limit),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Length { bytes: usize },
    Nesting { max: u32 },
    ProgramSize { size: u64 },
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { code, expr, note } => {
                write!(f, "{code}: `{expr}`")?;
                match note {
                    Some(note) => write!(f, " ({note}), as RE2 refuses it"),
                    None => f.write_str(", as RE2 refuses it"),
                }
            }
            Self::Unsupported { construct, reason } => write!(f, "`{construct}`: {reason}"),
            Self::Limit(Limit::Length { bytes }) => write!(
                f,
                "the pattern is {bytes} bytes long, more than the {PATTERN_BYTES_MAX} the policy \
                 reads"
            ),
            Self::Limit(Limit::Nesting { max }) => {
                write!(
                    f,
                    "the pattern nests {max} or more groups, more than the policy reads"
                )
            }
            Self::Limit(Limit::ProgramSize { size }) => write!(
                f,
                "the pattern compiles to some {size} instructions, more than the \
                 {PROGRAM_SIZE_MAX} the policy matches (each one a cost per byte of every value)"
            ),
        }
    }
}

impl std::error::Error for PatternError {}

/// A compiled pattern: matches whole values, as `^(?:pattern)$` does in RE2.
#[derive(Debug, Clone)]
pub struct Regexp {
    regex: Regex,
    /// Go's estimate of its instructions: the most states a match steps through per character.
    size: u64,
    /// The most characters a match reads (`None`: unbounded).
    max_len: Option<u64>,
}

impl Regexp {
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }

    pub fn program_size(&self) -> u64 {
        self.size
    }

    /// A bound on the work of matching a value of `bytes` bytes, in steps (one state at one
    /// character): the engine (a Pike VM) steps through each state at most once per character,
    /// and an anchored search stops when no state is alive, after at most `max_len` characters.
    pub fn cost(&self, bytes: usize) -> u64 {
        let read = self
            .max_len
            .map_or(bytes as u64, |max| max.min(bytes as u64));
        self.size.saturating_mul(read + 1)
    }
}

/// Reads, checks and compiles a pattern: the one way a pattern is compiled.
pub fn compile(pattern: &str) -> Result<Regexp, PatternError> {
    if pattern.len() > PATTERN_BYTES_MAX {
        return Err(PatternError::Limit(Limit::Length {
            bytes: pattern.len(),
        }));
    }
    let tree = parse::parse(pattern, NESTING_MAX)?;
    let size = tree.size();
    if size > PROGRAM_SIZE_MAX {
        return Err(PatternError::Limit(Limit::ProgramSize { size }));
    }
    let mut spelt = String::from(r"\A(?:");
    spell(&tree, &mut spelt);
    spelt.push_str(r")\z");
    let max_len = tree.max_len();
    let regex = RegexBuilder::new(&spelt)
        // Each node adds at most two levels, the anchors one.
        .nest_limit(4 * NESTING_MAX + 8)
        .build()
        .map_err(|e| PatternError::Unsupported {
            construct: pattern.to_owned(),
            reason: format!("the policy's engine cannot compile it: {e}"),
        })?;
    Ok(Regexp {
        regex,
        size,
        max_len,
    })
}

/// Writes `node` in regex-lite's syntax, with no construct whose meaning is regex-lite's own
/// choice: characters as code points, classes as ranges, groups non-capturing.
fn spell(node: &Node, out: &mut String) {
    match node {
        Node::Empty => out.push_str("(?:)"),
        Node::Chars(set) => spell_class(set, out),
        Node::Look(look) => out.push_str(match look {
            Look::BeginText => r"\A",
            Look::EndText => r"\z",
            Look::BeginLine => "(?m:^)",
            Look::EndLine => "(?m:$)",
            Look::WordBoundary => r"\b",
            Look::NoWordBoundary => r"\B",
        }),
        Node::Concat(subs) => subs.iter().for_each(|sub| spell(sub, out)),
        Node::Alternate(subs) => {
            out.push_str("(?:");
            for (i, sub) in subs.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                spell(sub, out);
            }
            out.push(')');
        }
        Node::Repeat { min, max, sub } => {
            out.push_str("(?:");
            spell(sub, out);
            match max {
                Some(max) => write!(out, "){{{min},{max}}}"),
                None => write!(out, "){{{min},}}"),
            }
            .unwrap_or_default();
        }
        Node::Capture(sub) => {
            out.push_str("(?:");
            spell(sub, out);
            out.push(')');
        }
    }
}

fn spell_class(set: &class::CharSet, out: &mut String) {
    let mut ranges = set.scalar_ranges().peekable();
    if let Some(&(lo, hi)) = ranges.peek()
        && lo == hi
        && lo.is_ascii_alphanumeric()
        && set.ranges().len() == 1
    {
        out.push(lo);
        return;
    }
    if ranges.peek().is_none() {
        // No character of any text: surrogates only, or `[^\x00-\x{10FFFF}]`.
        out.push_str(r"[^\x{0}-\x{10FFFF}]");
        return;
    }
    out.push('[');
    for (lo, hi) in ranges {
        write!(out, r"\x{{{:X}}}", u32::from(lo)).unwrap_or_default();
        if hi != lo {
            write!(out, r"-\x{{{:X}}}", u32::from(hi)).unwrap_or_default();
        }
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// RE2's meaning where other engines (regex-lite's own reading included) differ: each row
    /// as Go's `regexp` answers it (tests/pattern_differential.rs checks thousands more).
    #[rstest]
    #[case::space_is_not_vertical_tab(r"\s", "\u{B}", false)]
    #[case::space(r"\s", "\u{C}", true)]
    #[case::space_class(r"[[:space:]]", "\u{B}", true)]
    #[case::angle_brackets_are_literals(r"\<a\>", "a", false)]
    #[case::angle_brackets_match_themselves(r"\<a\>", "<a>", true)]
    #[case::angle_bracket_between(r"a\<b", "a<b", true)]
    #[case::fold_long_s(r"(?i)s", "\u{17F}", true)]
    #[case::fold_kelvin(r"(?i)k", "\u{212A}", true)]
    #[case::fold_class(r"(?i)[a-z]+", "\u{17F}\u{212A}", true)]
    #[case::fold_word(r"(?i)\w", "\u{17F}", true)]
    #[case::fold_not_word(r"(?i)\W", "\u{17F}", false)]
    #[case::fold_negated(r"(?i)[^k]", "\u{212A}", false)]
    #[case::quoted(r"\Qa.b\E", "a.b", true)]
    #[case::quoted_dot_is_literal(r"\Qa.b\E", "axb", false)]
    #[case::posix_then_bracket(r"[[:alpha:][]+", "a[", true)]
    #[case::braces_without_count(r"x{,3}", "x{,3}", true)]
    #[case::braces_without_count_are_no_repetition(r"x{,3}", "xx", false)]
    #[case::octal(r"\101", "A", true)]
    #[case::digit_then_dash(r"[\d-z]+", "1-z", true)]
    #[case::digit_then_dash_is_no_range(r"[\d-z]", "a", false)]
    #[case::ampersands(r"[a&&b]+", "a&b", true)]
    #[case::tildes(r"[a~~b]+", "~ab", true)]
    #[case::dollar_is_end_of_text(r"a$", "a", true)]
    #[case::dollar_not_before_newline(r"a$", "a\n", false)]
    #[case::multiline(r"(?m)a$\n^b", "a\nb", true)]
    #[case::dot_not_newline(r".", "\n", false)]
    #[case::dot_newline(r"(?s).", "\n", true)]
    #[case::negated_class_newline(r"[^a]", "\n", true)]
    #[case::nul(r"a\x00b", "a\u{0}b", true)]
    #[case::nul_octal(r"\0", "\u{0}", true)]
    #[case::surrogates_match_nothing(r"[\x{D7FF}-\x{E000}]", "\u{FFFD}", false)]
    #[case::anchored(r"a|b", "ab", false)]
    #[case::word_boundary_ascii(r"\bé", "é", false)]
    #[case::empty(r"", "", true)]
    fn matches_as_re2(#[case] pattern: &str, #[case] value: &str, #[case] expected: bool) {
        let regexp = compile(pattern).expect(pattern);
        assert_eq!(regexp.is_match(value), expected, "{pattern:?} on {value:?}");
    }

    #[rstest]
    #[case(r"[a-z]{1001}", "invalid repeat count: `{1001}`, as RE2 refuses it")]
    #[case(
        r"(?:(?:[a-z]{0,30},?){0,30} ?){0,30}",
        "invalid repeat count: `{0,30}` (nested repetitions"
    )]
    #[case(r"...[0-9]+)|(x", "unexpected ): `...[0-9]+)|(x`")]
    #[case(r"\pL", r"`\pL`: Unicode classes (\p, \P) are not supported")]
    #[case(r"\x{D800}", r"`\x{D800}`: a surrogate code point")]
    #[case(r"[\x{D7FF}-\x{DFFF}]", r"`\x{DFFF}`: a surrogate code point")]
    #[case(&"a".repeat(PATTERN_BYTES_MAX + 1), "4097 bytes long")]
    #[case(r"[a-z]{1000}[a-z]{1000}[a-z]{1000}", "some 3000 instructions")]
    fn refusals_name_the_construct(#[case] pattern: &str, #[case] message: &str) {
        let error = compile(pattern).expect_err(pattern).to_string();
        assert!(error.contains(message), "{error}");
    }

    #[test]
    fn the_deepest_pattern_read_compiles() {
        let depth = (NESTING_MAX - 1) as usize;
        let deep = format!("{}a{}", "(?:(".repeat(depth / 2), ")*)+".repeat(depth / 2));
        compile(&deep).expect("compiles");
    }
}
