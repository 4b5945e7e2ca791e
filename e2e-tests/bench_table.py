"""Turns the JSON lines of `policy-host bench` into the README's markdown tables.

Default: the policy against the parse-only floor (every request must be accepted, or the numbers
would measure an error path). `--hostile`: the policy alone on requests built to be expensive,
with its verdict, the size of its message and its peak memory, against the targets.
"""
import json
import sys

MIB = 1024 * 1024
runs = [json.loads(line) for line in sys.stdin if line.strip()]


def case(run):
    """The request and, for the floor tables, the settings file, which the floor of a case shares."""
    name = lambda path: path.split("/")[-1].removesuffix(".json")
    return f"{name(run['request'])} ({name(run['settings'])})"


def floor_table():
    floors = {case(r): r for r in runs if "parse_only_floor" in r["module"]}
    print(f"{runs[0]['iterations']} evaluations per cell after warm-up; times in µs.\n")
    print("| case | payload | module | fresh instance: median (p99) | × floor | warm: median (p99) | × floor | peak memory |")
    print("|---|---|---|---|---|---|---|---|")
    for r in runs:
        floor = floors[case(r)]
        name = "policy" if "hook_sidecar_policy" in r["module"] else "parse-only floor"
        if not r["accepted"]:
            sys.exit(f"{case(r)}: {name} rejected the request; the numbers would measure an error path")
        fresh, warm = r["fresh_us"], r["warm_us"]
        print(
            f"| {case(r)} | {r['payload_bytes'] / 1024:.1f} KiB | {name} ({r['module_bytes'] / 1024:.0f} KiB) "
            f"| {fresh['median']} ({fresh['p99']}) | {fresh['median'] / floor['fresh_us']['median']:.2f} "
            f"| {warm['median']} ({warm['p99']}) | {warm['median'] / floor['warm_us']['median']:.2f} "
            f"| {r['peak_memory_bytes'] / MIB:.1f} MiB |"
        )


def hostile_table():
    print(f"{runs[0]['iterations']} evaluations per case after warm-up, fresh instance; "
          "targets: a median under 50 ms, a peak under 64 MiB.\n")
    print("| case | payload | verdict | message | fresh instance: median (p99) | peak memory |")
    print("|---|---|---|---|---|---|")
    failed = []
    for r in runs:
        fresh, peak = r["fresh_us"], r["peak_memory_bytes"]
        verdict = "accepted" if r["accepted"] else "rejected"
        print(
            f"| {case(r)} | {r['payload_bytes'] / MIB:.2f} MiB | {verdict} | {r['message_bytes']} B "
            f"| {fresh['median'] / 1000:.1f} ms ({fresh['p99'] / 1000:.1f} ms) | {peak / MIB:.1f} MiB |"
        )
        if fresh["median"] >= 50_000 or peak >= 64 * MIB:
            failed.append(case(r))
    if failed:
        # A benchmark reports; it does not fail the build (the numbers go to the README).
        print(f"\nover target: {', '.join(failed)}")


hostile_table() if sys.argv[1:] == ["--hostile"] else floor_table()
