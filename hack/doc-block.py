#!/usr/bin/env python3
"""Runs a measuring command and writes its output into a generated block of a Markdown file.

    hack/doc-block.py FILE NAME --by WHAT -- COMMAND [ARG...]

The block is the text between the lines `<!-- BEGIN GENERATED NAME -->` and
`<!-- END GENERATED NAME -->` of FILE. COMMAND runs with its stderr passed through; when it
succeeds, its stdout replaces the block's content, under a line that names WHAT (the command a
reader runs, e.g. `make bench`), the machine (CPU model, cores, load average before the run), the
date and the commit. When the command fails, or the block is missing, FILE is left as it was and
the script fails: a number in the docs is either the output of its command or absent.

`--stdin` instead of `-- COMMAND` takes the output from stdin (for a caller that measured already).
"""
import argparse
import datetime
import os
import pathlib
import platform
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def markers(name):
    return f"<!-- BEGIN GENERATED {name} -->", f"<!-- END GENERATED {name} -->"


def cpu_model():
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit():
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    sha = git("rev-parse", "--short=12", "HEAD") or "unknown"
    # Only the files that decide the numbers: a docs edit does not make a measurement "dirty".
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!*.md")
    return f"{sha} (with uncommitted changes)" if dirty else sha


def provenance(by, load):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"Written by `{by}` on {cpu_model()}, {os.cpu_count()} cores, load average "
            f"{load} at the start; {now}; commit {commit()}.")


def block_pattern(path, name):
    """The block's pattern in the file's text; fails unless the file has the block exactly once."""
    begin, end = markers(name)
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(rf"^{re.escape(begin)}\n.*?^{re.escape(end)}$", re.M | re.S)
    if len(pattern.findall(text)) != 1:
        sys.exit(f"{path}: expected exactly one block `{begin}` ... `{end}`")
    return pattern, text


def replace_block(path, name, content):
    pattern, text = block_pattern(path, name)
    begin, end = markers(name)
    body = content.strip("\n")
    path.write_text(pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text), encoding="utf-8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=pathlib.Path)
    parser.add_argument("name")
    parser.add_argument("--by", required=True, help="the command a reader runs to regenerate it")
    parser.add_argument("--stdin", action="store_true", help="read the output from stdin")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    command = argv[split + 1:]
    if args.stdin == bool(command):
        parser.error("give either --stdin or -- COMMAND")
    block_pattern(args.file, args.name)  # fail before measuring when the block is missing
    # LOADAVG: the load a caller read before it measured, when it measured before calling this.
    load = os.environ.get("LOADAVG") or " ".join(f"{x:.1f}" for x in os.getloadavg())
    if command:
        result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
        if result.returncode != 0:
            sys.exit(f"{' '.join(command)} failed ({result.returncode}); {args.file} left as it was")
        output = result.stdout
    else:
        output = sys.stdin.read()
    if not output.strip():
        sys.exit(f"{args.name}: no output to write")
    replace_block(args.file, args.name, provenance(args.by, load) + "\n\n" + output)
    print(f"{args.file}: block {args.name} written", file=sys.stderr)


if __name__ == "__main__":
    main()
