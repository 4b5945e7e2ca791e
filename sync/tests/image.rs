//! The sync job's OCI image as `make sync-image` writes it (an OCI layout named by
//! `SYNC_IMAGE_LAYOUT`): its config, its one layer, and the binary from that layer run as the job
//! against a real kube-apiserver. `make image-tests` builds the image and runs this; without
//! `SYNC_IMAGE_LAYOUT` the tests are reported as ignored.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, ensure};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{Value, json};
use test_support::*;

const ENTRYPOINT: &str = "/usr/local/bin/hook-sidecar-sync";

/// An OCI image layout: `index.json` -> manifest -> config and layers, all blobs by digest.
struct Layout {
    dir: PathBuf,
    manifest: Value,
    config: Value,
}

impl Layout {
    fn open(dir: &Path) -> Result<Self> {
        let index: Value = read_json(&dir.join("index.json"))?;
        ensure!(index["schemaVersion"] == 2, "index.json: {index}");
        let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
        ensure!(
            manifests.len() == 1,
            "one image expected in {}: {index}",
            dir.display()
        );
        let manifest: Value = read_json(&blob(dir, &manifests[0]["digest"])?)?;
        ensure!(
            manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json",
            "not an OCI manifest: {manifest}"
        );
        let config = read_json(&blob(dir, &manifest["config"]["digest"])?)?;
        Ok(Self {
            dir: dir.to_owned(),
            manifest,
            config,
        })
    }

    fn layers(&self) -> Result<Vec<PathBuf>> {
        self.manifest["layers"]
            .as_array()
            .ok_or_else(|| anyhow!("no layers: {}", self.manifest))?
            .iter()
            .map(|layer| blob(&self.dir, &layer["digest"]))
            .collect()
    }
}

fn blob(dir: &Path, digest: &Value) -> Result<PathBuf> {
    let digest = digest.as_str().ok_or_else(|| anyhow!("no digest"))?;
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| anyhow!("bad digest {digest}"))?;
    Ok(dir.join("blobs").join(algorithm).join(hex))
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_slice(&text)?)
}

fn tar(args: &[&str], archive: &Path) -> Result<String> {
    let output = Command::new("tar").args(args).arg(archive).output()?;
    ensure!(
        output.status.success(),
        "tar {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

fn config_is_distroless(layout: &Layout) -> Result<()> {
    let config = &layout.config;
    ensure!(
        config["os"] == "linux" && config["architecture"].is_string(),
        "{config}"
    );
    let run = &config["config"];
    ensure!(run["User"] == "65532:65532", "User: {}", run["User"]);
    ensure!(
        run["Entrypoint"] == json!([ENTRYPOINT]),
        "Entrypoint: {}",
        run["Entrypoint"]
    );
    ensure!(run["Cmd"].is_null(), "Cmd: {}", run["Cmd"]);
    ensure!(
        run["ExposedPorts"] == json!({ "8080/tcp": {} }),
        "ExposedPorts: {}",
        run["ExposedPorts"]
    );

    // One layer, holding the binary and its directories only: no shell, no libc, nothing else.
    let layers = layout.layers()?;
    ensure!(layers.len() == 1, "{} layers", layers.len());
    let mut entries: Vec<String> = tar(&["-tzf"], &layers[0])?
        .lines()
        .map(|entry| entry.trim_end_matches('/').to_owned())
        .collect();
    entries.sort();
    ensure!(
        entries
            == [
                "usr",
                "usr/local",
                "usr/local/bin",
                "usr/local/bin/hook-sidecar-sync"
            ],
        "layer entries: {entries:?}"
    );
    let listing = tar(&["-tvzf"], &layers[0])?;
    let binary = listing
        .lines()
        .find(|line| line.ends_with("hook-sidecar-sync"))
        .ok_or_else(|| anyhow!("no binary in {listing}"))?;
    ensure!(
        binary.starts_with("-rwxr-xr-x 0/0"),
        "binary mode and owner: {binary}"
    );
    Ok(())
}

/// The binary from the layer: statically linked (it runs with no libc in the image), and the job
/// it runs mirrors the Setting into the policy on a real API server.
async fn binary_runs_as_the_job(layout: &Layout, cluster: &Cluster) -> Result<()> {
    let dir = tempdir()?;
    let output = Command::new("tar")
        .args(["-xzf"])
        .arg(&layout.layers()?[0])
        .arg("-C")
        .arg(&dir)
        .output()?;
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let binary = dir.join(ENTRYPOINT.trim_start_matches('/'));
    let file = Command::new("file").arg(&binary).output();
    if let Ok(file) = file {
        let description = String::from_utf8_lossy(&file.stdout);
        ensure!(
            description.contains("statically linked") || description.contains("static-pie"),
            "not a static binary: {description}"
        );
    }

    let client = cluster.client().await?;
    reset(&client).await?;
    create_policy(&client, json!({})).await?;
    put_setting(&client, "", "registry.example.com/from-the-image:1").await?;
    let job = cluster.start_job_binary(&binary, &[])?;
    wait_until(
        "allowedImages from the image's binary",
        Duration::from_secs(20),
        || async {
            Ok(
                (allowed_images(&client).await?
                    == json!(["registry.example.com/from-the-image:1"]))
                .then_some(()),
            )
        },
    )
    .await?;
    job.stop()
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("hook-sidecar-sync-image-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn main() {
    let args = Arguments::from_args();
    let layout_dir = std::env::var_os("SYNC_IMAGE_LAYOUT").map(PathBuf::from);
    let cluster: Arc<OnceLock<Result<Cluster, String>>> = Arc::new(OnceLock::new());
    let ignored = layout_dir.is_none();
    let open = move || -> Result<Layout, Failed> {
        let dir = layout_dir
            .clone()
            .ok_or("SYNC_IMAGE_LAYOUT is not set: run make image-tests")?;
        Layout::open(&dir).map_err(|error| format!("{error:#}").into())
    };
    let open_for_run = open.clone();
    let trials = vec![
        Trial::test("config_is_distroless", move || {
            config_is_distroless(&open()?).map_err(|error| format!("{error:#}").into())
        })
        .with_ignored_flag(ignored),
        Trial::test("binary_runs_as_the_job", {
            let cluster = Arc::clone(&cluster);
            move || {
                let layout = open_for_run()?;
                let cluster = cluster
                    .get_or_init(|| Cluster::start().map_err(|error| format!("{error:#}")))
                    .as_ref()
                    .map_err(|error| {
                        Failed::from(format!("cannot start the test cluster: {error}"))
                    })?;
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(binary_runs_as_the_job(&layout, cluster))
                    .map_err(|error| format!("{error:#}\n{}", cluster.job_logs_tail()).into())
            }
        })
        .with_ignored_flag(ignored),
    ];
    let conclusion = libtest_mimic::run(&args, trials);
    drop(
        Arc::try_unwrap(cluster)
            .ok()
            .and_then(|cell| cell.into_inner()),
    );
    conclusion.exit();
}
