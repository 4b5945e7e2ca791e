#!/usr/bin/env bash
# The main job, locally: builds the policy module and evaluates every request in examples/ with
# examples/settings.json, the way `kwctl run` does, printing each verdict readably.
#
#   examples/run.sh          # kwctl when it is on PATH (or named by KWCTL), else the in-repo host
#   examples/run.sh --host   # the in-repo waPC host (policy-host/: policy-server's calling convention)
#
# POLICY_HOST names a host binary already built, instead of building one.
#
# Verdicts go to stdout (e2e-tests/examples.bats compares them with examples/verdicts.txt),
# progress to stderr.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

use_host=false
case "${1:-}" in
  --host) use_host=true ;;
  "") ;;
  *)
    echo "usage: $0 [--host]" >&2
    exit 2
    ;;
esac

target_dir=$(hack/target-dir)
module="$target_dir/wasm32-wasip1/release/hook_sidecar_policy.opt.wasm"
kwctl=${KWCTL:-$(command -v kwctl || true)}

rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
build_module() {
  hack/build-module.sh >/dev/null
}

if ! $use_host && [[ -n "$kwctl" ]]; then
  echo "running the examples with kwctl ($kwctl, $("$kwctl" --version 2>/dev/null | head -n1))" >&2
  echo "building the policy module (wasm32-wasip1) ..." >&2
  build_module
  runner=("$kwctl" run)
elif [[ -n "${POLICY_HOST:-}" ]]; then
  # A host the caller built (e2e-tests/run-e2e.sh passes the one its tests share).
  echo "building the policy module (wasm32-wasip1); the in-repo waPC host: $POLICY_HOST" >&2
  build_module
  runner=("$POLICY_HOST" run)
else
  $use_host || echo "no kwctl on PATH: running the examples with the in-repo waPC host" >&2
  # Both builds at once: on a fresh machine the module's serial LTO step and wasmtime's longest
  # crates leave cores idle for each other. The host is the debug build that `cargo test` shares.
  echo "building the policy module (wasm32-wasip1) and the in-repo waPC host" \
    "(the first time takes a few minutes: wasmtime) ..." >&2
  build_module &
  module_build=$!
  host_status=0
  cargo build --quiet -p policy-host || host_status=$?
  module_status=0
  wait "$module_build" || module_status=$?
  ((host_status == 0 && module_status == 0)) || exit 1
  runner=("$target_dir/debug/policy-host" run)
fi

settings="examples/settings.json"
echo "settings ($settings):"
sed 's/^/  /' "$settings"
for request in examples/[0-9]*.json; do
  echo
  echo "── $(basename "$request" .json)"
  python3 - "$request" <<'PY'
import json, sys
request = json.load(open(sys.argv[1]))
annotations = request["object"]["spec"]["template"]["metadata"]["annotations"]
print("   hookSidecars:", annotations.pop("hooks.kubevirt.io/hookSidecars"))
for key, value in annotations.items():
    print(f"   {key}: {value}")
PY
  "${runner[@]}" "$module" --request-path "$request" --settings-path "$settings" |
    python3 -c '
import json, sys
response = json.loads(sys.stdin.read().strip().splitlines()[-1])
if response.get("allowed"):
    print("   => ACCEPTED")
else:
    print("   => REJECTED:", response.get("status", {}).get("message", "(no message)"))
for warning in response.get("warnings") or []:
    print("   warning:", warning)
'
done
