//! The ConfigMap in which kubewarden-controller writes the configuration of a PolicyServer, as it
//! writes it, so that the job refuses a list that would make it too large before writing it.
//!
//! kubewarden-controller (internal/controller/policyserver_controller_configmap.go, v1.35.0,
//! `reconcilePolicyServerConfigMap` and `updateConfigMapData`) writes one ConfigMap per
//! PolicyServer with two keys: `policies.yml`, the `json.Marshal` of a map from each bound
//! policy's unique name to its entry (`buildPoliciesMap`, `policyServerConfigEntry.MarshalJSON`),
//! and `sources.yml`, the `json.Marshal` of the PolicyServer's insecure sources and source
//! authorities (`buildSourcesMap`). The policies are every ClusterAdmissionPolicy,
//! AdmissionPolicy, AdmissionPolicyGroup and ClusterAdmissionPolicyGroup whose `spec.policyServer`
//! names it (`getPolicies`, policyserver_controller.go). Kubernetes refuses a ConfigMap whose
//! values (`data` and `binaryData`) add up to more than 1 MiB (`ValidateConfigMap`,
//! pkg/apis/core/validation, `core.MaxSecretSize`): the controller then cannot write the
//! configuration, and policy-server keeps serving the last one, for every policy on it.
//!
//! [`render`] writes both values byte for byte as Go's `encoding/json` does: struct fields in
//! declaration order with their `omitempty` rules, map keys sorted, strings escaped with HTML
//! escaping (`<`, `>`, `&`, U+2028 and U+2029 as `\u` escapes), floats in Go's format. A policy's
//! `settings` is a `runtime.RawExtension`: the API server's JSON of it, which Go compacts and
//! HTML-escapes again, which is the same as writing the decoded value as Go would.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// Kubernetes' limit on the values of a ConfigMap (`core.MaxSecretSize`, 1 MiB).
pub const CONFIGMAP_MAX_BYTES: usize = 1 << 20;

/// The two keys of the PolicyServer's ConfigMap.
pub const POLICIES_KEY: &str = "policies.yml";
pub const SOURCES_KEY: &str = "sources.yml";

/// The Kubewarden kinds that carry `spec.policyServer`, in the order the controller lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    ClusterAdmissionPolicy,
    AdmissionPolicy,
    AdmissionPolicyGroup,
    ClusterAdmissionPolicyGroup,
}

impl PolicyKind {
    pub const ALL: [Self; 4] = [
        Self::ClusterAdmissionPolicy,
        Self::AdmissionPolicy,
        Self::AdmissionPolicyGroup,
        Self::ClusterAdmissionPolicyGroup,
    ];

    pub fn kind(self) -> &'static str {
        match self {
            Self::ClusterAdmissionPolicy => "ClusterAdmissionPolicy",
            Self::AdmissionPolicy => "AdmissionPolicy",
            Self::AdmissionPolicyGroup => "AdmissionPolicyGroup",
            Self::ClusterAdmissionPolicyGroup => "ClusterAdmissionPolicyGroup",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Self::ClusterAdmissionPolicy => "clusteradmissionpolicies",
            Self::AdmissionPolicy => "admissionpolicies",
            Self::AdmissionPolicyGroup => "admissionpolicygroups",
            Self::ClusterAdmissionPolicyGroup => "clusteradmissionpolicygroups",
        }
    }

    fn group(self) -> bool {
        matches!(
            self,
            Self::AdmissionPolicyGroup | Self::ClusterAdmissionPolicyGroup
        )
    }

    /// `GetUniqueName()` of each kind: the key of its entry.
    pub fn unique_name(self, namespace: &str, name: &str) -> String {
        match self {
            Self::ClusterAdmissionPolicy => format!("clusterwide-{name}"),
            Self::AdmissionPolicy => format!("namespaced-{namespace}-{name}"),
            Self::AdmissionPolicyGroup => format!("namespaced-group-{namespace}-{name}"),
            Self::ClusterAdmissionPolicyGroup => format!("clusterwide-group-{name}"),
        }
    }
}

/// The values of the ConfigMap.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigMapData {
    pub policies: String,
    pub sources: String,
}

impl ConfigMapData {
    /// What Kubernetes counts against [`CONFIGMAP_MAX_BYTES`]: the values, not the keys.
    pub fn size(&self) -> usize {
        self.policies.len() + self.sources.len()
    }
}

