#!/usr/bin/env python3
"""The size of the policy module and of the published, annotated module, against the budget.

    hack/module-size.py MODULE ANNOTATED [--annotated-by kwctl|policy-host] [--check]

Prints a markdown table (what `make bench` writes into docs/performance.md). With `--check`
(`make module-size`), fails when ANNOTATED, what `kwctl push` publishes and policy-server
downloads, is over the budget. `policy-host annotate` keeps the module's bytes and appends the
metadata; `kwctl annotate` also re-encodes the module (walrus) and records its version, which makes
it larger by a few KB (walrus encodes wasm-opt's output less compactly). So policy-host's output is checked against the budget
less KWCTL_ALLOWANCE, and hack/verify-annotate.sh (`make verify-kubewarden`) checks that kwctl's is
never more than KWCTL_ALLOWANCE larger: the budget checked on policy-host's output holds for
kwctl's.
"""
import os
import sys

BUDGET = 512 * 1024
# How much larger kwctl's annotated module may be than policy-host's (checked by
# hack/verify-annotate.sh).
KWCTL_ALLOWANCE = 4096


def main():
    argv = sys.argv[1:]
    annotated_by = "kwctl or policy-host"
    if "--annotated-by" in argv:
        at = argv.index("--annotated-by")
        annotated_by = argv[at + 1]
        del argv[at:at + 2]
    args = [a for a in argv if a != "--check"]
    if len(args) != 2:
        sys.exit(__doc__)
    module, annotated = (os.path.getsize(path) for path in args)

    def spaced(n):
        return f"{n:,}".replace(",", " ")

    print("| module | bytes | of the budget |")
    print("|---|---|---|")
    print(f"| the policy module (release build) | {spaced(module)} | {module / BUDGET:.0%} |")
    print(f"| `annotated-policy.wasm` (with `policy-metadata.yml` and `README.md`), by {annotated_by} "
          f"| {spaced(annotated)} | {annotated / BUDGET:.0%} |")
    print(f"\nBudget: {spaced(BUDGET)} bytes.")
    limit = BUDGET - KWCTL_ALLOWANCE if annotated_by == "policy-host" else BUDGET
    if "--check" in sys.argv and annotated > limit:
        allowance = (f" less KWCTL_ALLOWANCE ({KWCTL_ALLOWANCE}), what kwctl's module may add"
                     if limit != BUDGET else "")
        sys.exit(f"{args[1]}: {annotated} bytes, over the budget of {BUDGET} bytes (512 KiB)"
                 f"{allowance} by {annotated - limit}: shorten README.md (embedded by annotate) "
                 "or shrink the module")


if __name__ == "__main__":
    main()
