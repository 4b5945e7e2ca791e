//! Propagation latency, from a change of the Setting to the policy's settings updated, over
//! CHANGES changes (default 100) sent PAUSE_MS apart (default 0: each as soon as the previous one
//! arrived, a burst the job coalesces; 200: single edits), and the job's resident memory; on a
//! real kube-apiserver and etcd on loopback. Prints one row of the table that `make sync-bench`
//! writes into sync/README.md (sync/benches/propagation.sh).
//!
//! Each sample starts before the Setting's PATCH is sent and ends when this process's own watch
//! of the ClusterAdmissionPolicy delivers the new list: the job's watch, its validation, its
//! apply and a watch delivery back are all inside it.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use futures::TryStreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use test_support::*;

fn main() -> Result<()> {
    let changes: usize = std::env::var("CHANGES")
        .ok()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100);
    let pause = Duration::from_millis(
        std::env::var("PAUSE_MS")
            .ok()
            .map(|n| n.parse())
            .transpose()?
            .unwrap_or(0),
    );
    let cluster = Cluster::start_for_job(env!("CARGO_BIN_EXE_hook-sidecar-sync"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure(&cluster, changes, pause))
}

async fn measure(cluster: &Cluster, changes: usize, pause: Duration) -> Result<()> {
    let client = cluster.client().await?;
    create_policy(&client, json!({})).await?;
    put_setting(&client, "", "registry.example.com/bench:warm-up").await?;
    let job = cluster.start_job(&["--log-format=json"])?;

    let by_name = watcher::Config::default().fields(&format!("metadata.name={POLICY}"));
    let mut policies = std::pin::pin!(watcher(policies_api(&client), by_name).applied_objects());
    let policy_events = std::cell::Cell::new(0_usize);
    let mut next_list = async || -> Result<serde_json::Value> {
        let policy = policies
            .try_next()
            .await?
            .ok_or_else(|| anyhow!("the watch ended"))?;
        policy_events.set(policy_events.get() + 1);
        Ok(policy.data["spec"]["settings"]["allowedImages"].clone())
    };
    while next_list().await? != json!(["registry.example.com/bench:warm-up"]) {}
    let (rss_before, _) = job.memory_kib()?;
    let events_before = policy_events.get();

    let mut propagation = Vec::with_capacity(changes);
    let mut write = Vec::with_capacity(changes);
    for change in 0..changes {
        tokio::time::sleep(pause).await;
        let image = format!("registry.example.com/bench:{change}");
        let started = Instant::now();
        set_value(&client, &image).await?;
        write.push(started.elapsed());
        let expected = json!([image]);
        tokio::time::timeout(Duration::from_secs(30), async {
            while next_list().await? != expected {}
            anyhow::Ok(())
        })
        .await
        .context("no propagation within 30 s")??;
        propagation.push(started.elapsed());
    }
    let writes = policy_events.get() - events_before;
    let (rss_after, peak) = job.memory_kib()?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rss_idle, _) = job.memory_kib()?;
    let applied = job.metric("hook_sidecar_sync_reconciliations_total{outcome=\"Applied\"}")?;
    job.stop()?;

    // One row of the table sync/benches/propagation.sh prints (sync/README.md).
    let run = if pause.is_zero() {
        "back to back (each sent when the previous arrived)".to_owned()
    } else {
        format!("single edits, {} ms apart", pause.as_millis())
    };
    println!(
        "| {run} | {changes} | {} | {} | {applied} / {writes} | {rss_before} / {rss_after} / {rss_idle} / {peak} |",
        summary(&mut propagation),
        summary(&mut write),
    );
    Ok(())
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    format!(
        "{} / {} / {} / {}",
        ms(at(0.50)),
        ms(at(0.90)),
        ms(at(0.99)),
        ms(at(1.0))
    )
}
