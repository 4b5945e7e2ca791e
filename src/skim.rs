//! A serde deserializer for the payload's one pass ([`crate::payload`]): JSON as policy-server
//! writes it, read where a seed asks and skipped everywhere else at a fraction of what
//! serde_json's `IgnoredAny` costs (issue 27: most of a request is skipped, in a fresh instance
//! for every request).
//!
//! It reads a subset of what serde_json reads, and reads it the same way: a value it reads is the
//! value serde_json would give, and what it skips is checked to be JSON as serde_json checks it.
//! Anything outside the subset is an error without a message, which sends the payload to
//! serde_json ([`crate::payload::read_raw`]), which names the problem:
//! - the input must be UTF-8 as a whole (serde_json checks only the strings it reads);
//! - a number is only skipped (no seed of the pass reads one);
//! - a struct is read from a JSON object only (serde_json also takes an array);
//! - `deserialize_any` reads only an object or `null`, and no enum is read.
//!
//! A string with escapes is decoded by serde_json itself, so that `\u` escapes and surrogates
//! decode as they do there. `&RawValue` and `Box<RawValue>` are read through serde_json's
//! raw-value protocol (the token its own `Value` deserializer also answers), so that the settings
//! and the objects kept raw are slices of the payload here too.

use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, Visitor};
use serde::forward_to_deserialize_any;

use crate::swar::{HIGH, ONES, equal_bytes, first_flagged};

/// The newtype-struct name through which serde_json's `RawValue` asks for its raw text
/// (`serde_json::raw::TOKEN`, which is not public). `tests::raw_values_are_slices` pins it.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// How deep the values a seed reads may nest (serde_json's limit); skipped values may nest
/// deeper, as in serde_json.
const RECURSION_LIMIT: usize = 128;

/// The input is not in the subset this reader reads, or is not JSON: read it with serde_json to
/// learn why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread;

impl fmt::Display for Unread {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("not read in one pass")
    }
}

impl std::error::Error for Unread {}

impl de::Error for Unread {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Unread
    }
}

type Result<T> = std::result::Result<T, Unread>;

/// Bytes that end the fast scan of a string: `"`, `\` and the control characters, which JSON
/// does not allow unescaped.
static STRING_STOP: [bool; 256] = {
    let mut stop = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        stop[byte] = true;
        byte += 1;
    }
    stop[b'"' as usize] = true;
    stop[b'\\' as usize] = true;
    stop
};

/// The first byte from `pos` on that ends the fast scan of a string ([`STRING_STOP`]). Eight
/// bytes at a time ([`crate::swar`]), as serde_json scans: `"`, `\`, and the bytes less than
/// `0x20` by the same borrow test. (Sixteen at a time with wasm's SIMD instructions cost more:
/// the strings of a request are short, and the SIMD function cannot be inlined.)
fn string_stop(bytes: &[u8], mut pos: usize) -> Option<usize> {
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let chunk = u64::from_le_bytes(chunk.try_into().ok()?);
        let control = chunk.wrapping_sub(ONES * 0x20) & !chunk & HIGH;
        let found = control | equal_bytes(chunk, b'"') | equal_bytes(chunk, b'\\');
        // The lowest flag is exact (the test may flag bytes above it falsely).
        if let Some(offset) = first_flagged(found) {
            return Some(pos + offset);
        }
        pos += 8;
    }
    let tail = bytes.get(pos..)?;
    tail.iter()
        .position(|&byte| STRING_STOP[usize::from(byte)])
        .map(|offset| pos + offset)
}

/// The skimming reader over one payload: `&mut Deserializer` is the serde `Deserializer`.
pub struct Deserializer<'de> {
    input: &'de str,
    pos: usize,
    /// The closing brackets of the values being skipped, innermost last.
    skipping: Vec<u8>,
    remaining_depth: usize,
}

impl<'de> Deserializer<'de> {
    pub fn from_slice(input: &'de [u8]) -> Result<Self> {
        let input = std::str::from_utf8(input).map_err(|_| Unread)?;
        Ok(Self {
            input,
            pos: 0,
            skipping: Vec::new(),
            remaining_depth: RECURSION_LIMIT,
        })
    }

