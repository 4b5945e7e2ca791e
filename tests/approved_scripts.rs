//! Approved scripts (`allowedScripts`) natively, through the whole `validate` payload, with the
//! ConfigMaps given by a fake host that counts its lookups: when a ConfigMap is read (once per
//! ConfigMap and key; never for an UPDATE that leaves the sidecars as they were), at the VM and at
//! its launcher Pod. The same through the wasm module and a real kube-apiserver:
//! policy-host/tests/context_aware.rs; through kwctl's sessions: e2e-tests/approved-scripts.bats.

use std::cell::RefCell;

use hook_sidecar_policy::{ConfigMapKey, Host, SettingObject, sha256_hex};
use hook_sidecar_policy::{Verdict, summary, validate_payload_with};
use rstest::rstest;
use serde_json::{Value, json};

const SHIM: &str = "quay.io/kubevirt/sidecar-shim:v1.7.0";
const SIDECARS: &str = "hooks.kubevirt.io/hookSidecars";

/// The ConfigMaps of namespace `default`, and the lookups made, in order.
struct Cluster {
    config_maps: Vec<(&'static str, ConfigMapKey)>,
    lookups: RefCell<Vec<String>>,
}

impl Host for Cluster {
    fn get_setting(&self, _: &str) -> Result<Option<SettingObject>, String> {
        Err("no Setting in these tests".to_owned())
    }

    fn get_config_map(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<Option<ConfigMapKey>, String> {
        self.lookups
            .borrow_mut()
            .push(format!("{namespace}/{name}/{key}"));
        Ok((self.config_maps.iter())
            .find(|(n, _)| *n == name)
            .map(|(_, found)| found.clone()))
    }
}

fn script() -> String {
    std::fs::read_to_string(format!(
        "{}/examples/harvester/mmio-aperture.sh",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("the README's script")
}

fn cluster(script: &str) -> Cluster {
    Cluster {
        config_maps: vec![(
            "gpu-vm-hooks",
            ConfigMapKey {
                immutable: true,
                data: Some(script.to_owned()),
                binary_data: None,
            },
        )],
        lookups: RefCell::new(Vec::new()),
    }
}

fn settings() -> Value {
    json!({
        "allowedImages": [SHIM],
        "sidecarShimImage": SHIM,
        "allowedScripts": [{"sha256": sha256_hex(script().as_bytes()), "description": "GPU MMIO aperture"}],
    })
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/test_data/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON")
}

/// The sidecars KubeVirt rendered the launcher-Pod fixture from: the shim with the ConfigMap.
fn shim_sidecars() -> Value {
    fixture("launcher-pod-create-shim-configmap")["object"]["metadata"]["annotations"][SIDECARS]
        .clone()
}

fn evaluate(request: &Value, cluster: &Cluster) -> Verdict {
    let payload = json!({"request": request, "settings": settings()});
    validate_payload_with(&serde_json::to_vec(&payload).expect("JSON"), cluster)
}

fn set_sidecars(request: &mut Value, object: &str, sidecars: &Value) {
    request[object]["spec"]["template"]["metadata"]["annotations"][SIDECARS] = sidecars.clone();
}

#[rstest]
#[case::vm("vm-create")]
#[case::launcher_pod("launcher-pod-create-shim-configmap")]
fn the_approved_script_is_read_once_and_allowed(#[case] name: &str) {
    let mut request = fixture(name);
    if name == "vm-create" {
        set_sidecars(&mut request, "object", &shim_sidecars());
    }
    let cluster = cluster(&script());
    assert_eq!(evaluate(&request, &cluster), Verdict::default());
    assert_eq!(
        *cluster.lookups.borrow(),
        ["default/gpu-vm-hooks/onDefineDomain"]
    );
}

#[test]
fn two_sidecars_of_one_config_map_and_key_make_one_lookup() {
    let entry: Value =
        serde_json::from_str::<Vec<Value>>(shim_sidecars().as_str().expect("annotation text"))
            .expect("JSON")
            .remove(0);
    let mut request = fixture("vm-create");
    set_sidecars(
        &mut request,
        "object",
        &json!(json!([entry, entry]).to_string()),
    );
    let cluster = cluster(&script());
    assert_eq!(evaluate(&request, &cluster), Verdict::default());
    assert_eq!(cluster.lookups.borrow().len(), 1);
}

/// Done when: a script that differs by one byte is refused at the VM and again at its Pod.
#[rstest]
#[case::crlf(script().replace('\n', "\r\n"))]
#[case::one_newline_more(format!("{}\n", script()))]
#[case::one_byte_changed(script().replace("65536", "65537"))]
fn one_byte_off_is_refused_at_the_vm_and_its_pod(#[case] other: String) {
    let mut vm = fixture("vm-create");
    set_sidecars(&mut vm, "object", &shim_sidecars());
    for request in [vm, fixture("launcher-pod-create-shim-configmap")] {
        let verdict = evaluate(&request, &cluster(&other));
        let message = summary(&verdict.violations);
        let expected = format!(
            "configMap \"gpu-vm-hooks\" (namespace \"default\"), key \"onDefineDomain\": the script in data (sha256 {}) is not in allowedScripts",
            sha256_hex(other.as_bytes())
        );
        assert!(message.contains(&expected), "{expected:?} not in {message}");
    }
}

/// An UPDATE that leaves the sidecars as they were reads no ConfigMap (a VMI's status update, a
/// VM's runStrategy): the ConfigMap here would be refused, and is not even asked for.
#[test]
fn an_unchanged_update_reads_no_config_map() {
    let mut update = fixture("vm-update-unchanged");
    for object in ["object", "oldObject"] {
        set_sidecars(&mut update, object, &shim_sidecars());
    }
    let cluster = cluster("#!/bin/sh\nexec evil\n");
    assert_eq!(evaluate(&update, &cluster), Verdict::default());
    assert!(cluster.lookups.borrow().is_empty());
    // Another entry added beside it changes the site: the ConfigMap is read, and refused.
    let mut entries: Vec<Value> =
        serde_json::from_str(shim_sidecars().as_str().expect("text")).expect("JSON");
    entries.push(entries[0].clone());
    set_sidecars(&mut update, "object", &json!(json!(entries).to_string()));
    let verdict = evaluate(&update, &cluster);
    assert!(
        summary(&verdict.violations).contains("is not in allowedScripts"),
        "{verdict:?}"
    );
    assert_eq!(cluster.lookups.borrow().len(), 1);
}

#[test]
fn an_unchanged_launcher_pod_update_reads_no_config_map() {
    let create = fixture("launcher-pod-create-shim-configmap");
    let mut update = create.clone();
    update["operation"] = json!("UPDATE");
    update["oldObject"] = create["object"].clone();
    let cluster = cluster("#!/bin/sh\nexec evil\n");
    assert_eq!(evaluate(&update, &cluster), Verdict::default());
    assert!(cluster.lookups.borrow().is_empty());
}
