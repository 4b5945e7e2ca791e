#!/usr/bin/env bash
# Issue 3's performance table: per-request time of the policy against the parse-only floor,
# with a fresh instance per request (policy-server) and warm (kwctl bench), through the in-repo
# waPC host. Prints a markdown table; ITERATIONS=... to change the sample size.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir=$(hack/target-dir)
iterations=${ITERATIONS:-3000}

cargo build --quiet --release --target wasm32-wasip1 -p hook-sidecar-policy -p parse-only-floor
# Optimized, unlike the debug build the tests use: the numbers include the host's own work.
cargo build --quiet --profile host -p policy-host
host="$target_dir/host/policy-host"
wasm="$target_dir/wasm32-wasip1/release"
bench="e2e-tests/bench"

{
  for request in vm-3-sidecars vm-3-sidecars-64k; do
    for module in parse_only_floor hook_sidecar_policy; do
      "$host" bench "$wasm/$module.wasm" --request-path "$bench/$request.json" \
        --settings-path "$bench/settings-50.json" --iterations "$iterations"
    done
  done
} | python3 e2e-tests/bench_table.py
