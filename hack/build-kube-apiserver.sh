#!/usr/bin/env bash
# Builds kube-apiserver (and kubectl) from the Go module proxy and caches them, keyed by version.
#
# `go install k8s.io/kubernetes/cmd/kube-apiserver@vX` does not work: the kubernetes go.mod
# replaces every k8s.io staging module with a local path. A small wrapper module that requires
# k8s.io/kubernetes and points each staging module at its published v0.<minor>.<patch> does.
#
# Usage: hack/build-kube-apiserver.sh            prints the directory holding the binaries
# Env:   KUBE_VERSION (default v1.34.3), KUBE_BIN_CACHE (default ~/.cache/hook-sidecar-policy/kube)
set -euo pipefail

version=${KUBE_VERSION:-v1.34.3}
cache=${KUBE_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hook-sidecar-policy/kube}
out="$cache/$version"

if [[ -x $out/kube-apiserver && -x $out/kubectl ]]; then
  echo "$out"
  exit 0
fi

staging_version="v0.${version#v1.}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

echo "building kube-apiserver and kubectl $version (first run only: a few minutes)" >&2
go mod init kube-build 2>/dev/null

# The staging modules are the ones the kubernetes go.mod replaces with ./staging/src/... paths.
gomod=$(go mod download -json "k8s.io/kubernetes@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
mapfile -t staging < <(awk '/=> \.\/staging\// {print $1}' "$gomod" | sort -u)
if ((${#staging[@]} == 0)); then
  echo "no staging modules found in $gomod" >&2
  exit 1
fi
for module in "${staging[@]}"; do
  go mod edit -replace "$module=$module@$staging_version"
done
go mod edit -require "k8s.io/kubernetes@$version"

cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
# Quiet when it works (it lists every module it fetches); its errors when it does not.
go mod tidy 2>"$work/tidy.log" || { cat "$work/tidy.log" >&2; exit 1; }

mkdir -p "$out.tmp"
go build -trimpath -ldflags=-s -o "$out.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags=-s -o "$out.tmp/kubectl" k8s.io/kubernetes/cmd/kubectl
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
