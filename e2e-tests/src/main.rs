//! A stand-in for `kwctl run` and for policy-server's way of running a policy, for machines where
//! neither can be installed: it runs a Kubewarden waPC module on wasmtime with policy-server's
//! calling convention and lifecycle (one compiled module, a fresh instance per evaluation, an
//! epoch deadline), and prints what `kwctl run` prints.

mod admission;
mod bench;
mod callbacks;
mod host;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::admission::{read_request, read_settings};
use crate::host::{CodeCache, PolicyHost, SettingsVerdict};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluates one request, as `kwctl run` does.
    Run(RunArgs),
    /// Measures per-request time with a fresh instance per request and with one warm instance.
    Bench(bench::BenchArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The policy module: a path or a `file://` URI.
    module: String,
    /// The request: a bare AdmissionRequest or a whole AdmissionReview; `-` reads stdin.
    #[arg(short = 'r', long)]
    request_path: PathBuf,
    /// The settings as a JSON document.
    #[arg(short = 's', long, conflicts_with = "settings_path")]
    settings_json: Option<String>,
    /// A file with the settings (JSON).
    #[arg(long)]
    settings_path: Option<PathBuf>,
    /// Evaluation deadline, like policy-server's `--policy-timeout` (seconds).
    #[arg(long, default_value_t = 2.0)]
    timeout: f64,
    /// Compile the module every time instead of keeping its machine code in wasmtime's cache.
    #[arg(long)]
    disable_wasmtime_cache: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run(args),
        Command::Bench(args) => bench::run(args).map(|()| ExitCode::SUCCESS),
    };
    outcome.unwrap_or_else(|e| {
        eprintln!("Error: {e:#}");
        ExitCode::FAILURE
    })
}

fn run(args: RunArgs) -> Result<ExitCode> {
    let module = module_path(&args.module);
    let settings = read_settings(args.settings_json.as_deref(), args.settings_path.as_deref())?;
    let request = read_request(&args.request_path)?;
    let code_cache = if args.disable_wasmtime_cache {
        CodeCache::Disabled
    } else {
        CodeCache::Enabled
    };
    let host = PolicyHost::load(&module, Duration::from_secs_f64(args.timeout), code_cache)?;
    host.check_protocol_version()?;
    if let SettingsVerdict::Invalid(message) = host.validate_settings(&settings)? {
        eprintln!("Error: Provided settings are not valid: {message}");
        return Ok(ExitCode::FAILURE);
    }
    let response = host.validate(&request, &settings);
    println!(
        "{}",
        serde_json::to_string(&response).context("serializing the response")?
    );
    Ok(ExitCode::SUCCESS)
}

/// kwctl takes URIs; a plain path and `file://` are the ones that make sense here.
fn module_path(module: &str) -> PathBuf {
    PathBuf::from(module.strip_prefix("file://").unwrap_or(module))
}
