"""Leaderboard figures: H per entry, calibration curves, seen-unseen curves and setting sweeps, as PNG files.

Every line is a mean over seeds with its 95% confidence band (``zsbench.summary.Estimate``, in
percent). Figures are drawn on matplotlib's Agg canvas without pyplot, so plotting never touches
a global backend or needs a display.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
import numpy as np
from matplotlib.figure import Figure

from zsbench.summary import Estimate, SummaryRow

CURVE_POINTS = 201  # resolution when seeds swept different parameter grids
METRIC_TITLES = {"u": "unseen accuracy u", "s": "seen accuracy s", "H": "harmonic mean H"}

Curve = Mapping[str, Sequence[float]]  # params, u, s, H (accuracies in [0, 1])


@attrs.frozen
class Band:
    """A curve's mean over seeds and the 95% CI band around it, in percent."""

    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seeds: int


def common_grid(curves: Sequence[Curve]) -> np.ndarray | None:
    """The x values on which every seed's curve can be compared: the shared grid when all seeds
    used one, else a fine grid over the range they all cover (None when they cover no range)."""
    grids = [np.asarray(c["params"], dtype=float) for c in curves]
    if all(len(g) == len(grids[0]) and np.allclose(g, grids[0]) for g in grids):
        return grids[0] if len(grids[0]) > 1 else None
    low, high = max(g.min() for g in grids), min(g.max() for g in grids)
    return np.linspace(low, high, CURVE_POINTS) if low < high else None


def band(curves: Sequence[Curve], metric: str) -> Band | None:
    """Mean and 95% CI over seeds of ``metric`` against the calibration parameter."""
    grid = common_grid(curves)
    if grid is None:
        return None
    values = []
    for c in curves:
        x = np.asarray(c["params"], dtype=float)
        order = np.argsort(x)
        values.append(np.interp(grid, x[order], np.asarray(c[metric], dtype=float)[order]))
    estimates = [Estimate.of(column) for column in np.stack(values).T]
    return _band(grid, estimates)


def _band(x: np.ndarray, estimates: Sequence[Estimate]) -> Band:
    mean = np.array([e.mean for e in estimates])
    half = np.nan_to_num(np.array([e.half_width for e in estimates]))  # one seed: no band
    low, high = np.clip(mean - half, 0, 100), np.clip(mean + half, 0, 100)  # accuracies are in [0, 100]
    return Band(np.asarray(x, dtype=float), mean, low, high, max(e.n for e in estimates))


