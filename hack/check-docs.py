#!/usr/bin/env python3
"""The docs' own test (`make docs-check`), on every Markdown file of the repository:

1. No hand-typed measurement. Outside generated blocks (hack/doc-block.py), fenced code and
   inline code, a quantity with a unit of time, size, ratio, percentage or rate is refused unless
   it is one of LIMITS below: the limits, defaults and targets a doc has to state. Every
   generated block is one of GENERATED_BLOCKS and starts with the line its command writes.
2. Every relative link points at a file that exists, and every `#anchor` at a heading of it.
3. The README, which kwctl embeds in the module, stays short and opens with its title and the two
   commands a newcomer runs.

Prints every problem as FILE:LINE: ... and exits 1 when there is one.
"""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
README_MAX_LINES = 300

# Generated blocks, by name: the command that writes each (its provenance line names it).
GENERATED_BLOCKS = {
    "bench-floor": "make bench",
    "bench-hostile": "make bench",
    "bench-signatures": "make bench",
    "module-size": "make bench",
    "first-run": "hack/measure-first-run.sh",
    "context-aware-bench": "make context-aware-bench",
    "sync-propagation": "make sync-bench",
    "sync-stress": "make sync-bench",
}

# Pages written whole by a command (their first line names it): measured throughout, never edited.
GENERATED_FILES = {
    "docs/performance-policy-server.md": "make bench-policy-server",
}

# Quantities the docs may state outside generated blocks: limits of Kubernetes, etcd, KubeVirt,
# Kubewarden and this project, defaults of flags and settings, targets, and the sizes of the inputs
# a test or benchmark is written with. Each is a fact that only an edit of the limit, default or
# test moves; a measurement never belongs here (it goes into a generated block).
LIMITS = {
    "3 MiB": "the API server's request size limit",
    "256 KiB": "Kubernetes' limit on all of an object's annotations",
    "1.5 MiB": "etcd's default --max-request-bytes",
    "1 MiB": "the size limit of a ConfigMap (Kubewarden's policies ConfigMap)",
    "1.25 MiB": "--max-settings-bytes' default",
    "1 310 720 bytes": "--max-settings-bytes' default",
    "512 KiB": "the budget of the annotated module",
    "512 bytes": "the bound of the 33rd-entry message (tests/limits.rs), and of a policy message in the job's logs",
    "4 KiB": "the bound of a rejection message (src/validation.rs tests); KWCTL_ALLOWANCE of hack/module-size.py: what kwctl's annotated module may add to policy-host's",
    "4 kB": "the bound of a log line of the job (sync API-server tests)",
    "50 ms": "the sync job's quiet period; and the hostile-request target",
    "64 MiB": "the hostile-request memory target; the job's memory limit",
    "64 Mi": "the sync Deployment's memory limit",
    "32 Mi": "the sync Deployment's memory request",
    "5 seconds": "policy-server's get_resource cache",
    "60 seconds": "policy-server's cache of oci/v2/verify answers (and the in-repo host's)",
    "5-second": "policy-server's get_resource cache",
    "1-second": "the cache of the context-aware tests' host",
    "5 s": "policy-server's get_resource cache; the sync job's longest retry delay",
    "1 s": "the cache of the context-aware tests' host; the sync job's coalescing bound and longest watch backoff",
    "2 s": "the margin of the context-aware tests; the /healthz probe timeout of the sync tests",
    "250 ms": "the sync job's first watch retry",
    "250-500 ms": "the sync job's watch retries against a server that is down",
    "100 ms": "the sync job's first reconciliation retry",
    "10 ms": "the /healthz polling period of the sync tests",
    "30 s": "kube-rs' default watch backoff; --recreate-grace-seconds' default",
    "48 GB": "the GPU of the worked example",
    "60 minutes": "the default schedule of Kubewarden's audit scanner",
    "1 048 576 bytes": "the size limit of a ConfigMap (Kubewarden's policies ConfigMap)",
    "950 kB": "a test input: the largest Setting the PolicyServer's ConfigMap holds alone (sync API-server tests)",
    "1.3 MB": "a test input: a Setting over --max-settings-bytes (sync API-server tests)",
    "700 kB": "a test input of the ConfigMap bound (sync API-server tests)",
    "400 bytes": "the longest reason quoted in a rejection (REASON_BYTES_MAX, src/verdict.rs)",
    "400 kB": "a test input of the ConfigMap bound: another team's policy (sync API-server tests)",
    "600 kB": "a test input of the ConfigMap bound, with the launcher-Pod policy (sync API-server tests)",
    "928 KiB": "a benchmark input: the largest Setting of sync/benches/stress.rs",
        "4096 bytes": "profileValueMaxBytes' default (VALUE_MAX_BYTES_DEFAULT, src/profiles.rs); the longest pattern (PATTERN_BYTES_MAX, src/pattern.rs)",
    "2000 instructions": "the largest pattern program (PROGRAM_SIZE_MAX, src/pattern.rs)",
    "250 KB": "a test input: the red team's long annotation (tests/profiles_red_team.rs, test_data/generate.py --hostile)",
    "2.9 MB": "a test input: the red team's value on a VM CREATE (tests/profiles_red_team.rs, test_data/generate.py --hostile)",
    "243 KB": "a test input: the red team's list against a list pattern (tests/profiles_red_team.rs, test_data/generate.py --hostile)",
}

