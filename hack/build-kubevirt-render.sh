#!/usr/bin/env bash
# Builds tests/kubevirt-render (virt-launcher Pods rendered by KubeVirt's own template service)
# against kubevirt.io/kubevirt from the Go module proxy, and caches the binary keyed by version.
#
# kubevirt.io/kubevirt's go.mod replaces kubevirt.io/api and kubevirt.io/client-go with staging
# paths, and pins k8s.io/* and a few others with replace lines; replace lines of a dependency are
# ignored by Go. As in hack/build-kube-apiserver.sh, a wrapper module gets the same replace lines,
# with the staging paths pointed at the published modules of the same version.
#
# The program is main.go plus, for each family of version files (service_<minor>.go: how
# virt-controller builds its template service; plugins_<minor>.go: what virt-operator installs for
# Plugins and how virt-launcher applies their domain hooks, from v1.9), the file of the highest
# minor not above the version's: KubeVirt's Go API changed between minors, the harness did not.
#
# Usage: hack/build-kubevirt-render.sh [VERSION]   prints the path of the binary for VERSION
#        hack/build-kubevirt-render.sh --all       builds every version of tests/kubevirt-render/
#                                                  versions.json, prints "VERSION PATH" lines
# Env:   KUBEVIRT_VERSION (default v1.7.0, when VERSION is not given), KUBEVIRT_RENDER_CACHE
#        (default ~/.cache/hook-sidecar-policy/kubevirt-render)
set -euo pipefail

source_dir=$(cd "$(dirname "$0")/../tests/kubevirt-render" && pwd)

if [[ ${1:-} == --all ]]; then
  for version in $(python3 -c 'import json,sys; print(" ".join(v["version"] for v in json.load(open(sys.argv[1]))["releases"]))' \
    "$source_dir/versions.json"); do
    echo "$version $("$0" "$version")"
  done
  exit 0
fi

version=${1:-${KUBEVIRT_VERSION:-v1.7.0}}
cache=${KUBEVIRT_RENDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hook-sidecar-policy/kubevirt-render}
[[ $version =~ ^v1\.([0-9]+)\.[0-9]+$ ]] || { echo "not a KubeVirt v1.x.y version: $version" >&2; exit 2; }
minor=${BASH_REMATCH[1]}

# main.go and, per family, the version file of the highest minor <= $minor.
files=("$source_dir/main.go")
for family in service plugins; do
  chosen=
  for file in "$source_dir/$family"_1.*.go; do
    file_minor=${file##*_1.}
    file_minor=${file_minor%.go}
    if ((file_minor <= minor)) && [[ -z $chosen || $file_minor -gt ${chosen_minor} ]]; then
      chosen=$file chosen_minor=$file_minor
    fi
  done
  [[ -n $chosen ]] || { echo "no $family file for KubeVirt $version in $source_dir" >&2; exit 1; }
  files+=("$chosen")
done
# The cache key includes the program's source, so that an edit rebuilds it.
source_hash=$( (cat "${files[@]}"; cd "$source_dir" && find third_party -type f | LC_ALL=C sort | xargs sha256sum) \
  | sha256sum | cut -c1-12)
out="$cache/$version-$source_hash/kubevirt-render"

if [[ -x $out ]]; then
  echo "$out"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "${files[@]}" "$work/"
cd "$work"

echo "building kubevirt-render on kubevirt.io/kubevirt $version (first run only: a few minutes)" >&2
go mod init kubevirt-render 2>/dev/null
gomod=$(go mod download -json "kubevirt.io/kubevirt@$version" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("GoMod") or sys.exit(d.get("Error", "no go.mod")))')
# Every replace line of kubevirt's go.mod: versions as they are; staging paths to the published
# module of the same version (kubevirt.io/api, kubevirt.io/client-go), or to the copy of the
# staging module in third_party/staging/ (the glog shim of v1.4 and v1.5, not published at all).
python3 - "$gomod" "$version" "$source_dir/third_party/staging" <<'PY' | while read -r replacement; do go mod edit -replace "$replacement"; done
import os, re, sys
gomod, version, staging = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
block = re.search(r"^replace \((.*?)^\)", gomod, re.M | re.S)
if not block:
    sys.exit("no replace block in kubevirt's go.mod")
for line in block.group(1).splitlines():
    parts = line.split("//")[0].split()
    if len(parts) == 3 and parts[1] == "=>" and parts[2].startswith("./staging/src/"):   # old => ./path
        if parts[0] in ("kubevirt.io/api", "kubevirt.io/client-go"):
            print(f"{parts[0]}={parts[0]}@{version}")
        elif os.path.isdir(os.path.join(staging, parts[0])):
            print(f"{parts[0]}={os.path.join(staging, parts[0])}")
        else:
            sys.exit(f"kubevirt's go.mod replaces {parts[0]} with its staging copy, which is neither published nor in {staging}")
    elif len(parts) == 3 and parts[1] == "=>":      # old => new
        print(f"{parts[0]}={parts[2]}")
    elif len(parts) == 4 and parts[1] == "=>":      # old => new version
        print(f"{parts[0]}={parts[2]}@{parts[3]}")
PY
# Modules that KubeVirt vendors and the module proxy does not serve (third_party/README.md): each
# replaced, at its version only, by the copy of KubeVirt's vendor/ kept in third_party/.
for dir in "$source_dir"/third_party/kubevirt.io/*@*/; do
  dir=${dir%/}
  go mod edit -replace "kubevirt.io/${dir##*/}=$dir"
done
go mod edit -require "kubevirt.io/kubevirt@$version"
go mod tidy 2>"$work/tidy.log" || { cat "$work/tidy.log" >&2; exit 1; }
# Built beside its final place and renamed into it, so that two builds racing cannot leave half a
# binary; the Go build cache (GOCACHE) is shared by every version.
mkdir -p "$(dirname "$out")"
tmp=$(mktemp "$out.XXXXXX")
CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$tmp" .
mv -f "$tmp" "$out"
echo "$out"