def _draw(ax, b: Band, label: str, marker: str | None = None):
    """The mean line (labelled with its number of seeds when there are several) and its band."""
    (line,) = ax.plot(b.x, b.mean, label=label if b.seeds == 1 else f"{label} (n={b.seeds})", marker=marker, linewidth=1.5)
    if np.any(b.high > b.low):
        ax.fill_between(b.x, b.low, b.high, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def _title(fig: Figure, title: str) -> None:
    """A figure title wrapped to the figure's width, so long data set names are never clipped."""
    width = int(fig.get_figwidth() * 11)
    fig.suptitle("\n".join(textwrap.wrap(title, width)), fontsize="medium")


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def calibration_figure(
    curves: Mapping[str, Mapping[str, Sequence[Curve]]],
    title: str,
    path: Path,
    chosen: Mapping[str, Mapping[str, float]] | None = None,
) -> Path | None:
    """H against the calibration parameter: one panel per calibrator, one line per method.

    ``curves``: calibrator -> method label -> one curve per seed; ``chosen``: calibrator ->
    label -> the parameter chosen on validation, drawn as a dot on its line. Returns None when
    no calibrator swept more than one value.
    """
    panels = {
        cal: bands
        for cal, by_method in sorted(curves.items())
        if (bands := {m: b for m, cs in by_method.items() if (b := band(cs, "H")) is not None})
    }
    if not panels:
        return None
    fig = Figure(figsize=(5.5 * len(panels), 4.2))
    for i, (cal, bands) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for label, b in bands.items():
            line = _draw(ax, b, label)
            if (x := (chosen or {}).get(cal, {}).get(label)) is not None:
                ax.plot([x], [np.interp(x, b.x, b.mean)], marker="o", markersize=7, color=line.get_color())
        ax.set_xlabel(f"{cal} parameter")
        ax.set_ylabel("H (%)")
        ax.set_title(cal)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _title(fig, title)
    return _save(fig, path)


def seen_unseen_figure(
    curves: Mapping[str, Sequence[Curve]],
    chosen: Mapping[str, tuple[float, float]],
    title: str,
    path: Path,
) -> Path | None:
    """Seen-unseen accuracy curves (Chao et al.): mean s against mean u as the calibration
    parameter moves, with each method's reported operating point (``chosen``: label -> (s, u)
    in percent) marked. ``curves``: method+calibrator label -> one curve per seed."""
    lines = {
        label: (s, u)
        for label, cs in curves.items()
        if (s := band(cs, "s")) is not None and (u := band(cs, "u")) is not None
    }
    if not lines:
        return None
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot(1, 1, 1)
    for label, (s, u) in lines.items():
        (line,) = ax.plot(s.mean, u.mean, label=f"{label} (n={s.seeds})", linewidth=1.5)
        if label in chosen:
            ax.plot(*chosen[label], marker="o", color=line.get_color(), markersize=7)
    ax.set_xlabel("seen accuracy s (%)")
    ax.set_ylabel("unseen accuracy u (%)")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    _title(fig, title)
    return _save(fig, path)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _spans_decades(values: Sequence[float]) -> bool:
    """Positive values spread over more than a decade (ridge strengths) read best on a log axis."""
    return min(values) > 0 and max(values) / min(values) > 10


def sweep_figure(
    setting: str, series: Mapping[str, Sequence[tuple[object, SummaryRow]]], title: str, path: Path
) -> Path:
    """u, s and H against a swept setting (e.g. ``loss.kappa``): one panel per metric, one line
    per calibrator; ``series``: calibrator -> (setting value, summary over seeds) pairs. Numeric
    settings get a numeric axis (logarithmic when they span decades), others (encoder names) one
    tick per value. Bands are clipped to [0, 100]."""
    values = sorted({v for points in series.values() for v, _ in points}, key=str)
    numeric = all(_is_number(v) for v in values)
    if numeric:
        values = sorted(values)
    position = {v: (float(v) if numeric else float(i)) for i, v in enumerate(values)}
    fig = Figure(figsize=(10, 3.6))  # drawn near 1:1 at the page width, so labels stay readable
    for i, metric in enumerate(("H", "u", "s")):
        ax = fig.add_subplot(1, 3, i + 1)
        for calibrator, points in series.items():
            points = sorted(points, key=lambda p: position[p[0]])
            x = np.array([position[v] for v, _ in points])
            _draw(ax, _band(x, [row.estimates[metric] for _, row in points]), calibrator, marker="o")
        if not numeric:
            ax.set_xticks(list(position.values()), [str(v) for v in values])
        elif _spans_decades(values):
            ax.set_xscale("log")
        ax.set_xlabel(setting)
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(METRIC_TITLES[metric])
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _title(fig, title)
    return _save(fig, path)


def h_bar_figure(estimates: Mapping[str, Estimate], title: str, path: Path) -> Path:
    """Horizontal bars of H per entry (label -> estimate, drawn top to bottom in the given
    order) with 95% CI whiskers clipped to [0, 100], each bar labelled with its value."""
    labels = list(estimates)
    fig = Figure(figsize=(9, 1.1 + 0.25 * len(labels)))  # compact: the ranking follows it
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(labels))
    means = np.array([estimates[k].mean for k in labels])
    half = np.nan_to_num(np.array([estimates[k].half_width for k in labels]))
    low, high = means - np.clip(means - half, 0, 100), np.clip(means + half, 0, 100) - means
    ax.barh(y, means, xerr=[low, high], color="#26a69a", ecolor="#333333", capsize=3, height=0.7)
    for i, m in enumerate(means):
        ax.text(min(m + high[i], 100) + 1, i, f"{m:.1f}", va="center", fontsize="small")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 105)
    ax.set_xlabel("H on test (%), mean and 95% CI over seeds")
    ax.grid(axis="x", alpha=0.3)
    _title(fig, title)
    return _save(fig, path)
