#!/usr/bin/env bash
# Builds the policy module and runs the bats suite through `kwctl run`: a real kwctl when one is
# on PATH (or named by KWCTL), the in-repo waPC host (policy-server's calling convention) otherwise.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir=$(hack/target-dir)

cargo build --quiet --release --target wasm32-wasip1 -p never-returns
POLICY=$(hack/build-module.sh)
export POLICY
export NEVER_RETURNS="$target_dir/wasm32-wasip1/release/never_returns.wasm"

# The debug build that `cargo test -p policy-host $HOST_FEATURES` shares (make unit-tests), so
# that wasmtime is compiled once; examples/run.sh, called by the suite, uses it too.
# shellcheck disable=SC2086 # HOST_FEATURES is a list of cargo arguments
cargo build --quiet -p policy-host ${HOST_FEATURES:-}
export POLICY_HOST="$target_dir/debug/policy-host"

if [[ -z "${KWCTL:-}" ]] && command -v kwctl >/dev/null; then
  KWCTL=$(command -v kwctl)
fi
if [[ -n "${KWCTL:-}" ]]; then
  echo "e2e: running the suite with kwctl ($KWCTL, $("$KWCTL" --version 2>/dev/null | head -n1))"
else
  KWCTL="$POLICY_HOST"
  echo "e2e: no kwctl on PATH; running the suite with the in-repo waPC host ($KWCTL)"
fi
export KWCTL

# Context-aware mode needs the metadata in the module (--allow-context-aware grants what it
# declares): annotate it with the host under test, as a release does with kwctl.
export ANNOTATED_POLICY="$target_dir/wasm32-wasip1/release/hook_sidecar_policy.annotated.wasm"
rm -f "$ANNOTATED_POLICY"
"$KWCTL" annotate "$POLICY" --metadata-path policy-metadata.yml --output-path "$ANNOTATED_POLICY"

bats "$@" e2e-tests/*.bats
