//! What context-aware mode costs, through the wasm module in the in-repo host (policy-server's
//! lifecycle: a fresh instance per request), against a real kube-apiserver:
//!
//! - a request without sidecars, static settings vs context-aware: no host call, same cost;
//! - a request with sidecars, `allowedImages` vs the Setting read through `get_resource` from the
//!   host's cache (policy-server's common case) and with no cache (one GET per request);
//! - a `configMap` sidecar (the sidecar-shim with a script), `allowConfigMap: true` (no host call)
//!   vs `allowedScripts` (one uncached GET of the ConfigMap with field masks, and the script's
//!   SHA-256), at the VM and at its launcher Pod;
//! - the time from a Setting change to its enforcement with policy-server's 5-second cache.
//!
//! `cargo bench -p policy-host --profile host --bench context_aware` (`make context-aware-bench`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use policy_host::callbacks::{HostCapabilities, KubernetesBackend};
use policy_host::host::{CodeCache, PolicyHost};
use policy_host::kubernetes::{ClusterClient, POLICY_SERVER_CACHE_TIME};
use policy_host::metadata::ContextAwareResource;
use serde_json::{Value, json};
use test_support::*;

const GPU_HOOK: &str = "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0";
const OTHER_HOOK: &str = "registry.example.com/kubevirt-hooks/other:v1";
const ITERATIONS: usize = 2000;
const CHANGES: usize = 10;

