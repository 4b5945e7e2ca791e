#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust, Go and Python toolchains, when missing:
# the wasm32-wasip1 target; bats and jq (the policy's end-to-end tests), etcd and openssl (the sync
# job's tests on a real API server) through apt-get; kube-apiserver and kubectl, built from the Go
# module proxy by hack/build-kube-apiserver.sh, and the launcher Pod renderer (KubeVirt's template
# service, tests/kubevirt-render) by hack/build-kubevirt-render.sh, both cached under ~/.cache.
# Idempotent and quiet when everything is there.
set -euo pipefail

if ! rustup target list --installed | grep -qx wasm32-wasip1; then
  echo "installing the wasm32-wasip1 Rust target" >&2
  rustup target add wasm32-wasip1
fi

missing=()
command -v bats >/dev/null || missing+=(bats)
command -v jq >/dev/null || missing+=(jq)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v openssl >/dev/null || missing+=(openssl)

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

"$(dirname "$0")/build-kube-apiserver.sh" >/dev/null
"$(dirname "$0")/build-kubevirt-render.sh" >/dev/null
