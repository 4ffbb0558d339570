"""Leaderboard figures: H per entry, calibration curves, seen-unseen curves and setting sweeps, as PNG files.

Every line is a mean over seeds with its 95% confidence band (``zsbench.store.summary.Estimate``, in
percent). Figures are drawn on matplotlib's Agg canvas without pyplot, so plotting never touches
a global backend or needs a display. A ``Palette`` gives each method one colour in every figure
of the site; figures are drawn narrow with large type, so their labels stay readable when a
phone shrinks them to its width.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs
import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from zsbench.store.summary import Estimate, SummaryRow

FONT_SIZE = 11  # points, at DPI below: about 10 px tall on a 390 px phone for a 5.5-inch figure
DPI = 110
COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
           "#1f78b4", "#b2182b", "#35978f", "#762a83")  # colour-blind-safe first (Dark2), then Paired
BAR_ROWS = 8  # the H bar chart's rows: with the page's header, it fits a desktop's first screen
CURVE_POINTS = 201  # resolution when seeds swept different parameter grids
METRIC_TITLES = {"u": "unseen accuracy u", "s": "seen accuracy s", "H": "harmonic mean H"}

Curve = Mapping[str, Sequence[float]]  # params, u, s, H (accuracies in [0, 1])


class Palette:
    """One colour per method plugin for the whole site, assigned in sorted plugin order over every
    row of the build, so a method has the same colour in every figure of every page. Entries of
    one plugin (e.g. one method with several kinds of side information) share its colour and are
    told apart by line style; plugins beyond the palette reuse its colours."""

    STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2)))

    def __init__(self, entries: Mapping[str, str]) -> None:
        """``entries``: entry name -> its method plugin."""
        plugins = sorted(set(entries.values()))
        self._plugin = dict(entries)
        self._colour = {p: COLOURS[i % len(COLOURS)] for i, p in enumerate(plugins)}
        self._variant = {e: i for p in plugins for i, e in enumerate(sorted(e for e, q in entries.items() if q == p))}

    def colour(self, name: str) -> str:
        """The colour of an entry's or a plugin's method."""
        return self._colour.get(self._plugin.get(name, name), COLOURS[0])

    def dashes(self, name: str) -> str | tuple:
        """The line style telling an entry from the other entries of its plugin."""
        return self.STYLES[self._variant.get(name, 0) % len(self.STYLES)]


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    fig.set_dpi(DPI)
    return fig


def _plain(label: object) -> str:
    """A label drawn as itself: a ``$`` would start matplotlib's mathtext (and a malformed
    formula fails the whole figure)."""
    return str(label).replace("$", r"\$")


def _readable(draw: Callable[..., Path | None]) -> Callable[..., Path | None]:
    """Draw with the site's type size (matplotlib reads it when each text is made)."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context({"font.size": FONT_SIZE}):
            return draw(*args, **kwargs)

    return wrapper


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


