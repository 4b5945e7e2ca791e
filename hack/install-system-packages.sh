#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, when missing, with apt-get (through sudo
# unless root): bats and jq (the policy's end-to-end tests), etcd and openssl (the tests on a real
# API server), musl-tools (the C compiler for ring in the sync job's static binary), shellcheck
# (actionlint runs it on the workflows' scripts). `make system-packages`; CI runs it as its own
# step, and `make test` (through `make deps`) on a fresh machine. Quiet when everything is there.
set -euo pipefail

missing=()
command -v bats >/dev/null || missing+=(bats)
command -v jq >/dev/null || missing+=(jq)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v openssl >/dev/null || missing+=(openssl)
command -v x86_64-linux-musl-gcc >/dev/null || missing+=(musl-tools)
command -v shellcheck >/dev/null || missing+=(shellcheck)

((${#missing[@]})) || exit 0
if ! command -v apt-get >/dev/null; then
  echo "missing ${missing[*]}: install them with your package manager" >&2
  exit 1
fi
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
echo "installing ${missing[*]} with ${sudo[*]:+${sudo[*]} }apt-get" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
