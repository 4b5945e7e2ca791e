//! Text that a message quotes, cut to a bound.
//!
//! Messages quote what VM owners and administrators wrote, and what they wrote can be megabytes:
//! an admission rejection goes back to the API server and into events and audit logs, the sync
//! job's Events and conditions are capped by Kubernetes (an Event's note at 1 kB). Everything that
//! quotes such text cuts it here, one way: within a byte budget, on a character boundary, marked
//! with the size of the whole, so that a reader knows that, and how much, was left out.

use std::borrow::Cow;

/// `text` whole when it fits in `max` bytes; else as much of its beginning as fits, followed by
/// `… (<size of text> bytes)`, all within `max` bytes.
pub fn cut(text: &str, max: usize) -> Cow<'_, str> {
    match split(text, max) {
        None => Cow::Borrowed(text),
        Some((beginning, marker)) => Cow::Owned(format!("{beginning}{marker}")),
    }
}

/// `text` in quotes (escaped as `{:?}` does): whole when it fits in `max` bytes, else its
/// beginning in quotes and the marker after them (`"abc"… (300 bytes)`), so that the quotes still
/// show what the text begins with. `max` bounds the text before escaping.
pub fn quoted(text: &str, max: usize) -> String {
    match split(text, max) {
        None => format!("{text:?}"),
        Some((beginning, marker)) => format!("{beginning:?}{marker}"),
    }
}

/// The beginning of `text` and the marker that together fit in `max` bytes, or `None` when
/// `text` fits whole.
fn split(text: &str, max: usize) -> Option<(&str, String)> {
    if text.len() <= max {
        return None;
    }
    let marker = format!("… ({} bytes)", text.len());
    let mut end = max.saturating_sub(marker.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some((&text[..end], marker))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::fits("short", 5, "short")]
    #[case::empty("", 0, "")]
    #[case::cut("abcdefghijklmnopqrstuvwxyz", 20, "abcdef… (26 bytes)")]
    // 'é' is two bytes: the cut never splits one.
    #[case::on_a_character_boundary("ééééééééééééééé", 19, "éé… (30 bytes)")]
    #[case::budget_smaller_than_the_marker("abcdefghijklmnopqrstuvwxyz", 3, "… (26 bytes)")]
    fn cuts_within_the_budget(#[case] text: &str, #[case] max: usize, #[case] expected: &str) {
        let cut = cut(text, max);
        assert_eq!(cut, expected);
        if expected.len() > max {
            // Only a budget too small for the marker itself is exceeded, by the marker.
            assert_eq!(cut, format!("… ({} bytes)", text.len()));
        }
    }

    #[test]
    fn a_large_text_is_cut_to_the_byte_budget() {
        let text = "é".repeat(600);
        let cut = cut(&text, 1024);
        assert!(cut.len() <= 1024, "{} bytes", cut.len());
        assert!(cut.ends_with("… (1200 bytes)"), "{cut}");
        assert!(text.starts_with(cut.trim_end_matches("… (1200 bytes)")));
    }

    #[rstest]
    #[case::fits("é", 10, "\"é\"")]
    #[case::escaped("a\"b", 10, "\"a\\\"b\"")]
    #[case::cut("abcdefghijklmnopqrstuvwxyz", 20, "\"abcdef\"… (26 bytes)")]
    fn quotes_the_beginning(#[case] text: &str, #[case] max: usize, #[case] expected: &str) {
        assert_eq!(quoted(text, max), expected);
    }
}
