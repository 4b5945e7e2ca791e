#!/usr/bin/env bash
# Re-runs test_data/generate.py and fails, showing the difference, when any file it writes differs
# from the one on disk: the fixtures are what the generator writes, committed or not.
set -euo pipefail
cd "$(dirname "$0")/.."

generated=(test_data examples e2e-tests/bench)
before=$(mktemp -d)
trap 'rm -rf "$before"' EXIT
for dir in "${generated[@]}"; do
  mkdir -p "$before/$dir"
  cp -a "$dir/." "$before/$dir/"
done

python3 test_data/generate.py

status=0
for dir in "${generated[@]}"; do
  diff -ru "$before/$dir" "$dir" || status=1
done
if ((status)); then
  echo "test_data/generate.py changed the files above: commit what it writes" >&2
fi
exit "$status"
