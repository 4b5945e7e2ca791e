//! The fresh-instance probe: what one `validate` in a fresh instance costs, in measures that do
//! not depend on what else the machine runs. `policy-host probe` evaluates the request in
//! `--iterations` fresh instances, as policy-server does for every request, inside
//! [`fresh_evaluations`], and prints one JSON line with the minor page faults per evaluation
//! (each page of linear memory a fresh instance touches is one: the kernel's share of the cost).
//! `e2e-tests/probe.sh` runs it under callgrind, collecting inside [`fresh_evaluations`] only, for
//! the instructions per evaluation, host and module apart.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use clap::Args;
use serde_json::json;

use crate::bench::raw_payload;
use crate::host::{CodeCache, PolicyHost};

#[derive(Args)]
pub struct ProbeArgs {
    /// The policy module.
    module: PathBuf,
    /// A bare AdmissionRequest, passed to the module as written.
    #[arg(short = 'r', long)]
    request_path: PathBuf,
    #[arg(long)]
    settings_path: Option<PathBuf>,
    /// Fresh-instance evaluations measured, after one that is not.
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    /// Have wasmtime write /tmp/perf-<pid>.map, naming the module's functions for a profiler.
    #[arg(long)]
    perf_map: bool,
}

pub fn run(args: ProbeArgs) -> Result<()> {
    ensure!(args.iterations > 0, "--iterations must be at least 1");
    let payload = raw_payload(&args.request_path, args.settings_path.as_deref())?;
    let timeout = Duration::from_secs(10);
    let host = if args.perf_map {
        let bytes = std::fs::read(&args.module)
            .with_context(|| format!("reading {}", args.module.display()))?;
        PolicyHost::load_with_perf_map(&bytes, timeout)?
    } else {
        PolicyHost::load(&args.module, timeout, CodeCache::Disabled)?
    };
    // One evaluation outside the measure: the first instance pays for one-time work (the
    // module's memory image, lazily initialised parts of wasmtime).
    let first = host.call_validate(&host.instance()?, &payload)?;
    let faults_before = minor_faults();
    fresh_evaluations(&host, &payload, args.iterations)?;
    let faults = minor_faults()
        .zip(faults_before)
        .map(|(after, before)| (after - before) as f64 / args.iterations as f64);
    let line = json!({
        "module": args.module.display().to_string(),
        "module_bytes": std::fs::metadata(&args.module)?.len(),
        "request": args.request_path.display().to_string(),
        "payload_bytes": payload.len(),
        "accepted": first.accepted,
        "iterations": args.iterations,
        "minor_faults_per_evaluation": faults,
    });
    println!("{line}");
    Ok(())
}

/// The measured evaluations, each in a fresh instance. Not inlined: callgrind collects inside
/// this function only (`--toggle-collect`).
#[inline(never)]
pub fn fresh_evaluations(host: &PolicyHost, payload: &[u8], iterations: usize) -> Result<()> {
    for _ in 0..iterations {
        let instance = host.instance()?;
        std::hint::black_box(host.call_validate(&instance, payload)?);
    }
    Ok(())
}

/// The process's minor page faults so far (Linux: `/proc/self/stat`), `None` elsewhere.
fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces: minflt
    // is the 10th field of the line, the 8th after the name.
    let fields = stat.rsplit_once(')')?.1;
    fields.split_whitespace().nth(7)?.parse().ok()
}
