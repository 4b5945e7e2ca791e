//! The policy metadata kwctl embeds in a module (`kwctl annotate`): a wasm custom section
//! `io.kubewarden.metadata` holding the metadata as JSON. The host reads its
//! `contextAwareResources`, which `--allow-context-aware` grants, as kwctl does.

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const METADATA_SECTION: &str = "io.kubewarden.metadata";
const WASM_HEADER_LEN: usize = 8;
const CUSTOM_SECTION_ID: u8 = 0;

/// A kind the policy may read (`contextAwareResources` entry).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextAwareResource {
    pub api_version: String,
    pub kind: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    #[serde(default)]
    context_aware_resources: BTreeSet<ContextAwareResource>,
}

/// The module's metadata, if it is annotated.
pub fn read(module: &[u8]) -> Result<Option<Value>> {
    for (name, data) in custom_sections(module)? {
        if name == METADATA_SECTION.as_bytes() {
            let metadata = serde_json::from_slice(data)
                .with_context(|| format!("the {METADATA_SECTION} section is not JSON"))?;
            return Ok(Some(metadata));
        }
    }
    Ok(None)
}

/// The kinds an annotated module declares; `None` for a module without metadata.
pub fn context_aware_resources(module: &[u8]) -> Result<Option<BTreeSet<ContextAwareResource>>> {
    read(module)?
        .map(|metadata| {
            serde_json::from_value::<Metadata>(metadata)
                .map(|m| m.context_aware_resources)
                .context("reading contextAwareResources from the module's metadata")
        })
        .transpose()
}

/// The annotation kwctl sets to the usage file's text (`kwctl annotate -u README.md`).
pub const USAGE_ANNOTATION: &str = "io.kubewarden.policy.usage";

/// The module with `metadata` (a policy-metadata.yml, as JSON) in its metadata section, as
/// `kwctl annotate` writes it: with the protocol version the module speaks, the defaults kwctl's
/// `Metadata` type fills in (policy-evaluator's `policy_metadata.rs`), and `usage`, when given, as
/// the `io.kubewarden.policy.usage` annotation. kwctl also records its own version
/// (`io.kubewarden.kwctl`), which this host, not being kwctl, does not; `hack/verify-annotate.sh`
/// checks that the rest is what kwctl writes.
pub fn annotate(module: &[u8], mut metadata: Value, usage: Option<&str>) -> Result<Vec<u8>> {
    ensure!(read(module)?.is_none(), "the module is already annotated");
    let Value::Object(fields) = &mut metadata else {
        bail!("the metadata is not a mapping");
    };
    for (key, default) in [
        ("protocolVersion", Value::String("v1".into())),
        ("backgroundAudit", Value::Bool(true)),
        ("executionMode", Value::String("kubewarden-wapc".into())),
        ("policyType", Value::String("kubernetes".into())),
        ("contextAwareResources", Value::Array(Vec::new())),
    ] {
        fields.entry(key).or_insert(default);
    }
    if let Some(usage) = usage {
        let annotations = fields
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        let Value::Object(annotations) = annotations else {
            bail!("the metadata's annotations are not a mapping");
        };
        annotations.insert(USAGE_ANNOTATION.into(), Value::String(usage.into()));
    }
    let json = serde_json::to_vec(&metadata)?;
    let mut content = Vec::new();
    leb128(&mut content, METADATA_SECTION.len());
    content.extend_from_slice(METADATA_SECTION.as_bytes());
    content.extend_from_slice(&json);
    let mut annotated = module.to_vec();
    annotated.push(CUSTOM_SECTION_ID);
    leb128(&mut annotated, content.len());
    annotated.extend_from_slice(&content);
    Ok(annotated)
}

/// The (name, data) of every custom section.
fn custom_sections(module: &[u8]) -> Result<Vec<(&[u8], &[u8])>> {
    ensure!(
        module.len() >= WASM_HEADER_LEN && module.starts_with(b"\0asm"),
        "not a wasm module"
    );
    let mut sections = Vec::new();
    let mut rest = &module[WASM_HEADER_LEN..];
    while let Some((&id, after_id)) = rest.split_first() {
        let (size, after_size) = read_leb128(after_id)?;
        ensure!(after_size.len() >= size, "truncated wasm section");
        let (content, next) = after_size.split_at(size);
        if id == CUSTOM_SECTION_ID {
            let (name_len, after_name_len) = read_leb128(content)?;
            ensure!(
                after_name_len.len() >= name_len,
                "truncated custom section name"
            );
            sections.push(after_name_len.split_at(name_len));
        }
        rest = next;
    }
    Ok(sections)
}

fn leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_leb128(bytes: &[u8]) -> Result<(usize, &[u8])> {
    let mut value = 0usize;
    for (index, byte) in bytes.iter().enumerate().take(5) {
        value |= usize::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok((value, &bytes[index + 1..]));
        }
    }
    bail!("malformed LEB128 in the wasm module")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The smallest module: the header and one (type) section.
    const MODULE: &[u8] = b"\0asm\x01\0\0\0\x01\x01\0";

    #[test]
    fn annotation_round_trips() {
        assert_eq!(context_aware_resources(MODULE).expect("module"), None);
        let metadata = json!({
            "rules": [],
            "contextAwareResources": [{"apiVersion": "harvesterhci.io/v1beta1", "kind": "Setting"}],
            "annotations": {"io.kubewarden.policy.usage": "x".repeat(300)},
        });
        let annotated = annotate(MODULE, metadata, None).expect("annotated");
        let resources = context_aware_resources(&annotated)
            .expect("module")
            .expect("annotated");
        assert_eq!(
            resources.into_iter().collect::<Vec<_>>(),
            [ContextAwareResource {
                api_version: "harvesterhci.io/v1beta1".into(),
                kind: "Setting".into()
            }]
        );
        assert_eq!(
            read(&annotated).expect("module").expect("annotated")["protocolVersion"],
            "v1"
        );
        assert!(
            annotate(&annotated, json!({}), None).is_err(),
            "annotated twice"
        );
    }

    /// `-u README.md` replaces the metadata's usage text, and kwctl's defaults are filled in.
    #[test]
    fn usage_and_defaults_are_written_as_kwctl_writes_them() {
        let metadata = json!({
            "rules": [],
            "mutating": false,
            "annotations": {USAGE_ANNOTATION: "short", "io.kubewarden.policy.title": "t"},
        });
        let annotated = annotate(MODULE, metadata, Some("# the README")).expect("annotated");
        let written = read(&annotated).expect("module").expect("annotated");
        assert_eq!(written["annotations"][USAGE_ANNOTATION], "# the README");
        assert_eq!(written["annotations"]["io.kubewarden.policy.title"], "t");
        assert_eq!(written["policyType"], "kubernetes");
        assert_eq!(written["backgroundAudit"], true);
        assert_eq!(written["executionMode"], "kubewarden-wapc");
        assert_eq!(written["contextAwareResources"], json!([]));

        let not_a_map = json!({"rules": [], "annotations": "x"});
        assert!(annotate(MODULE, not_a_map, Some("u")).is_err());
    }

    #[test]
    fn garbage_is_not_a_module() {
        assert!(context_aware_resources(b"not wasm").is_err());
        assert!(context_aware_resources(b"\0asm\x01\0\0\0\x00\x7f").is_err());
    }
}
