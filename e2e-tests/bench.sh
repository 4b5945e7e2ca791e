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

# Each request against the 50-entry list; the 3-sidecar VM also with 5 sidecar profiles, 3 of which
# govern its images (each floor parses the same payload, settings included).
{
  for case in vm-3-sidecars:settings-50 vm-3-sidecars:settings-50-profiles-5 vm-3-sidecars-64k:settings-50 \
    pod-not-launcher:settings-50 pod-launcher-no-sidecar:settings-50; do
    request=${case%%:*} settings=${case##*:}
    for module in parse_only_floor hook_sidecar_policy; do
      "$host" bench "$wasm/$module.wasm" --request-path "$bench/$request.json" \
        --settings-path "$bench/$settings.json" --iterations "$iterations"
    done
  done
} | python3 e2e-tests/bench_table.py
