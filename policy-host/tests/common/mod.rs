//! Shared by the context-aware test and benchmark: the policy module, built for wasm.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

/// Builds the policy module as it is published (`hack/build-module.sh`: release, wasm32-wasip1,
/// wasm-opt) in this build's target directory and returns its path.
pub fn build_module(repo_root: &Path) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // <target>/<profile>/deps/<test or bench binary>
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .context("the test binary is not in a cargo target directory")?;
    let output = Command::new(repo_root.join("hack/build-module.sh"))
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(repo_root)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !output.status.success() {
        bail!("building the policy module failed ({})", output.status);
    }
    let path = String::from_utf8(output.stdout).context("the module's path")?;
    Ok(PathBuf::from(path.trim_end()))
}