def _draw(ax, b: Band, label: str, marker: str | None = None, **style):
    """The mean line (labelled with its number of seeds when there are several) and its band."""
    (line,) = ax.plot(b.x, b.mean, label=_plain(label if b.seeds == 1 else f"{label} (n={b.seeds})"), marker=marker,
                      linewidth=1.8, **style)
    if np.any(b.high > b.low):
        ax.fill_between(b.x, b.low, b.high, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def _title(fig: Figure, title: str) -> None:
    """A figure title wrapped to the figure's width, so long data set names are never clipped."""
    width = int(fig.get_figwidth() * 9)
    fig.suptitle("\n".join(textwrap.wrap(_plain(title), width)), fontsize=FONT_SIZE)


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")  # a legend under the axes stays in the picture
    return path


@_readable
def calibration_figure(
    curves: Mapping[str, Mapping[str, Sequence[Curve]]],
    title: str,
    path: Path,
    palette: Palette | None = None,
    chosen: Mapping[str, Mapping[str, float]] | None = None,
) -> Path | None:
    """H against the calibration parameter: one panel per calibrator, one line per method (in
    the method's palette colour; a method page's lines are seeds, in the default cycle).

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
    fig = _figure(5.5, 4.4 * len(panels))
    for i, (cal, bands) in enumerate(panels.items()):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        for label, b in bands.items():
            style = {"color": palette.colour(label), "linestyle": palette.dashes(label)} if palette else {}
            line = _draw(ax, b, label, **style)
            if (x := (chosen or {}).get(cal, {}).get(label)) is not None:
                ax.plot([x], [np.interp(x, b.x, b.mean)], marker="o", markersize=7, color=line.get_color())
        ax.set_xlabel(_plain(f"{cal} parameter"))
        ax.set_ylabel("H (%)")
        ax.set_title(_plain(cal))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _title(fig, title)
    return _save(fig, path)


@_readable
def seen_unseen_figure(
    curves: Mapping[tuple[str, str], Sequence[Curve]],
    chosen: Mapping[tuple[str, str], tuple[float, float]],
    title: str,
    path: Path,
    palette: Palette,
) -> Path | None:
    """Seen-unseen accuracy curves (Chao et al.): mean s against mean u as the calibration
    parameter moves, and every row's operating point (``chosen``: (method, calibrator) -> (s, u)
    in percent), so both calibrations of a method show: a dot on its curve when calibrated, a
    square when not. ``curves``: (method, calibrator) -> one curve per seed."""
    lines = {
        key: (s, u)
        for key, cs in curves.items()
        if (s := band(cs, "s")) is not None and (u := band(cs, "u")) is not None
    }
    if not lines:
        return None
    methods = sorted({method for method, _ in chosen} | {method for method, _ in lines})
    fig = _figure(5.5, 5.5 + 0.25 * (len(methods) + 2))
    ax = fig.add_subplot(1, 1, 1)
    for (method, _), (s, u) in lines.items():
        ax.plot(s.mean, u.mean, linewidth=1.8, color=palette.colour(method), linestyle=palette.dashes(method))
    for (method, calibrator), point in chosen.items():
        ax.plot(*point, marker="o" if (method, calibrator) in lines else "s", color=palette.colour(method),
                markersize=7, linestyle="none")
    handles = [Line2D([], [], color=palette.colour(m), linestyle=palette.dashes(m), linewidth=1.8, label=_plain(m))
               for m in methods]
    handles += [Line2D([], [], color="#333333", marker="o", linestyle="none", label="calibrated: chosen parameter"),
                Line2D([], [], color="#333333", marker="s", linestyle="none", label="no calibration")]
    ax.set_xlabel("seen accuracy s (%)")
    ax.set_ylabel("unseen accuracy u (%)")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    _title(fig, title)
    return _save(fig, path)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _spans_decades(values: Sequence[float]) -> bool:
    """Positive values spread over more than a decade (ridge strengths) read best on a log axis."""
    return min(values) > 0 and max(values) / min(values) > 10


@_readable
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
    fig = _figure(5.5, 3.2 * 3)  # one panel under the other: readable at a phone's width
    for i, metric in enumerate(("H", "u", "s")):
        ax = fig.add_subplot(3, 1, i + 1)
        for calibrator, points in series.items():
            points = sorted(points, key=lambda p: position[p[0]])
            x = np.array([position[v] for v, _ in points])
            _draw(ax, _band(x, [row.estimates[metric] for _, row in points]), calibrator, marker="o")
        if not numeric:
            ax.set_xticks(list(position.values()), [_plain(v) for v in values])
        elif _spans_decades(values):
            ax.set_xscale("log")
        ax.set_xlabel(_plain(setting))
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(METRIC_TITLES[metric])
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _title(fig, title)
    return _save(fig, path)


@_readable
def h_bar_figure(estimates: Mapping[str, Estimate], ranks: Mapping[str, str], title: str, path: Path,
                 palette: Palette, methods: Mapping[str, str], top: int = BAR_ROWS) -> Path:
    """H per entry as horizontal bars with 95% CI whiskers clipped to [0, 100], the page's first
    figure: ``estimates`` (label -> estimate, best first; the first ``top`` are drawn), ``ranks``
    (label -> rank as the table prints it, ``=1`` for the rows tied with the best), ``methods``
    (label -> its entry, for the colour). Each label is
    written above its bar after its rank, so labels keep the figure's full width (and their size)
    on a phone; rows tied with the best are solid, the others pale, and a dashed line marks the
    best mean. The title goes under the axis: the page's heading is right above the chart."""
    labels = list(estimates)[:top]
    fig = _figure(5.5, 0.7 + 0.34 * len(labels))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(labels))
    means = np.array([estimates[k].mean for k in labels])
    half = np.nan_to_num(np.array([estimates[k].half_width for k in labels]))
    low, high = means - np.clip(means - half, 0, 100), np.clip(means + half, 0, 100) - means
    tied = [ranks.get(k) == "=1" or i == 0 for i, k in enumerate(labels)]
    ax.barh(y, means, xerr=[low, high], color=[palette.colour(methods[k]) for k in labels], ecolor="#333333", capsize=3,
            height=0.42)
    for bar, solid in zip(ax.patches, tied):
        bar.set_alpha(1.0 if solid else 0.35)
    ax.axvline(means[0], color="#333333", linestyle="--", linewidth=0.8)
    for i, k in enumerate(labels):
        ax.text(0.6, i - 0.25, _plain(f"{ranks.get(k, '')}  {k}"), va="bottom", ha="left",
                fontweight="bold" if tied[i] else "normal")
        ax.text(min(means[i] + high[i], 100) + 1, i, f"{means[i]:.1f}", va="center", fontsize="small")
    ax.set_yticks([])
    ax.set_ylim(len(labels) - 0.5, -1.0)  # best on top, room for the first label
    ax.set_xlim(0, 108)
    shown = "" if len(estimates) <= top else f"; the best {top} of {len(estimates)} rows"
    ax.set_xlabel(_plain(f"{title}: H on test (%), mean and 95% CI{shown}; solid, bold: tied with #1"), wrap=True)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


