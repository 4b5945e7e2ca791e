#!/usr/bin/env bash
# Installs what `make bench-policy-server` and `make probe` need beyond the test suite's tools,
# when missing: wrk (the HTTP load generator), valgrind (callgrind, for instruction counts) and,
# for `make bench-policy-server PERF=1`, perf (Debian's linux-perf), through apt-get as
# hack/install-test-deps.sh installs the suite's packages. Only those two targets call it:
# `make test` needs none of them.
# Idempotent and quiet when everything is there.
set -euo pipefail

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v valgrind >/dev/null || missing+=(valgrind)
if [[ -n "${PERF:-}" ]]; then
  command -v perf >/dev/null || missing+=(linux-perf)
fi

if ((${#missing[@]})); then
  if ! command -v apt-get >/dev/null; then
    echo "missing ${missing[*]}: install them with your package manager" >&2
    exit 1
  fi
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  echo "installing ${missing[*]} with apt-get" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
