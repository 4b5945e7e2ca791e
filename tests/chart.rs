//! The chart as Helm users expect it, checked from its files: a strict values schema (no unknown
//! key anywhere, every value described, the policy's settings as the policy knows them), a README
//! whose values table is the schema's, and the Artifact Hub links equal to what the release
//! workflow uploads. (That Helm refuses unknown keys is checked with helm itself, in the sync job's
//! API-server tests and `make chart-lint`.)

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};

const CHART: &str = "charts/hook-sidecar-policy";

fn path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn text(relative: &str) -> String {
    std::fs::read_to_string(path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn schema() -> Value {
    serde_json::from_str(&text(&format!("{CHART}/values.schema.json"))).expect("schema is JSON")
}

fn values() -> Value {
    serde_yaml::from_str(&text(&format!("{CHART}/values.yaml"))).expect("values.yaml")
}

/// Every node of the schema that is an object with `properties` refuses other keys, every property
/// has a description, and a map (`additionalProperties` a schema) is typed.
fn check_node(node: &Value, at: &str, problems: &mut Vec<String>) {
    if node
        .get("description")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
        && !at.is_empty()
    {
        problems.push(format!("{at}: no description"));
    }
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        if node.get("additionalProperties") != Some(&Value::Bool(false)) {
            problems.push(format!("{at}: additionalProperties is not false"));
        }
        for (key, property) in properties {
            check_node(property, &format!("{at}.{key}"), problems);
        }
    } else if node.get("type") == Some(&json!("object")) {
        match node.get("additionalProperties") {
            Some(Value::Object(values)) if values.get("type").is_some() => {}
            _ => problems.push(format!(
                "{at}: an object without properties must be a typed map (additionalProperties: {{type: ...}})"
            )),
        }
    }
    if let Some(items) = node.get("items") {
        check_node_items(items, &format!("{at}[]"), problems);
    }
}

fn check_node_items(items: &Value, at: &str, problems: &mut Vec<String>) {
    if items.get("properties").is_some() {
        check_node(items, at, problems);
    } else if let Some(inner) = items.get("items") {
        check_node_items(inner, &format!("{at}[]"), problems);
    }
}

#[test]
fn the_values_schema_refuses_unknown_keys_and_describes_every_value() {
    let schema = schema();
    assert_eq!(schema["additionalProperties"], json!(false));
    let mut problems = Vec::new();
    check_node(&schema, "", &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The keys of `values.yaml`, as dotted paths to the leaves (maps that are data, like
/// `nodeSelector`, are leaves).
fn leaves(value: &Value, schema: &Value, at: &str, out: &mut Vec<String>) {
    match (value, schema.get("properties")) {
        (Value::Object(map), Some(properties)) if at != ".policy.settings" => {
            for (key, item) in map {
                let child = properties.get(key).unwrap_or_else(|| {
                    panic!("values.yaml has {at}.{key}, which the schema does not describe")
                });
                leaves(item, child, &format!("{at}.{key}"), out);
            }
        }
        _ => out.push(at.trim_start_matches('.').to_owned()),
    }
}

#[test]
fn every_default_value_is_in_the_schema_and_the_schema_has_no_value_without_default() {
    let (schema, values) = (schema(), values());
    let mut defaults = Vec::new();
    leaves(&values, &schema, "", &mut defaults);
    // Every property of the schema has its default in values.yaml, except the policy settings
    // and profile fields, which are the policy's (empty by default).
    let mut described = Vec::new();
    fn walk(schema: &Value, at: &str, out: &mut Vec<String>) {
        match schema.get("properties").and_then(Value::as_object) {
            Some(properties) if at != ".policy.settings" => {
                for (key, child) in properties {
                    walk(child, &format!("{at}.{key}"), out);
                }
            }
            _ => out.push(at.trim_start_matches('.').to_owned()),
        }
    }
    walk(&schema, "", &mut described);
    let defaults: BTreeSet<_> = defaults.into_iter().collect();
    let described: BTreeSet<_> = described.into_iter().collect();
    assert_eq!(
        defaults, described,
        "values.yaml and values.schema.json name different values"
    );
}

/// The keys `deny_unknown_fields` accepts, read from serde's own error for an unknown key, as
/// `refusal` (a type's decoder) gives it.
fn accepted_keys(base: Value, refusal: fn(&Value) -> Option<String>) -> BTreeSet<String> {
    let mut probe = base;
    probe["\u{1}unknown"] = json!(0);
    let error = refusal(&probe).expect("an unknown key is refused");
    let expected = error
        .split_once("expected one of ")
        .map(|(_, list)| list)
        .unwrap_or_else(|| panic!("serde's error does not list the fields: {error}"));
    expected
        .split(", ")
        .map(|key| key.trim_matches('`').to_owned())
        .collect()
}

fn schema_keys(node: &Value) -> BTreeSet<String> {
    node["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .cloned()
        .collect()
}

#[test]
fn policy_settings_in_the_schema_are_the_settings_the_policy_accepts() {
    use hook_sidecar_policy::{Settings, SidecarProfile};
    use serde::Deserialize;

    let schema = schema();
    let settings = &schema["properties"]["policy"]["properties"]["settings"];
    let mut policy_keys = accepted_keys(json!({}), |probe| {
        Settings::deserialize(probe).err().map(|e| e.to_string())
    });
    // harvesterSetting comes from policy.contextAware, not from policy.settings.
    assert!(policy_keys.remove("harvesterSetting"), "{policy_keys:?}");
    assert_eq!(
        schema_keys(settings),
        policy_keys,
        "policy.settings in values.schema.json != the policy's Settings keys (src/settings.rs)"
    );
    let profile = &settings["properties"]["sidecarProfiles"]["items"];
    assert_eq!(
        schema_keys(profile),
        accepted_keys(json!({"image": "a"}), |probe| {
            SidecarProfile::deserialize(probe)
                .err()
                .map(|e| e.to_string())
        }),
        "sidecarProfiles items in values.schema.json != SidecarProfile's keys (src/profiles.rs)"
    );
}

/// The values table of the chart's README, from the schema (descriptions, allowed values) and
/// values.yaml (defaults): `UPDATE_CHART_README=1 cargo test --test chart` writes it.
fn values_table() -> String {
    let (schema, values) = (schema(), values());
    let mut rows = Vec::new();
    fn walk(schema: &Value, value: &Value, at: &str, rows: &mut Vec<String>) {
        match schema.get("properties").and_then(Value::as_object) {
            Some(properties) if at != "policy.settings" => {
                // Sorted whatever serde_json's map keeps (its preserve_order feature).
                let mut keys: Vec<&String> = properties.keys().collect();
                keys.sort();
                for key in keys {
                    let child = &properties[key.as_str()];
                    let child_at = if at.is_empty() {
                        key.clone()
                    } else {
                        format!("{at}.{key}")
                    };
                    walk(child, &value[key.as_str()], &child_at, rows);
                }
            }
            _ => {
                let description = schema["description"].as_str().unwrap_or_default();
                let allowed = schema["enum"].as_array().map(|values| {
                    let names: Vec<String> = values
                        .iter()
                        .map(|v| format!("`{}`", v.as_str().unwrap_or_default()))
                        .collect();
                    format!(" (one of {})", names.join(", "))
                });
                let default = match value {
                    Value::String(text) if text.is_empty() => "`\"\"`".to_owned(),
                    Value::Null => "unset".to_owned(),
                    other => format!("`{}`", serde_json::to_string(other).unwrap_or_default()),
                };
                rows.push(format!(
                    "| `{at}` | {default} | {}{} |",
                    description.replace('|', "\\|"),
                    allowed.unwrap_or_default()
                ));
            }
        }
    }
    walk(&schema, &values, "", &mut rows);
    format!(
        "| value | default | meaning |\n|---|---|---|\n{}\n",
        rows.join("\n")
    )
}

const TABLE_START: &str =
    "<!-- values table: generated from values.schema.json and values.yaml by tests/chart.rs -->\n";
const TABLE_END: &str = "<!-- end of values table -->";

#[test]
fn the_readme_values_table_is_the_schemas() {
    let readme_path = format!("{CHART}/README.md");
    let readme = text(&readme_path);
    let start = readme.find(TABLE_START).expect("the table's start marker") + TABLE_START.len();
    let end = readme.find(TABLE_END).expect("the table's end marker");
    let expected = values_table();
    if std::env::var_os("UPDATE_CHART_README").is_some() {
        let updated = format!("{}{expected}{}", &readme[..start], &readme[end..]);
        std::fs::write(path(&readme_path), updated).expect("write the README");
        return;
    }
    assert_eq!(
        &readme[start..end],
        expected,
        "{readme_path}'s values table is not the schema's: UPDATE_CHART_README=1 cargo test --test chart"
    );
}

/// Every Artifact Hub link to a release asset names a file the release workflow uploads.
#[test]
fn artifact_hub_links_name_what_the_release_uploads() {
    let workflow = text(".github/workflows/release.yml");
    let artifacthub: serde_yaml::Value =
        serde_yaml::from_str(&text("artifacthub-pkg.yml")).expect("artifacthub-pkg.yml");
    let version = env!("CARGO_PKG_VERSION");
    // The `gh release create` command: its operands after the options are the uploaded files, each
    // uploaded under its base name.
    let create = workflow
        .lines()
        .skip_while(|line| !line.contains("gh release create"))
        .take_while(|line| !line.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .replace('\\', " ");
    assert!(
        create.contains("gh release create"),
        "no gh release create in release.yml"
    );
    let uploaded: BTreeSet<String> = create
        .split_whitespace()
        .skip_while(|word| *word != "--generate-notes")
        .skip(1)
        .map(|file| {
            let file = file.trim_matches('"');
            file.rsplit('/').next().unwrap_or(file).to_owned()
        })
        .collect();
    assert!(!uploaded.is_empty(), "{create}");
    let prefix = format!("/releases/download/v{version}/");
    let links = artifacthub["links"].as_sequence().expect("links");
    let mut checked = 0;
    for link in links {
        let url = link["url"].as_str().expect("url");
        if let Some((_, asset)) = url.split_once(&prefix) {
            assert!(
                uploaded.contains(asset),
                "artifacthub-pkg.yml links {url}, but the release uploads only {uploaded:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no link to a release asset in {links:?}");
}

/// The install instructions Artifact Hub shows do not suggest a manifest that sends every Pod in
/// the cluster through the policy: `kwctl scaffold manifest` takes every rule of the metadata,
/// the `pods` rule included, without the launcher Pods' objectSelector.
#[test]
fn artifact_hub_install_does_not_suggest_a_manifest_for_every_pod() {
    let artifacthub: serde_yaml::Value =
        serde_yaml::from_str(&text("artifacthub-pkg.yml")).expect("artifacthub-pkg.yml");
    let install = artifacthub["install"].as_str().expect("install");
    let commands: Vec<&str> = install
        .split("```")
        .skip(1)
        .step_by(2)
        .flat_map(str::lines)
        .collect();
    assert!(
        commands
            .iter()
            .all(|line| !line.contains("scaffold manifest")),
        "artifacthub-pkg.yml's install suggests kwctl scaffold manifest:\n{install}"
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        install.contains(&format!("--version {version}")) && install.contains("helm install"),
        "install does not give the chart's helm install with --version {version}:\n{install}"
    );
}
