//! RE2's syntax, as Go's `regexp.Compile` reads it (`regexp/syntax`, `Perl` flags): a port of its
//! parser (parse.go), which yields the tree the policy translates, or the error Go gives.
//!
//! Go's parser also rewrites as it goes (literal strings, factored alternations, merged
//! classes); those rewrites change no match, so this one builds the plain tree. What it keeps
//! exactly is what Go accepts and refuses, and what every construct matches.

use super::class::{CharSet, MAX_RUNE};
use super::{Limit, PatternError};

/// RE2's (and Go's) largest repetition count, of one operator and of nested ones multiplied.
pub const REPEAT_MAX: u32 = 1000;

/// A zero-width assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// `\A`, and `^` without `(?m)`.
    BeginText,
    /// `\z`, and `$` without `(?m)`.
    EndText,
    /// `^` with `(?m)`: at the beginning of the text or after `\n`.
    BeginLine,
    /// `$` with `(?m)`: at the end of the text or before `\n`.
    EndLine,
    /// `\b`: between an ASCII word character and a non-word one (or an end of the text).
    WordBoundary,
    /// `\B`.
    NoWordBoundary,
}

/// A parsed pattern. Non-capturing groups and flag groups leave no node, as in Go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// The empty string.
    Empty,
    /// One character of the set (a literal is a set of one, or of its case-folding orbit).
    Chars(CharSet),
    Look(Look),
    Concat(Vec<Node>),
    Alternate(Vec<Node>),
    /// `*` is `{0,}`, `+` is `{1,}`, `?` is `{0,1}`: Go's limits treat them alike.
    Repeat {
        min: u32,
        max: Option<u32>,
        sub: Box<Node>,
    },
    /// A capturing group `(...)`, `(?P<name>...)`, `(?<name>...)`.
    Capture(Box<Node>),
}

impl Node {
    /// Go's estimate of the compiled size (`calcSize` in parse.go), in instructions.
    pub fn size(&self) -> u64 {
        let size = match self {
            Self::Empty | Self::Chars(_) | Self::Look(_) => 1,
            Self::Capture(sub) => 2 + sub.size(),
            Self::Concat(subs) => subs.iter().map(Node::size).fold(0, u64::saturating_add),
            Self::Alternate(subs) => subs
                .iter()
                .map(Node::size)
                .fold((subs.len() as u64).saturating_sub(1), u64::saturating_add),
            Self::Repeat { min, max, sub } => {
                let sub = sub.size();
                match max {
                    None if *min == 0 => 2 + sub,
                    None => 1 + u64::from(*min).saturating_mul(sub),
                    Some(max) => u64::from(*max)
                        .saturating_mul(sub)
                        .saturating_add(u64::from(max - min)),
                }
            }
        };
        size.max(1)
    }

    /// The most characters a match can consume; `None` when unbounded. An anchored search stops
    /// once no thread is alive, so a match reads at most this many characters of a value.
    pub fn max_len(&self) -> Option<u64> {
        match self {
            Self::Empty | Self::Look(_) => Some(0),
            Self::Chars(_) => Some(1),
            Self::Capture(sub) => sub.max_len(),
            Self::Concat(subs) => subs
                .iter()
                .try_fold(0u64, |sum, sub| Some(sum.saturating_add(sub.max_len()?))),
            Self::Alternate(subs) => subs
                .iter()
                .try_fold(0u64, |most, sub| Some(most.max(sub.max_len()?))),
            Self::Repeat { max, sub, .. } => match (sub.max_len()?, max) {
                (0, _) => Some(0),
                (len, Some(max)) => Some(len.saturating_mul(u64::from(*max))),
                (_, None) => None,
            },
        }
    }
}

/// Go's `repeatIsValid`: whether the repetitions along any path of `node` repeat its innermost
/// part at most `n` times (the integer divisions are Go's).
fn repeat_is_valid(node: &Node, mut n: u32) -> bool {
    match node {
        Node::Repeat { min, max, sub } => {
            let m = match max {
                Some(0) => return true,
                Some(max) => *max,
                None => *min,
            };
            if m > n {
                return false;
            }
            // `m` 0 (`x{0,}`) leaves `n` as it is.
            n = n.checked_div(m).unwrap_or(n);
            repeat_is_valid(sub, n)
        }
        Node::Capture(sub) => repeat_is_valid(sub, n),
        Node::Concat(subs) | Node::Alternate(subs) => subs.iter().all(|s| repeat_is_valid(s, n)),
        Node::Empty | Node::Chars(_) | Node::Look(_) => true,
    }
}

