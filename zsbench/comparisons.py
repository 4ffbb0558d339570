"""Who wins, by how much, how sure: comparisons of summarised rows, computed from the rows.

* A method's result is the calibration validation chose (the highest mean validation H over
  its seeds); test H never chooses.
* Two rows are compared per seed (the same split and hold-outs): the mean of the paired H
  differences and its 95% Student-t interval. A row is *tied* with another when that interval
  contains zero, when fewer than two seeds pair up (no interval), or when the difference is
  within the methods' cross-machine tolerance (``zsbench.tolerance``): a rerun elsewhere could
  reverse it.
* Across data sets: the mean rank of each method and the critical difference of the Nemenyi
  test (Demšar, JMLR 2006), under which two mean ranks are not told apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
import numpy as np

from zsbench.summary import Estimate, SummaryRow
from zsbench.tolerance import cross_machine_tolerance


def chosen_calibrators(summaries: Sequence[SummaryRow]) -> dict[str, str]:
    """method -> the calibrator whose rows have the highest mean validation H (first seen wins
    a tie)."""
    best: dict[str, tuple[float, str]] = {}
    for s in summaries:
        val = float(np.mean([r["val_H"] for r in s.rows]))
        if s.method not in best or val > best[s.method][0]:
            best[s.method] = (val, s.calibrator)
    return {method: calibrator for method, (_, calibrator) in best.items()}


def validated(summaries: Sequence[SummaryRow]) -> tuple[list[SummaryRow], list[SummaryRow]]:
    """(each method's validation-chosen summary, best test H first; the other calibrations)."""
    chosen = chosen_calibrators(summaries)
    main = [s for s in summaries if chosen[s.method] == s.calibrator]
    return ranked(main), ranked([s for s in summaries if chosen[s.method] != s.calibrator])


def ranked(summaries: Sequence[SummaryRow]) -> list[SummaryRow]:
    return sorted(summaries, key=lambda s: -s.estimates["H"].mean)


def plugin(s: SummaryRow) -> str:
    """The method plugin behind an entry (entries name their rows, plugins the method)."""
    return s.rows[0].get("method_plugin") or s.method


def tolerance(a: SummaryRow, b: SummaryRow) -> float:
    """The larger of the two methods' cross-machine tolerances on H, in percentage points."""
    return 100 * max(cross_machine_tolerance(plugin(a)), cross_machine_tolerance(plugin(b)))


@attrs.frozen
class Pair:
    """``a`` against ``b``: the per-seed differences of H (a - b, points) over shared seeds."""

    a: SummaryRow
    b: SummaryRow
    difference: Estimate
    tolerance: float  # percentage points

    @classmethod
    def of(cls, a: SummaryRow, b: SummaryRow) -> Pair:
        h_b = {r["seed"]: r["H"] for r in b.rows}
        diffs = [r["H"] - h_b[r["seed"]] for r in sorted(a.rows, key=lambda r: r["seed"]) if r["seed"] in h_b]
        return cls(a, b, Estimate.of(diffs), tolerance(a, b))

    @property
    def tied(self) -> bool:
        d = self.difference
        if d.n < 2 or np.isnan(d.half_width):
            return True
        return abs(d.mean) <= self.tolerance or d.mean - d.half_width <= 0 <= d.mean + d.half_width

    @property
    def why(self) -> str:
        d = self.difference
        if d.n < 2:
            return "tied: fewer than two paired seeds, no interval"
        if abs(d.mean) <= self.tolerance:
            return f"tied: within the cross-machine tolerance ({self.tolerance:.1f})"
        if self.tied:
            return "tied: the interval contains 0"
        return "ahead" if d.mean > 0 else "behind"


def rank_labels(rows: Sequence[SummaryRow]) -> list[str]:
    """Competition ranks of rows sorted best first; a row whose mean H is within the
    cross-machine tolerance of the row above shares its rank (``=`` marks a shared rank)."""
    labels: list[str] = []
    rank = 1
    for i, s in enumerate(rows):
        if i and abs(rows[i - 1].estimates["H"].mean - s.estimates["H"].mean) > tolerance(rows[i - 1], s):
            rank = i + 1
        labels.append(str(rank))
    shared = {label for label in labels if labels.count(label) > 1}
    return [f"={label}" if label in shared else label for label in labels]


def versus_best(rows: Sequence[SummaryRow]) -> list[Pair | None]:
    """Each row against the best (None for the best itself)."""
    return [None if i == 0 else Pair.of(rows[0], s) for i, s in enumerate(rows)]


def pairs(rows: Sequence[SummaryRow], top: int = 5) -> list[Pair]:
    """Every pair among the ``top`` rows, the better-ranked first."""
    head = list(rows[:top])
    return [Pair.of(a, b) for i, a in enumerate(head) for b in head[i + 1:]]


@attrs.frozen
class Ranking:
    """Mean ranks of methods over data sets (rank 1 = best H on a data set; ties share the mean
    rank) and the Nemenyi critical difference at 95%."""

    methods: tuple[str, ...]  # best mean rank first
    mean_ranks: tuple[float, ...]
    datasets: tuple[str, ...]
    ranks: Mapping[str, Mapping[str, float]]  # data set -> method -> rank
    critical_difference: float  # NaN with fewer than two methods

    def groups(self) -> list[tuple[int, int]]:
        """Maximal runs (first, last index) of methods whose mean ranks all lie within the
        critical difference: the bars of the critical-difference diagram."""
        runs: list[tuple[int, int]] = []
        for i in range(len(self.methods)):
            j = max(k for k in range(i, len(self.methods))
                    if self.mean_ranks[k] - self.mean_ranks[i] <= self.critical_difference)
            if j > i and not any(a <= i and j <= b for a, b in runs):
                runs.append((i, j))
        return runs


def aggregate_ranking(results: Mapping[str, Mapping[str, float]]) -> Ranking | None:
    """``results``: data set -> method -> mean test H of the method's validated row. Only the
    methods measured on every data set are ranked; None when fewer than two data sets or two
    such methods remain."""
    from scipy.stats import rankdata, studentized_range

    if len(results) < 2:
        return None
    common = sorted(set.intersection(*(set(by_method) for by_method in results.values())))
    if len(common) < 2:
        return None
    datasets = tuple(results)
    ranks = {d: dict(zip(common, rankdata([-results[d][m] for m in common]).tolist())) for d in datasets}
    mean = {m: float(np.mean([ranks[d][m] for d in datasets])) for m in common}
    order = sorted(common, key=lambda m: (mean[m], m))
    k, n = len(common), len(datasets)
    q = studentized_range.ppf(0.95, k, np.inf) / np.sqrt(2)
    return Ranking(tuple(order), tuple(mean[m] for m in order), datasets, ranks,
                   float(q * np.sqrt(k * (k + 1) / (6 * n))))
