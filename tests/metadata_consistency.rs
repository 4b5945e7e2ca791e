//! The packaging files must agree with each other and with the code: versions, rules, questions.

use std::collections::BTreeSet;

use hook_sidecar_policy::ListMode;
use hook_sidecar_policy::SidecarProfile;
use hook_sidecar_policy::is_pod;
use hook_sidecar_policy::{
    CONFIG_MAP_API_VERSION, CONFIG_MAP_KIND, SETTING_API_VERSION, SETTING_KIND,
};
use hook_sidecar_policy::{GroupVersionKind, annotation_locations};
use hook_sidecar_policy::{HarvesterSettingRef, Settings, parse_and_validate};
use serde_yaml::Value;

fn yaml(path: &str) -> Value {
    serde_yaml::from_str(&text(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn embedded(artifacthub: &Value, annotation: &str) -> Value {
    let text = artifacthub["annotations"][annotation]
        .as_str()
        .unwrap_or_else(|| panic!("artifacthub-pkg.yml has no {annotation}"));
    serde_yaml::from_str(text).expect("embedded YAML")
}

fn str_of<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string"))
}

#[test]
fn versions_agree() {
    let version = env!("CARGO_PKG_VERSION");
    let metadata = yaml("policy-metadata.yml");
    let artifacthub = yaml("artifacthub-pkg.yml");
    assert_eq!(
        str_of(
            &metadata["annotations"]["io.kubewarden.policy.version"],
            "policy version"
        ),
        version
    );
    assert_eq!(
        str_of(&artifacthub["version"], "artifacthub version"),
        version
    );
    let image = str_of(
        &artifacthub["containersImages"][0]["image"],
        "containersImages image",
    );
    assert!(
        image.ends_with(&format!(":v{version}")),
        "{image} is not tagged v{version}"
    );
    let oci_url = str_of(
        &metadata["annotations"]["io.kubewarden.policy.ociUrl"],
        "ociUrl",
    );
    assert_eq!(image, format!("{oci_url}:v{version}"));
}

#[test]
fn artifacthub_embeds_the_rules_and_questions() {
    let artifacthub = yaml("artifacthub-pkg.yml");
    assert_eq!(
        embedded(&artifacthub, "kubewarden/rules"),
        yaml("policy-metadata.yml")["rules"]
    );
    assert_eq!(
        embedded(&artifacthub, "kubewarden/questions-ui"),
        yaml("questions-ui.yml")
    );
    // kwctl embeds the file as it is, comments included.
    assert_eq!(
        str_of(
            &artifacthub["annotations"]["kubewarden/questions-ui"],
            "questions-ui"
        ),
        text("questions-ui.yml")
    );
    assert_eq!(
        str_of(
            &artifacthub["annotations"]["kubewarden/mutation"],
            "mutation"
        ),
        "false"
    );
    let metadata = yaml("policy-metadata.yml");
    assert_eq!(
        artifacthub["annotations"]["kubewarden/resources"],
        metadata["annotations"]["io.artifacthub.resources"]
    );
    assert_eq!(
        artifacthub["displayName"],
        metadata["annotations"]["io.artifacthub.displayName"]
    );
}

#[test]
fn metadata_declares_a_validating_wapc_policy_with_audit() {
    let metadata = yaml("policy-metadata.yml");
    assert_eq!(metadata["mutating"], Value::Bool(false));
    assert_eq!(metadata["backgroundAudit"], Value::Bool(true));
    assert_eq!(
        str_of(&metadata["executionMode"], "executionMode"),
        "kubewarden-wapc"
    );
}

/// Every (group, version, resource) the rules name, with the operations of each rule.
fn rule_targets(rules: &Value) -> BTreeSet<(String, String, String, String)> {
    let mut targets = BTreeSet::new();
    for rule in rules.as_sequence().expect("rules is a list") {
        let list = |key: &str| -> Vec<String> {
            rule[key]
                .as_sequence()
                .unwrap_or_else(|| panic!("rule without {key}"))
                .iter()
                .map(|v| str_of(v, key).to_owned())
                .collect()
        };
        let operations = list("operations").join(",");
        for group in list("apiGroups") {
            for version in list("apiVersions") {
                for resource in list("resources") {
                    targets.insert((group.clone(), version.clone(), resource, operations.clone()));
                }
            }
        }
    }
    targets
}

#[test]
fn rules_cover_exactly_the_kinds_the_policy_checks() {
    // (group, versions, resource, kind): the objects that can bring a hook sidecar to a VMI.
    let kinds = [
        (
            "kubevirt.io",
            &["v1", "v1alpha3"][..],
            "virtualmachines",
            "VirtualMachine",
        ),
        (
            "kubevirt.io",
            &["v1", "v1alpha3"],
            "virtualmachineinstances",
            "VirtualMachineInstance",
        ),
        (
            "kubevirt.io",
            &["v1", "v1alpha3"],
            "virtualmachineinstancereplicasets",
            "VirtualMachineInstanceReplicaSet",
        ),
        (
            "pool.kubevirt.io",
            &["v1alpha1", "v1beta1"],
            "virtualmachinepools",
            "VirtualMachinePool",
        ),
        (
            "instancetype.kubevirt.io",
            &["v1beta1"],
            "virtualmachineinstancetypes",
            "VirtualMachineInstancetype",
        ),
        (
            "instancetype.kubevirt.io",
            &["v1beta1"],
            "virtualmachineclusterinstancetypes",
            "VirtualMachineClusterInstancetype",
        ),
        (
            "instancetype.kubevirt.io",
            &["v1beta1"],
            "virtualmachinepreferences",
            "VirtualMachinePreference",
        ),
        (
            "instancetype.kubevirt.io",
            &["v1beta1"],
            "virtualmachineclusterpreferences",
            "VirtualMachineClusterPreference",
        ),
    ];
    let mut expected = BTreeSet::new();
    for (group, versions, resource, kind) in kinds {
        for version in versions {
            let gvk = GroupVersionKind {
                group: group.into(),
                version: (*version).into(),
                kind: kind.into(),
            };
            assert!(
                annotation_locations(&gvk).is_some(),
                "the policy does not check {kind}"
            );
            expected.insert((
                group.into(),
                (*version).into(),
                resource.into(),
                "CREATE,UPDATE".into(),
            ));
        }
    }
    // The virt-launcher Pods, checked by the same module (src/launcher_pod.rs).
    let pod = GroupVersionKind {
        group: String::new(),
        version: "v1".into(),
        kind: "Pod".into(),
    };
    assert!(is_pod(&pod), "the policy does not check Pods");
    expected.insert((
        String::new(),
        "v1".into(),
        "pods".into(),
        "CREATE,UPDATE".into(),
    ));
    assert_eq!(
        rule_targets(&yaml("policy-metadata.yml")["rules"]),
        expected
    );
}

/// The ClusterAdmissionPolicies the chart installs, with the launcher-Pod policy on: `helm
/// template` (helm from `hack/go-tool.sh`, or `HELM_BIN`).
fn chart_policies() -> Vec<Value> {
    let root = env!("CARGO_MANIFEST_DIR");
    let helm = match std::env::var_os("HELM_BIN") {
        Some(helm) => std::path::PathBuf::from(helm),
        None => {
            let output = std::process::Command::new(format!("{root}/hack/go-tool.sh"))
                .arg("helm")
                .output()
                .expect("hack/go-tool.sh runs");
            assert!(output.status.success(), "hack/go-tool.sh helm failed");
            String::from_utf8(output.stdout)
                .expect("a path")
                .trim()
                .into()
        }
    };
    let output = std::process::Command::new(helm)
        .args(["template", "hook-sidecar-policy"])
        .arg(format!("{root}/charts/hook-sidecar-policy"))
        .args(["--set", "launcherPodPolicy.enabled=true"])
        .output()
        .expect("helm runs");
    assert!(
        output.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered = String::from_utf8(output.stdout).expect("UTF-8");
    serde_yaml::Deserializer::from_str(&rendered)
        .map(|document| {
            <Value as serde::Deserialize>::deserialize(document).expect("rendered YAML")
        })
        .filter(|object| object["kind"].as_str() == Some("ClusterAdmissionPolicy"))
        .collect()
}

/// The user docs: the README and every page of docs/, by path.
fn user_docs() -> Vec<(String, String)> {
    let docs = format!("{}/docs", env!("CARGO_MANIFEST_DIR"));
    let mut pages: Vec<String> = std::fs::read_dir(&docs)
        .unwrap_or_else(|e| panic!("{docs}: {e}"))
        .map(|entry| entry.expect("docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| {
            format!(
                "docs/{}",
                path.file_name().expect("a file").to_string_lossy()
            )
        })
        .collect();
    pages.sort();
    std::iter::once("README.md".to_owned())
        .chain(pages)
        .map(|path| {
            let content = text(&path);
            (path, content)
        })
        .collect()
}

/// The ClusterAdmissionPolicies the user docs show, from their `yaml` code blocks, named by page.
fn documented_policies() -> Vec<(String, Value)> {
    user_docs()
        .into_iter()
        .flat_map(|(path, page)| {
            page.split("```yaml\n")
                .skip(1)
                .filter_map(|block| block.split("```").next())
                .flat_map(serde_yaml::Deserializer::from_str)
                .map(|document| {
                    <Value as serde::Deserialize>::deserialize(document)
                        .unwrap_or_else(|e| panic!("{path}: a yaml block is not YAML: {e}"))
                })
                .filter(|object| object["kind"].as_str() == Some("ClusterAdmissionPolicy"))
                .enumerate()
                .map(|(i, policy)| (format!("{path} policy {i}"), policy))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The rules of the metadata are split over two policies: the objects that carry the annotation,
/// and the virt-launcher Pods (with an objectSelector, so that only launcher Pods are sent).
#[test]
fn every_shipped_policy_has_the_metadata_rules_and_equivalent_matching() {
    let (pods, annotated): (BTreeSet<_>, BTreeSet<_>) =
        rule_targets(&yaml("policy-metadata.yml")["rules"])
            .into_iter()
            .partition(|(group, _, resource, _)| group.is_empty() && resource == "pods");
    assert!(!pods.is_empty() && !annotated.is_empty());
    let mut policies: Vec<(String, Value)> = chart_policies()
        .into_iter()
        .enumerate()
        .map(|(i, policy)| (format!("the chart's policy {i}"), policy))
        .collect();
    assert_eq!(
        policies.len(),
        2,
        "the chart renders the VM and the Pod policy"
    );
    let documented = documented_policies();
    assert!(
        !documented.is_empty(),
        "the docs show no ClusterAdmissionPolicy"
    );
    policies.extend(documented);
    let mut launcher_policies = 0;
    for (name, policy) in policies {
        assert_eq!(
            str_of(&policy["kind"], "kind"),
            "ClusterAdmissionPolicy",
            "{name}"
        );
        let targets = rule_targets(&policy["spec"]["rules"]);
        if targets == pods {
            launcher_policies += 1;
            assert_eq!(
                policy["spec"]["objectSelector"]["matchLabels"]["kubevirt.io"].as_str(),
                Some("virt-launcher"),
                "{name}: the Pod policy must select launcher Pods only"
            );
        } else {
            assert_eq!(targets, annotated, "{name}");
        }
        // Exact would let a request through an unlisted version (kubevirt.io/v1alpha3, a new
        // pool or instancetype version) bypass the policy.
        assert_eq!(
            policy["spec"]["matchPolicy"].as_str(),
            Some("Equivalent"),
            "{name}"
        );
    }
    assert!(
        launcher_policies >= 2,
        "the chart and the docs show the Pod policy"
    );
}

/// Every `variable` of the questions, subquestions included (the fields of a list's items,
/// `sequence_questions`, are not settings: see `profile_questions_are_the_profile_fields`);
/// `a.b`, a key of a nested setting, as `a`.
fn question_variables(questions: &Value, into: &mut BTreeSet<String>) {
    for question in questions.as_sequence().expect("questions is a list") {
        let variable = str_of(&question["variable"], "variable");
        into.insert(variable.split('.').next().unwrap_or(variable).to_owned());
        if let Some(sub) = question.get("subquestions") {
            question_variables(sub, into);
        }
    }
}

fn question<'q>(questions: &'q Value, variable: &str) -> &'q Value {
    questions
        .as_sequence()
        .expect("questions is a list")
        .iter()
        .find(|q| q["variable"].as_str() == Some(variable))
        .unwrap_or_else(|| panic!("no question {variable}"))
}

/// Profile fields that the Rancher form cannot express (lists of lists of patterns): its
/// description must send the administrator to the YAML view for them.
const PROFILE_FIELDS_WITHOUT_FORM: [&str; 2] = ["args", "command"];

#[test]
fn profile_questions_are_the_profile_fields() {
    let questions = yaml("questions-ui.yml");
    let profiles = question(&questions["questions"], "sidecarProfiles");
    // The form Kubewarden's own policies use for a list of objects.
    assert_eq!(str_of(&profiles["type"], "type"), "sequence[");
    assert_eq!(profiles["default"], Value::Sequence(Vec::new()));
    let items = &profiles["sequence_questions"];
    let mut fields = BTreeSet::new();
    question_variables(items, &mut fields);
    fields.extend(PROFILE_FIELDS_WITHOUT_FORM.map(String::from));
    let profile = SidecarProfile {
        image: "a".into(),
        args: Some(vec![vec![]]),
        command: Some(vec![vec![]]),
        annotations: [("k".to_owned(), "v".to_owned())].into(),
        required_annotations: vec!["k".into()],
    };
    let keys: BTreeSet<String> = serde_json::to_value(profile)
        .expect("serializable")
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(fields, keys);
    let description = str_of(&profiles["description"], "description");
    for field in PROFILE_FIELDS_WITHOUT_FORM {
        assert!(description.contains(&format!("`{field}`")), "{description}");
    }
    assert!(description.contains("YAML view"), "{description}");
    for (variable, kind) in [
        ("image", "string"),
        ("annotations", "map["),
        ("requiredAnnotations", "array["),
    ] {
        assert_eq!(str_of(&question(items, variable)["type"], "type"), kind);
    }
    assert_eq!(question(items, "image")["required"], Value::Bool(true));
    let required = question(&questions["questions"], "profilesRequired");
    assert_eq!(str_of(&required["type"], "type"), "boolean");
    assert_eq!(required["default"], Value::Bool(false));
}

/// The ways to trust a signature that the form has no field for: the description names each.
const SIGNATURE_FIELDS_WITHOUT_FORM: [&str; 7] = [
    "keyless",
    "keylessPrefix",
    "githubActions",
    "certificates",
    "certificateChain",
    "requireRekorBundle",
    "oci/v2/verify",
];

#[test]
fn signature_questions_are_requirement_fields() {
    let questions = yaml("questions-ui.yml");
    let signatures = question(&questions["questions"], "signatures");
    assert_eq!(str_of(&signatures["type"], "type"), "sequence[");
    let items = &signatures["sequence_questions"];
    for (variable, kind) in [
        ("image", "string"),
        ("pubKeys", "array["),
        ("annotations", "map["),
    ] {
        assert_eq!(str_of(&question(items, variable)["type"], "type"), kind);
    }
    let description = str_of(&signatures["description"], "description");
    for field in SIGNATURE_FIELDS_WITHOUT_FORM {
        assert!(description.contains(&format!("`{field}`")), "{description}");
    }
    // What the form writes (an image and a key) is a valid requirement; without a key it is not.
    let key = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEU3tq7eCgHmlKG1aoyPoSXcR3RmUj\nhn2SBz7nHgy7zKzRrOiH3Z/+g5YjpAWOPJYCxVD4XJ1b5rnlMAJA7o/9WA==\n-----END PUBLIC KEY-----\n";
    let form = |requirement: serde_json::Value| {
        parse_and_validate(&serde_json::json!({"signatures": [requirement]})).map(drop)
    };
    form(serde_json::json!({"image": "r.example.com/h:*", "pubKeys": [key], "annotations": {}}))
        .expect("valid");
    form(serde_json::json!({"image": "r.example.com/h:*", "pubKeys": [], "annotations": {}}))
        .expect_err("no key");
}

/// What the form writes with its defaults (and an image) is valid settings.
#[test]
fn the_form_defaults_are_valid_settings() {
    let questions = yaml("questions-ui.yml");
    let mut settings = serde_json::Map::new();
    for q in questions["questions"].as_sequence().expect("list") {
        let variable = str_of(&q["variable"], "variable").to_owned();
        let default: serde_json::Value =
            serde_json::to_value(&q["default"]).expect("JSON-compatible default");
        // null in the form (sidecarShimImage, harvesterSetting.*): not written.
        if !default.is_null() {
            settings.insert(variable, default);
        }
    }
    let items = &question(&questions["questions"], "sidecarProfiles")["sequence_questions"];
    let mut profile = serde_json::Map::new();
    for q in items.as_sequence().expect("list") {
        let default = serde_json::to_value(&q["default"]).expect("JSON-compatible default");
        profile.insert(str_of(&q["variable"], "variable").to_owned(), default);
    }
    profile.insert("image".into(), "registry.example.com/hook:v1".into());
    settings.insert(
        "sidecarProfiles".into(),
        vec![serde_json::Value::Object(profile)].into(),
    );
    parse_and_validate(&serde_json::Value::Object(settings)).expect("valid settings");
}

#[test]
fn questions_are_exactly_the_settings() {
    let mut variables = BTreeSet::new();
    question_variables(&yaml("questions-ui.yml")["questions"], &mut variables);
    let settings = Settings {
        sidecar_shim_image: Some("quay.io/kubevirt/sidecar-shim:v1.4.0".into()),
        profile_value_max_bytes: Some(4096),
        allowed_scripts: vec![serde_json::value::RawValue::from_string("{}".into()).expect("JSON")],
        signatures: vec![serde_json::value::RawValue::from_string("{}".into()).expect("JSON")],
        harvester_setting: Some(HarvesterSettingRef {
            name: "whitelisted-sidecars".into(),
            list_mode: ListMode::Union,
        }),
        ..Settings::default()
    };
    let keys: BTreeSet<String> = serde_json::to_value(settings)
        .expect("serializable")
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(variables, keys);
}

/// The annotations Kubewarden (kwctl annotate, the audit scanner) and Artifact Hub read.
const REQUIRED_ANNOTATIONS: &[&str] = &[
    "io.kubewarden.policy.title",
    "io.kubewarden.policy.version",
    "io.kubewarden.policy.description",
    "io.kubewarden.policy.author",
    "io.kubewarden.policy.url",
    "io.kubewarden.policy.source",
    "io.kubewarden.policy.license",
    "io.kubewarden.policy.usage",
    "io.kubewarden.policy.severity",
    "io.kubewarden.policy.category",
    "io.kubewarden.policy.ociUrl",
    "io.artifacthub.displayName",
    "io.artifacthub.resources",
    "io.artifacthub.keywords",
];

#[test]
fn metadata_has_every_annotation() {
    let metadata = yaml("policy-metadata.yml");
    for key in REQUIRED_ANNOTATIONS {
        let value = str_of(&metadata["annotations"][*key], key);
        assert!(!value.trim().is_empty(), "{key} is empty");
    }
    let severity = str_of(
        &metadata["annotations"]["io.kubewarden.policy.severity"],
        "severity",
    );
    assert!(
        ["info", "low", "medium", "high", "critical"].contains(&severity),
        "severity {severity:?} is not one the audit scanner knows"
    );
}

/// Context-aware mode and allowedScripts read exactly the kinds the code asks policy-server for,
/// through the one host capability it calls.
#[test]
fn metadata_declares_the_setting_it_reads() {
    let metadata = yaml("policy-metadata.yml");
    let expected: Value = serde_yaml::from_str(&format!(
        "[{{apiVersion: {SETTING_API_VERSION}, kind: {SETTING_KIND}}}, \
         {{apiVersion: {CONFIG_MAP_API_VERSION}, kind: {CONFIG_MAP_KIND}}}]"
    ))
    .expect("YAML");
    assert_eq!(metadata["contextAwareResources"], expected);
}

/// The host capabilities the metadata declares are exactly those the module calls: each
/// `host_call("kubewarden", namespace, operation, ...)` in src/. An operator reads the
/// metadata to learn what the module may ask of policy-server; a capability called but not
/// declared (as `oci/v2/verify` was when signatures landed) misleads them.
#[test]
fn metadata_declares_the_host_capabilities_the_module_calls() {
    let metadata = yaml("policy-metadata.yml");
    let declared: BTreeSet<String> = (metadata["hostCapabilities"].as_sequence())
        .expect("hostCapabilities is a list")
        .iter()
        .map(|c| str_of(c, "a capability").to_owned())
        .collect();
    let mut called = BTreeSet::new();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src")).expect("src") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source");
        for call in text.split("host_call(\"kubewarden\", ").skip(1) {
            let parts: Vec<&str> = call.splitn(5, '"').collect();
            called.insert(format!("{}/{}", parts[1], parts[3]));
        }
    }
    assert!(!called.is_empty(), "no host_call found in src/");
    assert_eq!(declared, called);
}

/// The fields `kwctl scaffold artifacthub` derives from policy-metadata.yml.
#[test]
fn artifacthub_fields_follow_the_metadata() {
    let version = env!("CARGO_PKG_VERSION");
    let metadata = yaml("policy-metadata.yml");
    let artifacthub = yaml("artifacthub-pkg.yml");
    let annotation = |key: &str| str_of(&metadata["annotations"][key], key).to_owned();
    let field = |key: &str| str_of(&artifacthub[key], key).to_owned();

    assert_eq!(field("name"), annotation("io.kubewarden.policy.title"));
    assert_eq!(
        field("displayName"),
        annotation("io.artifacthub.displayName")
    );
    assert_eq!(
        field("description"),
        annotation("io.kubewarden.policy.description")
    );
    assert_eq!(field("license"), annotation("io.kubewarden.policy.license"));
    assert_eq!(field("homeURL"), annotation("io.kubewarden.policy.url"));

    let keywords: Vec<Value> = annotation("io.artifacthub.keywords")
        .split(',')
        .map(|k| Value::String(k.trim().to_owned()))
        .collect();
    assert_eq!(artifacthub["keywords"], Value::Sequence(keywords));

    let source = annotation("io.kubewarden.policy.source");
    let links = artifacthub["links"].as_sequence().expect("links is a list");
    let link = |name: &str| {
        links
            .iter()
            .find(|l| l["name"].as_str() == Some(name))
            .map(|l| str_of(&l["url"], "link url").to_owned())
            .unwrap_or_else(|| panic!("no {name} link"))
    };
    assert_eq!(link("source"), source);
    assert_eq!(
        link("policy"),
        format!("{source}/releases/download/v{version}/policy.wasm")
    );

    // The install text is hack/artifacthub-install.py's (kwctl's would suggest a manifest for
    // every Pod): the module by its image, the chart under the same registry, both this version.
    let oci_url = annotation("io.kubewarden.policy.ociUrl");
    let image = format!("{oci_url}:v{version}");
    let registry = oci_url.rsplit_once('/').expect("ociUrl has a path").0;
    let install = field("install");
    assert!(
        install.contains(&format!("kwctl pull {image}\n"))
            && install.contains(&format!(
                "helm install hook-sidecar-policy oci://{registry}/charts/hook-sidecar-policy --version {version} "
            )),
        "install does not name {image} and the chart of version {version}:\n{install}"
    );

    // "Name <email>, Name <email>": kwctl refuses an author without an email.
    let maintainers: Vec<Value> = annotation("io.kubewarden.policy.author")
        .split(',')
        .map(|author| {
            let (name, rest) = author
                .split_once('<')
                .unwrap_or_else(|| panic!("author {author:?} is not \"Name <email>\""));
            let email = rest.strip_suffix('>').expect("email ends with >");
            assert!(email.contains('@'), "{email:?} is not an email");
            serde_yaml::from_str(&format!("{{name: '{}', email: '{email}'}}", name.trim()))
                .expect("maintainer")
        })
        .collect();
    assert_eq!(artifacthub["maintainers"], Value::Sequence(maintainers));

    assert_eq!(
        str_of(&artifacthub["provider"]["name"], "provider"),
        "kubewarden"
    );
    // kwctl writes the annotation when contextAwareResources is not empty (the Rancher UI then
    // shows the policy as context aware).
    assert_eq!(
        embedded(&artifacthub, "kubewarden/contextAwareResources"),
        metadata["contextAwareResources"]
    );
}
