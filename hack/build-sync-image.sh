#!/usr/bin/env bash
# Builds the sync job's OCI image without a Docker engine: the job as a static binary (Rust's
# musl target) in one layer, no shell, no libc, user 65532, entrypoint the binary. crane
# (go-containerregistry, from the Go module proxy) writes the image.
#
# Usage:
#   hack/build-sync-image.sh layout DIR          the image for this machine's arch as an OCI layout
#   hack/build-sync-image.sh push REF [ARCH...]  a multi-arch image pushed to REF (e.g.
#                                                registry.example.com/org/hook-sidecar-sync:v0.1.0);
#                                                ARCH: amd64 (default), arm64
# crane pushes with the credentials of `crane auth login` / ~/.docker/config.json.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
crane=$("$root/hack/go-tool.sh" crane)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/sync/Cargo.toml" | head -n1)
entrypoint=/usr/local/bin/hook-sidecar-sync
target_dir=${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')}

work=$(mktemp -d)
registry_pid=
cleanup() {
  [[ -n $registry_pid ]] && kill "$registry_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

rust_target() {
  case $1 in
    amd64) echo x86_64-unknown-linux-musl ;;
    arm64) echo aarch64-unknown-linux-musl ;;
    *) echo "unsupported arch $1 (amd64, arm64)" >&2; exit 2 ;;
  esac
}

# One image for one arch, pushed to $2: a reproducible layer (owner root, mtime 0) holding the
# binary only, then the config: entrypoint, user, platform, port, labels.
image_for_arch() {
  local arch=$1 ref=$2 triple
  triple=$(rust_target "$arch")
  rustup target list --installed | grep -qx "$triple" || rustup target add "$triple" >&2
  cargo build --locked --profile image --quiet --manifest-path "$root/Cargo.toml" \
    --target "$triple" -p hook-sidecar-sync >&2
  local rootfs="$work/rootfs-$arch"
  install -D -m 0755 "$target_dir/$triple/image/hook-sidecar-sync" "$rootfs$entrypoint"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
    -C "$rootfs" -cf "$work/layer-$arch.tar" usr
  "$crane" append --oci-empty-base -f "$work/layer-$arch.tar" -t "$ref" >/dev/null
  "$crane" mutate "$ref" -t "$ref" \
    --entrypoint "$entrypoint" --user 65532:65532 --set-platform "linux/$arch" \
    --exposed-ports 8080/tcp \
    --label org.opencontainers.image.title=hook-sidecar-sync \
    --label org.opencontainers.image.version="$version" \
    --label org.opencontainers.image.source=https://github.com/kubewarden-contrib/hook-sidecar-policy \
    --label org.opencontainers.image.licenses=Apache-2.0 >/dev/null
}

host_arch() {
  case $(uname -m) in
    x86_64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) echo "unsupported machine $(uname -m)" >&2; exit 2 ;;
  esac
}

# A registry in memory on loopback, for building a local layout (crane mutates registry images).
# Sets $registry; run in this shell (not in $(...)) so that cleanup can stop it.
start_local_registry() {
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$crane" registry serve --address "127.0.0.1:$port" >/dev/null 2>"$work/registry.log" &
  registry_pid=$!
  for _ in $(seq 100); do
    if "$crane" catalog "127.0.0.1:$port" >/dev/null 2>&1; then
      registry="127.0.0.1:$port"
      return
    fi
    sleep 0.1
  done
  echo "crane registry serve did not start: $(cat "$work/registry.log")" >&2
  exit 1
}

case ${1:-} in
  layout)
    out=${2:?usage: $0 layout DIR}
    start_local_registry
    ref="$registry/hook-sidecar-sync:v$version"
    image_for_arch "$(host_arch)" "$ref"
    rm -rf "$out"
    mkdir -p "$(dirname "$out")"
    "$crane" pull --format=oci "$ref" "$out"
    echo "$out"
    ;;
  push)
    ref=${2:?usage: $0 push REF [ARCH...]}
    shift 2
    archs=("$@")
    ((${#archs[@]})) || archs=(amd64)
    manifests=()
    for arch in "${archs[@]}"; do
      image_for_arch "$arch" "$ref-$arch"
      manifests+=(-m "$ref-$arch")
    done
    "$crane" index append "${manifests[@]}" -t "$ref" >/dev/null
    "$crane" digest "$ref"
    ;;
  *)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
