"""The CUB pages' tables from results databases or exported rows: per row (mean ± 95% CI over
seeds) and the paper's claim as rows paired by seed (per-image CLAREL minus class-level rows).

    python benchmarks/cub_subset_tables.py docs/leaderboard/results/cub-subset.jsonl
    python benchmarks/cub_subset_tables.py docs/leaderboard/results/cub50.jsonl --page docs/cub50.md \
        [--run-time "benchmarks/cub50.yaml: 1500 s wall, ..."]

With ``--page`` the tables replace the block between ``<!-- tables: begin -->`` and
``<!-- tables: end -->`` of that page (and ``--run-time`` the block between ``<!-- run-time:
begin -->`` and ``<!-- run-time: end -->``) instead of being printed.

On cub50 each per-image row is also paired with the best baseline of each kind of class-level
side information, "best" by mean validation H (never by a test number).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from pathlib import Path

from zsbench.leaderboard import load_rows
from zsbench.summary import Estimate, summarize

PER_IMAGE = ("clarel-captions-cnn-lstm", "clarel-captions-minilm")
CLAIMS = {
    "cub-subset": [("clarel-captions-minilm", "clarel-caption-means"),
                   ("clarel-captions-cnn-lstm", "clarel-caption-means"),
                   ("clarel-captions-cnn-lstm", "clarel-attributes"),
                   ("clarel-captions-minilm", "clarel-attributes"),
                   ("clarel-caption-means", "clarel-attributes")],
    "cub50": [(a, b) for a in PER_IMAGE
              for b in ("clarel-caption-means", "clarel-sentences", "clarel-attributes")],
}
BEST_BASELINE = {"cub50": PER_IMAGE}  # per-image rows also paired with the best baseline per kind
NOT_BASELINES = ("clarel", "random")
CALIBRATIONS = ("none", "calibrated")


def _calibrated(by: dict, method: str, calibration: str) -> str | None:
    """The row's calibrator name for ``calibration``: "none", or its one calibrator otherwise."""
    names = sorted({c for (m, c, _) in by if m == method})
    if calibration == "none":
        return "none" if "none" in names else None
    others = [c for c in names if c != "none"]
    return others[0] if others else None


def best_baselines(rows: list[dict]) -> dict[tuple[str, str], str]:
    """(side information, calibration) -> the baseline with the highest mean validation H."""
    summaries: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for r in summarize(rows):
        if r.rows[0]["method_plugin"] in NOT_BASELINES:
            continue
        calibration = "none" if r.calibrator == "none" else "calibrated"
        val_h = sum(x["val_H"] for x in r.rows) / len(r.rows)
        summaries.setdefault((r.rows[0]["side_information"], calibration), []).append((val_h, r.method))
    return {key: max(options)[1] for key, options in summaries.items()}


def pairs(rows: list[dict]) -> list[tuple[str, str, str]]:
    """(a, b, calibration) of the claim's comparisons that the rows hold."""
    specs = {r["spec_name"] for r in rows}
    out = [(a, b, cal) for spec in sorted(specs) for a, b in CLAIMS.get(spec, []) for cal in CALIBRATIONS]
    best = best_baselines(rows)
    for spec in sorted(specs & set(BEST_BASELINE)):
        for a in BEST_BASELINE[spec]:
            out += [(a, baseline, cal) for (_, cal), baseline in sorted(best.items())]
    return out


def tables(rows: list[dict]) -> Iterable[str]:
    yield "| row | calibration | side information | u | s | H | ZSL | seeds |"
    yield "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
    for r in summarize(rows):
        e = r.estimates
        yield (f"| {r.method} | {r.calibrator} | {r.rows[0]['side_information']} | {e['u']} | {e['s']} | "
               f"{e['H']} | {e['zsl']} | {len(r.seeds)} |")
    by = {(r["method"], r["calibrator"], r["seed"]): r for r in rows}
    yield ""
    yield "| per-image row minus other row (paired by seed) | calibration | H difference | u difference | seeds |"
    yield "| --- | --- | ---: | ---: | ---: |"
    for a, b, cal in pairs(rows):
        ca, cb = _calibrated(by, a, cal), _calibrated(by, b, cal)
        seeds = sorted(s for (m, c, s) in by if m == a and c == ca and (b, cb, s) in by)
        if not seeds:
            continue
        dh = Estimate.of(by[(a, ca, s)]["H"] - by[(b, cb, s)]["H"] for s in seeds)
        du = Estimate.of(by[(a, ca, s)]["u"] - by[(b, cb, s)]["u"] for s in seeds)
        shown = ca if ca == cb else f"{ca} / {cb}"
        yield f"| {a} - {b} | {shown} | {dh} | {du} | {len(seeds)} |"


def replace_block(page: str, name: str, body: str) -> str:
    """``page`` with the text between its ``<!-- name: begin -->`` and ``<!-- name: end -->``
    markers replaced by ``body``."""
    pattern = re.compile(rf"(<!-- {name}: begin -->\n).*?(<!-- {name}: end -->)", re.DOTALL)
    if not pattern.search(page):
        raise SystemExit(f"error: the page has no <!-- {name}: begin --> ... <!-- {name}: end --> block")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), page, count=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+", help="results databases or exported .jsonl rows")
    parser.add_argument("--page", type=Path, help="write the tables into this page's tables block")
    parser.add_argument("--run-time", help="with --page: the text of its run-time block")
    args = parser.parse_args()
    rows = [row for path in args.rows for row in load_rows(path)]
    text = "\n".join(tables(rows))
    if args.page is None:
        print(text)
        return
    page = replace_block(args.page.read_text(encoding="utf-8"), "tables", text)
    if args.run_time is not None:
        page = replace_block(page, "run-time", args.run_time)
    args.page.write_text(page, encoding="utf-8")


if __name__ == "__main__":
    main()
