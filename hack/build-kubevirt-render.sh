#!/usr/bin/env bash
# Builds tests/kubevirt-render (virt-launcher Pods rendered by KubeVirt's own template service)
# against kubevirt.io/kubevirt from the Go module proxy, and caches the binary keyed by version.
#
# kubevirt.io/kubevirt's go.mod replaces kubevirt.io/api and kubevirt.io/client-go with staging
# paths, and pins k8s.io/* and a few others with replace lines; replace lines of a dependency are
# ignored by Go. As in hack/build-kube-apiserver.sh, a wrapper module gets the same replace lines,
# with the staging paths pointed at the published modules of the same version.
#
# Usage: hack/build-kubevirt-render.sh           prints the path of the binary
# Env:   KUBEVIRT_VERSION (default v1.7.0), KUBEVIRT_RENDER_CACHE (default
#        ~/.cache/hook-sidecar-policy/kubevirt-render)
set -euo pipefail

version=${KUBEVIRT_VERSION:-v1.7.0}
cache=${KUBEVIRT_RENDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hook-sidecar-policy/kubevirt-render}
source_dir=$(cd "$(dirname "$0")/../tests/kubevirt-render" && pwd)
# The cache key includes the program's source, so that an edit rebuilds it.
source_hash=$(sha256sum "$source_dir/main.go" | cut -c1-12)
out="$cache/$version-$source_hash/kubevirt-render"

if [[ -x $out ]]; then
  echo "$out"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$source_dir/main.go" "$work/"
cd "$work"

echo "building kubevirt-render on kubevirt.io/kubevirt $version (first run only: a few minutes)" >&2
go mod init kubevirt-render 2>/dev/null
gomod=$(go mod download -json "kubevirt.io/kubevirt@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
# Every replace line of kubevirt's go.mod: versions as they are, staging paths to the published
# module of the same version.
python3 - "$gomod" "$version" <<'PY' | while read -r replacement; do go mod edit -replace "$replacement"; done
import re, sys
gomod, version = open(sys.argv[1]).read(), sys.argv[2]
block = re.search(r"^replace \((.*?)^\)", gomod, re.M | re.S)
if not block:
    sys.exit("no replace block in kubevirt's go.mod")
for line in block.group(1).splitlines():
    parts = line.split("//")[0].split()
    if len(parts) == 3 and parts[1] == "=>":        # old => ./path
        print(f"{parts[0]}={parts[0]}@{version}" if parts[2].startswith("./") else f"{parts[0]}={parts[2]}")
    elif len(parts) == 4 and parts[1] == "=>":      # old => new version
        print(f"{parts[0]}={parts[2]}@{parts[3]}")
PY
go mod edit -require "kubevirt.io/kubevirt@$version"
go mod tidy 2>"$work/tidy.log" || { cat "$work/tidy.log" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$out.tmp" .
mv "$out.tmp" "$out"
echo "$out"
