//! The job under stress, on a real kube-apiserver and etcd on loopback (`make sync-bench`):
//!
//! - large Settings (256 KiB, 512 KiB, 928 KiB of short entries: the largest the PolicyServer's
//!   1 MiB ConfigMap holds, the job refuses larger ones): from the Setting's PATCH sent to
//!   the policy holding the list, and the slowest `/healthz` answer meanwhile (polled every 10 ms);
//! - bursts of 500 and 1000 changes sent back to back: apply requests and writes of the policy,
//!   and the lag from the last PATCH to the policy holding the last list;
//! - kube-apiserver killed (SIGKILL) and started again after several outage lengths (`OUTAGES`,
//!   seconds, default `1,10,30,60`): from the server being ready again to the policy holding a list
//!   changed right then.
//!
//! Prints a markdown table, which `make sync-bench` writes into sync/README.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use kube::Client;
use serde_json::{Value, json};
use test_support::*;

const APPLY_REQUESTS: &str = "hook_sidecar_sync_apply_requests_total";
const WRITES: &str = "hook_sidecar_sync_reconciliations_total{outcome=\"Applied\"}";

fn main() -> Result<()> {
    let outages: Vec<u64> = std::env::var("OUTAGES")
        .unwrap_or_else(|_| "1,10,30,60".into())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let cluster = Cluster::start_for_job(env!("CARGO_BIN_EXE_hook-sidecar-sync"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!("| measured | result |");
    println!("|---|---|");
    runtime.block_on(async {
        let client = cluster.client().await?;
        create_policy(&client, json!({})).await?;
        put_setting(&client, "", "registry.example.com/bench:warm-up").await?;
        let job = cluster.start_job(&["--log-format=json"])?;
        wait_for(&client, 1, Duration::from_secs(30)).await?;

        for size in [256 << 10, 512 << 10, 928 << 10] {
            large_setting(&client, &job, size).await?;
        }
        // Back to a short list before the bursts.
        set_value(&client, "registry.example.com/bench:small").await?;
        wait_for(&client, 1, Duration::from_secs(30)).await?;
        for changes in [500, 1000] {
            burst(&client, &job, changes).await?;
        }
        let (_, peak) = job.memory_kib()?;
        println!(
            "| the job's peak VmRSS after the large Settings and the bursts | {:.1} MiB |",
            peak as f64 / 1024.0
        );
        for seconds in &outages {
            recovery(&cluster, Duration::from_secs(*seconds)).await?;
        }
        job.stop()
    })
}

/// Waits until the policy holds `entries` entries.
async fn wait_for(client: &Client, entries: usize, timeout: Duration) -> Result<()> {
    wait_until(
        &format!("{entries} entries in the policy"),
        timeout,
        || async move {
            Ok(
                (allowed_images(client).await?.as_array().map_or(0, Vec::len) == entries)
                    .then_some(()),
            )
        },
    )
    .await
}

async fn large_setting(client: &Client, job: &Job, bytes: usize) -> Result<()> {
    let mut value = String::with_capacity(bytes + 64);
    let mut entries = 0;
    while value.len() < bytes {
        value.push_str(&format!("registry.example.com/s{bytes}i{entries}:1,"));
        entries += 1;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = Arc::clone(&stop);
        let port = job.metrics_port;
        std::thread::spawn(move || -> Result<Duration> {
            let mut slowest = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let (status, _) = http_get(port, "/healthz", Duration::from_secs(5))?;
                ensure!(status == 200);
                slowest = slowest.max(started.elapsed());
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(slowest)
        })
    };
    let started = Instant::now();
    set_value(client, &value).await?;
    let patched = started.elapsed();
    wait_for(client, entries, Duration::from_secs(60)).await?;
    let applied = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let slowest = prober
        .join()
        .map_err(|_| anyhow::anyhow!("prober panicked"))??;
    println!(
        "| Setting of {} KiB ({entries} entries): PATCH sent → policy holds it | {:.0} ms (the PATCH itself {:.0} ms); slowest `/healthz` meanwhile {:.1} ms |",
        bytes >> 10,
        applied.as_secs_f64() * 1000.0,
        patched.as_secs_f64() * 1000.0,
        slowest.as_secs_f64() * 1000.0,
    );
    Ok(())
}

async fn burst(client: &Client, job: &Job, changes: usize) -> Result<()> {
    let requests = job.metric(APPLY_REQUESTS)?;
    let writes = job.metric(WRITES)?;
    let started = Instant::now();
    for change in 0..changes {
        set_value(
            client,
            &format!("registry.example.com/burst{changes}:{change}"),
        )
        .await?;
    }
    let sent = started.elapsed();
    let last = json!([format!(
        "registry.example.com/burst{changes}:{}",
        changes - 1
    )]);
    wait_until("the last list", Duration::from_secs(60), || {
        let last = last.clone();
        async move { Ok((allowed_images(client).await? == last).then_some(())) }
    })
    .await?;
    let lag = started.elapsed() - sent;
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "| burst of {changes} changes (sent in {:.2} s): apply requests / policy writes; last PATCH returned → policy holds the last list | {} / {}; {:.0} ms |",
        sent.as_secs_f64(),
        job.metric(APPLY_REQUESTS)? - requests,
        job.metric(WRITES)? - writes,
        lag.as_secs_f64() * 1000.0,
    );
    Ok(())
}

async fn recovery(cluster: &Cluster, outage: Duration) -> Result<()> {
    cluster.crash_apiserver(outage)?;
    let ready = Instant::now();
    let client = cluster.client().await?;
    let image = format!("registry.example.com/recovered:{}", outage.as_secs());
    set_value(&client, &image).await?;
    let expected: Value = json!([image]);
    wait_until("convergence", Duration::from_secs(120), || {
        let (client, expected) = (client.clone(), expected.clone());
        async move { Ok((allowed_images(&client).await? == expected).then_some(())) }
    })
    .await?;
    println!(
        "| kube-apiserver killed, down {} s: server ready → policy holds a list changed then | {:.2} s |",
        outage.as_secs(),
        ready.elapsed().as_secs_f64()
    );
    Ok(())
}
