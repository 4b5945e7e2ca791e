#!/usr/bin/env bats
# Context-aware mode through `kwctl run` (or the in-repo host): the module annotated with
# policy-metadata.yml, the Setting granted with --allow-context-aware, and policy-server's answers
# replayed from sessions in kwctl's format (e2e-tests/sessions/). Needs ANNOTATED_POLICY.

load helpers

setup() {
  [[ -n "${ANNOTATED_POLICY:-}" ]] || skip "needs the annotated module (ANNOTATED_POLICY)"
}

@test "a sidecar listed in the Setting is allowed" {
  kwrun_context_aware setting-value-allows-gpu-hook \
    --request-path "$TEST_DATA/vm-create.json" --settings-json "$(context_aware_settings)"
  assert_allowed
}

@test "a sidecar in neither allowedImages nor the Setting is rejected, naming both" {
  kwrun_context_aware setting-lists-another-hook \
    --request-path "$TEST_DATA/vm-create.json" --settings-json "$(context_aware_settings)"
  assert_rejected "($GPU_HOOK) is not in allowedImages nor in Setting \"whitelisted-sidecars\""
}

@test "union allows default and value; effective only value when it is set" {
  kwrun_context_aware setting-default-gpu-value-other \
    --request-path "$TEST_DATA/vm-create.json" --settings-json "$(context_aware_settings union)"
  assert_allowed
  kwrun_context_aware setting-default-gpu-value-other \
    --request-path "$TEST_DATA/vm-create.json" --settings-json "$(context_aware_settings effective)"
  assert_rejected "nor in Setting"
}

@test "a missing Setting adds no entries, and says so" {
  kwrun_context_aware setting-missing \
    --request-path "$TEST_DATA/vm-create.json" --settings-json "$(context_aware_settings)"
  assert_rejected "nor in Setting"
  assert_warning 'Setting "whitelisted-sidecars" (harvesterhci.io/v1beta1) does not exist: it adds no entries'
  local settings
  settings=$(jq -c --arg image "$GPU_HOOK" '.allowedImages = [$image]' <<<"$(context_aware_settings)")
  kwrun_context_aware setting-missing \
    --request-path "$TEST_DATA/vm-create.json" --settings-json "$settings"
  assert_allowed
}

@test "an invalid entry allows nothing and every response names it" {
  kwrun_context_aware setting-invalid-entry \
    --request-path "$TEST_DATA/vm-create.json" --settings-json "$(context_aware_settings)"
  assert_allowed
  assert_warning 'Setting "whitelisted-sidecars" (harvesterhci.io/v1beta1), field value: entry "Bad/Entry" allows nothing'
}

@test "requests without sidecars make no host call" {
  for request in vm-create-no-sidecar vm-delete pod-create; do
    kwrun_context_aware no-interactions \
      --request-path "$TEST_DATA/$request.json" --settings-json "$(context_aware_settings)"
    assert_allowed
  done
  # The same session rejects a request with sidecars: a call was made and found no answer.
  kwrun_context_aware no-interactions \
    --request-path "$TEST_DATA/vm-create.json" --settings-json "$(context_aware_settings)"
  assert_rejected "cannot read Setting" "the list of recorded responses is empty"
}

@test "a host call that fails rejects, with the reason" {
  # The session holds the answer for another Setting: the replay refuses the request.
  local settings
  settings=$(jq -c '.harvesterSetting.name = "other-setting"' <<<"$(context_aware_settings)")
  kwrun_context_aware setting-value-allows-gpu-hook \
    --request-path "$TEST_DATA/vm-create.json" --settings-json "$settings"
  assert_rejected 'cannot read Setting "other-setting"' "unexpected request"
}

@test "without --allow-context-aware the lookup is refused and the request rejected" {
  run --separate-stderr "${KWCTL:-kwctl}" run "$ANNOTATED_POLICY" \
    --replay-host-capabilities-interactions "$BATS_TEST_DIRNAME/sessions/setting-value-allows-gpu-hook.yml" \
    --request-path "$TEST_DATA/vm-create.json" --settings-json "$(context_aware_settings)"
  assert_rejected "Policy has not been granted access to Kubernetes harvesterhci.io/v1beta1/Setting resources"
}

@test "an unchanged sidecar passes an update even when the Setting no longer lists it" {
  kwrun_context_aware setting-lists-another-hook \
    --request-path "$TEST_DATA/vm-update-unchanged.json" --settings-json "$(context_aware_settings)"
  assert_allowed
  assert_warning "unchanged by this update"
}

@test "a digest allowed by the Setting is governed by the policy's tag profile" {
  local settings drive="-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=1 -drive file=/dev/sda"
  settings=$(jq -c --argjson profile "$MMIO_PROFILE" '.sidecarProfiles = [$profile]' <<<"$(context_aware_settings)")
  for image in "$GPU_HOOK@$DIGEST" "$REPO@$DIGEST" "$REPO:latest@$DIGEST"; do
    kwrun_context_aware setting-value-allows-hooks-path \
      --request-path "$(vm_with_sidecar_and_annotation "$image" '["--free"]' "$drive")" --settings-json "$settings"
    assert_rejected 'sidecarProfiles[0] (image "'"$GPU_HOOK"'")' '-drive file=/dev/sda" does not match' ||
      { echo "case: $image"; return 1; }
    kwrun_context_aware setting-value-allows-hooks-path \
      --request-path "$(vm_with_sidecar_and_annotation "$image" '["--version", "v1alpha3"]' \
        "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536")" --settings-json "$settings"
    assert_allowed || { echo "case: $image"; return 1; }
  done
}
