#!/usr/bin/env bash
# Issue 27's fresh-instance probe: what one evaluation in a fresh instance costs the do-nothing
# module, the parse-only module and the policy, in measures that other load on the machine does
# not change: the instructions executed (callgrind, collecting only inside the measured
# evaluations), split between the module's own code and the host (wasmtime instantiating, copying
# the payload in and the answer out, reading the answer), and the page faults (each page of linear
# memory that a fresh instance touches). Prints markdown: the totals per request and module with
# their ratios to the do-nothing module, then where the policy's instructions go, by wasm function.
#
#   e2e-tests/probe.sh            ITERATIONS=20 (callgrind), FAULT_ITERATIONS=200,
#                                 REQUESTS="vm-3-sidecars ..." (names in e2e-tests/bench/),
#                                 MODULES="do_nothing_floor ..." (crate names), TOP=25 (functions
#                                 in the breakdown), KEEP=DIR (keeps the callgrind outputs there)
#
# For step-by-step comparisons while other builds run: instruction counts stay put where times do
# not. The modules are built with the `probe` profile: `release` with the function names kept.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir=$(hack/target-dir)
iterations=${ITERATIONS:-20}
fault_iterations=${FAULT_ITERATIONS:-200}
read -r -a requests <<<"${REQUESTS:-vm-3-sidecars vmi-status-update pod-not-launcher}"
read -r -a modules <<<"${MODULES:-do_nothing_floor parse_only_floor hook_sidecar_policy}"
bench=e2e-tests/bench

hack/install-bench-deps.sh
# The policy as published (hack/build-module.sh, with its names); the floors as cargo builds them.
hack/build-module.sh probe >/dev/null
cargo build --quiet --profile probe --target wasm32-wasip1 -p parse-only-floor -p do-nothing-floor
cargo build --quiet --profile host -p policy-host
host="$target_dir/host/policy-host"
wasm="$target_dir/wasm32-wasip1/probe"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for request in "${requests[@]}"; do
  for module in "${modules[@]}"; do
    echo "probe: $request -> $module" >&2
    file="$wasm/$module.wasm"
    [[ $module != hook_sidecar_policy ]] || file="$wasm/$module.opt.wasm"
    args=("$file" --request-path "$bench/$request.json"
      --settings-path "$bench/settings-50.json")
    faults=$("$host" probe "${args[@]}" --iterations "$fault_iterations")
    out="$work/$request.$module.callgrind"
    # The perf map names the module's functions; wasmtime writes it as /tmp/perf-<pid>.map.
    valgrind --tool=callgrind --collect-atstart=no \
      --toggle-collect='policy_host::probe::fresh_evaluations*' --callgrind-out-file="$out" \
      --log-file="$work/valgrind.log" "$host" probe "${args[@]}" --iterations "$iterations" \
      --perf-map >"$work/line" &
    pid=$!
    wait "$pid" || { cat "$work/valgrind.log" >&2; exit 1; }
    mv "/tmp/perf-$pid.map" "$out.map"
    python3 -c 'import json, sys
line = json.loads(sys.argv[1])
line.update(callgrind=sys.argv[2], perf_map=sys.argv[2] + ".map", module_name=sys.argv[3],
            request_name=sys.argv[4], callgrind_iterations=int(sys.argv[5]))
print(json.dumps(line))' "$faults" "$out" "$module" "$request" "$iterations"
  done
done >"$work/runs.jsonl"

python3 e2e-tests/probe_table.py "$work/runs.jsonl" --top "${TOP:-25}"
if [[ -n "${KEEP:-}" ]]; then
  mkdir -p "$KEEP" && cp "$work"/* "$KEEP"/
fi
