//! Properties of the policy, over generated inputs (proptest).

use hook_sidecar_policy::ImageReference;
use hook_sidecar_policy::validate_payload;
use hook_sidecar_policy::{SidecarKey, decode_annotation as decode};
use proptest::prelude::*;
use serde_json::{Value, json};

fn vm_request(annotation: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test_data/vm-create-no-sidecar.json"
    );
    let mut request: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    request["object"]["spec"]["template"]["metadata"]["annotations"]["hooks.kubevirt.io/hookSidecars"] =
        Value::String(annotation.to_owned());
    request
}

fn accepted(image: &str, allowed: &[String]) -> bool {
    let annotation = json!([{ "image": image }]).to_string();
    let payload =
        json!({ "request": vm_request(&annotation), "settings": { "allowedImages": allowed } });
    validate_payload(&serde_json::to_vec(&payload).expect("serializable"))
        .violations
        .is_empty()
}

/// References in the forms people write: optional host (a name in any case or a bracketed IPv6
/// address, optional port), one to three path components, optional tag, optional digest.
fn reference() -> impl Strategy<Value = String> {
    (
        prop::option::of((
            prop_oneof![
                "[a-zA-Z][a-zA-Z0-9]{0,6}(\\.[a-zA-Z]{2,3}){1,2}",
                "\\[[0-9a-f]{1,4}(:[0-9a-f]{0,4}){1,4}\\]",
            ],
            prop::option::of(1u16..65535),
        )),
        prop::collection::vec("[a-z0-9]{1,6}([._-][a-z0-9]{1,4})?", 1..4),
        prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}"),
        prop::option::of("[0-9a-f]{64}"),
    )
        .prop_map(|(host, path, tag, digest)| {
            let mut text = String::new();
            if let Some((host, port)) = host {
                text.push_str(&host);
                if let Some(port) = port {
                    text.push_str(&format!(":{port}"));
                }
                text.push('/');
            }
            text.push_str(&path.join("/"));
            if let Some(tag) = tag {
                text.push_str(&format!(":{tag}"));
            }
            if let Some(digest) = digest {
                text.push_str(&format!("@sha256:{digest}"));
            }
            text
        })
}

/// Docker Hub spellings of one official image: all the same image.
fn hub_spellings(name: &str, tag: &Option<String>) -> Vec<String> {
    let explicit = tag.clone().unwrap_or_else(|| "latest".into());
    let suffix = tag.as_ref().map(|t| format!(":{t}")).unwrap_or_default();
    vec![
        format!("{name}{suffix}"),
        format!("docker.io/library/{name}:{explicit}"),
        format!("index.docker.io/library/{name}{suffix}"),
        format!("index.docker.io/{name}:{explicit}"),
        format!("library/{name}{suffix}"),
    ]
}

/// A spelling of `host` with at least one letter in upper case (`None` when it has no letter).
fn upper_case_spelling(host: &str, flips: &[bool]) -> Option<String> {
    let mut spelling: String = host
        .chars()
        .zip(flips.iter().cycle())
        .map(|(c, flip)| if *flip { c.to_ascii_uppercase() } else { c })
        .collect();
    if spelling == host {
        let first_letter = host.find(|c: char| c.is_ascii_lowercase())?;
        spelling.replace_range(
            first_letter..=first_letter,
            &host[first_letter..=first_letter].to_ascii_uppercase(),
        );
    }
    Some(spelling)
}

/// Spellings Go's decoder folds onto `key` but that are not `key`: case flips, ſ for s, K for k.
fn folded_variant(key: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(0u8..4, key.len()).prop_filter_map(
        "must differ from the key",
        move |choices| {
            let variant: String = key
                .chars()
                .zip(choices)
                .map(|(c, choice)| match (c, choice) {
                    ('s' | 'S', 3) => 'ſ',
                    ('k' | 'K', 3) => '\u{212A}',
                    (c, 1 | 3) => c.to_ascii_uppercase(),
                    (c, 2) => c.to_ascii_lowercase(),
                    (c, _) => c,
                })
                .collect();
            (variant != key).then_some(variant)
        },
    )
}

fn keys() -> Vec<&'static str> {
    SidecarKey::names().collect()
}

