#!/usr/bin/env bash
# `make sync-bench`: the propagation benchmark back to back and as single edits, as one markdown
# table (hack/doc-block.py writes it into sync/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "| run | changes | Setting change → policy updated, ms: p50 / p90 / p99 / max | of which the Setting's PATCH, ms | apply requests (warm-up included) / policy writes seen | job VmRSS, KiB: after start / after the changes / 5 s later / peak |"
echo "|---|---|---|---|---|---|"
for pause in 0 200; do
  PAUSE_MS=$pause cargo bench --quiet -p hook-sidecar-sync --profile host --bench propagation
done
