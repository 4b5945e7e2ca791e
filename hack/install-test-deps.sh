#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust, Go and Python toolchains, when missing:
# the wasm32-wasip1 target; bats and jq (the policy's end-to-end tests), etcd and openssl (the sync
# job's tests on a real API server) through apt-get; kube-apiserver and kubectl, built from the Go
# module proxy by hack/build-kube-apiserver.sh, the launcher Pod renderers (the template service of
# each supported KubeVirt release, tests/kubevirt-render) by hack/build-kubevirt-render.sh, and
# helm, crane and actionlint by hack/go-tool.sh, all cached under ~/.cache; the musl target and
# musl-tools for the sync job's static binary (its image).
# Idempotent and quiet when everything is there.
set -euo pipefail

for target in wasm32-wasip1 x86_64-unknown-linux-musl; do
  if ! rustup target list --installed | grep -qx "$target"; then
    echo "installing the $target Rust target" >&2
    rustup target add "$target"
  fi
done

missing=()
command -v bats >/dev/null || missing+=(bats)
command -v jq >/dev/null || missing+=(jq)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v openssl >/dev/null || missing+=(openssl)
# The C compiler for the musl target (ring's C and assembly in the sync job's static binary).
command -v x86_64-linux-musl-gcc >/dev/null || missing+=(musl-tools)
# actionlint runs shellcheck on the workflows' scripts when it is there.
command -v shellcheck >/dev/null || missing+=(shellcheck)

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
# One launcher Pod renderer per supported KubeVirt release (tests/kubevirt-render/versions.json).
"$(dirname "$0")/build-kubevirt-render.sh" --all >/dev/null
for tool in helm crane actionlint; do
  "$(dirname "$0")/go-tool.sh" "$tool" >/dev/null
done
