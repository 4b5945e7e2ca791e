use std::process::ExitCode;

use clap::Parser;
use hook_sidecar_sync::{Args, init_logging};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

// The sync loop runs on the main thread (`block_on`); the one worker thread runs the spawned
// tasks: the health and metrics server, which so keeps answering while the loop handles a large
// Setting, and the feature gate. The list's validation runs on the blocking pool.
#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
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