/// The ConfigMap of the PolicyServer `policy_server` (its object, `None` when it does not exist:
/// no sources, and namespaced policies get every capability, as without
/// `namespacedPoliciesCapabilities`) with `policies` bound to it, each as the API server returns it.
pub fn render(policy_server: Option<&Value>, policies: &[(PolicyKind, &Value)]) -> ConfigMapData {
    let spec = policy_server.map_or(&Value::Null, |server| &server["spec"]);
    let namespaced_capabilities = match &spec["namespacedPoliciesCapabilities"] {
        Value::Array(capabilities) => Some(capabilities.as_slice()),
        _ => None,
    };
    // A Go map: the last entry of a unique name wins, and keys are written sorted.
    let mut entries = BTreeMap::new();
    for (kind, policy) in policies {
        let namespace = policy["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = policy["metadata"]["name"].as_str().unwrap_or_default();
        let mut entry = GoJson::default();
        policy_entry(&mut entry, *kind, policy, namespaced_capabilities);
        entries.insert(kind.unique_name(namespace, name), entry.0);
    }
    let mut out = GoJson::default();
    out.0.push('{');
    for (index, (key, entry)) in entries.iter().enumerate() {
        if index > 0 {
            out.0.push(',');
        }
        out.string(key);
        out.0.push(':');
        out.0.push_str(entry);
    }
    out.0.push('}');
    ConfigMapData {
        policies: out.0,
        sources: sources(spec),
    }
}

/// `policyServerConfigEntry.MarshalJSON`: the group form when the group has members, else the
/// policy form (a group without members is written as a policy without module).
fn policy_entry(
    out: &mut GoJson,
    kind: PolicyKind,
    policy: &Value,
    namespaced_capabilities: Option<&[Value]>,
) {
    let spec = &policy["spec"];
    let namespace = policy["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = policy["metadata"]["name"].as_str().unwrap_or_default();
    // hostCapabilitiesForPolicy: cluster-wide policies get every capability; namespaced ones the
    // PolicyServer's namespacedPoliciesCapabilities, or every capability without it.
    let capabilities = |out: &mut GoJson| match namespaced_capabilities {
        Some(capabilities) if !namespace.is_empty() => out.value(&Value::from(capabilities)),
        _ => out.0.push_str(r#"["*"]"#),
    };
    let members = match &spec["policies"] {
        Value::Object(members) if kind.group() && !members.is_empty() => Some(members),
        _ => None,
    };
    out.0.push_str(r#"{"namespacedName":{"Namespace":"#);
    out.string(namespace);
    out.0.push_str(r#","Name":"#);
    out.string(name);
    out.0.push('}');
    if let Some(members) = members {
        out.0.push_str(r#","policyMode":"#);
        out.string(spec["mode"].as_str().unwrap_or_default());
        out.0.push_str(r#","policies":{"#);
        for (index, (member, definition)) in sorted(members).into_iter().enumerate() {
            if index > 0 {
                out.0.push(',');
            }
            out.string(member);
            out.0.push_str(r#":{"module":"#);
            out.string(definition["module"].as_str().unwrap_or_default());
            out.0.push_str(r#","settings":"#);
            out.raw_extension(&definition["settings"]);
            // AdmissionPolicyGroup members have no context-aware resources.
            if kind == PolicyKind::ClusterAdmissionPolicyGroup {
                context_aware_resources(out, &definition["contextAwareResources"]);
            }
            timeout_eval_seconds(out, &definition["timeoutEvalSeconds"]);
            out.0.push_str(r#","hostCapabilities":"#);
            capabilities(out);
            out.0.push('}');
        }
        out.0.push_str(r#"},"expression":"#);
        out.string(spec["expression"].as_str().unwrap_or_default());
        out.0.push_str(r#","message":"#);
        out.string(spec["message"].as_str().unwrap_or_default());
        out.0.push('}');
        return;
    }
    out.0.push_str(r#","module":"#);
    out.string(if kind.group() {
        ""
    } else {
        spec["module"].as_str().unwrap_or_default()
    });
    out.0.push_str(r#","policyMode":"#);
    out.string(spec["mode"].as_str().unwrap_or_default());
    out.0.push_str(r#","allowedToMutate":"#);
    // Groups are never mutating.
    let mutating = !kind.group() && spec["mutating"].as_bool().unwrap_or(false);
    out.0.push_str(if mutating { "true" } else { "false" });
    // Only ClusterAdmissionPolicy has context-aware resources at this level.
    if kind == PolicyKind::ClusterAdmissionPolicy {
        context_aware_resources(out, &spec["contextAwareResources"]);
    }
    out.0.push_str(r#","settings":"#);
    if kind.group() {
        out.0.push_str("null");
    } else {
        out.raw_extension(&spec["settings"]);
    }
    let message = spec["message"].as_str().unwrap_or_default();
    if !message.is_empty() {
        out.0.push_str(r#","message":"#);
        out.string(message);
    }
    if !kind.group() {
        timeout_eval_seconds(out, &spec["timeoutEvalSeconds"]);
    }
    out.0.push_str(r#","hostCapabilities":"#);
    capabilities(out);
    out.0.push('}');
}

/// `contextAwareResources,omitempty`: `[{"apiVersion":...,"kind":...}]`, left out when empty.
fn context_aware_resources(out: &mut GoJson, resources: &Value) {
    let Some(resources) = resources.as_array().filter(|list| !list.is_empty()) else {
        return;
    };
    out.0.push_str(r#","contextAwareResources":["#);
    for (index, resource) in resources.iter().enumerate() {
        if index > 0 {
            out.0.push(',');
        }
        out.0.push_str(r#"{"apiVersion":"#);
        out.string(resource["apiVersion"].as_str().unwrap_or_default());
        out.0.push_str(r#","kind":"#);
        out.string(resource["kind"].as_str().unwrap_or_default());
        out.0.push('}');
    }
    out.0.push(']');
}

/// `timeoutEvalSeconds,omitempty` (a `*int32`): left out when absent.
fn timeout_eval_seconds(out: &mut GoJson, seconds: &Value) {
    if let Some(seconds) = seconds.as_i64() {
        let _ = write!(out.0, r#","timeoutEvalSeconds":{seconds}"#);
    }
}

/// `policyServerSourcesEntry`: `insecure_sources` and `source_authorities`, each left out when
/// empty (`omitempty`), each authority as `{"type":"Data","data":<PEM>}`.
fn sources(spec: &Value) -> String {
    let mut out = GoJson::default();
    out.0.push('{');
    let mut first = true;
    if let Some(insecure) = spec["insecureSources"].as_array().filter(|l| !l.is_empty()) {
        out.0.push_str(r#""insecure_sources":"#);
        out.value(&Value::from(insecure.as_slice()));
        first = false;
    }
    if let Some(authorities) = spec["sourceAuthorities"]
        .as_object()
        .filter(|m| !m.is_empty())
    {
        if !first {
            out.0.push(',');
        }
        out.0.push_str(r#""source_authorities":{"#);
        for (index, (uri, certificates)) in sorted(authorities).into_iter().enumerate() {
            if index > 0 {
                out.0.push(',');
            }
            out.string(uri);
            out.0.push_str(":[");
            let certificates = certificates.as_array().map_or(&[][..], Vec::as_slice);
            for (n, certificate) in certificates.iter().enumerate() {
                if n > 0 {
                    out.0.push(',');
                }
                out.0.push_str(r#"{"type":"Data","data":"#);
                out.string(certificate.as_str().unwrap_or_default());
                out.0.push('}');
            }
            out.0.push(']');
        }
        out.0.push('}');
    }
    out.0.push('}');
    out.0
}

/// Go sorts map keys by their bytes.
fn sorted(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    entries
}

/// JSON written as Go's `encoding/json.Marshal` writes it.
#[derive(Default)]
struct GoJson(String);

impl GoJson {
    /// A `runtime.RawExtension`: `null` when absent, else the value.
    fn raw_extension(&mut self, value: &Value) {
        self.value(value);
    }

    fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.0.push_str("null"),
            Value::Bool(true) => self.0.push_str("true"),
            Value::Bool(false) => self.0.push_str("false"),
            Value::Number(number) => {
                if let Some(integer) = number.as_i64() {
                    let _ = write!(self.0, "{integer}");
                } else if let Some(integer) = number.as_u64() {
                    let _ = write!(self.0, "{integer}");
                } else {
                    self.0
                        .push_str(&go_float(number.as_f64().unwrap_or_default()));
                }
            }
            Value::String(text) => self.string(text),
            Value::Array(items) => {
                self.0.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        self.0.push(',');
                    }
                    self.value(item);
                }
                self.0.push(']');
            }
            Value::Object(map) => {
                self.0.push('{');
                for (index, (key, item)) in sorted(map).into_iter().enumerate() {
                    if index > 0 {
                        self.0.push(',');
                    }
                    self.string(key);
                    self.0.push(':');
                    self.value(item);
                }
                self.0.push('}');
            }
        }
    }

    /// `appendString` with HTML escaping (encoding/json, Go 1.22 and later: `\b` and `\f` as
    /// short escapes).
    fn string(&mut self, text: &str) {
        let out = &mut self.0;
        out.push('"');
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c if u32::from(c) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// A float64 as encoding/json writes it: the shortest representation, in `%f` form, or `%e` form
/// (`1e+21`, `1e-7`) below 1e-6 and from 1e21.
fn go_float(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-6..1e21).contains(&magnitude) {
        let text = format!("{value:e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                format!("{mantissa}e+{exponent}")
            }
            _ => text,
        }
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn go(value: &Value) -> String {
        let mut out = GoJson::default();
        out.value(value);
        out.0
    }

    #[test]
    fn strings_are_escaped_as_go_escapes_them() {
        assert_eq!(
            go(&json!("a<b>&c\"d\\e\n\t\u{1}\u{8}\u{c}\u{7f}\u{2028}é")),
            r#""a\u003cb\u003e\u0026c\"d\\e\n\t\u0001\b\f"#.to_owned() + "\u{7f}" + r#"\u2028é""#
        );
    }

    #[test]
    fn maps_are_sorted_by_bytes_and_numbers_written_as_go_writes_them() {
        let value: Value = serde_json::from_str(
            r#"{"b": 1, "B": -2, "a": [1.5, 100, 1e21, 1.5e-7, 0.000001, 123456789.25, 0, -0.0]}"#,
        )
        .expect("JSON");
        assert_eq!(
            go(&value),
            r#"{"B":-2,"a":[1.5,100,1e+21,1.5e-7,0.000001,123456789.25,0,-0],"b":1}"#
        );
    }

    fn cap(name: &str, settings: Value) -> Value {
        json!({
            "metadata": { "name": name },
            "spec": {
                "module": "registry://ghcr.io/x/hook-sidecar-policy:v0.1.0",
                "mode": "protect",
                "mutating": false,
                "policyServer": "default",
                "settings": settings,
            },
        })
    }

    #[test]
    fn a_cluster_admission_policy_as_the_controller_writes_it() {
        let mut policy = cap("hook-sidecars", json!({"allowedImages": ["a/b:1"]}));
        policy["spec"]["contextAwareResources"] =
            json!([{"apiVersion": "harvesterhci.io/v1beta1", "kind": "Setting"}]);
        policy["spec"]["timeoutEvalSeconds"] = json!(3);
        let data = render(None, &[(PolicyKind::ClusterAdmissionPolicy, &policy)]);
        assert_eq!(
            data.policies,
            r#"{"clusterwide-hook-sidecars":{"namespacedName":{"Namespace":"","Name":"hook-sidecars"},"module":"registry://ghcr.io/x/hook-sidecar-policy:v0.1.0","policyMode":"protect","allowedToMutate":false,"contextAwareResources":[{"apiVersion":"harvesterhci.io/v1beta1","kind":"Setting"}],"settings":{"allowedImages":["a/b:1"]},"timeoutEvalSeconds":3,"hostCapabilities":["*"]}}"#
        );
        assert_eq!(data.sources, "{}");
        assert_eq!(data.size(), data.policies.len() + 2);
    }

    #[test]
    fn settings_absent_are_null_and_the_message_is_kept() {
        let mut policy = cap("p", Value::Null);
        policy["spec"]["message"] = json!("no <b>");
        policy["spec"]["mutating"] = json!(true);
        let data = render(None, &[(PolicyKind::ClusterAdmissionPolicy, &policy)]);
        assert!(
            data.policies.ends_with(
                r#""allowedToMutate":true,"settings":null,"message":"no \u003cb\u003e","hostCapabilities":["*"]}}"#
            ),
            "{}",
            data.policies
        );
    }

    #[test]
    fn namespaced_policies_get_the_policy_servers_capabilities() {
        let mut policy = cap("p", json!({}));
        policy["metadata"]["namespace"] = json!("team-a");
        policy["spec"]["contextAwareResources"] = json!([{"apiVersion": "v1", "kind": "Pod"}]);
        let server = json!({ "spec": { "namespacedPoliciesCapabilities": ["oci/*"] } });
        let data = render(Some(&server), &[(PolicyKind::AdmissionPolicy, &policy)]);
        assert_eq!(
            data.policies,
            r#"{"namespaced-team-a-p":{"namespacedName":{"Namespace":"team-a","Name":"p"},"module":"registry://ghcr.io/x/hook-sidecar-policy:v0.1.0","policyMode":"protect","allowedToMutate":false,"settings":{},"hostCapabilities":["oci/*"]}}"#
        );
        // Without the field: every capability.
        let data = render(
            Some(&json!({ "spec": {} })),
            &[(PolicyKind::AdmissionPolicy, &policy)],
        );
        assert!(data.policies.ends_with(r#""hostCapabilities":["*"]}}"#));
    }

    #[test]
    fn groups_as_the_controller_writes_them() {
        let group = json!({
            "metadata": { "name": "g" },
            "spec": {
                "mode": "monitor",
                "policyServer": "default",
                "expression": "a() && b()",
                "message": "m",
                "policies": {
                    "b": { "module": "registry://b:1", "timeoutEvalSeconds": 2,
                           "contextAwareResources": [{"apiVersion": "v1", "kind": "Pod"}] },
                    "a": { "module": "registry://a:1", "settings": {"x": 1} },
                },
            },
        });
        let data = render(None, &[(PolicyKind::ClusterAdmissionPolicyGroup, &group)]);
        assert_eq!(
            data.policies,
            r#"{"clusterwide-group-g":{"namespacedName":{"Namespace":"","Name":"g"},"policyMode":"monitor","policies":{"a":{"module":"registry://a:1","settings":{"x":1},"hostCapabilities":["*"]},"b":{"module":"registry://b:1","settings":null,"contextAwareResources":[{"apiVersion":"v1","kind":"Pod"}],"timeoutEvalSeconds":2,"hostCapabilities":["*"]}},"expression":"a() \u0026\u0026 b()","message":"m"}}"#
        );
        // A namespaced group's members have no context-aware resources.
        let mut namespaced = group.clone();
        namespaced["metadata"]["namespace"] = json!("ns");
        let data = render(None, &[(PolicyKind::AdmissionPolicyGroup, &namespaced)]);
        assert!(data.policies.starts_with(r#"{"namespaced-group-ns-g":"#));
        assert!(!data.policies.contains("contextAwareResources"));
    }

    #[test]
    fn entries_are_sorted_by_unique_name() {
        let (a, b) = (cap("zeta", json!({})), cap("alpha", json!({})));
        let mut namespaced = cap("m", json!({}));
        namespaced["metadata"]["namespace"] = json!("ns");
        let data = render(
            None,
            &[
                (PolicyKind::ClusterAdmissionPolicy, &a),
                (PolicyKind::AdmissionPolicy, &namespaced),
                (PolicyKind::ClusterAdmissionPolicy, &b),
            ],
        );
        let alpha = data.policies.find("clusterwide-alpha").expect("alpha");
        let zeta = data.policies.find("clusterwide-zeta").expect("zeta");
        let ns = data.policies.find("namespaced-ns-m").expect("namespaced");
        assert!(alpha < zeta && zeta < ns, "{}", data.policies);
    }

    #[test]
    fn sources_as_the_controller_writes_them() {
        let server = json!({ "spec": {
            "insecureSources": ["registry.local:5000"],
            "sourceAuthorities": { "z.example": ["PEM2"], "a.example": ["PEM<1>", "PEM3"] },
        }});
        let data = render(Some(&server), &[]);
        assert_eq!(data.policies, "{}");
        assert_eq!(
            data.sources,
            r#"{"insecure_sources":["registry.local:5000"],"source_authorities":{"a.example":[{"type":"Data","data":"PEM\u003c1\u003e"},{"type":"Data","data":"PEM3"}],"z.example":[{"type":"Data","data":"PEM2"}]}}"#
        );
        // Empty lists are left out (omitempty).
        let server = json!({ "spec": { "insecureSources": [], "sourceAuthorities": {} } });
        assert_eq!(render(Some(&server), &[]).sources, "{}");
    }
}
