use std::process::ExitCode;

use clap::Parser;
use hook_sidecar_sync::{init_logging, Args};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

// One thread is plenty for two watches and a request now and then, and keeps the memory small.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);

    let stop = CancellationToken::new();
    if let Err(error) = stop_on_signals(stop.clone()) {
        error!(%error, "cannot install the signal handlers");
        return ExitCode::FAILURE;
    }
    match hook_sidecar_sync::run(args, stop).await {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            error!(%error, "exiting");
            ExitCode::FAILURE
        }
    }
}

/// Cancels `stop` on the first SIGTERM (what the kubelet sends) or SIGINT.
fn stop_on_signals(stop: CancellationToken) -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => info!("SIGTERM received, stopping"),
            _ = interrupt.recv() => info!("SIGINT received, stopping"),
        }
        stop.cancel();
    });
    Ok(())
}
