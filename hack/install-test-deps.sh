#!/usr/bin/env bash
# Installs what the test suite needs beyond the toolchains and the system packages
# (hack/install-system-packages.sh), when missing: the wasm32-wasip1 and x86_64-unknown-linux-musl
# Rust targets (the module; the sync job's static binary), kube-apiserver and kubectl, built from
# the Go module proxy by hack/build-kube-apiserver.sh, the launcher Pod renderers (the template
# service of each supported KubeVirt release, tests/kubevirt-render) by
# hack/build-kubevirt-render.sh, and helm, crane, cosign and actionlint by hack/go-tool.sh, each cached
# under ~/.cache/hook-sidecar-policy keyed by its version. `make tools`. Idempotent and quiet when
# everything is there.
set -euo pipefail

for target in wasm32-wasip1 x86_64-unknown-linux-musl; do
  if ! rustup target list --installed | grep -qx "$target"; then
    echo "installing the $target Rust target" >&2
    rustup target add "$target"
  fi
done

"$(dirname "$0")/build-kube-apiserver.sh" >/dev/null
# One launcher Pod renderer per supported KubeVirt release (tests/kubevirt-render/versions.json).
"$(dirname "$0")/build-kubevirt-render.sh" --all >/dev/null
for tool in helm crane cosign actionlint; do
  "$(dirname "$0")/go-tool.sh" "$tool" >/dev/null
done
