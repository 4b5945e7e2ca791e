#!/usr/bin/env bash
# The first `make run` as a new user meets it, measured: a fresh clone of HEAD in a scratch
# directory, its crates downloaded beforehand (`cargo fetch`, not timed) and the wasm32-wasip1
# target installed, an empty target directory and wasmtime code cache, no kwctl on PATH (so the
# in-repo host is built). Then, unless --no-timings, `cargo build --timings` of the host and of the
# module, each in its own empty target directory, for the shares of the crates that take the time.
# Writes the results into the block `first-run` of docs/performance.md (hack/doc-block.py) and
# keeps the --timings reports (cargo-timing.html) in the scratch directory it prints.
#
#   hack/measure-first-run.sh [--no-timings] [--runs N]
#
# Run it on an otherwise idle machine: a build's wall time says nothing while other builds share
# the cores (the load average is recorded with the numbers). Only committed changes are measured.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
timings=true
runs=1
while (($#)); do
  case $1 in
    --no-timings) timings=false ;;
    --runs) runs=$2; shift ;;
    *) echo "usage: $0 [--no-timings] [--runs N]" >&2; exit 2 ;;
  esac
  shift
done

load=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git -C "$root" rev-parse HEAD)
work=$(mktemp -d "${TMPDIR:-/tmp}/first-run.XXXXXX")
echo "scratch directory: $work (commit $commit)" >&2

# No kwctl on PATH: drop every PATH entry that holds one.
path=""
IFS=: read -ra entries <<<"$PATH"
for entry in "${entries[@]}"; do
  [[ -x "$entry/kwctl" ]] || path="${path:+$path:}$entry"
done
fresh_env=(env -u CARGO_TARGET_DIR -u KWCTL -u POLICY_HOST PATH="$path" XDG_CACHE_HOME="$work/cache")

rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
results="$work/results"
: >"$results"
for run in $(seq 1 "$runs"); do
  clone="$work/clone-$run"
  git clone --quiet --no-checkout "$root" "$clone"
  git -C "$clone" checkout --quiet --detach "$commit"
  (cd "$clone" && cargo fetch --locked --quiet)
  rm -rf "$work/cache"
  echo "run $run: time make run in $clone" >&2
  start=$(date +%s.%N)
  # The user and system CPU time of everything make runs, from the shell's own accounting.
  if ! cpu=$( { cd "$clone" && TIMEFORMAT='%U %S' && time "${fresh_env[@]}" make run >"$work/stdout-$run" 2>"$work/stderr-$run"; } 2>&1 ); then
    cat "$work/stderr-$run" >&2
    echo "run $run: make run failed; nothing written" >&2
    exit 1
  fi
  end=$(date +%s.%N)
  grep -vx 'examples/run.sh' "$work/stdout-$run" >"$work/verdicts-$run"
  if ! diff -u "$clone/examples/verdicts.txt" "$work/verdicts-$run" >&2; then
    echo "run $run: the verdicts differ from examples/verdicts.txt; nothing written" >&2
    exit 1
  fi
  echo "$start $end $cpu" >>"$results"
  # The next `make run`: nothing to build, the machine code from wasmtime's cache.
  again_start=$(date +%s.%N)
  (cd "$clone" && "${fresh_env[@]}" make run >/dev/null 2>&1)
  again_end=$(date +%s.%N)
  echo "again $again_start $again_end" >>"$results"
done

if $timings; then
  clone="$work/clone-1"
  for part in host module; do
    if [[ $part == host ]]; then
      build=(cargo build -p policy-host --timings)
    else
      build=(cargo build --release --target wasm32-wasip1 -p hook-sidecar-policy --timings)
    fi
    echo "cargo build --timings of the $part in an empty target directory" >&2
    (cd "$clone" && "${fresh_env[@]}" CARGO_TARGET_DIR="$work/timings-$part" "${build[@]}" 2>"$work/timings-$part.log")
  done
fi

python3 - "$work" "$runs" "$timings" <<'PY' | LOADAVG="$load" python3 "$root/hack/doc-block.py" \
  "$root/docs/performance.md" first-run --by "hack/measure-first-run.sh" --stdin
import json, pathlib, re, sys

work, runs, timings = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "true"
first, again = [], []
for line in (work / "results").read_text().splitlines():
    fields = line.split()
    if fields[0] == "again":
        again.append(float(fields[2]) - float(fields[1]))
    else:
        start, end, user, system = map(float, fields)
        first.append((end - start, user + system))

def minutes(seconds):
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s" if seconds >= 60 else f"{seconds:.1f} s"

print("`make run` from a fresh clone, crates downloaded, `wasm32-wasip1` installed, empty target "
      "directory and wasmtime cache, no kwctl; every verdict as in `examples/verdicts.txt`.\n")
print("| run | wall time | user + system CPU | the next `make run` |")
print("|---|---|---|---|")
for i, ((wall, cpu), next_run) in enumerate(zip(first, again), 1):
    print(f"| {i} | **{minutes(wall)}** | {minutes(cpu)} | {next_run:.1f} s |")

def units(report):
    """The units of a cargo --timings report, from the data the HTML page embeds."""
    text = report.read_text(encoding="utf-8")
    match = re.search(r"const UNIT_DATA = (\[.*?\]);\n", text, re.S)
    if not match:
        sys.exit(f"{report}: no UNIT_DATA: has cargo's --timings report changed?")
    total = re.search(r"<td>Total time:</td><td>([\d.]+)s", text)
    return json.loads(match.group(1)), float(total.group(1)) if total else None

if timings:
    print()
    for part, what in (("host", "the in-repo host (`cargo build -p policy-host`)"),
                       ("module", "the module (`cargo build --release --target wasm32-wasip1`)")):
        data, total = units(work / f"timings-{part}" / "cargo-timings" / "cargo-timing.html")
        busy = sum(u["duration"] for u in data)
        # A crate's units together: its library, build script, and copies built for the host
        # (proc-macros) and the target.
        crates = {}
        for u in data:
            key = f"{u['name']} {u['version']}"
            count, seconds = crates.get(key, (0, 0.0))
            crates[key] = (count + 1, seconds + u["duration"])
        print(f"`cargo build --timings` of {what}: {len(crates)} crates in {len(data)} units, "
              f"{minutes(total) if total else '?'} wall, {minutes(busy)} of unit time. "
              "The crates that take the most, with their share of the unit time:\n")
        print("| crate | units | time | share |")
        print("|---|---|---|---|")
        for key, (count, seconds) in sorted(crates.items(), key=lambda kv: -kv[1][1])[:15]:
            print(f"| {key} | {count} | {seconds:.1f} s | {seconds / busy:.1%} |")
        print()
PY
echo "reports: $work/timings-host/cargo-timings/cargo-timing.html, $work/timings-module/cargo-timings/cargo-timing.html" >&2
