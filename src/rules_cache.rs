//! The rules built from the settings, kept by the instance for the next request.
//!
//! The settings arrive, as JSON text, with every `validate` call. Policy-server evaluates each
//! request in a fresh instance, where nothing survives and the rules are built for that request
//! only. An instance that is called again (`kwctl bench`, a host that reuses instances) receives
//! the same text each time, and building the rules again (decoding the entries, reading the
//! profiles, compiling their patterns) would cost more than judging the request. So the rules of
//! the last settings text are kept, with what requests have parsed and compiled of them, and used
//! again only for a byte-identical text: whatever else arrives is built anew and replaces them.

use std::cell::RefCell;
use std::rc::Rc;

use crate::settings::{self, PolicyRules, Settings};

self_cell::self_cell!(
    /// Settings and the rules that borrow from them.
    struct OwnedRules {
        owner: Settings,

        // The entries and patterns they parse on demand sit in cells, so the rules cannot be
        // covariant in their lifetime: they are reached through `with_dependent`.
        #[not_covariant]
        dependent: PolicyRules,
    }
);

/// The rules of one settings text.
struct Kept {
    text: Box<str>,
    rules: OwnedRules,
}

thread_local! {
    /// A wasm instance runs one request at a time, on one thread.
    static LAST: RefCell<Option<Rc<Kept>>> = const { RefCell::new(None) };
}

/// Calls `judge` with the settings decoded from `text` and the rules they define: the kept ones
/// when `text` is the text they were built from. `None` stands for no settings (the defaults;
/// nothing is kept for them). The error says why the settings are invalid; invalid settings are
/// not kept.
pub fn with_policy_rules<R>(
    text: Option<&str>,
    judge: impl for<'a> FnOnce(&'a Settings, &PolicyRules<'a>) -> R,
) -> Result<R, String> {
    let Some(text) = text else {
        let settings = Settings::default();
        let rules = settings.request_rules()?;
        return Ok(judge(&settings, &rules));
    };
    let kept = kept_for(text)?;
    Ok(kept
        .rules
        .with_dependent(|settings, rules| judge(settings, rules)))
}

/// The kept rules of `text`, built (and kept) if the kept ones are of another text.
fn kept_for(text: &str) -> Result<Rc<Kept>, String> {
    let last = LAST.with_borrow(|last| last.clone());
    if let Some(kept) = last.filter(|kept| *kept.text == *text) {
        return Ok(kept);
    }
    let settings = settings::decode_slice(text.as_bytes())?;
    let rules = OwnedRules::try_new(settings, |settings| settings.request_rules())?;
    let kept = Rc::new(Kept {
        text: text.into(),
        rules,
    });
    LAST.set(Some(Rc::clone(&kept)));
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::ImageReference;

    fn allows(text: &str, image: &str) -> Result<bool, String> {
        let image = ImageReference::parse(image).expect("a reference");
        with_policy_rules(Some(text), |_, rules| {
            rules
                .allowed_images
                .find(&image)
                .map(|found| found.is_some())
        })?
    }

    fn kept_text() -> Option<String> {
        LAST.with_borrow(|last| last.as_ref().map(|kept| kept.text.to_string()))
    }

    #[test]
    fn the_same_text_reuses_the_rules_and_another_replaces_them() {
        let first = r#"{"allowedImages": ["registry.example.com/hook:1"]}"#;
        let second = r#"{"allowedImages": ["registry.example.com/other:1"]}"#;
        assert_eq!(allows(first, "registry.example.com/hook:1"), Ok(true));
        let kept = LAST.with_borrow(|last| last.clone()).expect("kept");
        assert_eq!(allows(first, "registry.example.com/hook:1"), Ok(true));
        let again = LAST.with_borrow(|last| last.clone()).expect("kept");
        assert!(
            Rc::ptr_eq(&kept, &again),
            "the same text built the rules again"
        );

        // Another text is judged by its own rules, and replaces the kept ones.
        assert_eq!(allows(second, "registry.example.com/hook:1"), Ok(false));
        assert_eq!(allows(second, "registry.example.com/other:1"), Ok(true));
        assert_eq!(kept_text().as_deref(), Some(second));
        assert_eq!(allows(first, "registry.example.com/other:1"), Ok(false));
    }

    #[test]
    fn a_text_that_differs_only_in_spacing_is_built_anew() {
        let text = r#"{"allowedImages": ["a.example.com/x:1"]}"#;
        let spaced = r#"{"allowedImages":  ["a.example.com/x:1"]}"#;
        assert_eq!(allows(text, "a.example.com/x:1"), Ok(true));
        assert_eq!(allows(spaced, "a.example.com/x:1"), Ok(true));
        assert_eq!(kept_text().as_deref(), Some(spaced));
    }

    #[test]
    fn invalid_settings_are_refused_and_not_kept() {
        let valid = r#"{"allowedImages": ["a.example.com/x:1"]}"#;
        assert_eq!(allows(valid, "a.example.com/x:1"), Ok(true));
        let unknown_key = r#"{"allowedImage": ["a.example.com/x:1"]}"#;
        let error = allows(unknown_key, "a.example.com/x:1").expect_err("refused");
        assert!(error.contains("unknown field `allowedImage`"), "{error}");
        let bad_shim = r#"{"sidecarShimImage": "shim:*"}"#;
        let error = allows(bad_shim, "a.example.com/x:1").expect_err("refused");
        assert!(error.contains("sidecarShimImage"), "{error}");
        assert_eq!(kept_text().as_deref(), Some(valid));
    }

    #[test]
    fn no_settings_are_the_defaults_and_keep_nothing() {
        LAST.set(None);
        assert_eq!(
            with_policy_rules(None, |settings, rules| (
                settings.allowed_images.len(),
                rules.allow_command
            )),
            Ok((0, false))
        );
        assert!(kept_text().is_none());
    }
}
