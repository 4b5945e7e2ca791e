//! Shared by the context-aware test and benchmark: the policy module, built for wasm.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

/// Builds the policy module (release, wasm32-wasip1) in this build's target directory and
/// returns its path.
pub fn build_module(repo_root: &Path) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // <target>/<profile>/deps/<test or bench binary>
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .context("the test binary is not in a cargo target directory")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip1"])
        .args(["-p", "hook-sidecar-policy"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(repo_root)
        .status()?;
    if !status.success() {
        bail!("building the policy module failed ({status})");
    }
    Ok(target.join("wasm32-wasip1/release/hook_sidecar_policy.wasm"))
}
