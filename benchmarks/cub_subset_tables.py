"""The tables of docs/cub-subset.md from results databases or exported rows: per row (mean ±
95% CI over seeds) and per-image minus class-level rows paired by seed.

    python benchmarks/cub_subset_tables.py docs/leaderboard/results/cub-subset.jsonl
"""

from __future__ import annotations

import sys

from zsbench.leaderboard import load_rows
from zsbench.summary import Estimate, summarize

PAIRS = [("clarel-captions-minilm", "clarel-caption-means"), ("clarel-captions-cnn-lstm", "clarel-caption-means"),
         ("clarel-captions-cnn-lstm", "clarel-attributes"), ("clarel-captions-minilm", "clarel-attributes"),
         ("clarel-caption-means", "clarel-attributes")]


def main() -> None:
    rows = []
    for path in sys.argv[1:]:
        rows += load_rows(path)
    print("| row | calibration | side information | u | s | H | ZSL | seeds |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in summarize(rows):
        e = r.estimates
        print(f"| {r.method} | {r.calibrator} | {r.rows[0]['side_information']} | {e['u']} | {e['s']} | "
              f"{e['H']} | {e['zsl']} | {len(r.seeds)} |")
    by = {(r["method"], r["calibrator"], r["seed"]): r for r in rows}
    print("\n| per-image row minus class-level row (paired by seed) | calibration | H difference | u difference | seeds |")
    print("| --- | --- | ---: | ---: | ---: |")
    for a, b in PAIRS:
        for cal in ("none", "metric-rescaling"):
            seeds = sorted(s for (m, c, s) in by if m == a and c == cal and (b, cal, s) in by)
            if seeds:
                dh = Estimate.of(by[(a, cal, s)]["H"] - by[(b, cal, s)]["H"] for s in seeds)
                du = Estimate.of(by[(a, cal, s)]["u"] - by[(b, cal, s)]["u"] for s in seeds)
                print(f"| {a} - {b} | {cal} | {dh} | {du} | {len(seeds)} |")


if __name__ == "__main__":
    main()
