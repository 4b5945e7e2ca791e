"""Turns the JSON lines of `policy-host bench` into the README's markdown table."""
import json
import sys

runs = [json.loads(line) for line in sys.stdin if line.strip()]
def case_of(run):
    """The request and the settings file, which the floor of a case shares."""
    name = lambda path: path.split("/")[-1].removesuffix(".json")
    return f"{name(run['request'])} ({name(run['settings'])})"


floors = {case_of(r): r for r in runs if "parse_only_floor" in r["module"]}
print(f"{runs[0]['iterations']} evaluations per cell after warm-up; times in µs.\n")
print("| case | payload | module | fresh instance: median (p99) | × floor | warm: median (p99) | × floor |")
print("|---|---|---|---|---|---|---|")
for r in runs:
    case = case_of(r)
    floor = floors[case]
    name = "policy" if "hook_sidecar_policy" in r["module"] else "parse-only floor"
    if not r["accepted"]:
        sys.exit(f"{case}: {name} rejected the request; the numbers would measure an error path")
    fresh, warm = r["fresh_us"], r["warm_us"]
    print(
        f"| {case} | {r['payload_bytes'] / 1024:.1f} KiB | {name} ({r['module_bytes'] / 1024:.0f} KiB) "
        f"| {fresh['median']} ({fresh['p99']}) | {fresh['median'] / floor['fresh_us']['median']:.2f} "
        f"| {warm['median']} ({warm['p99']}) | {warm['median'] / floor['warm_us']['median']:.2f} |"
    )
