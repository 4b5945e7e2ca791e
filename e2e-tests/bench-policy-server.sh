#!/usr/bin/env bash
# Issue 27's benchmark: the policy served by a real policy-server, against a module that does
# nothing and one that only parses the payload, all three built from this repository in this run
# and loaded by one policy-server under their own policy ids, with the same settings. Each bench
# request is posted as an AdmissionReview with wrk; the throughput, the latency and the server's
# CPU time per request are written as ratios to the do-nothing module's into
# docs/performance-policy-server.md (OUTPUT=... elsewhere, OUTPUT=- only to stdout).
#
#   POLICY_SERVER=/path/to/policy-server [KWCTL=/path/to/kwctl] e2e-tests/bench-policy-server.sh
#
# DURATION (seconds per run, 5), CONNECTIONS (4), THREADS (2), ROUNDS (3: each round runs every
# request against every module, interleaved, starting at the next module each round; the table
# gives each cell's median over the rounds) and WARMUP (seconds
# of unmeasured load before each run, 1) change the runs. PERF=1 also samples policy-server with
# `perf record` during each measured run (Debian's linux-perf) and reports how much of the server
# CPU per request was spent in the module's compiled code (perf's `[JIT]` samples), the rest
# being policy-server's and the kernel's work around it. Needs an idle machine: the script
# records the load average before and after, and the doc says when it was not idle.
# policy-server is in no package registry: build it from kubewarden/kubewarden-controller
# (CONTRIBUTING.md, "Verifying with kwctl and policy-server"). Not part of `make test`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
: "${POLICY_SERVER:?set POLICY_SERVER to a policy-server binary}"
port=${PORT:-3959}
duration=${DURATION:-5}
connections=${CONNECTIONS:-4}
threads=${THREADS:-2}
rounds=${ROUNDS:-3}
warmup=${WARMUP:-1}
output=${OUTPUT:-docs/performance-policy-server.md}
target_dir=$(hack/target-dir)
bench=e2e-tests/bench
settings=$bench/settings-50.json
# The requests of issue 27: a VM CREATE with 3 sidecars (its images the last three of the 50
# allowed entries), a running VMI's status UPDATE with its annotation unchanged, a Pod that is not
# a launcher.
requests=(vm-3-sidecars vmi-status-update pod-not-launcher)
# policy id, module file (in the wasm release directory); the first is the reference.
# The policy as published (hack/build-module.sh); the floors as cargo builds them.
modules=(do-nothing:do_nothing_floor parse-only:parse_only_floor hook-sidecars:hook_sidecar_policy.opt)

hack/install-bench-deps.sh
hack/build-module.sh >/dev/null
cargo build --quiet --release --target wasm32-wasip1 -p parse-only-floor -p do-nothing-floor
work=$(mktemp -d)
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
if [[ -z "${KWCTL:-}" ]]; then
  cargo build --quiet -p policy-host
  KWCTL="$target_dir/debug/policy-host"
fi
# policy-server loads annotated modules only; all three get the policy's metadata, so that
# policy-server treats them alike.
for module in "${modules[@]}"; do
  "$KWCTL" annotate "$target_dir/wasm32-wasip1/release/${module#*:}.wasm" \
    --metadata-path policy-metadata.yml --output-path "$work/${module%%:*}.wasm"
done

python3 - "$work" "$settings" "${modules[@]}" <<'PY'
import json, sys
work, settings, modules = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3:]
policies = {m.split(":")[0]: {"module": f"file://{work}/{m.split(':')[0]}.wasm",
                              "policyMode": "protect", "allowedToMutate": False,
                              "settings": settings} for m in modules}
json.dump(policies, open(f"{work}/policies.yml", "w"))  # JSON is YAML
PY
for request in "${requests[@]}"; do
  python3 -c 'import json, sys; print(json.dumps({"apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview", "request": json.load(open(sys.argv[1]))}, separators=(",", ":")))' \
    "$bench/$request.json" >"$work/$request.review.json"
done

server_version=$("$POLICY_SERVER" --version | head -n1)
echo "policy-server: $server_version" >&2
# policy-server's defaults (one worker per CPU, log level info), as a deployment runs it.
"$POLICY_SERVER" --policies "$work/policies.yml" --addr 127.0.0.1 --port "$port" \
  --readiness-probe-port "$((port + 1))" --ignore-kubernetes-connection-failure \
  --policies-download-dir "$work/download" --sigstore-cache-dir "$work/sigstore" \
  --log-no-color >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 300); do
  curl -sf -o /dev/null "127.0.0.1:$((port + 1))/readiness" && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 1
