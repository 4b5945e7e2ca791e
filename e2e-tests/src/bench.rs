//! Per-request time of `validate`, in policy-server's mode (a fresh instance rehydrated for every
//! request) and warm (one instance called again and again, what `kwctl bench` shows).
//! Prints one JSON line per run; `e2e-tests/bench.sh` turns them into the README's table.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use clap::Args;
use serde_json::json;

use crate::admission::{read_request, read_settings};
use crate::host::{validate_payload, CodeCache, PolicyHost};

#[derive(Args)]
pub struct BenchArgs {
    /// The policy module.
    module: PathBuf,
    #[arg(short = 'r', long)]
    request_path: PathBuf,
    #[arg(long)]
    settings_path: Option<PathBuf>,
    /// Measured evaluations per mode.
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let request = read_request(&args.request_path)?;
    let settings = read_settings(None, args.settings_path.as_deref())?;
    let payload = validate_payload(&request, &settings)?;
    let host = PolicyHost::load(&args.module, Duration::from_secs(2), CodeCache::Disabled)?;

    // Both modes must evaluate successfully, or the numbers would measure an error path.
    let instance = host.instance()?;
    let first = host.call_validate(&instance, &payload)?;
    let warmup = args.iterations / 10 + 1;

    let fresh = measure(warmup, args.iterations, || {
        let instance = host.instance()?;
        host.call_validate(&instance, &payload).map(drop)
    })?;
    let warm = measure(warmup, args.iterations, || {
        host.call_validate(&instance, &payload).map(drop)
    })?;
    let line = json!({
        "module": args.module.display().to_string(),
        "module_bytes": std::fs::metadata(&args.module)?.len(),
        "request": args.request_path.display().to_string(),
        "payload_bytes": payload.len(),
        "accepted": first.accepted,
        "iterations": args.iterations,
        "fresh_us": fresh,
        "warm_us": warm,
    });
    println!("{line}");
    Ok(())
}

/// Median, p99 and mean of `iterations` timed runs, after `warmup` untimed ones, in µs.
fn measure(
    warmup: usize,
    iterations: usize,
    mut evaluate: impl FnMut() -> Result<()>,
) -> Result<serde_json::Value> {
    ensure!(iterations > 0, "--iterations must be at least 1");
    for _ in 0..warmup {
        evaluate()?;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        evaluate()?;
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    let percentile = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    Ok(json!({
        "median": round(percentile(0.5)),
        "p99": round(percentile(0.99)),
        "mean": round(mean),
    }))
}

fn round(us: f64) -> f64 {
    (us * 10.0).round() / 10.0
}
