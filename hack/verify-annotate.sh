#!/usr/bin/env bash
# The in-repo host's `annotate` against kwctl's: the same module, metadata and README annotated by
# both must carry the same metadata, but for the annotation in which kwctl records its own
# version. kwctl also re-encodes the module (walrus); the host keeps the module's bytes, which the
# linker already writes without padding (build.rs), so the two differ by a few hundred bytes, in
# either direction. `make module-size` checks the host's output when no kwctl is on PATH against
# the budget less KWCTL_ALLOWANCE (hack/module-size.py), so kwctl's must be within that allowance
# of the host's: checked too, with both sizes printed against the budget. Part of `make
# verify-kubewarden`.
#
#   KWCTL=/path/to/kwctl hack/verify-annotate.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
: "${KWCTL:?set KWCTL to a kwctl binary}"
target_dir=$(hack/target-dir)

module=$(hack/build-module.sh)
# shellcheck disable=SC2086 # HOST_FEATURES is a list of cargo arguments
cargo build --quiet -p policy-host ${HOST_FEATURES:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$KWCTL" annotate -m policy-metadata.yml -u README.md -o "$work/kwctl.wasm" "$module"
"$target_dir/debug/policy-host" annotate -m policy-metadata.yml -u README.md -o "$work/host.wasm" "$module"

python3 - "$work/kwctl.wasm" "$work/host.wasm" <<'PY'
import json, sys

def leb128(data, at):
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at

def metadata(path):
    data = open(path, "rb").read()
    at, found = 8, []
    while at < len(data):
        section, at = data[at], at + 1
        size, at = leb128(data, at)
        if section == 0:
            name_len, name_at = leb128(data, at)
            if data[name_at:name_at + name_len] == b"io.kubewarden.metadata":
                found.append(json.loads(data[name_at + name_len:at + size]))
        at += size
    if len(found) != 1:
        sys.exit(f"{path}: {len(found)} metadata sections")
    return found[0], len(data)

(kwctl, kwctl_size), (host, host_size) = metadata(sys.argv[1]), metadata(sys.argv[2])
version = kwctl.get("annotations", {}).pop("io.kubewarden.kwctl", None)
if version is None:
    sys.exit("kwctl's metadata has no io.kubewarden.kwctl annotation: has kwctl changed?")
if kwctl != host:
    keys = sorted(set(kwctl) | set(host))
    diff = [k for k in keys if kwctl.get(k) != host.get(k)]
    sys.exit(f"policy-host annotate differs from kwctl {version} in: {', '.join(diff)}")
sys.path.insert(0, "hack")
from importlib import import_module
size = import_module("module-size")
budget, allowance = size.BUDGET, size.KWCTL_ALLOWANCE
print(f"annotate: the same metadata as kwctl {version}; annotated module {kwctl_size} bytes "
      f"with kwctl, {host_size} with policy-host (budget {budget})")
if kwctl_size > host_size + allowance:
    sys.exit(f"kwctl's module is {kwctl_size - host_size} bytes larger than policy-host's, more "
             f"than KWCTL_ALLOWANCE ({allowance}): make module-size without kwctl would check less "
             "than what is published")
if kwctl_size > budget:
    sys.exit("over the budget")
PY