    /// Only whitespace may follow the value read.
    pub fn end(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(Unread),
        }
    }

    fn bytes(&self) -> &'de [u8] {
        self.input.as_bytes()
    }

    /// The next byte that is not whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.bytes();
        while let Some(&byte) = bytes.get(self.pos) {
            if !matches!(byte, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(byte);
            }
            self.pos += 1;
        }
        None
    }

    /// Consumes `expected`, the next byte that is not whitespace.
    fn eat(&mut self, expected: u8) -> Result<()> {
        if self.peek() == Some(expected) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Unread)
        }
    }

    fn eat_literal(&mut self, literal: &[u8]) -> Result<()> {
        if self.bytes()[self.pos..].starts_with(literal) {
            self.pos += literal.len();
            Ok(())
        } else {
            Err(Unread)
        }
    }

    /// Skips the string whose opening quote is at `pos`, checking its escapes as serde_json
    /// does when it ignores a string; returns whether it has any.
    fn skip_string(&mut self) -> Result<bool> {
        let bytes = self.bytes();
        let mut pos = self.pos + 1;
        let mut escaped = false;
        loop {
            pos = string_stop(bytes, pos).ok_or(Unread)?;
            match bytes[pos] {
                b'"' => {
                    self.pos = pos + 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    escaped = true;
                    pos += match bytes.get(pos + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 2,
                        Some(b'u') => {
                            let hex = bytes.get(pos + 2..pos + 6).ok_or(Unread)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(Unread);
                            }
                            6
                        }
                        _ => return Err(Unread),
                    };
                }
                _ => return Err(Unread),
            }
        }
    }

    /// Reads a string: borrowed from the input when it has no escape, else decoded by
    /// serde_json.
    fn string<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        if self.peek() != Some(b'"') {
            return Err(Unread);
        }
        let start = self.pos;
        if self.skip_string()? {
            let decoded: String =
                serde_json::from_str(&self.input[start..self.pos]).map_err(|_| Unread)?;
            visitor.visit_string(decoded)
        } else {
            visitor.visit_borrowed_str(&self.input[start + 1..self.pos - 1])
        }
    }

    /// Skips a number, checking JSON's grammar for it.
    fn skip_number(&mut self) -> Result<()> {
        let bytes = self.bytes();
        let start = self.pos;
        let mut pos = start + usize::from(bytes[start] == b'-');
        let digits = |pos: usize| {
            bytes[pos..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        match digits(pos) {
            0 => return Err(Unread),
            // No leading zero.
            n if n > 1 && bytes[pos] == b'0' => return Err(Unread),
            n => pos += n,
        }
        if bytes.get(pos) == Some(&b'.') {
            match digits(pos + 1) {
                0 => return Err(Unread),
                n => pos += 1 + n,
            }
        }
        if matches!(bytes.get(pos), Some(b'e' | b'E')) {
            pos += 1 + usize::from(matches!(bytes.get(pos + 1), Some(b'+' | b'-')));
            match digits(pos) {
                0 => return Err(Unread),
                n => pos += n,
            }
        }
        self.pos = pos;
        Ok(())
    }

    /// Skips one value, of any depth, checking that it is JSON; without recursion, so that a
    /// value nested as deep as the request allows costs no stack.
    fn skip_value(&mut self) -> Result<()> {
        self.skipping.clear();
        loop {
            // A value.
            match self.peek().ok_or(Unread)? {
                b'{' => {
                    self.pos += 1;
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        self.skipping.push(b'}');
                        self.skip_key()?;
                        continue;
                    }
                }
                b'[' => {
                    self.pos += 1;
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        self.skipping.push(b']');
                        continue;
                    }
                }
                b'"' => {
                    self.skip_string()?;
                }
                b't' => self.eat_literal(b"true")?,
                b'f' => self.eat_literal(b"false")?,
                b'n' => self.eat_literal(b"null")?,
                b'-' | b'0'..=b'9' => self.skip_number()?,
                _ => return Err(Unread),
            }
            // What follows it: a comma, then the next value, or the end of what encloses it.
            loop {
                let Some(&close) = self.skipping.last() else {
                    return Ok(());
                };
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if close == b'}' {
                            self.skip_key()?;
                        }
                        break;
                    }
                    Some(byte) if byte == close => {
                        self.pos += 1;
                        self.skipping.pop();
                    }
                    _ => return Err(Unread),
                }
            }
        }
    }

    /// Skips a key and its colon.
    fn skip_key(&mut self) -> Result<()> {
        if self.peek() != Some(b'"') {
            return Err(Unread);
        }
        self.skip_string()?;
        self.eat(b':')
    }

    /// The text of the next value, as a `RawValue` holds it.
    fn raw_value(&mut self) -> Result<&'de str> {
        self.peek();
        let start = self.pos;
        self.skip_value()?;
        Ok(&self.input[start..self.pos])
    }

    /// An object or an array, between `open` and `close`, its entries read by `read`; one level
    /// deeper, within [`RECURSION_LIMIT`].
    fn container<T>(
        &mut self,
        open: u8,
        close: u8,
        read: impl FnOnce(Entries<'_, 'de>) -> Result<T>,
    ) -> Result<T> {
        self.eat(open)?;
        self.remaining_depth = self.remaining_depth.checked_sub(1).ok_or(Unread)?;
        let value = read(Entries {
            de: self,
            first: true,
        });
        self.remaining_depth += 1;
        let value = value?;
        self.eat(close).map(|()| value)
    }
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Unread;

    /// Only what the pass's seeds ask `deserialize_any` for: an object, or `null` for none.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek().ok_or(Unread)? {
            b'{' => self.deserialize_map(visitor),
            b'n' => self
                .eat_literal(b"null")
                .and_then(|()| visitor.visit_unit()),
            _ => Err(Unread),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.peek() == Some(b'n') {
            self.eat_literal(b"null")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.string(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.string(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.container(b'{', b'}', |entries| visitor.visit_map(entries))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_map(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.container(b'[', b']', |entries| visitor.visit_seq(entries))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        if name == RAW_VALUE_TOKEN {
            let raw = self.raw_value()?;
            visitor.visit_map(RawValueAccess(Some(raw)))
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip_value()?;
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit
        unit_struct tuple tuple_struct enum
    }
}

/// The entries of an object or the elements of an array being read.
struct Entries<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    first: bool,
}

impl Entries<'_, '_> {
    /// Whether another entry follows (consuming its comma), before the closing `close`, which
    /// is left for the reader of the whole to consume.
    fn has_next(&mut self, close: u8) -> Result<bool> {
        let next = self.de.peek().ok_or(Unread)?;
        if next == close {
            return Ok(false);
        }
        if std::mem::take(&mut self.first) {
            return Ok(true);
        }
        if next != b',' {
            return Err(Unread);
        }
        self.de.pos += 1;
        Ok(true)
    }
}

impl<'de> de::MapAccess<'de> for Entries<'_, 'de> {
    type Error = Unread;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if !self.has_next(b'}')? {
            return Ok(None);
        }
        if self.de.peek() != Some(b'"') {
            return Err(Unread);
        }
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        self.de.eat(b':')?;
        seed.deserialize(&mut *self.de)
    }
}

impl<'de> de::SeqAccess<'de> for Entries<'_, 'de> {
    type Error = Unread;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if !self.has_next(b']')? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.de).map(Some)
    }
}

