bats_require_minimum_version 1.5.0

# Shared by the bats files. Needs POLICY (the .wasm) and, optionally, KWCTL (default: kwctl).

ROOT="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"
TEST_DATA="$ROOT/test_data"
GPU_HOOK="registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0"
GPU_SETTINGS="{\"allowedImages\": [\"$GPU_HOOK\"]}"

# kwctl run POLICY ARGS..., stdout (the AdmissionResponse) in $output, stderr in $stderr.
kwrun() {
  run --separate-stderr "${KWCTL:-kwctl}" run "$POLICY" "$@"
}

# A VirtualMachine CREATE request whose template carries the annotation text $1.
vm_with_sidecars() {
  local request="$BATS_TEST_TMPDIR/request-$RANDOM.json"
  # --rawfile and the printf builtin: no limit on the value's size (a --arg has ARG_MAX).
  jq --rawfile value <(printf '%s' "$1") \
    '.object.spec.template.metadata.annotations["hooks.kubevirt.io/hookSidecars"] = $value' \
    "$TEST_DATA/vm-create-no-sidecar.json" >"$request"
  echo "$request"
}

assert_allowed() {
  [ "$status" -eq 0 ] || { echo "exit $status: $stderr"; return 1; }
  jq -e '.allowed == true' <<<"$output" >/dev/null || { echo "not allowed: $output"; return 1; }
}

# assert_rejected FRAGMENT...: rejected, and the message holds every fragment.
assert_rejected() {
  [ "$status" -eq 0 ] || { echo "exit $status: $stderr"; return 1; }
  jq -e '.allowed == false' <<<"$output" >/dev/null || { echo "not rejected: $output"; return 1; }
  local message
  message=$(jq -r '.status.message' <<<"$output")
  for fragment in "$@"; do
    [[ "$message" == *"$fragment"* ]] || { echo "missing «$fragment» in: $message"; return 1; }
  done
}

# assert_warning FRAGMENT: one of the warnings holds the fragment.
assert_warning() {
  jq -e --arg f "$1" '[.warnings[]? | contains($f)] | any' <<<"$output" >/dev/null ||
    { echo "no warning with «$1» in: $output"; return 1; }
}

# assert_invalid_settings FRAGMENT: kwctl refuses the settings before evaluating.
assert_invalid_settings() {
  [ "$status" -ne 0 ] || { echo "settings accepted: $output"; return 1; }
  [[ "$stderr" == *"$1"* ]] || { echo "missing «$1» in: $stderr"; return 1; }
}

# True when KWCTL names a real kwctl, not the in-repo host standing in for it.
real_kwctl() {
  [[ -n "${KWCTL:-}" && "${KWCTL}" != "${POLICY_HOST:-}" ]] && command -v "$KWCTL" >/dev/null
}

# What an AdmissionResponse decides, in a stable form: verdict, status, warnings and patch.
verdict_of() {
  jq -S '{allowed, code: .status.code, message: .status.message, warnings, patchType, patch}' <<<"$1"
}

# Issue 21's cases: a digest of the GPU hook's repository, and the README's MMIO profile.
DIGEST="sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
REPO="registry.example.com/kubevirt-hooks/qemu-commandline"
MMIO_PROFILE='{"image": "'"$GPU_HOOK"'", "args": [["--version", "v1alpha3"]], "annotations": {"qemu-commandline.hooks.example.com/args": "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+"}}'

# A VM CREATE with the sidecar $1 given args $2 (a JSON list), the QEMU-arguments annotation $3.
vm_with_sidecar_and_annotation() {
  local request="$BATS_TEST_TMPDIR/request-$RANDOM.json"
  jq --arg image "$1" --argjson args "$2" --rawfile value <(printf '%s' "$3") \
    '.object.spec.template.metadata.annotations["hooks.kubevirt.io/hookSidecars"] = ([{image: $image, args: $args}] | tojson)
     | .object.spec.template.metadata.annotations["qemu-commandline.hooks.example.com/args"] = $value' \
    "$TEST_DATA/vm-create-no-sidecar.json" >"$request"
  echo "$request"
}

OTHER_HOOK="registry.example.com/kubevirt-hooks/other:v1"

# Context-aware settings with list mode $1 (default union).
context_aware_settings() {
  echo "{\"harvesterSetting\": {\"name\": \"whitelisted-sidecars\", \"listMode\": \"${1:-union}\"}}"
}

# kwctl run on the annotated module, the Setting granted, answers replayed from the session
# e2e-tests/sessions/$1.yml; stdout in $output, stderr in $stderr.
kwrun_context_aware() {
  local session="$BATS_TEST_DIRNAME/sessions/$1.yml"
  shift
  run --separate-stderr "${KWCTL:-kwctl}" run "$ANNOTATED_POLICY" --allow-context-aware \
    --replay-host-capabilities-interactions "$session" "$@"
}