/// The flags of Go's parser that change what is matched.
#[derive(Debug, Clone, Copy)]
struct Flags {
    /// `(?i)`
    fold_case: bool,
    /// Not `(?m)`: `^` and `$` at the ends of the text only.
    one_line: bool,
    /// `(?s)`
    dot_nl: bool,
}

const PERL_FLAGS: Flags = Flags {
    fold_case: false,
    one_line: true,
    dot_nl: false,
};

/// Go's error: its code and the part of the pattern it is about.
fn invalid(code: &'static str, expr: &str) -> PatternError {
    PatternError::Invalid {
        code,
        expr: expr.to_owned(),
        note: None,
    }
}

const NESTED_REPEATS: &str =
    "nested repetitions would repeat their innermost part more than 1000 times";

const ERR_INVALID_CHAR_RANGE: &str = "invalid character class range";
const ERR_INVALID_ESCAPE: &str = "invalid escape sequence";
const ERR_INVALID_NAMED_CAPTURE: &str = "invalid named capture";
const ERR_INVALID_PERL_OP: &str = "invalid or unsupported Perl syntax";
const ERR_INVALID_REPEAT_OP: &str = "invalid nested repetition operator";
const ERR_INVALID_REPEAT_SIZE: &str = "invalid repeat count";
const ERR_MISSING_BRACKET: &str = "missing closing ]";
const ERR_MISSING_PAREN: &str = "missing closing )";
const ERR_MISSING_REPEAT_ARGUMENT: &str = "missing argument to repetition operator";
const ERR_TRAILING_BACKSLASH: &str = "trailing backslash at end of expression";
const ERR_UNEXPECTED_PAREN: &str = "unexpected )";

/// Parses `pattern` as `regexp.Compile` does, refusing what it refuses, what the policy does not
/// match as RE2 does, and what goes past the policy's limits.
pub fn parse(pattern: &str, nesting_max: u32) -> Result<Node, PatternError> {
    let mut parser = Parser {
        whole: pattern,
        flags: PERL_FLAGS,
        depth: 0,
        nesting_max,
    };
    let mut rest = pattern;
    let node = parser.alternation(&mut rest)?;
    match rest.chars().next() {
        None => Ok(node),
        // `alternation` stops only at the end or at a `)`, which nothing opened.
        Some(_) => Err(invalid(ERR_UNEXPECTED_PAREN, pattern)),
    }
}

struct Parser<'p> {
    whole: &'p str,
    flags: Flags,
    /// Groups open around the current position.
    depth: u32,
    nesting_max: u32,
}

/// One branch of an alternation being read, and whether its last item is a repetition (Go's
/// `lastRepeat`: `a**` is an error, not a doubled star).
struct Branch<'p> {
    items: Vec<Node>,
    last_repeat: Option<&'p str>,
}

impl<'p> Parser<'p> {
    /// Branches separated by `|`, up to a `)` or the end (either left in `rest`).
    fn alternation(&mut self, rest: &mut &'p str) -> Result<Node, PatternError> {
        let mut branches = vec![self.concatenation(rest)?];
        while let Some(after) = rest.strip_prefix('|') {
            *rest = after;
            branches.push(self.concatenation(rest)?);
        }
        Ok(match branches.len() {
            1 => branches.pop().unwrap_or(Node::Empty),
            _ => Node::Alternate(branches),
        })
    }

