"""Who wins, by how much, how sure: comparisons of summarised rows, computed from the rows.

* A method's result is the calibration validation chose (the highest mean validation H over
  its seeds); test H never chooses.
* Two rows are compared per seed (the same split and hold-outs): the mean of the paired H
  differences and its 95% Student-t interval (the *seed interval*: how the difference moves
  with the split and the training seed).
* Where both rows carry their per-image test results (``per_image``), a paired, class-stratified
  bootstrap over test images: within each seed, each test class's images are redrawn with
  replacement, the same draws for both rows, and each replicate's difference is the mean over
  the seeds of the H differences; the 2.5th and 97.5th percentiles are the *test-image
  interval* (how the difference moves with the sample of test images). The draws depend only
  on the seed and the test classes, from a fixed generator, so pages are reproducible.
* A row is *tied* with another when either interval contains zero, when fewer than two seeds
  pair up (no seed interval), or when the difference is within the methods' cross-machine
  tolerance (``zsbench.store.tolerance``): a rerun elsewhere could reverse it. Rows without per-image
  results are judged on the seed interval alone.
* Across data sets: the mean rank of each method and the critical difference of the Nemenyi
  test (Demšar, JMLR 2006), under which two mean ranks are not told apart.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from zsbench.store.rows import PER_IMAGE_GROUPS, unpack_bits
from zsbench.store.summary import Estimate, SummaryRow
from zsbench.store.tolerance import cross_machine_tolerance


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


BOOTSTRAP_REPLICATES = 1000
BOOTSTRAP_SEED = 2006  # with the row's seed, the generator of the test-image draws


@attrs.frozen
class Interval:
    """A 95% bootstrap interval of an H difference (percentage points)."""

    low: float
    high: float
    seeds: int  # the seeds whose test images were redrawn
    replicates: int

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        """The bounds with their signs; one that rounds to zero reads +0.0, never -0.0."""
        return f"[{round(self.low, 1) or 0.0:+.1f}, {round(self.high, 1) or 0.0:+.1f}]"


def _test_set(per_image: Mapping[str, Any]) -> str:
    """The test classes and their sizes: rows with the same ones scored the same test images."""
    return json.dumps({g: [per_image[g]["classes"], per_image[g]["sizes"]] for g in PER_IMAGE_GROUPS})


def _draws(sizes: Sequence[int], rng: np.random.Generator, replicates: int) -> np.ndarray:
    """(replicates, images) indices: each class's images redrawn with replacement from that class."""
    sizes_np = np.asarray(sizes, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes_np)[:-1]]).astype(np.int64)
    return np.repeat(starts, sizes_np) + rng.integers(0, np.repeat(sizes_np, sizes_np), (replicates, int(sizes_np.sum())))


@functools.lru_cache(maxsize=512)
def _replicated_h(seed: int, encoded: str, replicates: int) -> np.ndarray:
    """H of a row's test predictions on each bootstrap replicate of its test images (float64,
    ``replicates`` values). The draws come from the seed and the test classes only, so rows of
    one seed and test set see the same draws: the bootstrap is paired."""
    per_image = json.loads(encoded)
    rng = np.random.default_rng([BOOTSTRAP_SEED, seed])
    accuracy = {}
    for group in PER_IMAGE_GROUPS:
        sizes = per_image[group]["sizes"]
        if not sizes:
            accuracy[group] = np.zeros(replicates)
            continue
        bits = unpack_bits(per_image[group]["bits"], sum(sizes)).astype(np.float64)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        hits = np.add.reduceat(bits[_draws(sizes, rng, replicates)], starts, axis=1)
        accuracy[group] = (hits / np.asarray(sizes)).mean(axis=1)
    u, s = accuracy["unseen"], accuracy["seen"]
    total = u + s
    return np.where(total > 0, 2 * u * s / np.where(total > 0, total, 1), 0.0)


def bootstrap_interval(a_rows: Sequence[Mapping[str, Any]], b_rows: Sequence[Mapping[str, Any]],
                        replicates: int = BOOTSTRAP_REPLICATES) -> Interval | None:
    """The paired test-image bootstrap of the H difference a - b over the seeds both have; None
    when no seed pairs up, or a paired row has no per-image results or another test set."""
    by_seed = {r["seed"]: r for r in b_rows}
    paired = [(r, by_seed[r["seed"]]) for r in sorted(a_rows, key=lambda r: r["seed"]) if r["seed"] in by_seed]
    if not paired:
        return None
    diffs = np.zeros(replicates)
    for ra, rb in paired:
        pa, pb = ra.get("per_image"), rb.get("per_image")
        if pa is None or pb is None or _test_set(pa) != _test_set(pb):
            return None
        diffs += (_replicated_h(ra["seed"], json.dumps(pa, sort_keys=True), replicates)
                  - _replicated_h(rb["seed"], json.dumps(pb, sort_keys=True), replicates))
    low, high = np.percentile(100 * diffs / len(paired), [2.5, 97.5])
    return Interval(float(low), float(high), len(paired), replicates)


@attrs.frozen
class Pair:
    """``a`` against ``b``: the per-seed differences of H (a - b, points) over shared seeds, and
    the test-image bootstrap interval of that difference where the rows allow one."""

    a: SummaryRow
    b: SummaryRow
    difference: Estimate
    tolerance: float  # percentage points
    bootstrap: Interval | None = None  # None: a row has no per-image results

    @classmethod
    def of(cls, a: SummaryRow, b: SummaryRow) -> Pair:
        h_b = {r["seed"]: r["H"] for r in b.rows}
        diffs = [r["H"] - h_b[r["seed"]] for r in sorted(a.rows, key=lambda r: r["seed"]) if r["seed"] in h_b]
        return cls(a, b, Estimate.of(diffs), tolerance(a, b), bootstrap_interval(a.rows, b.rows))

    @property
    def tied(self) -> bool:
        return self.why.startswith("tied")

    @property
    def why(self) -> str:
        d = self.difference
        if d.n < 2 or np.isnan(d.half_width):
            return "tied: fewer than two paired seeds, no seed interval"
        if abs(d.mean) <= self.tolerance:
            return f"tied: within the cross-machine tolerance ({self.tolerance:.1f})"
        if d.mean - d.half_width <= 0 <= d.mean + d.half_width:
            return "tied: the seed interval contains 0"
        if self.bootstrap is not None and 0 in self.bootstrap:
            return "tied: the test-image interval contains 0"
        return "ahead" if d.mean > 0 else "behind"


def rank_labels(rows: Sequence[SummaryRow], versus: Sequence[Pair | None] | None = None) -> list[str]:
    """Ranks of rows sorted best first. The best row and every row tied with it (``versus_best``)
    share rank 1, so a row marked ``=1`` is exactly a row not told apart from the best. Any other
    row is ranked by its place, sharing the rank of the row above when within the cross-machine
    tolerance of it (that row not being of the first group: ties are not chained into it).
    ``=`` marks a shared rank. ``versus``: ``versus_best(rows)`` where the caller has it already."""
    versus = versus_best(rows) if versus is None else versus
    first = [i == 0 or (pair is not None and pair.tied) for i, pair in enumerate(versus)]
    ranks: list[int] = []
    for i, s in enumerate(rows):
        if first[i]:
            ranks.append(1)
        elif not first[i - 1] and abs(rows[i - 1].estimates["H"].mean - s.estimates["H"].mean) <= tolerance(rows[i - 1], s):
            ranks.append(ranks[-1])
        else:
            ranks.append(i + 1)
    return [f"={rank}" if ranks.count(rank) > 1 else str(rank) for rank in ranks]


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
