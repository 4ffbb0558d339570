#!/usr/bin/env bash
# Regenerate the published FLO leaderboard from HEAD with the real data: rerun every row of
# benchmarks/flo-efficientnet.yaml (--force: nothing reused), export the rows with their full
# provenance to docs/leaderboard/results/flo.jsonl, then write the pages from those committed
# rows (refusing any row whose code or data identity is not the current one).
#
#   scripts/regenerate-leaderboard.sh [DATA_ROOT]     (default: ../shared/data)
#
# Commit docs/leaderboard/ afterwards. Run it from a clean checkout of the commit whose rows
# you publish: the rows record that commit and whether the tree was dirty.
set -euo pipefail
cd "$(dirname "$0")/.."
export ZSBENCH_DATA="$(cd "${1:-../shared/data}" && pwd)"
ZSBENCH="${ZSBENCH:-.venv/bin/zsbench}"
SPEC=benchmarks/flo-efficientnet.yaml
OUT=docs/leaderboard
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

[ -f "$ZSBENCH_DATA/flo/efficientnet_lite0.mat" ] || {
  echo "error: $ZSBENCH_DATA/flo/efficientnet_lite0.mat not found; pass the real data folder" >&2; exit 2; }
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  echo "warning: the checkout has uncommitted changes; the rows will say dirty: true" >&2
fi
"$ZSBENCH" validate "$SPEC"
"$ZSBENCH" run "$SPEC" --results "$work/results.sqlite" --force --quiet
"$ZSBENCH" export --results "$work/results.sqlite" --out "$OUT/results"
"$ZSBENCH" leaderboard --results "$OUT/results" --out "$OUT" --stale refuse
echo "regenerated $OUT from $(git rev-parse --short HEAD 2>/dev/null || echo 'a non-git tree'); commit $OUT"
