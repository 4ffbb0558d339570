#!/usr/bin/env bash
# Regenerate the published leaderboard from HEAD with the real data: rerun every row of each
# published spec (--force: nothing reused; the specs run side by side, one core each), export the
# rows with their full provenance to docs/leaderboard/results/<data set>.jsonl, then write the
# pages from those committed rows (refusing any row whose code or data identity is not the
# current one): every data set's and method's page, the aggregate ranking, the method x backbone
# pages, and the snippets docs pages include: docs/leaderboard/_top-rows.md (the home page's
# current results), _run-times.md (each data set's run time) and, from every
# benchmarks/*_tables.py (which takes --results and --out), its data set's tables. Published
# specs: benchmarks/flo-efficientnet.yaml (FLO) and benchmarks/cub-subset.yaml (CUB classes
# 001-010, real captions).
#
#   scripts/regenerate-leaderboard.sh [DATA_ROOT]     (default: ../shared/data)
#
# Commit docs/leaderboard/ afterwards. Run it from a clean checkout of the commit whose rows
# you publish: the rows record that commit and whether the tree was dirty.
set -euo pipefail
cd "$(dirname "$0")/.."
export ZSBENCH_DATA="$(cd "${1:-../shared/data}" && pwd)"
ZSBENCH="${ZSBENCH:-.venv/bin/zsbench}"
PYTHON="${PYTHON:-.venv/bin/python}"  # runs benchmarks/*_tables.py
SPECS=(benchmarks/flo-efficientnet.yaml benchmarks/cub-subset.yaml)
OUT=docs/leaderboard
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

[ -f "$ZSBENCH_DATA/flo/efficientnet_lite0.mat" ] || {
  echo "error: $ZSBENCH_DATA/flo/efficientnet_lite0.mat not found; pass the real data folder" >&2; exit 2; }
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  echo "warning: the checkout has uncommitted changes; the rows will say dirty: true" >&2
fi
pids=()
for spec in "${SPECS[@]}"; do
  "$ZSBENCH" validate "$spec"
  db="$work/$(basename "$spec" .yaml).sqlite"
  log="$work/$(basename "$spec" .yaml).log"
  # /usr/bin/time (GNU time) says each spec's wall and CPU time: the published run time.
  /usr/bin/time -f "$spec: %e s wall, %U s user + %S s system CPU" -o "$log.time" \
    "$ZSBENCH" run "$spec" --results "$db" --force --quiet > "$log" 2>&1 &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { echo "error: ${SPECS[$i]} failed:" >&2; cat "$work/$(basename "${SPECS[$i]}" .yaml).log" >&2; exit 1; }
done
cat "$work"/*.log.time
for spec in "${SPECS[@]}"; do
  "$ZSBENCH" export --results "$work/$(basename "$spec" .yaml).sqlite" --out "$OUT/results"
done
rm -f "$OUT"/*.md "$OUT"/*.png  # every page is generated: none of a data set no longer published stays
"$ZSBENCH" leaderboard --results "$OUT/results" --out "$OUT" --stale refuse
# The tables a docs page includes as snippets (docs/leaderboard/_<data set>-*.md), from the same rows.
for tables in benchmarks/*_tables.py; do
  "$PYTHON" "$tables" --results "$OUT/results" --out "$OUT"
done
echo "regenerated $OUT from $(git rev-parse --short HEAD 2>/dev/null || echo 'a non-git tree'); commit $OUT"
