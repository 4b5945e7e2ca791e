//! `policy-host`: `kwctl run`, `kwctl annotate` and a bench, in-repo (see the library).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use policy_host::admission::{read_request, read_settings};
use policy_host::bench;
use policy_host::callbacks::{ContextAwareArgs, HostCapabilities};
use policy_host::host::{CodeCache, PolicyHost, SettingsVerdict};
use policy_host::metadata;
use policy_host::probe;

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
    /// Evaluates a request in fresh instances for a profiler (`e2e-tests/probe.sh`), printing the
    /// page faults per evaluation.
    Probe(probe::ProbeArgs),
    /// Embeds policy-metadata.yml in the module, as `kwctl annotate` does.
    Annotate(AnnotateArgs),
}

#[derive(Args)]
struct AnnotateArgs {
    /// The policy module.
    module: PathBuf,
    /// The metadata (policy-metadata.yml).
    #[arg(short = 'm', long)]
    metadata_path: PathBuf,
    /// A file whose text becomes the `io.kubewarden.policy.usage` annotation (the README).
    #[arg(short = 'u', long)]
    usage_path: Option<PathBuf>,
    /// The annotated module to write.
    #[arg(short = 'o', long)]
    output_path: PathBuf,
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
    #[command(flatten)]
    context_aware: ContextAwareArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run(args),
        Command::Bench(args) => bench::run(args).map(|()| ExitCode::SUCCESS),
        Command::Probe(args) => probe::run(args).map(|()| ExitCode::SUCCESS),
        Command::Annotate(args) => annotate(args).map(|()| ExitCode::SUCCESS),
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
    let capabilities = HostCapabilities::for_module(&module, &args.context_aware)?;
    let host = PolicyHost::load(&module, Duration::from_secs_f64(args.timeout), code_cache)?
        .with_capabilities(capabilities);
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

fn annotate(args: AnnotateArgs) -> Result<()> {
    let module = std::fs::read(&args.module)
        .with_context(|| format!("reading {}", args.module.display()))?;
    let text = std::fs::read_to_string(&args.metadata_path)
        .with_context(|| format!("reading {}", args.metadata_path.display()))?;
    let metadata: serde_json::Value = serde_yaml::from_str(&text)
        .with_context(|| format!("{} is not YAML", args.metadata_path.display()))?;
    let usage = args
        .usage_path
        .as_ref()
        .map(|path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        })
        .transpose()?;
    let annotated = metadata::annotate(&module, metadata, usage.as_deref())?;
    std::fs::write(&args.output_path, annotated)
        .with_context(|| format!("writing {}", args.output_path.display()))
}

/// kwctl takes URIs; a plain path and `file://` are the ones that make sense here.
fn module_path(module: &str) -> PathBuf {
    PathBuf::from(module.strip_prefix("file://").unwrap_or(module))
}
