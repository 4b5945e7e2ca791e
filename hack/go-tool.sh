#!/usr/bin/env bash
# Builds a Go tool from the Go module proxy once and prints the path of its binary, cached under
# ~/.cache keyed by module version: helm (the chart's lint and rendering), crane (the sync job's
# OCI image, without a Docker engine; the loopback registry of the signature tests), cosign (signs
# the images of those tests) and actionlint (the GitHub workflows).
#
# Usage: hack/go-tool.sh helm|crane|cosign|actionlint
# Env:   GO_TOOL_CACHE (default ~/.cache/hook-sidecar-policy/tools)
set -euo pipefail

case ${1:-} in
  helm) module=helm.sh/helm/v3/cmd/helm version=v3.22.0 ;;
  crane) module=github.com/google/go-containerregistry/cmd/crane version=v0.22.1 ;;
  cosign) module=github.com/sigstore/cosign/v2/cmd/cosign version=v2.6.5 ;;
  actionlint) module=github.com/rhysd/actionlint/cmd/actionlint version=v1.7.12 ;;
  *)
    echo "usage: $0 helm|crane|cosign|actionlint" >&2
    exit 2
    ;;
esac
name=$1
cache=${GO_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hook-sidecar-policy/tools}
bin="$cache/$name-$version/$name"

if [[ ! -x $bin ]]; then
  echo "building $name $version from the Go module proxy (first run only)" >&2
  mkdir -p "$cache"
  # A directory of this run's own: two builds racing each finish theirs, and the first to move
  # it into place wins (the second finds the tool there and drops its copy).
  tmp=$(mktemp -d "$cache/$name-$version.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath -ldflags=-s "$module@$version"
  if [[ ! -x $bin ]]; then
    mv -T "$tmp" "$(dirname "$bin")" 2>/dev/null || test -x "$bin"
  fi
fi
echo "$bin"
