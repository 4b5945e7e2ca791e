#!/usr/bin/env python3
"""One edition and one MSRV: every crate of the workspace, and fuzz/ outside it, declares the
workspace's edition and rust-version, and no locked dependency (of any target) asks for a newer
rustc than that rust-version. `make msrv` then builds the workspace with that very toolchain."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def metadata(manifest: Path) -> dict:
    return json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked", "--manifest-path", str(manifest)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )


def version(text: str) -> tuple[int, int, int]:
    """`1.94` and `1.94.0` are the same rust-version."""
    major, minor, patch = (text.split(".") + ["0", "0"])[:3]
    return int(major), int(minor), int(patch)


def main() -> int:
    problems = []
    workspace = metadata(ROOT / "Cargo.toml")
    fuzz = metadata(ROOT / "fuzz" / "Cargo.toml")
    members = [p for p in workspace["packages"] if p["id"] in workspace["workspace_members"]]
    members += [p for p in fuzz["packages"] if p["id"] in fuzz["workspace_members"]]
    editions = {(p["edition"], p.get("rust_version")) for p in members}
    if len(editions) != 1:
        for p in members:
            problems.append(f"{p['name']}: edition {p['edition']}, rust-version {p.get('rust_version')}")
    edition, msrv = sorted(editions, key=str)[0]
    if msrv is None:
        problems.append("no rust-version declared")
    else:
        member_ids = {p["id"] for p in members}
        for meta in (workspace, fuzz):
            for p in meta["packages"]:
                needed = p.get("rust_version")
                if p["id"] not in member_ids and needed and version(needed) > version(msrv):
                    problems.append(f"{p['name']} {p['version']} needs rustc {needed} > rust-version {msrv}")
    if problems:
        print("MSRV check failed:\n  " + "\n  ".join(sorted(set(problems))), file=sys.stderr)
        return 1
    print(f"{len(members)} crates: edition {edition}, rust-version {msrv}; no locked dependency needs more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
