#!/usr/bin/env bash
# The policy module served by a real policy-server: every example of examples/ is sent as an
# AdmissionReview to /validate, and the verdicts must be those recorded in examples/verdicts.txt
# (what `make run` prints with kwctl and with the in-repo host).
#
#   POLICY_SERVER=/path/to/policy-server [KWCTL=/path/to/kwctl] hack/verify-policy-server.sh
#
# policy-server loads annotated modules only: the module is annotated with KWCTL, as a release
# is, or with the in-repo host's `annotate` when KWCTL is unset.
# policy-server is in no package registry: build it from kubewarden/kubewarden-controller
# (CONTRIBUTING.md, "Verifying with kwctl and policy-server"). Not part of `make test`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
: "${POLICY_SERVER:?set POLICY_SERVER to a policy-server binary}"
port=${PORT:-3939}
target_dir=$(hack/target-dir)

module=$(hack/build-module.sh)
work=$(mktemp -d)
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
if [[ -z "${KWCTL:-}" ]]; then
  cargo build --quiet -p policy-host
  KWCTL="$target_dir/debug/policy-host"
fi
"$KWCTL" annotate "$module" \
  --metadata-path policy-metadata.yml --output-path "$work/policy.wasm"

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
settings = json.load(open("examples/settings.json"))
policies = {"hook-sidecars": {"module": f"file://{work}/policy.wasm", "policyMode": "protect",
                              "allowedToMutate": False, "settings": settings}}
json.dump(policies, open(f"{work}/policies.yml", "w"))  # JSON is YAML
PY

echo "policy-server: $("$POLICY_SERVER" --version | head -n1)" >&2
"$POLICY_SERVER" --policies "$work/policies.yml" --port "$port" \
  --readiness-probe-port "$((port + 1))" --workers 1 --ignore-kubernetes-connection-failure \
  --policies-download-dir "$work/download" --sigstore-cache-dir "$work/sigstore" \
  --log-no-color >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 120); do
  curl -sf -o /dev/null "localhost:$((port + 1))/readiness" && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 1
done

for request in examples/[0-9]*.json; do
  python3 -c 'import json, sys; print(json.dumps({"apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview", "request": json.load(open(sys.argv[1]))}))' "$request" \
    >"$work/review.json"
  curl -sf -X POST -H 'Content-Type: application/json' --data "@$work/review.json" \
    "localhost:$port/validate/hook-sidecars" |
    python3 -c 'import json, sys
r = json.load(sys.stdin)["response"]
print("   => ACCEPTED" if r["allowed"] else "   => REJECTED: " + r["status"]["message"])'
done >"$work/verdicts"

if diff <(grep '^   => ' examples/verdicts.txt) "$work/verdicts"; then
  echo "policy-server gave the recorded verdict of all $(wc -l <"$work/verdicts") examples" >&2
else
  echo "policy-server's verdicts differ from examples/verdicts.txt (above)" >&2
  exit 1
fi
