#!/usr/bin/env bats
# The in-repo host's own behaviour (policy-server's lifecycle and deadline); needs POLICY_HOST.

load helpers

setup() {
  [[ -n "${POLICY_HOST:-}" ]] || skip "needs the in-repo host (POLICY_HOST)"
}

@test "a guest over the deadline is rejected with code 500" {
  [[ -n "${NEVER_RETURNS:-}" ]] || skip "needs the never-returns test module"
  SECONDS=0
  run --separate-stderr "$POLICY_HOST" run "$NEVER_RETURNS" --timeout 0.5 \
    --request-path "$TEST_DATA/vm-create.json" --settings-json '{}'
  [ "$status" -eq 0 ]
  jq -e '.allowed == false and .status.code == 500' <<<"$output"
  [[ "$(jq -r .status.message <<<"$output")" == *"exceeded the 500ms deadline"* ]]
  [ "$SECONDS" -lt 10 ]
}

@test "a module that is not a file is a clear error" {
  run --separate-stderr "$POLICY_HOST" run "$BATS_TEST_TMPDIR/missing.wasm" \
    --request-path "$TEST_DATA/vm-create.json"
  [ "$status" -ne 0 ]
  [[ "$stderr" == *"missing.wasm"* ]]
}

@test "file:// URIs are read like paths" {
  run --separate-stderr "$POLICY_HOST" run "file://$POLICY" \
    --request-path "$TEST_DATA/vm-create.json" --settings-json "$GPU_SETTINGS"
  assert_allowed
}
