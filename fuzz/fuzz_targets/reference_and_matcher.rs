//! Image references and allow-list entries on arbitrary text: `entry\nimage`. Never panics;
//! normalization is idempotent; an exact entry allows the image it names.
#![no_main]

use hook_sidecar_policy::AllowedImage;
use hook_sidecar_policy::ImageReference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let (entry_text, image_text) = text.split_once('\n').unwrap_or((text, text));
    let image = ImageReference::parse(image_text);
    if let Ok(image) = &image {
        let again = image.to_string();
        let reparsed = ImageReference::parse(&again).expect("a normalized reference parses");
        assert_eq!(
            &reparsed, image,
            "normalization of {image_text:?} is not idempotent"
        );
    }
    let Ok(entry) = AllowedImage::parse(entry_text) else {
        return;
    };
    if let Ok(image) = &image {
        let _ = entry.allows(image);
    }
    if let AllowedImage::Exact(reference) = &entry {
        assert!(
            entry.allows(reference),
            "{entry_text:?} does not allow itself"
        );
    }
});
