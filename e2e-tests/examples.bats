#!/usr/bin/env bats
# `make run` (examples/run.sh): every example's verdict is the one recorded in
# examples/verdicts.txt, from the in-repo host and, when one is on PATH, from kwctl, which must
# also answer each example exactly as the host does.

load helpers

@test "make run with the in-repo host prints the recorded verdict of every example" {
  run --separate-stderr "$ROOT/examples/run.sh" --host
  [ "$status" -eq 0 ] || { echo "exit $status: $stderr"; return 1; }
  diff -u "$ROOT/examples/verdicts.txt" <(printf '%s\n' "$output")
}

@test "make run uses kwctl from PATH, says so, and prints the recorded verdict of every example" {
  real_kwctl || skip "no kwctl on PATH"
  mkdir -p "$BATS_TEST_TMPDIR/bin"
  ln -s "$(command -v "$KWCTL")" "$BATS_TEST_TMPDIR/bin/kwctl"
  run --separate-stderr env PATH="$BATS_TEST_TMPDIR/bin:$PATH" KWCTL= "$ROOT/examples/run.sh"
  [ "$status" -eq 0 ] || { echo "exit $status: $stderr"; return 1; }
  [[ "$stderr" == *"running the examples with kwctl"* ]] || { echo "kwctl not announced: $stderr"; return 1; }
  diff -u "$ROOT/examples/verdicts.txt" <(printf '%s\n' "$output")
}

@test "kwctl and the in-repo host give the same response to every example" {
  real_kwctl || skip "no kwctl on PATH"
  [[ -n "${POLICY_HOST:-}" ]] || skip "needs the in-repo host (POLICY_HOST)"
  local settings="$ROOT/examples/settings.json" request
  for request in "$ROOT"/examples/[0-9]*.json; do
    run --separate-stderr "$KWCTL" run "$POLICY" --request-path "$request" --settings-path "$settings"
    [ "$status" -eq 0 ] || { echo "kwctl, $request: exit $status: $stderr"; return 1; }
    local from_kwctl=$output
    run --separate-stderr "$POLICY_HOST" run "$POLICY" --request-path "$request" --settings-path "$settings"
    [ "$status" -eq 0 ] || { echo "host, $request: exit $status: $stderr"; return 1; }
    diff -u <(verdict_of "$from_kwctl") <(verdict_of "$output") || { echo "request $request"; return 1; }
  done
}
