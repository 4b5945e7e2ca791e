"""Turns the runs of e2e-tests/probe.sh into markdown: per request, each module's instructions
and page faults per fresh-instance evaluation, with ratios to the do-nothing module's, and where
the policy's instructions go.

Each run line names a callgrind output (collected inside the measured evaluations only) and the
perf map wasmtime wrote for that process, which gives the address range of every compiled wasm
function: callgrind names code without symbols by its address, and the map turns those addresses
into the module's function names.
"""
import argparse
import bisect
import json
import re
from collections import defaultdict

REFERENCE = "do_nothing_floor"
POLICY = "hook_sidecar_policy"
NAMES = {
    "do_nothing_floor": "do-nothing module",
    "parse_only_floor": "parse-only module",
    "hook_sidecar_policy": "this policy",
}
ADDRESS = re.compile(r"^0x([0-9a-fA-F]+)$")


def read_callgrind(path):
    """Self and inclusive instructions per function, as {(object, name): [self, inclusive]}.

    The format (callgrind's "Callgrind Format Specification"): `ob=`, `fl=` and `fn=` set the
    current object, file and function, with `(id) name` defining a compressed name and `(id)`
    reusing it; `cob=`/`cfn=` name a call's target and `calls=` precedes the line with the call's
    inclusive cost; every other line of numbers is a self cost (positions first, then events).
    """
    names = {"ob": {}, "fn": {}}
    costs = defaultdict(lambda: [0, 0])
    current = {"ob": "???", "fn": "???"}
    positions = 1
    after_calls = False
    with open(path) as lines:
        for line in lines:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            if line.startswith("positions:"):
                positions = len(line.split(":", 1)[1].split())
                continue
            key, sep, value = line.partition("=")
            if sep and key in ("ob", "fn", "cob", "cfn", "fl", "fi", "fe", "cfl", "cfi"):
                kind = {"cob": "ob", "cfn": "fn"}.get(key, key)
                if kind in names:
                    match = re.match(r"^\((\d+)\)(?: (.*))?$", value)
                    if match:
                        number, name = match.groups()
                        if name is not None:
                            names[kind][number] = name
                        value = names[kind].get(number, value)
                    if key in ("ob", "fn"):
                        current[key] = value
                continue
            if sep and key == "calls":
                after_calls = True
                continue
            if not (line[0].isdigit() or line[0] in "+-*"):
                continue  # headers: version, creator, events, summary, totals, ...
            fields = line.split()
            cost = int(fields[positions]) if len(fields) > positions else 0
            entry = costs[(current["ob"], current["fn"])]
            if after_calls:
                entry[1] += cost
                after_calls = False
            else:
                entry[0] += cost
                entry[1] += cost
    return costs


def read_perf_map(path):
    """Sorted (start, end, name) of the compiled functions."""
    ranges = []
    with open(path) as lines:
        for line in lines:
            start, size, name = line.rstrip("\n").split(" ", 2)
            start = int(start, 16)
            ranges.append((start, start + int(size, 16), name))
    ranges.sort()
    return ranges


def module_function(ranges, starts, name):
    """The wasm function that callgrind's address-named function is in, or None."""
    match = ADDRESS.match(name)
    if not match:
        return None
    address = int(match.group(1), 16)
    index = bisect.bisect_right(starts, address) - 1
    if index >= 0 and ranges[index][0] <= address < ranges[index][1]:
        return ranges[index][2], address == ranges[index][0]
    return None


def short(name, width=110):
    name = re.sub(r"^wasm\[\d+\]::function\[\d+\]::", "", name)
    return name if len(name) <= width else name[: width - 3] + "..."


def analyse(run):
    ranges = read_perf_map(run["perf_map"])
    starts = [r[0] for r in ranges]
    per = run["callgrind_iterations"]
    module_self = defaultdict(int)
    module_inclusive = defaultdict(int)
    host_self = defaultdict(int)
    for (obj, name), (self_cost, inclusive) in read_callgrind(run["callgrind"]).items():
        found = module_function(ranges, starts, name)
        if found:
            function, is_entry = found
            module_self[function] += self_cost
            if is_entry:
                module_inclusive[function] += inclusive
        else:
            host_self[name] += self_cost
    return {
        "total": (sum(module_self.values()) + sum(host_self.values())) / per,
        "module": sum(module_self.values()) / per,
        "host": sum(host_self.values()) / per,
        "module_self": {k: v / per for k, v in module_self.items()},
        "module_inclusive": {k: v / per for k, v in module_inclusive.items()},
        "host_self": {k: v / per for k, v in host_self.items()},
    }


def top(costs, count):
    return sorted(costs.items(), key=lambda item: -item[1])[:count]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    with open(args.runs) as lines:
        runs = [json.loads(line) for line in lines if line.strip()]
    results = {(r["request_name"], r["module_name"]): (r, analyse(r)) for r in runs}
    requests = list(dict.fromkeys(r["request_name"] for r in runs))

    print(f"Per fresh-instance evaluation: instructions (callgrind, {runs[0]['callgrind_iterations']} "
          f"evaluations), minor page faults ({runs[0]['iterations']} evaluations); settings-50.\n")
    print("| request | module | instructions | × do-nothing | in the module | in the host "
          "| page faults | × do-nothing |")
    print("|---|---|---|---|---|---|---|---|")
    for request in requests:
        reference_run, reference = results.get((request, REFERENCE), (None, None))
        for module in NAMES:
            if (request, module) not in results:
                continue
            run, result = results[(request, module)]
            if not run["accepted"]:
                raise SystemExit(f"{request}: {module} rejected the request")
            faults = run["minor_faults_per_evaluation"]
            ratio, fault_ratio = "-", "-"
            if reference:
                ratio = f"{result['total'] / reference['total']:.2f}"
                reference_faults = reference_run["minor_faults_per_evaluation"]
                if faults and reference_faults:
                    fault_ratio = f"{faults / reference_faults:.2f}"
            print(f"| {request} | {NAMES[module]} | {result['total']:,.0f} | {ratio} "
                  f"| {result['module']:,.0f} | {result['host']:,.0f} "
                  f"| {faults if faults is None else f'{faults:.1f}'} | {fault_ratio} |")

    for request in requests:
        if (request, POLICY) not in results:
            continue
        _, policy = results[(request, POLICY)]
        reference = results[(request, REFERENCE)][1] if (request, REFERENCE) in results else None
        print(f"\n**{request}**: the policy's instructions by wasm function, per evaluation "
              f"(self: in the function itself; inclusive: with what it calls)\n")
        print("| self | function |")
        print("|---|---|")
        for name, cost in top(policy["module_self"], args.top):
            print(f"| {cost:,.0f} | `{short(name)}` |")
        print("\n| inclusive | function |")
        print("|---|---|")
        for name, cost in top(policy["module_inclusive"], args.top):
            print(f"| {cost:,.0f} | `{short(name)}` |")
        print("\n| host self, policy | host self, do-nothing | host function |")
        print("|---|---|---|")
        for name, cost in top(policy["host_self"], args.top // 2):
            floor = reference["host_self"].get(name, 0) if reference else 0
            print(f"| {cost:,.0f} | {floor:,.0f} | `{short(name)}` |")


main()
