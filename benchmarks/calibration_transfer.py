"""Does a calibration parameter chosen on validation transfer to test? Per seed, the validation
and test curves (H, u and s against the swept parameter) of one method and each calibrator given, read from
published rows, with the validated choice and the test optimum marked; and, per method, the
operating point each stage's model starts from (u and s with no calibration) against H and the
test oracle H.

    python benchmarks/calibration_transfer.py docs/leaderboard/results/flo.jsonl \
        --method clarel --calibrator metric-rescaling --calibrator metric-rescaling-quantile \
        --out docs/calibration-transfer-flo.png \
        --table docs/leaderboard/_calibration-transfer-flo.md

scripts/regenerate-leaderboard.sh runs it so after the leaderboard: the figure and the table (a
snippet docs/cub50.md includes) always come from the published rows.

The test curves are only drawn here, after the run: no choice reads them.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from zsbench.store.load import load_rows
from zsbench.store.summary import Estimate

STAGES = {"validation": "tab:blue", "test": "tab:red"}


def figure(rows: list[dict], method: str, calibrators: list[str]) -> Figure:
    """Two rows of panels per calibrator (H; u and s), one column per seed."""
    per = {c: sorted((r for r in rows if r["method"] == method and r["calibrator"] == c), key=lambda r: r["seed"])
           for c in calibrators}
    for calibrator, mine in per.items():
        if not mine:
            raise SystemExit(f"error: no rows of {method} with {calibrator}")
    seeds = max(len(mine) for mine in per.values())
    fig = Figure(figsize=(4 * seeds, 6.4 * len(calibrators)), layout="constrained")
    axes = fig.subplots(2 * len(calibrators), seeds, squeeze=False)
    for c, (calibrator, mine) in enumerate(per.items()):
        for k, r in enumerate(mine):
            top, bottom = axes[2 * c][k], axes[2 * c + 1][k]
            for stage, colour in STAGES.items():
                curve = r["curves"][stage]
                x = np.asarray(curve["params"])
                h = 100 * np.asarray(curve["H"])
                top.plot(x, h, color=colour, label=f"{stage} H")
                top.axvline(x[h.argmax()], color=colour, ls=":", lw=1)
                bottom.plot(x, 100 * np.asarray(curve["u"]), color=colour, label=f"{stage} u")
                bottom.plot(x, 100 * np.asarray(curve["s"]), color=colour, ls="--", label=f"{stage} s")
            top.set_title(f"seed {r['seed']}: chosen {r['calibration_param']:.3g}, H {100 * r['H']:.1f} "
                          f"(oracle {100 * r['oracle_H']:.1f})", fontsize=9)
            bottom.set_xlabel(calibrator.replace("-", " ") + " parameter")
        axes[2 * c][0].set_ylabel(f"{calibrator}\nH (%); dotted: each curve's best")
        axes[2 * c + 1][0].set_ylabel("u (solid), s (dashed) (%)")
        axes[2 * c][0].legend(fontsize=8)
        axes[2 * c + 1][0].legend(fontsize=8)
    first = next(iter(per.values()))[0]
    fig.suptitle(f"{first['dataset']}: {method} + {', '.join(calibrators)}, validation against test, per seed")
    return fig


def operating_points(rows: list[dict]) -> list[str]:
    """Per calibrated method: u and s at the neutral parameter on each stage, H, oracle H."""
    by: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        if r["calibrator"] != "none" and r.get("curves"):
            by[(r["method"], r["calibrator"])].append(r)
    out = ["| method | calibrator | validation u / s, uncalibrated | test u / s, uncalibrated | H | test oracle H | seeds |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for (method, calibrator), rs in sorted(by.items()):
        val, test = (("-", "-") if calibrator.endswith("-quantile") else  # q = 0 is not "uncalibrated"
                     (" / ".join(str(_at_neutral(rs, stage, m)) for m in ("u", "s")) for stage in ("validation", "test")))
        out.append(f"| {method} | {calibrator} | {val} | {test} | {Estimate.of(r['H'] for r in rs)} | "
                   f"{Estimate.of(r['oracle_H'] for r in rs)} | {len(rs)} |")
    return out


def _at_neutral(rows: list[dict], stage: str, metric: str) -> Estimate:
    return Estimate.of(_neutral(r["curves"][stage], metric) for r in rows)


def _neutral(curve: dict, metric: str) -> float:
    """The metric where the parameter is 0 (no calibration; every calibrator's grid holds it)."""
    x = np.asarray(curve["params"])
    return float(np.asarray(curve[metric])[np.abs(x).argmin()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+", help="results databases or exported .jsonl rows")
    parser.add_argument("--method", default="clarel")
    parser.add_argument("--calibrator", action="append",
                        help="a calibrator to draw (repeat for several; default: metric-rescaling)")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--table", type=Path, help="write the operating points here (else print them)")
    args = parser.parse_args()
    rows = [row for path in args.rows for row in load_rows(path)]
    figure(rows, args.method, args.calibrator or ["metric-rescaling"]).savefig(args.out, dpi=110)
    table = "\n".join(operating_points(rows))
    if args.table is None:
        print(table)
    else:
        args.table.write_text(f"<!-- generated by `python benchmarks/calibration_transfer.py`: rerun it, do not edit -->\n\n{table}\n")


if __name__ == "__main__":
    main()
