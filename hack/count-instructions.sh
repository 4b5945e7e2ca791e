#!/usr/bin/env bash
# Instructions executed by one fresh-instance evaluation of each `make bench` case: the module
# instantiated and `validate` called, as policy-server does for every request, counted by
# valgrind's callgrind inside the in-repo waPC host (`PolicyHost::validate`). Unlike wall-clock
# times, the counts hardly depend on what else the machine runs, so two builds of the module can be
# compared on a busy machine: the host's own work is the same for both, the difference is the
# module's.
#
#   hack/count-instructions.sh [MODULE.wasm...]
#
# Without arguments, the published module (hack/build-module.sh). Prints
# one markdown row per case and module. Needs valgrind. The host is the debug build that the tests
# use (its own instructions are a part of every count that is the same for every module);
# wasmtime's code cache keeps the module's compilation out of the counts (the first run of a
# module compiles it under valgrind, which takes minutes).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir=$(hack/target-dir)
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }

if [ $# -eq 0 ]; then
  set -- "$(hack/build-module.sh)"
fi
# With the features the end-to-end tests build it with, so that this reuses their build.
cargo build --quiet -p policy-host --features cluster
host="$target_dir/debug/policy-host"
bench="e2e-tests/bench"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "| case | module | instructions |"
echo "|---|---|---|"
for case in vm-3-sidecars:settings-50 vm-3-sidecars:settings-50-profiles-5 vm-3-sidecars-64k:settings-50 \
  vmi-status-update:settings-50 pod-not-launcher:settings-50 pod-launcher-no-sidecar:settings-50; do
  request=${case%%:*} settings=${case##*:}
  for module in "$@"; do
    run=("$host" run "$module" --request-path "$bench/$request.json" --settings-path "$bench/$settings.json")
    # Once under valgrind's lightest tool: the module's machine code into wasmtime's cache, for
    # the CPU that valgrind presents (the cache is keyed by its features, which are not the
    # machine's), so that callgrind loads it instead of compiling it.
    valgrind --tool=none "${run[@]}" >/dev/null 2>"$out/stderr" || { cat "$out/stderr" >&2; exit 1; }
    valgrind --tool=callgrind --toggle-collect='policy_host::host::PolicyHost::validate' \
      --callgrind-out-file="$out/callgrind.out" "${run[@]}" >/dev/null 2>"$out/stderr"
    collected=$(sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' "$out/stderr")
    if [ -z "$collected" ] || [ "$collected" -eq 0 ]; then
      cat "$out/stderr" >&2
      echo "callgrind counted nothing in PolicyHost::validate" >&2
      exit 1
    fi
    echo "| $request ($settings) | $(basename "$module") | $collected |"
  done
done