UNIT = (
    r"(?:ns|µs|us|ms|s|secs?|seconds?|min|mins|minutes?|h|hours?"
    r"|B|bytes?|kB|KB|KiB|MB|MiB|GB|GiB|Ki|Mi|Gi"
    r"|%|×|x|/s|req/s|instructions|executions|evaluations)"
)
NUMBER = r"\d+(?:[  ]\d{3})*(?:\.\d+)?"
QUANTITY = re.compile(
    rf"(?<![\w.\-/])({NUMBER}(?:\s?[-–]\s?{NUMBER})?)(?:\s?|-)({UNIT})(?:/s)?(?![\w/])"
)
FENCE = re.compile(r"^\s*(```|~~~)")
BEGIN = re.compile(r"^<!-- BEGIN GENERATED ([\w-]+) -->$")
END = re.compile(r"^<!-- END GENERATED ([\w-]+) -->$")
LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")


def not_yet(block):
    """What a block holds before its command has run: a line that states no number."""
    return f"Not written yet: run `{GENERATED_BLOCKS.get(block, '?')}`."


def markdown_files():
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    # vendor/ holds third-party crates as published, their READMEs included.
    return sorted({ROOT / p for p in listed if (ROOT / p).is_file() and not p.startswith("vendor/wasmtime-provider/")})


def slug(heading):
    """GitHub's anchor for a heading."""
    text = INLINE_CODE.sub(lambda m: m.group(2), heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path, cache={}):
    if path not in cache:
        seen, result, in_fence = {}, set(), False
        for line in path.read_text(encoding="utf-8").splitlines():
            if FENCE.match(line):
                in_fence = not in_fence
            elif not in_fence and (m := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)):
                base = slug(m.group(1))
                n = seen.get(base, 0)
                seen[base] = n + 1
                result.add(base if n == 0 else f"{base}-{n}")
        cache[path] = result
    return cache[path]


def normalized(quantity):
    return re.sub(r"[\s ]+", " ", quantity).replace("–", "-")


USED_LIMITS = set()


def check_file(path, problems):
    rel = path.relative_to(ROOT)
    lines = path.read_text(encoding="utf-8").splitlines()
    if str(rel) in GENERATED_FILES:
        command = GENERATED_FILES[str(rel)]
        if not lines or not lines[0].startswith(f"<!-- Generated by `{command}`"):
            problems.append(f"{rel}:1: a page written by `{command}` starts with the line it writes")
        return
    in_fence = False
    block, block_start, block_first = None, 0, None
    seen_blocks = set()
    for number, line in enumerate(lines, 1):
        where = f"{rel}:{number}"
        if block:
            if m := END.match(line):
                if m.group(1) != block:
                    problems.append(f"{where}: END of {m.group(1)} inside block {block}")
                elif block_first == not_yet(block):
                    print(f"{rel}:{block_start}: block {block} not written yet", file=sys.stderr)
                elif block_first is None or not block_first.startswith(
                    f"Written by `{GENERATED_BLOCKS.get(block, '?')}`"
                ):
                    problems.append(
                        f"{rel}:{block_start}: block {block} holds neither the output of "
                        f"`{GENERATED_BLOCKS.get(block, '?')}` nor the line {not_yet(block)!r}"
                    )
                block = None
            elif block_first is None and line.strip():
                block_first = line
            continue
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if m := BEGIN.match(line):
            block, block_start, block_first = m.group(1), number, None
            if block not in GENERATED_BLOCKS:
                problems.append(f"{where}: generated block {block} is not in GENERATED_BLOCKS of hack/check-docs.py")
            if block in seen_blocks:
                problems.append(f"{where}: generated block {block} twice")
            seen_blocks.add(block)
            continue
        if m := END.match(line):
            problems.append(f"{where}: END of {m.group(1)} without its BEGIN")
            continue
        check_links(path, where, line, problems)
        prose = INLINE_CODE.sub(" ", line)
        prose = re.sub(r"\]\([^)]*\)", "]", prose)  # link targets
        prose = re.sub(r"<!--.*?-->", " ", prose)
        for m in QUANTITY.finditer(prose):
            quantity = normalized(m.group(0))
            USED_LIMITS.add(quantity)
            if quantity not in LIMITS:
                problems.append(f"{where}: `{quantity}` typed by hand")
    if block:
        problems.append(f"{rel}:{block_start}: block {block} is not closed")
    if in_fence:
        problems.append(f"{rel}: a code fence is not closed")


def check_links(path, where, line, problems):
    for m in LINK.finditer(INLINE_CODE.sub(" ", line)):
        target = m.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, oci:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            problems.append(f"{where}: link to {target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{where}: link to {target}: no heading with that anchor")


def check_readme(problems):
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    if len(lines) > README_MAX_LINES:
        problems.append(
            f"README.md: {len(lines)} lines, over {README_MAX_LINES}: it is embedded in the module; "
            "move what is not for every user into docs/"
        )
    if not lines or lines[0] != "# hook-sidecar-policy":
        problems.append("README.md:1: the README starts with its title, `# hook-sidecar-policy`")
    head = "\n".join(lines[:8])
    if not re.search(r"```sh\nmake run\b.*\nmake test\b", head):
        problems.append(
            "README.md: the title is followed by a sh block whose lines are `make run` and `make test`"
        )


def main():
    problems = []
    for path in markdown_files():
        check_file(path, problems)
    check_readme(problems)
    for unused in sorted(set(LIMITS) - USED_LIMITS):
        problems.append(f"hack/check-docs.py: LIMITS lists {unused!r}, which no doc states: remove it")
    for problem in problems:
        print(problem)
    if problems:
        print(
            f"{len(problems)} problems in the docs. A measurement goes into a generated block "
            "(hack/doc-block.py, run by the command that measures it); a limit, default or target "
            "into LIMITS of hack/check-docs.py, with what it is.",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
