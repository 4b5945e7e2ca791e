#!/usr/bin/env bash
# Builds the policy module as it is published and prints its path: cargo's wasm32-wasip1 build,
# then binaryen's wasm-opt -O3, which takes some 40 KB off the module (7%) for the same or fewer
# instructions per request (docs/performance.md, "Module size"): the room the `signatures` check
# needed in the 512 KiB budget. Every test, benchmark and `make run` evaluates this file.
#
#   hack/build-module.sh [PROFILE]   release (default), or probe (keeps the function names)
#
# binaryen comes from npm (the machine has Node), cached under ~/.cache keyed by its version: no
# system package, no sudo. Rebuilt only when cargo relinks the module.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
profile=${1:-release}
target_dir=$(hack/target-dir)
binaryen_version=132.0.0
tools=${GO_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hook-sidecar-policy/tools}
wasm_opt="$tools/binaryen-$binaryen_version/node_modules/binaryen/bin/wasm-opt"

rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
cargo build --quiet --profile "$profile" --target wasm32-wasip1 -p hook-sidecar-policy
built="$target_dir/wasm32-wasip1/$profile/hook_sidecar_policy.wasm"
optimized="$target_dir/wasm32-wasip1/$profile/hook_sidecar_policy.opt.wasm"

if [[ ! -x $wasm_opt ]]; then
  echo "installing binaryen $binaryen_version from npm (first run only)" >&2
  mkdir -p "$tools"
  tmp=$(mktemp -d "$tools/binaryen-$binaryen_version.XXXXXX")
  npm install --silent --no-audit --no-fund --prefix "$tmp" "binaryen@$binaryen_version" >&2
  mv -T "$tmp" "$tools/binaryen-$binaryen_version" 2>/dev/null || rm -rf "$tmp"
fi

if [[ ! $optimized -nt $built ]]; then
  # The features rustc's wasm32-wasip1 target enables: the release build is stripped of the
  # section that would tell wasm-opt. -g keeps the probe build's function names.
  features=(--enable-bulk-memory --enable-sign-ext --enable-mutable-globals
    --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue
    --enable-extended-const)
  names=()
  [[ $profile == release ]] || names=(-g)
  "$wasm_opt" "${features[@]}" "${names[@]}" -O3 "$built" -o "$optimized.$$.tmp"
  mv "$optimized.$$.tmp" "$optimized"
fi
echo "$optimized"