fn main() -> Result<()> {
    let module = common::build_module(&repo_root())?;
    let cluster = Cluster::start()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let admin = runtime.block_on(cluster.client())?;
    runtime.block_on(put_setting(&admin, "", GPU_HOOK))?;

    let host = |cache_time: Duration| -> Result<PolicyHost> {
        let client = ClusterClient::from_kubeconfig(&cluster.admin_kubeconfig, cache_time)?;
        Ok(
            PolicyHost::load(&module, Duration::from_secs(2), CodeCache::Disabled)?
                .with_capabilities(HostCapabilities {
                    allowed_resources: [
                        ContextAwareResource {
                            api_version: "harvesterhci.io/v1beta1".into(),
                            kind: "Setting".into(),
                        },
                        ContextAwareResource {
                            api_version: "v1".into(),
                            kind: "ConfigMap".into(),
                        },
                    ]
                    .into(),
                    kubernetes: KubernetesBackend::Cluster(Box::new(client)),
                    ..HostCapabilities::default()
                }),
        )
    };
    let cached = host(POLICY_SERVER_CACHE_TIME)?;
    let uncached = host(Duration::ZERO)?;
    let static_settings = json!({"allowedImages": [GPU_HOOK]});
    let context_aware = json!({"harvesterSetting": {"name": SETTING, "listMode": "union"}});
    let with_sidecar = fixture("vm-create")?;
    let without_sidecar = fixture("vm-create-no-sidecar")?;

    // The README's approved script, in the ConfigMap the launcher-Pod fixture mounts.
    let script = std::fs::read_to_string(repo_root().join("examples/harvester/mmio-aperture.sh"))?;
    let config_map = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "gpu-vm-hooks", "namespace": "default"},
        "immutable": true,
        "data": {"onDefineDomain": script},
    });
    let file = cluster.manifest_file("config-map.json", &[config_map])?;
    cluster.kubectl(&["create", "-f", &file.display().to_string()])?;
    let launcher_pod = fixture("launcher-pod-create-shim-configmap")?;
    let mut script_vm = fixture("vm-create")?;
    script_vm["object"]["spec"]["template"]["metadata"]["annotations"]["hooks.kubevirt.io/hookSidecars"] =
        launcher_pod["object"]["metadata"]["annotations"]["hooks.kubevirt.io/hookSidecars"].clone();
    let shim = "quay.io/kubevirt/sidecar-shim:v1.7.0";
    let any_script =
        json!({"allowedImages": [shim], "sidecarShimImage": shim, "allowConfigMap": true});
    let digest = {
        use sha2::Digest as _;
        (sha2::Sha256::digest(script.as_bytes()).iter())
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    };
    let approved = json!({"allowedImages": [shim], "sidecarShimImage": shim, "allowedScripts": [{"sha256": digest}]});

    println!(
        "{ITERATIONS} evaluations per row through the wasm module, a fresh instance per request; \
         the API server on loopback.\n"
    );
    println!("| request | settings | host call | median µs | p99 µs |");
    println!("|---|---|---|---|---|");
    for (request_name, request, settings_name, settings, host, call) in [
        (
            "no sidecar",
            &without_sidecar,
            "allowedImages",
            &static_settings,
            &cached,
            "none",
        ),
        (
            "no sidecar",
            &without_sidecar,
            "harvesterSetting",
            &context_aware,
            &cached,
            "none",
        ),
        (
            "1 sidecar",
            &with_sidecar,
            "allowedImages",
            &static_settings,
            &cached,
            "none",
        ),
        (
            "1 sidecar",
            &with_sidecar,
            "harvesterSetting",
            &context_aware,
            &cached,
            "get_resource, cached",
        ),
        (
            "1 sidecar",
            &with_sidecar,
            "harvesterSetting",
            &context_aware,
            &uncached,
            "get_resource, GET to the API server",
        ),
        (
            "1 configMap sidecar (VM)",
            &script_vm,
            "allowConfigMap",
            &any_script,
            &cached,
            "none",
        ),
        (
            "1 configMap sidecar (VM)",
            &script_vm,
            "allowedScripts",
            &approved,
            &cached,
            "get_resource of the ConfigMap, masked, uncached; SHA-256",
        ),
        (
            "1 configMap sidecar (launcher Pod)",
            &launcher_pod,
            "allowedScripts",
            &approved,
            &cached,
            "get_resource of the ConfigMap, masked, uncached; SHA-256",
        ),
    ] {
        let (median, p99) = measure(host, request, settings)?;
        println!("| {request_name} | {settings_name} | {call} | {median:.1} | {p99:.1} |");
    }

    // A Setting change until the verdict follows, with policy-server's cache time.
    let mut waits = Vec::with_capacity(CHANGES);
    for change in 0..CHANGES {
        let allow = change % 2 == 1;
        let image = if allow { GPU_HOOK } else { OTHER_HOOK };
        let start = Instant::now();
        runtime.block_on(put_setting(&admin, "", image))?;
        loop {
            if cached.validate(&with_sidecar, &context_aware).allowed == allow {
                break;
            }
            ensure!(
                start.elapsed() < POLICY_SERVER_CACHE_TIME + Duration::from_secs(5),
                "the change was not enforced within the cache time"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        waits.push(start.elapsed());
        // Changes at uneven points of the cache's 5-second cycle.
        std::thread::sleep(Duration::from_millis(700 * (change as u64 % 3)));
    }
    waits.sort();
    println!(
        "\nSetting change → enforced ({CHANGES} changes, {POLICY_SERVER_CACHE_TIME:?} cache): \
         min {:?}, median {:?}, max {:?}",
        waits[0],
        waits[waits.len() / 2],
        waits[waits.len() - 1]
    );
    drop(cluster);
    Ok(())
}

/// Median and p99 of one evaluation (fresh instance per request), in µs.
fn measure(host: &PolicyHost, request: &Value, settings: &Value) -> Result<(f64, f64)> {
    let first = host.validate(request, settings);
    ensure!(
        first.allowed,
        "the measured request must be allowed: {first:?}"
    );
    for _ in 0..ITERATIONS / 10 {
        host.validate(request, settings);
    }
    let mut samples: Vec<f64> = (0..ITERATIONS)
        .map(|_| {
            let start = Instant::now();
            host.validate(request, settings);
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    Ok((at(0.5), at(0.99)))
}

fn fixture(name: &str) -> Result<Value> {
    let text = std::fs::read_to_string(repo_root().join(format!("test_data/{name}.json")))?;
    Ok(serde_json::from_str(&text)?)
}