done
curl -sf -o /dev/null "127.0.0.1:$((port + 1))/readiness" ||
  { echo "policy-server not ready after 300 s" >&2; cat "$work/server.log" >&2; exit 1; }

# Every module must accept every request, or the numbers would measure an error path.
for request in "${requests[@]}"; do
  for module in "${modules[@]}"; do
    id=${module%%:*}
    curl -sf -X POST -H 'Content-Type: application/json' --data-binary "@$work/$request.review.json" \
      "127.0.0.1:$port/validate/$id" | python3 -c 'import json, sys
r = json.load(sys.stdin)["response"]
if not r["allowed"]:
    sys.exit(f"{sys.argv[1]} rejected {sys.argv[2]}: {r}")' "$id" "$request"
  done
done

# The server's user and system CPU time, in clock ticks.
server_cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$server/stat"
}

# With PERF=1: the share of policy-server's samples in the modules' compiled code, "jit total".
jit_share() {
  perf report -i "$1" --sort dso -q -g none -F sample,dso 2>/dev/null |
    awk '{ total += $1 } /\[JIT\]/ { jit += $1 } END { print jit + 0, total + 0 }'
}

# One wrk run: a JSON line of wrk's summary with the run's identity and the server's CPU time.
run() {
  local request=$1 id=$2 round=$3 before after line perf_pid= samples="0 0"
  if ((warmup > 0)); then
    wrk -t"$threads" -c"$connections" -d"${warmup}s" -s e2e-tests/bench-policy-server.lua \
      "http://127.0.0.1:$port/validate/$id" -- "$work/$request.review.json" >/dev/null
  fi
  if [[ -n "${PERF:-}" ]]; then
    perf record -q -F 999 -p "$server" -o "$work/perf.data" -- sleep "$duration" 2>/dev/null &
    perf_pid=$!
  fi
  before=$(server_cpu_ticks)
  line=$(wrk -t"$threads" -c"$connections" -d"${duration}s" --latency \
    -s e2e-tests/bench-policy-server.lua "http://127.0.0.1:$port/validate/$id" \
    -- "$work/$request.review.json" | grep '^{')
  after=$(server_cpu_ticks)
  if [[ -n "$perf_pid" ]]; then
    wait "$perf_pid"
    samples=$(jit_share "$work/perf.data")
  fi
  python3 -c 'import json, sys
run = json.loads(sys.argv[1])
run.update(request=sys.argv[2], module=sys.argv[3], round=int(sys.argv[4]),
           server_cpu_s=(int(sys.argv[6]) - int(sys.argv[5])) / int(sys.argv[7]))
jit, total = map(int, sys.argv[8].split())
if total:
    run.update(jit_share=jit / total)
print(json.dumps(run))' "$line" "$request" "$id" "$round" "$before" "$after" "$(getconf CLK_TCK)" \
    "$samples"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
{
  for round in $(seq "$rounds"); do
    for request in "${requests[@]}"; do
      # Each round starts at the next module, so that with as many rounds as modules (or a
      # multiple) each module runs first, second and last equally often: on this kind of machine
      # the throughput drifts within a sequence of runs, and a fixed order would give the drift to
      # whichever module runs last.
      for offset in "${!modules[@]}"; do
        module=${modules[$(((offset + round - 1) % ${#modules[@]}))]}
        echo "round $round/$rounds: $request -> ${module%%:*}" >&2
        run "$request" "${module%%:*}" "$round"
      done
    done
  done
} >"$work/runs.jsonl"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

module_bytes=()
for module in "${modules[@]}"; do
  module_bytes+=("${module%%:*}=$(stat -c %s "$target_dir/wasm32-wasip1/release/${module#*:}.wasm")")
done
table=$(python3 e2e-tests/bench_policy_server.py "$work/runs.jsonl" \
  --server-version "$server_version" --wrk "$(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2)" \
  --threads "$threads" --connections "$connections" --duration "$duration" --rounds "$rounds" \
  --load-before "$load_before" --load-after "$load_after" --module-bytes "${module_bytes[@]}")
if [[ "$output" == - ]]; then
  echo "$table"
else
  echo "$table" >"$output"
  echo "$table"
  echo "written to $output" >&2
fi