    /// Items up to a `|`, a `)` or the end.
    fn concatenation(&mut self, rest: &mut &'p str) -> Result<Node, PatternError> {
        let mut branch = Branch {
            items: Vec::new(),
            last_repeat: None,
        };
        while let Some(c) = rest.chars().next() {
            if c == '|' || c == ')' {
                break;
            }
            let repeat = self.item(rest, &mut branch)?;
            branch.last_repeat = repeat;
        }
        let mut items = branch.items;
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap_or(Node::Empty),
            _ => Node::Concat(items),
        })
    }

    /// Reads one item (or repetition operator) at the start of `rest`; returns the operator's
    /// text when it was one.
    fn item(
        &mut self,
        rest: &mut &'p str,
        branch: &mut Branch<'p>,
    ) -> Result<Option<&'p str>, PatternError> {
        let t = *rest;
        let Some(c) = t.chars().next() else {
            return Ok(None);
        };
        match c {
            '(' => {
                self.group(rest, branch)?;
                return Ok(None);
            }
            '^' => {
                branch.items.push(Node::Look(if self.flags.one_line {
                    Look::BeginText
                } else {
                    Look::BeginLine
                }));
                *rest = &t[1..];
            }
            '$' => {
                branch.items.push(Node::Look(if self.flags.one_line {
                    Look::EndText
                } else {
                    Look::EndLine
                }));
                *rest = &t[1..];
            }
            '.' => {
                let any = CharSet::from_ranges([(0, MAX_RUNE)]);
                let set = if self.flags.dot_nl {
                    any
                } else {
                    CharSet::single(u32::from('\n')).negated()
                };
                branch.items.push(Node::Chars(set));
                *rest = &t[1..];
            }
            '[' => {
                let set = self.class(rest)?;
                branch.items.push(Node::Chars(set));
            }
            '*' | '+' | '?' => {
                let (min, max) = match c {
                    '*' => (0, None),
                    '+' => (1, None),
                    _ => (0, Some(1)),
                };
                return self.repeat(rest, 1, min, max, branch).map(Some);
            }
            '{' => match parse_repeat(t) {
                None => {
                    // Not a repetition: `{` is a literal (`x{,3}` matches "x{,3}").
                    self.literal(u32::from('{'), branch);
                    *rest = &t[1..];
                }
                Some((min, max, after)) => {
                    let operator = &t[..t.len() - after.len()];
                    let limit = i64::from(REPEAT_MAX);
                    if min < 0 || min > limit || max > limit || (max >= 0 && min > max) {
                        return Err(invalid(ERR_INVALID_REPEAT_SIZE, operator));
                    }
                    // In range, so they fit.
                    let min = min as u32;
                    let max = (max >= 0).then_some(max as u32);
                    return self
                        .repeat(rest, operator.len(), min, max, branch)
                        .map(Some);
                }
            },
            '\\' => self.escape(rest, branch)?,
            _ => {
                self.literal(u32::from(c), branch);
                *rest = &t[c.len_utf8()..];
            }
        }
        Ok(None)
    }

    /// Applies the repetition operator of `operator_len` bytes at the start of `rest` (and a
    /// following `?`, which makes it lazy: the same matches) to the branch's last item.
    fn repeat(
        &mut self,
        rest: &mut &'p str,
        operator_len: usize,
        min: u32,
        max: Option<u32>,
        branch: &mut Branch<'p>,
    ) -> Result<&'p str, PatternError> {
        let t = *rest;
        let mut after = &t[operator_len..];
        if let Some(lazy) = after.strip_prefix('?') {
            after = lazy;
        }
        let operator = &t[..t.len() - after.len()];
        if let Some(last) = branch.last_repeat {
            // Go names both operators: `**`, `{2}{3}`.
            let both = &self.whole[offset(self.whole, last)..offset(self.whole, after)];
            return Err(invalid(ERR_INVALID_REPEAT_OP, both));
        }
        let Some(sub) = branch.items.pop() else {
            return Err(invalid(ERR_MISSING_REPEAT_ARGUMENT, operator));
        };
        let node = Node::Repeat {
            min,
            max,
            sub: Box::new(sub),
        };
        let counted = t.starts_with('{');
        if counted
            && (min >= 2 || max.is_some_and(|max| max >= 2))
            && !repeat_is_valid(&node, REPEAT_MAX)
        {
            return Err(PatternError::Invalid {
                code: ERR_INVALID_REPEAT_SIZE,
                expr: operator.to_owned(),
                note: Some(NESTED_REPEATS),
            });
        }
        branch.items.push(node);
        *rest = after;
        Ok(t)
    }

    fn literal(&self, c: u32, branch: &mut Branch) {
        let set = CharSet::single(c);
        branch.items.push(Node::Chars(if self.flags.fold_case {
            set.case_folded()
        } else {
            set
        }));
    }

    /// A group or a flag change, at a `(`.
    fn group(&mut self, rest: &mut &'p str, branch: &mut Branch<'p>) -> Result<(), PatternError> {
        let t = *rest;
        let saved = self.flags;
        let capture = if let Some(after_question) = t.strip_prefix("(?") {
            match self.perl_flags(t, after_question)? {
                GroupStart::FlagsOnly(after) => {
                    *rest = after;
                    return Ok(());
                }
                GroupStart::NonCapturing(after) => {
                    *rest = after;
                    false
                }
                GroupStart::Named(after) => {
                    *rest = after;
                    true
                }
            }
        } else {
            *rest = &t[1..];
            true
        };
        self.depth += 1;
        if self.depth >= self.nesting_max {
            return Err(PatternError::Limit(Limit::Nesting {
                max: self.nesting_max,
            }));
        }
        // The flags set inside the group (and `(?i:` 's own) end with it.
        let inner = self.alternation(rest);
        self.flags = saved;
        self.depth -= 1;
        let inner = inner?;
        match rest.strip_prefix(')') {
            Some(after) => *rest = after,
            None => return Err(invalid(ERR_MISSING_PAREN, self.whole)),
        }
        branch.items.push(if capture {
            Node::Capture(Box::new(inner))
        } else {
            inner
        });
        Ok(())
    }

    /// Go's `parsePerlFlags`, on `t` starting with `(?`.
    fn perl_flags(
        &mut self,
        t: &'p str,
        after_question: &'p str,
    ) -> Result<GroupStart<'p>, PatternError> {
        let named = after_question
            .strip_prefix("P<")
            .filter(|_| t.len() > 4)
            .or_else(|| after_question.strip_prefix('<').filter(|_| t.len() > 3));
        if let Some(name_and_rest) = named {
            let Some(end) = name_and_rest.find('>') else {
                return Err(invalid(ERR_INVALID_NAMED_CAPTURE, t));
            };
            let name = &name_and_rest[..end];
            let after = &name_and_rest[end + 1..];
            if name.is_empty() || !name.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric()) {
                return Err(invalid(
                    ERR_INVALID_NAMED_CAPTURE,
                    &t[..t.len() - after.len()],
                ));
            }
            return Ok(GroupStart::Named(after));
        }
        let mut flags = self.flags;
        let mut negated = false;
        let mut saw_flag = false;
        let mut chars = after_question.char_indices();
        while let Some((i, c)) = chars.next() {
            let set = !negated;
            match c {
                'i' => flags.fold_case = set,
                'm' => flags.one_line = !set,
                's' => flags.dot_nl = set,
                // Laziness changes no match.
                'U' => {}
                '-' if !negated => {
                    negated = true;
                    saw_flag = false;
                    continue;
                }
                // `(?-)` and `(?i-)` end with a negation that negates nothing.
                ':' | ')' if !negated || saw_flag => {
                    self.flags = flags;
                    let after = &after_question[i + 1..];
                    return Ok(if c == ':' {
                        GroupStart::NonCapturing(after)
                    } else {
                        GroupStart::FlagsOnly(after)
                    });
                }
                _ => {
                    let end = after_question.len() - chars.as_str().len();
                    return Err(invalid(ERR_INVALID_PERL_OP, &t[..2 + end]));
                }
            }
            saw_flag = true;
        }
        Err(invalid(ERR_INVALID_PERL_OP, t))
    }

    /// A `\` outside a class.
    fn escape(&mut self, rest: &mut &'p str, branch: &mut Branch) -> Result<(), PatternError> {
        let t = *rest;
        let look = match t.as_bytes().get(1) {
            Some(b'A') => Some(Look::BeginText),
            Some(b'z') => Some(Look::EndText),
            Some(b'b') => Some(Look::WordBoundary),
            Some(b'B') => Some(Look::NoWordBoundary),
            _ => None,
        };
        if let Some(look) = look {
            branch.items.push(Node::Look(look));
            *rest = &t[2..];
            return Ok(());
        }
        match t.as_bytes().get(1) {
            Some(b'C') => return Err(invalid(ERR_INVALID_ESCAPE, &t[..2])),
            Some(b'Q') => {
                // `\Q...\E`: literals, up to `\E` or the end.
                let (literal, after) = t[2..].split_once("\\E").unwrap_or((&t[2..], ""));
                for c in literal.chars() {
                    self.literal(u32::from(c), branch);
                }
                *rest = after;
                return Ok(());
            }
            Some(b'p' | b'P') => return Err(unicode_class(t)),
            _ => {}
        }
        if let Some((set, after)) = self.perl_class(t) {
            branch.items.push(Node::Chars(set));
            *rest = after;
            return Ok(());
        }
        let (c, after) = parse_escape(t)?;
        self.literal(c, branch);
        *rest = after;
        Ok(())
    }

    /// `\d \D \s \S \w \W` at the start of `t`: Go's `perlGroup`.
    fn perl_class<'t>(&self, t: &'t str) -> Option<(CharSet, &'t str)> {
        let (positive, ranges): (bool, &[(u32, u32)]) = match t.get(..2)? {
            "\\d" => (true, DIGIT),
            "\\D" => (false, DIGIT),
            "\\s" => (true, PERL_SPACE),
            "\\S" => (false, PERL_SPACE),
            "\\w" => (true, WORD),
            "\\W" => (false, WORD),
            _ => return None,
        };
        Some((self.group_set(positive, ranges), &t[2..]))
    }

    /// Go's `appendGroup`: a named group, folded under `(?i)` before it is negated.
    fn group_set(&self, positive: bool, ranges: &[(u32, u32)]) -> CharSet {
        let mut set = CharSet::from_ranges(ranges.iter().copied());
        if self.flags.fold_case {
            set = set.case_folded();
        }
        if positive { set } else { set.negated() }
    }

    /// Go's `parseClass`, at a `[`.
    fn class(&mut self, rest: &mut &'p str) -> Result<CharSet, PatternError> {
        let whole_class = *rest;
        let mut t = &whole_class[1..];
        let negated = match t.strip_prefix('^') {
            Some(after) => {
                t = after;
                true
            }
            None => false,
        };
        let mut set = CharSet::default();
        // `]` is a member when first.
        let mut first = true;
        while t.is_empty() || !t.starts_with(']') || first {
            first = false;
            if t.len() > 2
                && t.starts_with("[:")
                && let Some((group, after)) = self.posix_class(t)?
            {
                set.union(&group);
                t = after;
                continue;
            }
            if t.starts_with("\\p") || t.starts_with("\\P") {
                return Err(unicode_class(t));
            }
            if let Some((group, after)) = self.perl_class(t) {
                set.union(&group);
                t = after;
                continue;
            }
            let range_start = t;
            let (lo, after) = class_char(t, whole_class)?;
            t = after;
            let mut hi = lo;
            // `[a-]` is `a` and `-`.
            if t.len() >= 2 && t.starts_with('-') && !t[1..].starts_with(']') {
                let (end, after) = class_char(&t[1..], whole_class)?;
                t = after;
                if end < lo {
                    let written = &range_start[..range_start.len() - t.len()];
                    return Err(invalid(ERR_INVALID_CHAR_RANGE, written));
                }
                hi = end;
            }
            let range = CharSet::from_ranges([(lo, hi)]);
            set.union(&if self.flags.fold_case {
                range.case_folded()
            } else {
                range
            });
        }
        *rest = &t[1..];
        Ok(if negated { set.negated() } else { set })
    }

    /// Go's `parseNamedClass`: `[:alpha:]` and the others, `[:^alpha:]` negated.
    fn posix_class<'t>(&self, t: &'t str) -> Result<Option<(CharSet, &'t str)>, PatternError> {
        let Some(end) = t[2..].find(":]") else {
            return Ok(None);
        };
        let name = &t[..end + 4];
        let (positive, bare) = match name[2..name.len() - 2].strip_prefix('^') {
            Some(bare) => (false, bare),
            None => (true, &name[2..name.len() - 2]),
        };
        let Some((_, ranges)) = POSIX_CLASSES.iter().find(|(n, _)| *n == bare) else {
            return Err(invalid(ERR_INVALID_CHAR_RANGE, name));
        };
        Ok(Some((self.group_set(positive, ranges), &t[name.len()..])))
    }
}

