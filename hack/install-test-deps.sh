#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust, Go and Python toolchains, when missing:
# the wasm32-wasip1 target, and bats and jq through apt-get.
# Idempotent and quiet when everything is there.
set -euo pipefail

if ! rustup target list --installed | grep -qx wasm32-wasip1; then
  echo "installing the wasm32-wasip1 Rust target" >&2
  rustup target add wasm32-wasip1
fi

missing=()
command -v bats >/dev/null || missing+=(bats)
command -v jq >/dev/null || missing+=(jq)

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
