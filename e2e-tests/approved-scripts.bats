#!/usr/bin/env bats
# Approved scripts (allowedScripts) through `kwctl run` (or the in-repo host): the annotated
# module, the ConfigMap granted with --allow-context-aware, and policy-server's answers (masked,
# uncached lookups) replayed from sessions (e2e-tests/sessions/script-*.yml). The same script is
# judged at the VM and at the launcher Pod KubeVirt renders for it. Needs ANNOTATED_POLICY.

load helpers

SHIM="quay.io/kubevirt/sidecar-shim:v1.7.0"
SCRIPT="$ROOT/examples/harvester/mmio-aperture.sh"
CONFIG_MAP_PREFIX='configMap "gpu-vm-hooks" (namespace "default"), key "onDefineDomain": '

setup() {
  [[ -n "${ANNOTATED_POLICY:-}" ]] || skip "needs the annotated module (ANNOTATED_POLICY)"
}

# The settings with the script's digest as `make script-digest` prints it.
script_settings() {
  local digest
  digest=$(make --no-print-directory -C "$ROOT" script-digest FILE="$SCRIPT")
  jq -nc --arg shim "$SHIM" --arg digest "$digest" \
    '{allowedImages: [$shim], sidecarShimImage: $shim, allowedScripts: [{sha256: $digest, description: "GPU MMIO aperture"}]}'
}

# The VM whose template carries the shim sidecar KubeVirt rendered the launcher-Pod fixture from.
script_vm() {
  jq -r '.object.metadata.annotations["hooks.kubevirt.io/hookSidecars"]' \
    "$TEST_DATA/launcher-pod-create-shim-configmap.json" >"$BATS_TEST_TMPDIR/sidecars"
  vm_with_sidecars "$(cat "$BATS_TEST_TMPDIR/sidecars")"
}

# kwrun_script SESSION: the VM, then its launcher Pod, each answered by SESSION; the verdicts in
# $vm_output and $output.
kwrun_script() {
  kwrun_context_aware "$1" --request-path "$(script_vm)" --settings-json "$(script_settings)"
  vm_output=$output vm_status=$status
  kwrun_context_aware "$1" --request-path "$TEST_DATA/launcher-pod-create-shim-configmap.json" \
    --settings-json "$(script_settings)"
}

# assert_both_rejected FRAGMENT...: the VM and its launcher Pod.
assert_both_rejected() {
  local pod_output=$output pod_status=$status
  output=$vm_output status=$vm_status assert_rejected "$@" || { echo "(the VM)"; return 1; }
  output=$pod_output status=$pod_status assert_rejected "$@" || { echo "(the launcher Pod)"; return 1; }
}

@test "make script-digest prints the digest of the file's bytes" {
  run make --no-print-directory -C "$ROOT" script-digest FILE="$SCRIPT"
  [ "$status" -eq 0 ]
  [ "$output" = "$(sha256sum <"$SCRIPT" | cut -d' ' -f1)" ]
  run make --no-print-directory -C "$ROOT" script-digest
  [ "$status" -ne 0 ]
}

@test "an approved script in an immutable ConfigMap is allowed at the VM and its launcher Pod" {
  for session in script-approved script-approved-binary; do
    kwrun_script "$session"
    output=$vm_output status=$vm_status assert_allowed || { echo "(the VM, $session)"; return 1; }
    assert_allowed || { echo "(the launcher Pod, $session)"; return 1; }
  done
}

@test "a script that differs by one byte (CRLF) is refused at the VM and its launcher Pod" {
  local digest
  digest=$(sed 's/$/\r/' "$SCRIPT" | sha256sum | cut -d' ' -f1)
  kwrun_script script-crlf
  assert_both_rejected "${CONFIG_MAP_PREFIX}the script in data (sha256 $digest) is not in allowedScripts"
}

@test "an approved script in a mutable ConfigMap is refused" {
  kwrun_script script-mutable
  assert_both_rejected "$CONFIG_MAP_PREFIX" "is in allowedScripts, but the ConfigMap is not immutable"
}

@test "a missing key or ConfigMap is refused, naming it" {
  kwrun_script script-key-missing
  assert_both_rejected "${CONFIG_MAP_PREFIX}no such key in data or binaryData"
  kwrun_script script-config-map-missing
  assert_both_rejected "${CONFIG_MAP_PREFIX}the ConfigMap does not exist"
}

@test "a lookup that fails, or is not granted, rejects with the reason" {
  kwrun_script script-not-granted
  assert_both_rejected "${CONFIG_MAP_PREFIX}cannot read the ConfigMap" \
    "Policy has not been granted access to Kubernetes v1/ConfigMap resources"
  # A session for the Setting: the replay refuses the ConfigMap request.
  kwrun_script setting-value-allows-gpu-hook
  assert_both_rejected "${CONFIG_MAP_PREFIX}cannot read the ConfigMap" "unexpected request"
}

@test "an update that leaves the sidecars as they were reads no ConfigMap" {
  local sidecars request="$BATS_TEST_TMPDIR/update.json"
  sidecars=$(jq -r '.object.metadata.annotations["hooks.kubevirt.io/hookSidecars"]' \
    "$TEST_DATA/launcher-pod-create-shim-configmap.json")
  jq --arg value "$sidecars" \
    '(.object, .oldObject).spec.template.metadata.annotations["hooks.kubevirt.io/hookSidecars"] = $value' \
    "$TEST_DATA/vm-update-unchanged.json" >"$request"
  kwrun_context_aware no-interactions --request-path "$request" --settings-json "$(script_settings)"
  assert_allowed
}

@test "allowConfigMap beside allowedScripts is refused as ambiguous settings" {
  local settings
  settings=$(jq -c '.allowConfigMap = true' <<<"$(script_settings)")
  # kwctl and policy-server validate the settings first, and refuse to run the policy.
  kwrun_context_aware no-interactions --request-path "$(script_vm)" --settings-json "$settings"
  [ "$status" -ne 0 ] || { echo "accepted: $output"; return 1; }
  [[ "$stderr" == *"allowedScripts lists 1 scripts, but allowConfigMap: true allows any script"* ]] ||
    { echo "not refused as ambiguous: $stderr"; return 1; }
}