enum GroupStart<'p> {
    /// `(?i)`: the flags change up to the end of the enclosing group.
    FlagsOnly(&'p str),
    /// `(?:` or `(?i:`.
    NonCapturing(&'p str),
    /// `(?P<name>` or `(?<name>`.
    Named(&'p str),
}

/// The byte offset of `part` (a suffix of `whole`) in `whole`.
fn offset(whole: &str, part: &str) -> usize {
    whole.len() - part.len()
}

/// Go's `parseRepeat`: `{n}`, `{n,}` or `{n,m}` at the start of `t`, as `(min, max, rest)` with
/// `max` -1 for `{n,}` and `min` -1 when a count is too big; `None` when it is not one (then `{`
/// is a literal).
fn parse_repeat(t: &str) -> Option<(i64, i64, &str)> {
    let s = t.strip_prefix('{')?;
    let (mut min, s) = parse_int(s)?;
    let (max, s) = match s.strip_prefix(',') {
        None => (min, s),
        Some(s) if s.starts_with('}') => (-1, s),
        Some(s) => {
            let (max, s) = parse_int(s)?;
            if max < 0 {
                min = -1;
            }
            (max, s)
        }
    };
    let rest = s.strip_prefix('}')?;
    Some((min, max, rest))
}

/// Go's `parseInt`: decimal digits without a leading zero; -1 when past 10^8.
fn parse_int(s: &str) -> Option<(i64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || (digits >= 2 && s.starts_with('0')) {
        return None;
    }
    let mut n: i64 = 0;
    for b in s[..digits].bytes() {
        if n >= 100_000_000 {
            n = -1;
            break;
        }
        n = n * 10 + i64::from(b - b'0');
    }
    Some((n, &s[digits..]))
}

/// `\p` and `\P`: Unicode classes, which RE2 takes from its Unicode tables. The policy has no
/// tables that are certain to be Go's, so it refuses them rather than match otherwise.
fn unicode_class(t: &str) -> PatternError {
    let end = match t[2..].chars().next() {
        Some('{') => t.find('}').map_or(t.len(), |end| end + 1),
        Some(c) => 2 + c.len_utf8(),
        None => 2,
    };
    PatternError::Unsupported {
        construct: t[..end].to_owned(),
        reason: "Unicode classes (\\p, \\P) are not supported: the policy cannot promise \
                 RE2's tables; write the characters as a class"
            .to_owned(),
    }
}

/// Go's `parseClassChar`: one character of a class, escaped or not.
fn class_char<'t>(t: &'t str, whole_class: &str) -> Result<(u32, &'t str), PatternError> {
    match t.chars().next() {
        None => Err(invalid(ERR_MISSING_BRACKET, whole_class)),
        Some('\\') => parse_escape(t),
        Some(c) => Ok((u32::from(c), &t[c.len_utf8()..])),
    }
}

/// Go's `parseEscape`: a single-character escape at the start of `s` (a `\`), except that a
/// surrogate code point is refused: no UTF-8 text holds one, and Go's `regexp` matches such a
/// literal against U+FFFD in some patterns (`\x{D800}`) and not in others (`\x{D800}|b`).
fn parse_escape(s: &str) -> Result<(u32, &str), PatternError> {
    let (c, rest) = parse_escape_as_go(s)?;
    if (0xD800..=0xDFFF).contains(&c) {
        return Err(PatternError::Unsupported {
            construct: s[..s.len() - rest.len()].to_owned(),
            reason: "a surrogate code point, which no text holds (RE2's Go implementation \
                     matches it against U+FFFD in some patterns only)"
                .to_owned(),
        });
    }
    Ok((c, rest))
}

fn parse_escape_as_go(s: &str) -> Result<(u32, &str), PatternError> {
    let t = &s[1..];
    let Some(c) = t.chars().next() else {
        return Err(invalid(ERR_TRAILING_BACKSLASH, ""));
    };
    let mut t = &t[c.len_utf8()..];
    let escape_error = |t: &str| invalid(ERR_INVALID_ESCAPE, &s[..s.len() - t.len()]);
    let octal = |b: u8| (b'0'..=b'7').contains(&b);
    match c {
        // A single non-zero digit is a backreference, which RE2 does not support.
        '1'..='7' if !t.as_bytes().first().is_some_and(|&b| octal(b)) => Err(escape_error(t)),
        '0'..='7' => {
            // Up to three octal digits.
            let mut r = u32::from(c) - u32::from('0');
            for _ in 1..3 {
                match t.as_bytes().first() {
                    Some(&b) if octal(b) => {
                        r = r * 8 + u32::from(b - b'0');
                        t = &t[1..];
                    }
                    _ => break,
                }
            }
            Ok((r, t))
        }
        'x' => parse_hex(s, t),
        'a' => Ok((0x07, t)),
        'f' => Ok((0x0C, t)),
        'n' => Ok((0x0A, t)),
        'r' => Ok((0x0D, t)),
        't' => Ok((0x09, t)),
        'v' => Ok((0x0B, t)),
        // Escaped punctuation is itself (`\<` is `<`, `\_` is `_`).
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((u32::from(c), t)),
        _ => Err(escape_error(t)),
    }
}

/// `\x` followed by two hex digits or by hex digits in braces; `t` follows the `x`.
fn parse_hex<'s>(s: &'s str, t: &'s str) -> Result<(u32, &'s str), PatternError> {
    let error = |t: &str| invalid(ERR_INVALID_ESCAPE, &s[..s.len() - t.len()]);
    let hex = |c: char| c.to_digit(16);
    if let Some(braced) = t.strip_prefix('{') {
        let Some(end) = braced.find('}') else {
            return Err(error(""));
        };
        let digits = &braced[..end];
        let mut r: u32 = 0;
        for (i, c) in digits.char_indices() {
            let Some(v) = hex(c) else {
                return Err(error(&braced[i + c.len_utf8()..]));
            };
            r = r * 16 + v;
            if r > MAX_RUNE {
                return Err(error(&braced[i + c.len_utf8()..]));
            }
        }
        if digits.is_empty() {
            return Err(error(&braced[1..]));
        }
        return Ok((r, &braced[end + 1..]));
    }
    let mut chars = t.chars();
    match (chars.next(), chars.next()) {
        (Some(x), Some(y)) => match (hex(x), hex(y)) {
            (Some(x), Some(y)) => Ok((x * 16 + y, chars.as_str())),
            _ => Err(error(chars.as_str())),
        },
        _ => Err(error("")),
    }
}

