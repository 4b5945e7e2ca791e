//! Per-request time of `validate`, in policy-server's mode (a fresh instance rehydrated for every
//! request) and warm (one instance called again and again, what `kwctl bench` shows).
//! Prints one JSON line per run; `e2e-tests/bench.sh` turns them into the tables of
//! docs/performance.md.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use clap::Args;
use serde_json::json;

use crate::admission::{ValidationResponse, read_settings};
use crate::host::{CodeCache, PolicyHost};
use wasmtime_provider::wasmtime::{Engine, Module};

#[derive(Args)]
pub struct BenchArgs {
    /// The policy module.
    module: PathBuf,
    /// A bare AdmissionRequest, passed to the module as written.
    #[arg(short = 'r', long)]
    request_path: PathBuf,
    #[arg(long)]
    settings_path: Option<PathBuf>,
    /// Measured evaluations per mode.
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    /// kwctl's sources file: with it, the module's `oci/v2/verify` calls are answered (feature
    /// `sigstore`), the registries it names reached over plain HTTP.
    #[cfg(feature = "sigstore")]
    #[arg(long)]
    sources_path: Option<PathBuf>,
    /// How long a verification is kept, in seconds: 60 as in policy-server (each request after
    /// the first is answered from the cache), 0 for a verification of every request.
    #[cfg(feature = "sigstore")]
    #[arg(long, default_value_t = 60)]
    verification_cache_seconds: u64,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let payload = raw_payload(&args.request_path, args.settings_path.as_deref())?;
    let host = PolicyHost::load(&args.module, Duration::from_secs(2), CodeCache::Disabled)?;
    #[cfg(feature = "sigstore")]
    let host = match &args.sources_path {
        Some(sources) => {
            let verifier = crate::callbacks::sigstore_verifier(Some(sources))?
                .with_cache_time(Duration::from_secs(args.verification_cache_seconds));
            host.with_capabilities(crate::callbacks::HostCapabilities {
                sigstore: Some(verifier),
                ..Default::default()
            })
        }
        None => host,
    };

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
    // The memory search loads the module again without host capabilities: not for a request
    // whose verdict depends on a verification.
    #[cfg(feature = "sigstore")]
    let verifying = args.sources_path.is_some();
    #[cfg(not(feature = "sigstore"))]
    let verifying = false;
    let peak_memory_bytes = match verifying {
        true => None,
        false => Some(peak_memory(
            &std::fs::read(&args.module)?,
            &payload,
            &first,
        )?),
    };
    let line = json!({
        "module": args.module.display().to_string(),
        "module_bytes": std::fs::metadata(&args.module)?.len(),
        "request": args.request_path.display().to_string(),
        "settings": args
            .settings_path
            .as_ref()
            .map(|path| path.display().to_string())
            .unwrap_or_default(),
        "payload_bytes": payload.len(),
        "accepted": first.accepted,
        "message_bytes": first.message.as_ref().map_or(0, String::len),
        "iterations": args.iterations,
        "fresh_us": fresh,
        "warm_us": warm,
        "peak_memory_bytes": peak_memory_bytes,
    });
    println!("{line}");
    Ok(())
}

/// The `validate` payload around the request, compact as the API server sends it. A request
/// nested deeper than serde_json's recursion limit is passed as written, as the API server would
/// still send it.
pub(crate) fn raw_payload(request_path: &Path, settings_path: Option<&Path>) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(request_path)
        .with_context(|| format!("reading {}", request_path.display()))?;
    let request = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(request) => request.to_string(),
        Err(_) => text.trim().to_owned(),
    };
    let settings = read_settings(None, settings_path)?;
    Ok(format!(r#"{{"request":{request},"settings":{settings}}}"#).into_bytes())
}

/// The wasm page: linear memory grows by whole pages.
const WASM_PAGE: u64 = 64 * 1024;
/// Where the search for the peak stops: four times the 64 MiB target.
const MEMORY_SEARCH_MAX: u64 = 256 * 1024 * 1024;

/// The peak linear memory of a fresh instance evaluating `payload`: the smallest memory limit, in
/// wasm pages, under which the module still gives the verdict it gives without limit. Wasm memory
/// only grows, and the module asks for more exactly when it needs more, so that limit (at least
/// the memory it declares to start with) is its peak. Found by bisection, each probe a module compiled for its limit (wasmtime sizes the
/// memory reservation at compile time), so it takes some seconds.
fn peak_memory(module: &[u8], payload: &[u8], verdict: &ValidationResponse) -> Result<u64> {
    let gives_the_verdict = |limit: u64| -> Result<bool> {
        let host = PolicyHost::load_with_memory_limit(module, Duration::from_secs(10), limit)?;
        let outcome = host
            .instance()
            .and_then(|instance| host.call_validate(&instance, payload));
        Ok(outcome.is_ok_and(|response| {
            response.accepted == verdict.accepted && response.message == verdict.message
        }))
    };
    // Below the module's declared minimum, wasmtime gives the minimum anyway: the search starts
    // there.
    let initial = initial_memory_pages(module)?;
    let (mut too_small, mut enough) = (initial.saturating_sub(1), MEMORY_SEARCH_MAX / WASM_PAGE);
    ensure!(
        gives_the_verdict(enough * WASM_PAGE)?,
        "the module needs more than {} MiB",
        MEMORY_SEARCH_MAX >> 20
    );
    while enough - too_small > 1 {
        let pages = (too_small + enough) / 2;
        if gives_the_verdict(pages * WASM_PAGE)? {
            enough = pages;
        } else {
            too_small = pages;
        }
    }
    Ok(enough * WASM_PAGE)
}

/// The pages of linear memory the module declares it starts with (data, stack, heap base).
fn initial_memory_pages(module: &[u8]) -> Result<u64> {
    let module = Module::new(&Engine::default(), module)
        .map_err(|e| anyhow!("reading the module's memory: {e}"))?;
    let pages = module
        .exports()
        .find_map(|export| export.ty().memory().map(|memory| memory.minimum()));
    pages.context("the module exports no memory")
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
