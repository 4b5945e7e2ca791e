#!/usr/bin/env bash
# The main job, locally: builds the policy module and evaluates every request in examples/
# with examples/settings.json, the way `kwctl run` would, printing each verdict readably.
#
#   examples/run.sh                 # in-repo waPC host (policy-server's calling convention)
#   KWCTL=kwctl examples/run.sh     # a real kwctl instead
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

echo "building the policy module (wasm32-wasip1) ..." >&2
rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
cargo build --quiet --release --target wasm32-wasip1 -p hook-sidecar-policy
module="$target_dir/wasm32-wasip1/release/hook_sidecar_policy.wasm"

if [[ -n "${KWCTL:-}" ]]; then
  runner=("$KWCTL" run)
else
  echo "building the in-repo waPC host ..." >&2
  cargo build --quiet --profile host -p policy-host
  runner=("$target_dir/host/policy-host" run)
fi

settings="examples/settings.json"
echo
echo "settings ($settings):"
sed 's/^/  /' "$settings"
for request in examples/*.json; do
  [[ "$request" == "$settings" ]] && continue
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