const DIGIT: &[(u32, u32)] = &[(0x30, 0x39)];
/// RE2's `\s`: `[\t\n\f\r ]` (no `\v`).
const PERL_SPACE: &[(u32, u32)] = &[(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)];
const WORD: &[(u32, u32)] = &[(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)];

/// Go's `posixGroup` (perl_groups.go): ASCII only.
const POSIX_CLASSES: &[(&str, &[(u32, u32)])] = &[
    ("alnum", &[(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)]),
    ("alpha", &[(0x41, 0x5A), (0x61, 0x7A)]),
    ("ascii", &[(0x00, 0x7F)]),
    ("blank", &[(0x09, 0x09), (0x20, 0x20)]),
    ("cntrl", &[(0x00, 0x1F), (0x7F, 0x7F)]),
    ("digit", &[(0x30, 0x39)]),
    ("graph", &[(0x21, 0x7E)]),
    ("lower", &[(0x61, 0x7A)]),
    ("print", &[(0x20, 0x7E)]),
    (
        "punct",
        &[(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    ),
    ("space", &[(0x09, 0x0D), (0x20, 0x20)]),
    ("upper", &[(0x41, 0x5A)]),
    (
        "word",
        &[(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    ),
    ("xdigit", &[(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)]),
];

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn chars(text: &str) -> Node {
        let nodes: Vec<Node> = text
            .chars()
            .map(|c| Node::Chars(CharSet::single(u32::from(c))))
            .collect();
        match nodes.len() {
            1 => nodes.into_iter().next().expect("one"),
            _ => Node::Concat(nodes),
        }
    }

    #[rstest]
    #[case("x{,3}", chars("x{,3}"))]
    #[case("x{01}", chars("x{01}"))]
    #[case("\\<a\\>", chars("<a>"))]
    #[case("\\101", chars("A"))]
    #[case("\\10", chars("\u{8}"))]
    #[case("\\08", chars("\u{0}8"))]
    #[case("\\Qa.b\\E.", Node::Concat(vec![chars("a"), chars("."), chars("b"), Node::Chars(CharSet::single(10).negated())]))]
    #[case("\\Q*", chars("*"))]
    #[case("[a&&b]", Node::Chars(CharSet::from_ranges([(0x26, 0x26), (0x61, 0x62)])))]
    #[case("[a~~b]", Node::Chars(CharSet::from_ranges([(0x7E, 0x7E), (0x61, 0x62)])))]
    #[case("[\\d-z]", Node::Chars(CharSet::from_ranges([(0x30, 0x39), (0x2D, 0x2D), (0x7A, 0x7A)])))]
    #[case("[[:alpha:][]", Node::Chars(CharSet::from_ranges([(0x41, 0x5B), (0x61, 0x7A)])))]
    #[case("[]a]", Node::Chars(CharSet::from_ranges([(0x5D, 0x5D), (0x61, 0x61)])))]
    #[case("\\s", Node::Chars(CharSet::from_ranges([(9, 10), (12, 13), (32, 32)])))]
    #[case("(?i)\u{17F}", Node::Chars(CharSet::from_ranges([(0x53, 0x53), (0x73, 0x73), (0x17F, 0x17F)])))]
    #[case("(?i)k", Node::Chars(CharSet::from_ranges([(0x4B, 0x4B), (0x6B, 0x6B), (0x212A, 0x212A)])))]
    #[case("a(?i)b|c", Node::Alternate(vec![Node::Concat(vec![chars("a"), Node::Chars(CharSet::from_ranges([(0x42, 0x42), (0x62, 0x62)]))]), Node::Chars(CharSet::from_ranges([(0x43, 0x43), (0x63, 0x63)]))]))]
    #[case("(?i:a)b", Node::Concat(vec![Node::Chars(CharSet::from_ranges([(0x41, 0x41), (0x61, 0x61)])), chars("b")]))]
    #[case("^$", Node::Concat(vec![Node::Look(Look::BeginText), Node::Look(Look::EndText)]))]
    #[case("(?m)^$", Node::Concat(vec![Node::Look(Look::BeginLine), Node::Look(Look::EndLine)]))]
    #[case("", Node::Empty)]
    #[case("(?)", Node::Empty)]
    fn reads_what_go_reads(#[case] pattern: &str, #[case] expected: Node) {
        assert_eq!(parse(pattern, 100), Ok(expected), "{pattern}");
    }

    #[rstest]
    #[case("x{1001}", "invalid repeat count: `{1001}`")]
    #[case("x{1,1001}", "invalid repeat count: `{1,1001}`")]
    #[case("x{2,1}", "invalid repeat count")]
    #[case("x{100000000000}", "invalid repeat count")]
    #[case(
        "(?:(?:[a-z]{0,30},?){0,30} ?){0,30}",
        "invalid repeat count: `{0,30}` (nested"
    )]
    #[case("(?:a{7}){143}", "invalid repeat count")]
    #[case("a**", "invalid nested repetition operator: `**`")]
    #[case("a{2}{3}", "invalid nested repetition operator: `{2}{3}`")]
    #[case("a*?+", "invalid nested repetition operator: `*?+`")]
    #[case("*a", "missing argument to repetition operator: `*`")]
    #[case("a|*", "missing argument to repetition operator: `*`")]
    #[case("(?i)*", "missing argument to repetition operator")]
    #[case("{3}", "missing argument to repetition operator: `{3}`")]
    #[case("a)|(b", "unexpected )")]
    #[case("(a", "missing closing )")]
    #[case("[a", "missing closing ]")]
    #[case("[]", "missing closing ]")]
    #[case("[z-a]", "invalid character class range: `z-a`")]
    #[case("[a-\\d]", "invalid escape sequence: `\\d`")]
    #[case("[[:foo:]]", "invalid character class range: `[:foo:]`")]
    #[case("\\8", "invalid escape sequence: `\\8`")]
    #[case("\\1", "invalid escape sequence: `\\1`")]
    #[case("\\Z", "invalid escape sequence: `\\Z`")]
    #[case("\\C", "invalid escape sequence: `\\C`")]
    #[case("\\e", "invalid escape sequence: `\\e`")]
    #[case("\\é", "invalid escape sequence: `\\é`")]
    #[case("[\\b]", "invalid escape sequence: `\\b`")]
    #[case("[\\Q]", "invalid escape sequence: `\\Q`")]
    #[case("\\x{110000}", "invalid escape sequence")]
    #[case("\\x{}", "invalid escape sequence")]
    #[case("\\xG0", "invalid escape sequence")]
    #[case("a\\", "trailing backslash at end of expression")]
    #[case("(?x)a", "invalid or unsupported Perl syntax: `(?x`")]
    #[case("(?=a)", "invalid or unsupported Perl syntax: `(?=`")]
    #[case("(?i-)a", "invalid or unsupported Perl syntax")]
    #[case("(?--i)a", "invalid or unsupported Perl syntax")]
    #[case("(?P=n)", "invalid or unsupported Perl syntax")]
    #[case("(?P<n!>a)", "invalid named capture: `(?P<n!>`")]
    #[case("(?<>a)", "invalid named capture")]
    #[case("(?P<n", "invalid named capture")]
    fn refuses_what_go_refuses(#[case] pattern: &str, #[case] message: &str) {
        let error = parse(pattern, 100).expect_err(pattern).to_string();
        assert!(error.contains(message), "{pattern}: {error}");
    }

    #[rstest]
    #[case("\\pL")]
    #[case("\\p{Greek}")]
    #[case("[\\P{Han}a]")]
    fn refuses_unicode_classes_naming_them(#[case] pattern: &str) {
        let error = parse(pattern, 100).expect_err(pattern);
        assert!(
            matches!(&error, PatternError::Unsupported { construct, .. } if pattern.contains(construct.as_str())),
            "{error:?}"
        );
    }

    #[test]
    fn sizes_and_repeats_are_counted_as_go_counts_them() {
        let size = |p: &str| parse(p, 100).expect(p).size();
        assert_eq!(size("a"), 1);
        assert_eq!(size("abc"), 3);
        assert_eq!(size("a*"), 3);
        assert_eq!(size("a+"), 2);
        assert_eq!(size("(a)"), 3);
        assert_eq!(size("a|b|c"), 5);
        assert_eq!(size("a{2,5}"), 8);
        assert_eq!(size("a{3,}"), 4);
        assert_eq!(size("(?:(?:a{3}){3}){111}"), 999);
        assert!(parse("(?:(?:a{3}){3}){111}", 100).is_ok());
        assert!(parse("(?:a{7}){142}", 100).is_ok());
        assert!(parse("(?:a*){1000}", 100).is_ok());
        assert!(parse("(?:a{1000}){0}", 100).is_ok());
        let max_len = |p: &str| parse(p, 100).expect(p).max_len();
        assert_eq!(max_len("abc"), Some(3));
        assert_eq!(max_len("a|bcd|"), Some(3));
        assert_eq!(max_len("[a-z]{1,64}"), Some(64));
        assert_eq!(max_len("(?:ab?){3}"), Some(6));
        assert_eq!(max_len("x+"), None);
        assert_eq!(max_len("(?:\\b)*^$"), Some(0));
    }

    #[test]
    fn deep_nesting_is_refused_before_it_is_read() {
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(
            parse(&deep, 100),
            Err(PatternError::Limit(Limit::Nesting { max: 100 }))
        );
        let fine = format!("{}a{}", "(".repeat(99), ")".repeat(99));
        assert!(parse(&fine, 100).is_ok());
    }
}