fn value_for(key: &str) -> &'static str {
    match key {
        "image" => "\"registry.example.com/hooks/gpu:v1\"",
        "imagePullPolicy" => "\"Always\"",
        "command" | "args" => "[\"--version\"]",
        _ => "{\"name\": \"x\"}",
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn normalization_is_idempotent(text in reference()) {
        if let Ok(normalized) = ImageReference::parse(&text) {
            let written = normalized.to_string();
            let again = ImageReference::parse(&written).expect("normalized parses");
            prop_assert_eq!(again, normalized);
        }
    }

    #[test]
    fn every_spelling_of_a_hub_image_gets_the_same_verdict(
        name in "[a-z][a-z0-9]{0,8}",
        tag in prop::option::of("[a-z0-9][a-z0-9.]{0,5}"),
        allowed_spelling in 0usize..5,
        allow_it in any::<bool>(),
    ) {
        let spellings = hub_spellings(&name, &tag);
        let allowed = if allow_it { vec![spellings[allowed_spelling].clone()] } else { vec!["other:1".to_owned()] };
        for spelling in &spellings {
            prop_assert_eq!(accepted(spelling, &allowed), allow_it, "{} against {:?}", spelling, allowed);
        }
    }

    #[test]
    fn a_registry_host_in_upper_case_is_refused_whatever_the_list(
        host in prop_oneof![Just("index.docker.io".to_owned()), Just("docker.io".to_owned()), "[a-z]{1,8}\\.[a-z]{2,3}", "\\[fd[0-9a-f]{2}::[0-9a-f]{1,4}\\]"],
        port in prop::option::of(1u16..65535),
        flips in prop::collection::vec(any::<bool>(), 1..8),
    ) {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let Some(upper) = upper_case_spelling(&host, &flips) else { return Ok(()) };
        let image = format!("{upper}{port}/hooks/gpu:v1");
        let allowed = vec![format!("{host}{port}/hooks/gpu:v1"), format!("{host}{port}/*")];
        prop_assert!(!accepted(&image, &allowed), "{} accepted by {:?}", image, allowed);
        // As an entry, it is refused by the settings' validation.
        let settings = json!({"allowedImages": [image]});
        prop_assert!(hook_sidecar_policy::parse_and_validate(&settings).is_err(), "{} accepted as an entry", image);
    }

    #[test]
    fn no_key_go_would_fold_onto_a_known_key_is_accepted(
        (key, variant) in prop::sample::select(keys()).prop_flat_map(|key| (Just(key), folded_variant(key))),
    ) {
        let annotation = format!("[{{\"{variant}\": {}}}]", value_for(key));
        prop_assert!(decode(&annotation).is_err(), "{} was accepted", annotation);
        // Not even beside the exact key, in either order.
        let both = format!("[{{\"{key}\": {v}, \"{variant}\": {v}}}]", v = value_for(key));
        prop_assert!(decode(&both).is_err(), "{} was accepted", both);
    }

    #[test]
    fn no_duplicate_key_is_accepted(key in prop::sample::select(keys()), gap in any::<bool>()) {
        let v = value_for(key);
        let middle = if gap { "\"args\": [], ".to_owned() } else { String::new() };
        let key_twice = if key == "args" { format!("\"{key}\": {v}, \"{key}\": {v}") } else { format!("\"{key}\": {v}, {middle}\"{key}\": {v}") };
        let annotation = format!("[{{{key_twice}}}]");
        prop_assert!(decode(&annotation).is_err(), "{} was accepted", annotation);
    }

    #[test]
    fn adding_an_allow_list_entry_never_turns_an_accept_into_a_reject(
        image in reference(),
        allowed in prop::collection::vec(reference(), 0..6),
        extra in prop_oneof![reference(), reference().prop_map(|r| format!("{}:*", r.split(['@', ':']).next().unwrap_or("x")))],
    ) {
        let mut more = allowed.clone();
        more.push(extra.clone());
        let valid_settings = hook_sidecar_policy::parse_and_validate(&json!({"allowedImages": more})).is_ok();
        if accepted(&image, &allowed) && valid_settings {
            prop_assert!(accepted(&image, &more), "{} rejected after adding {}", image, extra);
        }
        // An image is always allowed by an allow-list that names it.
        if ImageReference::parse(&image).is_ok() {
            prop_assert!(accepted(&image, std::slice::from_ref(&image)), "{} not allowed by itself", image);
        }
    }
}

const HOOK: &str = "ghcr.io/org/hook:v1";
const KEY: &str = "example.com/qemu-args";

/// A small vocabulary, so that generated profiles often govern, match and fail.
fn word() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "v1alpha3", "/hook", "/bin/sh", "1"]).prop_map(String::from)
}