@_readable
def critical_difference_figure(methods: Sequence[str], mean_ranks: Sequence[float], cd: float,
                               groups: Sequence[tuple[int, int]], title: str, path: Path, palette: Palette) -> Path:
    """Demšar's critical-difference diagram: mean ranks on an axis (1 = best, left), the
    critical difference as a scale bar, and a bar under each group of methods not told apart."""
    k = len(methods)
    fig = _figure(5.5, 1.8 + 0.38 * k)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_xlim(0.5, k + 0.5)
    ax.set_ylim(-(k + len(groups) + 1), 2)
    ax.axhline(0, color="#333333", linewidth=1)
    ax.set_xticks(range(1, k + 1))
    ax.xaxis.tick_top()
    ax.set_yticks([])
    for spine in ("left", "right", "bottom"):
        ax.spines[spine].set_visible(False)
    if np.isfinite(cd):
        ax.plot([1, 1 + cd], [1.2, 1.2], color="#b2182b", linewidth=2)
        ax.text(1 + cd / 2, 1.45, f"CD = {cd:.2f}", ha="center", fontsize="small", color="#b2182b")
    for i, (method, rank) in enumerate(zip(methods, mean_ranks)):
        y = -(i + 1)
        ax.plot([rank, rank], [0, y], color=palette.colour(method), linewidth=1)
        ax.plot([rank], [0], marker="o", color=palette.colour(method))
        ax.text(rank + 0.08, y, _plain(f"{method} ({rank:.2f})"), va="center", fontsize="small")
    for j, (first, last) in enumerate(groups):
        y = -(k + 1 + j) + 0.4
        ax.plot([mean_ranks[first], mean_ranks[last]], [y, y], color="#333333", linewidth=4, solid_capstyle="butt")
    ax.set_xlabel("mean rank (1 = best)")
    ax.xaxis.set_label_position("top")
    _title(fig, title)
    return _save(fig, path)
