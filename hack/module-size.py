#!/usr/bin/env python3
"""The size of the policy module and of the published, annotated module, against the budget.

    hack/module-size.py MODULE ANNOTATED [--check]

Prints a markdown table (what `make bench` writes into docs/performance.md). With `--check`
(`make module-size`), fails when ANNOTATED, what `kwctl push` publishes and policy-server
downloads, is over the budget.
"""
import os
import sys

BUDGET = 512 * 1024


def main():
    args = [a for a in sys.argv[1:] if a != "--check"]
    if len(args) != 2:
        sys.exit(__doc__)
    module, annotated = (os.path.getsize(path) for path in args)
    print("| module | bytes | of the budget |")
    print("|---|---|---|")
    print(f"| the policy module (release build) | {module:,} | {module / BUDGET:.0%} |".replace(",", " "))
    print(f"| `annotated-policy.wasm`: with `policy-metadata.yml` and `README.md` | {annotated:,} "
          f"| {annotated / BUDGET:.0%} |".replace(",", " "))
    print(f"\nBudget: {BUDGET:,} bytes; the metadata and the README add {annotated - module:,}.".replace(",", " "))
    if "--check" in sys.argv and annotated > BUDGET:
        sys.exit(f"{args[1]}: {annotated} bytes, over the budget of {BUDGET} bytes (512 KiB) by "
                 f"{annotated - BUDGET}: shorten README.md (embedded by annotate) or shrink the module")


if __name__ == "__main__":
    main()