fn pattern() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a",
        "b",
        "[ab]",
        ".*",
        "a|b",
        "v1alpha[23]",
        "/hook",
        "[0-9]+",
        "",
    ])
    .prop_map(String::from)
}

fn alternatives() -> impl Strategy<Value = Vec<Vec<String>>> {
    prop::collection::vec(prop::collection::vec(pattern(), 0..3), 1..3)
}

fn profile() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            HOOK,
            "ghcr.io/org/*",
            "ghcr.io/org/hook:*",
            "other:1",
            "evil:1",
        ]),
        prop::option::of(alternatives()),
        prop::option::of(alternatives()),
        prop::option::of(pattern()),
        any::<bool>(),
    )
        .prop_map(|(image, args, command, annotation, required)| {
            let mut profile = json!({ "image": image });
            if let Some(args) = args {
                profile["args"] = json!(args);
            }
            if let Some(command) = command {
                profile["command"] = json!(command);
            }
            if let Some(pattern) = annotation {
                profile["annotations"] = json!({ KEY: pattern });
            }
            if required {
                profile["requiredAnnotations"] = json!([KEY]);
            }
            profile
        })
}

/// A sidecar entry and the constrained annotation beside it.
fn entry() -> impl Strategy<Value = (Value, Option<String>)> {
    (
        prop::sample::select(vec![HOOK, "evil:1", "ghcr.io/org/other:2"]),
        prop::collection::vec(word(), 0..3),
        prop::collection::vec(word(), 0..2),
        any::<bool>(),
        prop::option::of(word()),
    )
        .prop_map(|(image, args, command, config_map, annotation)| {
            let mut entry = json!({ "image": image, "args": args, "command": command });
            if config_map {
                entry["configMap"] = json!({"name": "cm", "key": "k", "hookPath": "/hook"});
            }
            (entry, annotation)
        })
}

fn violations(entry: &Value, annotation: &Option<String>, settings: &Value) -> Vec<String> {
    let mut request = vm_request(&json!([entry]).to_string());
    if let Some(value) = annotation {
        request["object"]["spec"]["template"]["metadata"]["annotations"][KEY] = json!(value);
    }
    let payload = json!({ "request": request, "settings": settings });
    validate_payload(&serde_json::to_vec(&payload).expect("serializable"))
        .violations
        .iter()
        .map(ToString::to_string)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Profiles only restrict: a sidecar rejected without profiles is accepted with some only when
    /// its one violation was its command and an added profile grants commands.
    #[test]
    fn adding_profiles_never_accepts_a_rejection_unless_a_profile_grants_the_command(
        (entry, annotation) in entry(),
        allowed in prop::collection::vec(prop::sample::select(vec![HOOK, "ghcr.io/org/*", "evil:1"]), 0..3),
        allow_command in any::<bool>(),
        allow_config_map in any::<bool>(),
        profiles in prop::collection::vec(profile(), 1..4),
    ) {
        let base = json!({ "allowedImages": allowed, "allowCommand": allow_command, "allowConfigMap": allow_config_map });
        let mut with_profiles = base.clone();
        with_profiles["sidecarProfiles"] = json!(profiles);
        let before = violations(&entry, &annotation, &base);
        let after = violations(&entry, &annotation, &with_profiles);
        if !before.is_empty() && after.is_empty() {
            let only_command = before.len() == 1 && before[0].contains("allowCommand is false");
            let granting = profiles.iter().any(|p| p.get("command").is_some());
            prop_assert!(only_command && granting, "accepted only with profiles {profiles:?}: {entry} was rejected for {before:?}");
        }
    }

    /// Adding a profile that does not govern the entry's image changes nothing.
    #[test]
    fn a_profile_for_another_image_changes_nothing(
        (entry, annotation) in entry(),
        profiles in prop::collection::vec(profile(), 0..3),
        other in profile(),
    ) {
        let other_image = json!({"image": "registry.example.com/unrelated:1"});
        let mut other = other;
        other["image"] = other_image["image"].clone();
        let settings = json!({ "allowedImages": [HOOK, "evil:1"], "sidecarProfiles": profiles });
        let mut more = settings.clone();
        more["sidecarProfiles"].as_array_mut().expect("list").push(other);
        prop_assert_eq!(violations(&entry, &annotation, &settings), violations(&entry, &annotation, &more));
    }
}
