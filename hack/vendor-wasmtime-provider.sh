#!/usr/bin/env bash
# vendor/wasmtime-provider: wasmtime-provider as published on crates.io, with the two edits
# vendor/README.md explains, made by this script and nothing else.
#
#   hack/vendor-wasmtime-provider.sh            # (re)writes vendor/wasmtime-provider
#   hack/vendor-wasmtime-provider.sh --check    # fails when vendor/wasmtime-provider differs from
#                                               # what this script writes (make vendor-check)
#
# The version is the one vendor/wasmtime-provider/Cargo.toml declares; to move to another, change
# VERSION below, run the script, and `cargo update -p wasmtime-provider`.
set -euo pipefail

VERSION=2.22.0
root=$(cd "$(dirname "$0")/.." && pwd)
check=false
[[ "${1:-}" == --check ]] && check=true

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The published crate, through cargo (a throwaway package outside the workspace, so that the
# workspace's [patch] does not apply).
mkdir -p "$work/fetch/src"
touch "$work/fetch/src/lib.rs"
cat >"$work/fetch/Cargo.toml" <<EOF
[package]
name = "fetch"
version = "0.0.0"
edition = "2024"
[dependencies]
wasmtime-provider = { version = "=$VERSION", default-features = false }
[workspace]
EOF
source=$(cd "$work/fetch" && cargo metadata --format-version 1 --quiet 2>/dev/null |
  python3 -c 'import json, sys, os
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "wasmtime-provider":
        print(os.path.dirname(p["manifest_path"]))')
[[ -d "$source" ]] || { echo "wasmtime-provider $VERSION not found through cargo" >&2; exit 1; }

out="$work/wasmtime-provider"
mkdir -p "$out"
cp -r "$source/src" "$source/LICENSE" "$source/README.md" "$source/Cargo.toml" "$out/"
python3 - "$out" <<'PY'
import pathlib, re, sys

out = pathlib.Path(sys.argv[1])

def edit(path, old, new):
    text = path.read_text()
    if old not in text:
        sys.exit(f"{path}: the text to patch is not there; has wasmtime-provider changed?\n{old}")
    path.write_text(text.replace(old, new))

manifest = out / "Cargo.toml"
text = manifest.read_text()
# The examples, tests and their dev-dependencies are not vendored.
for table in (r"\[\[example\]\]", r"\[\[test\]\]", r"\[dev-dependencies\.[^\]]+\]"):
    text = re.sub(rf"\n{table}\n(?:[^\[\n][^\n]*\n)*", "\n", text)
text = re.sub(r"\n{3,}", "\n\n", text)
manifest.write_text(
    "# hook-sidecar-policy: wasmtime-provider as published on crates.io, patched by\n"
    "# hack/vendor-wasmtime-provider.sh (vendor/README.md): the `wasi` feature without the\n"
    "# `wasmtime-wasi` crate, and wasmtime without `wat`.\n#\n" + text)
# 1. The wasi feature is wasi-common (what the provider runs a module with) without
#    wasmtime-wasi, which the provider only re-exports.
edit(manifest, '"wasi-common",\n    "wasmtime-wasi",\n    "cap-std",', '"wasi-common",\n    "cap-std",')
edit(manifest, '[dependencies.wasmtime-wasi]\nversion = "46.0"\noptional = true\n\n', "")
edit(out / "src" / "lib.rs",
     "// export wasmtime and wasmtime_wasi, so that consumers of this crate can use\n"
     "// the very same version\npub use wasmtime;\n"
     '#[cfg(feature = "wasi")]\n#[cfg_attr(docsrs, doc(cfg(feature = "wasi")))]\npub use wasmtime_wasi;\n',
     "// export wasmtime, so that consumers of this crate can use the very same version\n"
     "// (hook-sidecar-policy: wasmtime_wasi is not re-exported, see vendor/README.md)\n"
     "pub use wasmtime;\n")
# 2. wasmtime without the text format: the provider is given binary modules.
edit(manifest, '    "wat",\n', "")
PY

target="$root/vendor/wasmtime-provider"
if $check; then
  diff -ru "$out" "$target" || {
    echo "vendor/wasmtime-provider is not what hack/vendor-wasmtime-provider.sh writes" >&2
    exit 1
  }
  echo "vendor/wasmtime-provider: wasmtime-provider $VERSION with the edits of vendor/README.md"
else
  rm -rf "$target"
  mkdir -p "$(dirname "$target")"
  cp -r "$out" "$target"
  echo "wrote $target" >&2
fi
