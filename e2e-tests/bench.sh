#!/usr/bin/env bash
# `make bench`: per-request time of the policy against the parse-only floor, with a fresh instance
# per request (policy-server) and warm (kwctl bench), through the in-repo waPC host; the policy on
# hostile 3 MiB requests; `signatures` (images verified through oci/v2/verify, on a loopback
# registry: a first verification, and one from the host's cache); the size of the module and of the
# annotated module. Prints the markdown
# tables and, once every measurement has succeeded, writes them into the generated blocks of
# docs/performance.md (hack/doc-block.py). ITERATIONS=... and HOSTILE_ITERATIONS=... change the
# sample sizes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir=$(hack/target-dir)
iterations=${ITERATIONS:-3000}

# The policy as published (hack/build-module.sh: hook_sidecar_policy.opt.wasm); the floor as cargo
# builds it.
hack/build-module.sh >/dev/null
cargo build --quiet --release --target wasm32-wasip1 -p parse-only-floor
# Optimized, unlike the debug build the tests use: the numbers include the host's own work. With
# oci/v2/verify (feature `sigstore`) for the signature cases.
cargo build --quiet --profile host -p policy-host --features sigstore
host="$target_dir/host/policy-host"
wasm="$target_dir/wasm32-wasip1/release"
bench="e2e-tests/bench"

tables=$(mktemp -d)
ROOT=$root
export SIGNED_REGISTRY_DIR=$tables
# shellcheck source=e2e-tests/signed-registry.bash
source e2e-tests/signed-registry.bash
trap 'stop_signed_registry; rm -rf "$tables"' EXIT
load=$(cut -d' ' -f1-3 /proc/loadavg)

# The peak-memory search runs the module under limits too small on purpose; its allocation
# failures on stderr are expected.
quiet_probes() {
  grep -v -e '^memory allocation of .* failed$' -e 'RUST_BACKTRACE=1' >&2 || true
}

# Each request against the 50-entry list; the 3-sidecar VM also with 5 sidecar profiles, 3 of which
# govern its images (each floor parses the same payload, settings included). vmi-status-update: a
# running VMI's status write, its annotation unchanged; VMIs have no status subresource, so every
# one of these reaches the policy.
{
  for case in vm-3-sidecars:settings-50 vm-3-sidecars:settings-50-profiles-5 vm-3-sidecars-64k:settings-50 \
    vmi-status-update:settings-50 vmi-status-update:settings-50-profiles-5 pod-not-launcher:settings-50 \
    pod-launcher-no-sidecar:settings-50; do
    request=${case%%:*} settings=${case##*:}
    for module in parse_only_floor hook_sidecar_policy.opt; do
      "$host" bench "$wasm/$module.wasm" --request-path "$bench/$request.json" \
        --settings-path "$bench/$settings.json" --iterations "$iterations"
    done
  done
} 2> >(quiet_probes) | python3 e2e-tests/bench_table.py | tee "$tables/floor"
echo

# Requests at the API server's 3 MiB limit built to be expensive (test_data/generate.py --hostile),
# the policy alone: its verdict, message size, time and peak memory against the targets. A case
# with settings of its own (the profiles' cases of issue 21) has them beside it; the others are
# judged by the 50-entry list.
hostile="$tables/hostile-inputs"
python3 test_data/generate.py --hostile "$hostile"
{
  for request in "$hostile"/*.json; do
    [[ "$request" == *.settings.json ]] && continue
    settings="${request%.json}.settings.json"
    [[ -e "$settings" ]] || settings="$bench/settings-50.json"
    "$host" bench "$wasm/hook_sidecar_policy.opt.wasm" --request-path "$request" \
      --settings-path "$settings" --iterations "${HOSTILE_ITERATIONS:-30}"
  done
} 2> >(quiet_probes) | python3 e2e-tests/bench_table.py --hostile | tee "$tables/hostile"
echo

# `signatures`: the 3-sidecar VM with its images in a loopback registry, signed by cosign, judged
# without a requirement, with one verified from the host's cache (policy-server keeps a
# verification for 60 s: every request after the first), and verified afresh at every request
# (the host's cache off: a first verification, three registry round trips per image).
start_signed_registry
generate_keys signer
for image in hook-1 hook-2 hook-3; do
  push_image "$image"
  sign_image signer "$REGISTRY/hooks/$image:v1"
done
jq --arg r "$REGISTRY" \
  '.object.spec.template.metadata.annotations["hooks.kubevirt.io/hookSidecars"] =
     ([1, 2, 3] | map({image: "\($r)/hooks/hook-\(.):v1", args: ["--version", "v1alpha3"]}) | tojson)' \
  "$bench/vm-3-sidecars.json" >"$tables/vm-3-signed.json"
jq -n --arg r "$REGISTRY" '{allowedImages: ["\($r)/hooks/*"]}' >"$tables/unsigned-settings.json"
jq -n --arg r "$REGISTRY" --rawfile key "$tables/signer.pub" \
  '{allowedImages: ["\($r)/hooks/*"], signatures: [{image: "\($r)/hooks/*", pubKeys: [$key]}]}' \
  >"$tables/signed-settings.json"
{
  signed=(--request-path "$tables/vm-3-signed.json" --sources-path "$tables/sources.yml")
  "$host" bench "$wasm/hook_sidecar_policy.opt.wasm" "${signed[@]}" \
    --settings-path "$tables/unsigned-settings.json" --iterations "${SIGNATURE_ITERATIONS:-300}"
  "$host" bench "$wasm/hook_sidecar_policy.opt.wasm" "${signed[@]}" \
    --settings-path "$tables/signed-settings.json" --iterations "${SIGNATURE_ITERATIONS:-300}"
  "$host" bench "$wasm/hook_sidecar_policy.opt.wasm" "${signed[@]}" \
    --settings-path "$tables/signed-settings.json" --verification-cache-seconds 0 \
    --iterations "${SIGNATURE_ITERATIONS:-300}"
} | python3 e2e-tests/bench_table.py --signatures | tee "$tables/signatures"
echo

# The published module embeds the metadata and the README (policy-host annotate writes the metadata
# kwctl annotate writes, and a module no smaller; hack/verify-annotate.sh compares them).
"$host" annotate -m policy-metadata.yml -u README.md -o "$tables/annotated.wasm" "$wasm/hook_sidecar_policy.opt.wasm"
python3 hack/module-size.py "$wasm/hook_sidecar_policy.opt.wasm" "$tables/annotated.wasm" \
  --annotated-by policy-host | tee "$tables/size"

for block in floor:bench-floor hostile:bench-hostile signatures:bench-signatures size:module-size; do
  LOADAVG="$load" python3 hack/doc-block.py docs/performance.md "${block#*:}" --by "make bench" --stdin <"$tables/${block%%:*}"
done
