#!/usr/bin/env bash
# Regenerate the published leaderboard from HEAD with the real data: rerun every row of each
# published spec (--force: nothing reused; two lanes side by side, one core each: FLO then the
# CUB subset, and cub50), export the rows with their full provenance to
# docs/leaderboard/results/<data set>.jsonl, then write the pages from those committed rows
# (refusing any row whose code or data identity is not the current one): every data set's and
# method's page, the aggregate ranking, the method x backbone pages, docs/leaderboard/_top-rows.md
# (the home page's current results), and docs/cub50.md's tables and run time from its rows.
# Published specs: zsbench/specs/flo-efficientnet.yaml (FLO), zsbench/specs/cub-subset.yaml (CUB
# classes 001-010) and zsbench/specs/cub50.yaml (CUB classes 001-050, the official split, real
# captions).
#
#   scripts/regenerate-leaderboard.sh [DATA_ROOT]     (default: ../shared/data)
#
# Commit docs/leaderboard/ afterwards. Run it from a clean checkout of the commit whose rows
# you publish: the rows record that commit and whether the tree was dirty.
set -euo pipefail
cd "$(dirname "$0")/.."
export ZSBENCH_DATA="$(cd "${1:-../shared/data}" && pwd)"
ZSBENCH="${ZSBENCH:-.venv/bin/zsbench}"
LANES=("zsbench/specs/flo-efficientnet.yaml zsbench/specs/cub-subset.yaml" "zsbench/specs/cub50.yaml")
read -r -a SPECS <<< "${LANES[*]}"
PYTHON="${PYTHON:-$(dirname "$ZSBENCH")/python}"
OUT=docs/leaderboard
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

[ -f "$ZSBENCH_DATA/flo/efficientnet_lite0.mat" ] || {
  echo "error: $ZSBENCH_DATA/flo/efficientnet_lite0.mat not found; pass the real data folder" >&2; exit 2; }
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  echo "warning: the checkout has uncommitted changes; the rows will say dirty: true" >&2
fi
for spec in "${SPECS[@]}"; do
  "$ZSBENCH" validate "$spec"
done
# lane SPEC...: run the specs one after the other; /usr/bin/time (GNU time) says each one's wall
# and CPU time: the published run time.
lane() {
  for spec in "$@"; do
    log="$work/$(basename "$spec" .yaml).log"
    /usr/bin/time -f "$spec: %e s wall, %U s user + %S s system CPU" -o "$log.time" \
      "$ZSBENCH" run "$spec" --results "$work/$(basename "$spec" .yaml).sqlite" --force --quiet > "$log" 2>&1 \
      || { echo "error: $spec failed:" >&2; cat "$log" >&2; return 1; }
  done
}
pids=()
for specs in "${LANES[@]}"; do
  read -r -a lane_specs <<< "$specs"
  lane "${lane_specs[@]}" &
  pids+=($!)
done
for pid in "${pids[@]}"; do
  wait "$pid" || exit 1
done
cat "$work"/*.log.time
for spec in "${SPECS[@]}"; do
  "$ZSBENCH" export --results "$work/$(basename "$spec" .yaml).sqlite" --out "$OUT/results"
done
rm -f "$OUT"/*.md "$OUT"/*.png  # every page is generated: none of a data set no longer published stays
"$ZSBENCH" leaderboard --results "$OUT/results" --out "$OUT" --stale refuse
"$PYTHON" benchmarks/cub_subset_tables.py "$OUT/results/cub50.jsonl" --page docs/cub50.md \
  --run-time "$(cat "$work/cub50.log.time") on a $(nproc)-core machine, with FLO and the CUB subset running on the other core."
echo "regenerated $OUT and docs/cub50.md's tables from $(git rev-parse --short HEAD 2>/dev/null || echo 'a non-git tree'); commit them"