/// What serde_json's `RawValue` reads its text from: a map of one entry, the token and the text.
struct RawValueAccess<'de>(Option<&'de str>);

impl<'de> de::MapAccess<'de> for RawValueAccess<'de> {
    type Error = Unread;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.0.is_none() {
            return Ok(None);
        }
        seed.deserialize(BorrowedStrDeserializer::new(RAW_VALUE_TOKEN))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let raw = self.0.take().ok_or(Unread)?;
        seed.deserialize(BorrowedStrDeserializer::new(raw))
    }
}

/// Deserializes `T` from the whole of `input`.
#[cfg(test)]
pub fn from_slice<'de, T: de::Deserialize<'de>>(input: &'de [u8]) -> Result<T> {
    let mut deserializer = Deserializer::from_slice(input)?;
    let value = T::deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::IgnoredAny;
    use serde_json::Value;
    use serde_json::value::RawValue;

    /// Ignoring and reading a `Value` agree with serde_json, where this reader reads at all.
    fn agrees_with_serde_json(text: &str) {
        let ours = from_slice::<IgnoredAny>(text.as_bytes()).is_ok();
        let theirs = serde_json::from_str::<IgnoredAny>(text).is_ok();
        if ours {
            assert!(theirs, "skipped what serde_json refuses: {text:?}");
        }
        if let Ok(value) = from_slice::<Value>(text.as_bytes()) {
            assert_eq!(
                serde_json::from_str::<Value>(text).ok(),
                Some(value),
                "{text:?}"
            );
        }
    }

    #[rstest::rstest]
    #[case::object(
        r#"{"a":[1,-2,3.5e+7,true,false,null,{}],"b":{"c":"d\"\\\u00e9"}}"#,
        true
    )]
    #[case::whitespace(" {\n\t\"a\" : [ 1 , 2 ] }\r\n", true)]
    #[case::empty_string(r#""""#, true)]
    #[case::escapes(r#""\"\\\/\b\f\n\r\t\u0041""#, true)]
    #[case::lone_surrogate_skipped(r#""\ud800""#, true)]
    #[case::trailing_comma_object(r#"{"a":1,}"#, false)]
    #[case::trailing_comma_array(r#"[1,]"#, false)]
    #[case::missing_comma(r#"[1 2]"#, false)]
    #[case::missing_colon(r#"{"a" 1}"#, false)]
    #[case::number_key(r#"{1:2}"#, false)]
    #[case::wrong_bracket(r#"[1}"#, false)]
    #[case::unclosed(r#"{"a":[1"#, false)]
    #[case::unterminated_string(r#""abc"#, false)]
    #[case::control_character("\"a\u{1}b\"", false)]
    #[case::bad_escape(r#""\x41""#, false)]
    #[case::short_unicode_escape(r#""\u00""#, false)]
    #[case::leading_zero("01", false)]
    #[case::bare_minus("-", false)]
    #[case::bare_fraction("1.", false)]
    #[case::bare_exponent("1e", false)]
    #[case::literal("nul", false)]
    #[case::trailing_value("1 2", false)]
    #[case::empty("", false)]
    fn skips_json_and_nothing_else(#[case] text: &str, #[case] is_json: bool) {
        assert_eq!(from_slice::<IgnoredAny>(text.as_bytes()).is_ok(), is_json);
        assert_eq!(serde_json::from_str::<IgnoredAny>(text).is_ok(), is_json);
        agrees_with_serde_json(text);
    }

    #[test]
    fn deep_nesting_is_skipped_without_recursion() {
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(from_slice::<IgnoredAny>(text.as_bytes()).is_ok());
        // A value that is read, not skipped, nests no deeper than serde_json reads.
        let nested =
            |depth: usize| format!("{}{{}}{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        let shallow = nested(100);
        assert_eq!(
            from_slice::<Value>(shallow.as_bytes()).ok(),
            serde_json::from_str::<Value>(&shallow).ok()
        );
        assert!(from_slice::<Value>(shallow.as_bytes()).is_ok());
        assert_eq!(from_slice::<Value>(nested(200).as_bytes()), Err(Unread));
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        use crate::annotation_maps::CowStr;
        let read = |text: &'static [u8]| {
            let mut deserializer = Deserializer::from_slice(text).expect("UTF-8");
            CowStr.deserialize(&mut deserializer).expect("a string")
        };
        assert!(matches!(
            read(br#""plain""#),
            std::borrow::Cow::Borrowed("plain")
        ));
        assert!(matches!(read(br#""\n""#), std::borrow::Cow::Owned(s) if s == "\n"));
        let decoded: String = from_slice(br#""a\u00e9\n""#).expect("a string");
        assert_eq!(decoded, "a\u{e9}\n");
        // serde_json refuses a lone surrogate it decodes: so does this reader, through it.
        assert_eq!(from_slice::<String>(br#""\ud800""#), Err(Unread));
    }

    #[test]
    fn raw_values_are_slices() {
        #[derive(serde::Deserialize)]
        struct Holder<'a> {
            #[serde(borrow)]
            borrowed: &'a RawValue,
            boxed: Box<RawValue>,
        }
        let text = br#"{"borrowed": {"a": [1, "x"]} , "boxed":"s\n"}"#;
        let holder: Holder = from_slice(text).expect("read");
        assert_eq!(holder.borrowed.get(), r#"{"a": [1, "x"]}"#);
        assert_eq!(holder.boxed.get(), r#""s\n""#);
        let theirs: Holder = serde_json::from_slice(text).expect("read");
        assert_eq!(theirs.borrowed.get(), holder.borrowed.get());
        assert_eq!(theirs.boxed.get(), holder.boxed.get());
    }

    #[test]
    fn outside_the_subset_is_unread() {
        assert_eq!(from_slice::<Value>(b"1"), Err(Unread));
        assert_eq!(from_slice::<Value>(b"\"\xff\""), Err(Unread));
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Pair {
            a: u8,
        }
        assert!(serde_json::from_str::<Pair>("[1]").is_ok());
        assert!(from_slice::<Pair>(b"[1]").is_err());
    }

    proptest! {
        /// The scan eight bytes at a time finds the byte a byte loop finds.
        #[test]
        fn string_stop_is_the_first_stop_byte(
            bytes in prop::collection::vec(prop_oneof![
                8 => 0x20u8..0x7f, 1 => Just(b'"'), 1 => Just(b'\\'), 1 => 0u8..0x20, 1 => 0x80u8..=0xff,
            ], 0..40),
            from in any::<prop::sample::Index>(),
        ) {
            let pos = if bytes.is_empty() { 0 } else { from.index(bytes.len()) };
            let expected = (pos..bytes.len()).find(|&at| STRING_STOP[usize::from(bytes[at])]);
            prop_assert_eq!(string_stop(&bytes, pos), expected);
        }
    }

    /// JSON-ish text: mostly valid JSON, with the mistakes a skipper could let through.
    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("fals".to_owned()),
            "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,2})?([eE][+-]?[0-9]{1,2})?",
            Just("01".to_owned()),
            r#""([a-z ]|\\[nt"\\/]|\\u[0-9a-fA-F]{4}|\\x|\\u12){0,6}""#,
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[a-z]{0,3}", inner), 0..4).prop_map(|entries| {
                    let entries: Vec<String> =
                        entries.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
                    format!("{{{}}}", entries.join(","))
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// On JSON and near-JSON (a byte dropped or changed), this reader skips what serde_json
        /// skips, and reads a `Value` as serde_json does, where it reads one.
        #[test]
        fn skipping_agrees_with_serde_json(
            text in json_text(),
            cut in any::<prop::sample::Index>(),
            byte in prop::sample::select(b" ,:[]{}\"\\0a".to_vec()),
            edit in 0..3u8,
        ) {
            let mut bytes = text.into_bytes();
            if !bytes.is_empty() {
                let at = cut.index(bytes.len());
                match edit {
                    0 => {}
                    1 => { bytes.remove(at); }
                    _ => bytes[at] = byte,
                }
            }
            let text = String::from_utf8(bytes).expect("ASCII");
            let ours = from_slice::<IgnoredAny>(text.as_bytes()).is_ok();
            let theirs = serde_json::from_str::<IgnoredAny>(&text).is_ok();
            prop_assert_eq!(ours, theirs, "{}", text);
            agrees_with_serde_json(&text);
        }
    }
}
