"""Results database -> Markdown leaderboard pages and PNG plots for the documentation site.

One page per data set (``pages``): the rows' context, a bar chart of H, each
method's validated row with ties to the best marked, paired comparisons, what calibration buys,
calibration and seen-unseen curves, sweeps, and numbers published in papers apart. One page per
method (``methods``), an index, and an aggregate ranking across data sets. This
module reads the inputs, draws the figures and writes the files. The leaderboard knows rows,
not methods: method, data set and calibrator names are just strings, shown as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from zsbench.errors import DataError
from zsbench.site import plots
from zsbench.site.markdown import distinct, slug
from zsbench.site.methods import method_pages
from zsbench.site.model import (
    DatasetPage,
    Reported,
    Sweep,
    pages_of,
    split_sweeps,
)
from zsbench.site.pages import (
    MAIN_COLUMNS,
    REPORTED_TITLE,
    independent_pages,
    ranking_inputs,
    render_backbones,
    render_entries,
    render_index,
    render_page,
    render_ranking,
    render_run_times,
    render_top_rows,
)
from zsbench.spec import NO_CALIBRATION
from zsbench.store import comparisons as cmp
from zsbench.store.summary import SummaryRow, summarize

__all__ = ["MAIN_COLUMNS", "REPORTED_TITLE", "Reported", "load_reported", "pages_of",
           "slug", "write_leaderboard"]

DEFAULT_REPORTED = Path("benchmarks") / "reported.yaml"
# The home page's results, included there as a snippet (excluded from the site as a page: its
# links are relative to the home page). No slug starts with "_", so no page is named so.
TOP_ROWS = "_top-rows.md"
RUN_TIMES = "_run-times.md"  # each data set's run time, included by any docs page that quotes it
ENTRIES = "_{slug}-entries.md"  # a data set's entries, a section per method, for docs pages to include
REPORTED_KEYS = {"method", "dataset", "u", "s", "H", "zsl", "source", "notes", "features", "protocol"}
REPORTED_METRICS = ("u", "s", "H", "zsl")

# --------------------------------------------------------------------------- inputs


def load_reported(path: str | Path) -> list[Reported]:
    """Published numbers: a YAML list of {method, dataset, u, s, H, zsl?, source, notes?}."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise DataError(path, f"cannot read the reported-results file: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise DataError(path, f"not valid YAML: {exc}") from None
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise DataError(path, f"expected a list of published results, got {type(raw).__name__}")
    return [_reported(path, i, item) for i, item in enumerate(raw)]


def _reported(path: Path, i: int, item: Any) -> Reported:
    where = f"entry {i}"
    if not isinstance(item, dict):
        raise DataError(path, f"{where}: expected a mapping with keys {sorted(REPORTED_KEYS)}, got {item!r}")
    unknown = sorted(set(item) - REPORTED_KEYS)
    if unknown:
        raise DataError(path, f"{where}: unknown key(s) {unknown}; allowed: {sorted(REPORTED_KEYS)}")
    for key in ("method", "dataset", "source"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise DataError(path, f"{where}: {key!r} must be a non-empty string, got {item.get(key)!r}")
    where = f"{where} ({item['method']} on {item['dataset']})"
    for key in REPORTED_METRICS:
        value = item.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100):
            raise DataError(path, f"{where}: {key!r} must be a percentage between 0 and 100 (or absent), got {value!r}")
    if all(item.get(k) is None for k in REPORTED_METRICS):
        raise DataError(path, f"{where}: give at least one of {', '.join(REPORTED_METRICS)}")
    return Reported(
        method=item["method"],
        dataset=item["dataset"],
        source=item["source"],
        notes=str(item.get("notes") or ""),
        features=str(item.get("features") or ""),
        protocol=str(item.get("protocol") or ""),
        **{k: None if item.get(k) is None else float(item[k]) for k in REPORTED_METRICS},
    )


# --------------------------------------------------------------------------- figures


def _seed_curves(summary: SummaryRow, split: str) -> list[dict[str, list[float]]]:
    """The calibration curves of ``split``, one per seed (none for uncalibrated entries)."""
    if summary.calibrator == NO_CALIBRATION:
        return []
    return [r["curves"][split] for r in summary.rows if r.get("curves", {}).get(split)]


def _figures(page: DatasetPage, plain: list[dict[str, Any]], sweeps: list[Sweep], out_dir: Path,
             palette: plots.Palette) -> dict[str, Path]:
    """Draw the page's figures into its folder; returns section key -> PNG path for those with
    data. Page figures are named ``page.<key>.png``: no method page's file has that name."""
    summaries = summarize(plain)
    folder = out_dir / page.slug
    figures: dict[str, Path] = {}
    if summaries:
        main, _ = cmp.validated(summaries)
        figures["h-bars"] = plots.h_bar_figure(
            {s.label: s.estimates["H"] for s in main}, dict(zip((s.label for s in main), cmp.rank_labels(main))),
            f"{page.title}, each method's validated row", folder / "page.h-bars.png", palette,
            {s.label: s.method for s in main},
        )
    for split, title in (
        ("validation", f"{page.title}: H against the calibration parameter on validation"),
        ("test", f"{page.title}: test curve for illustration; the parameter was chosen on validation"),
    ):
        by_calibrator: dict[str, dict[str, list]] = {}
        for s in summaries:
            if curves := _seed_curves(s, split):
                by_calibrator.setdefault(s.calibrator, {})[s.method] = curves
        path = plots.calibration_figure(by_calibrator, title, folder / f"page.h-{split}.png", palette)
        if path:
            figures[f"h-{split}"] = path
    path = plots.seen_unseen_figure(
        {(s.method, s.calibrator): curves for s in summaries if (curves := _seed_curves(s, "test"))},
        {(s.method, s.calibrator): (s.estimates["s"].mean, s.estimates["u"].mean) for s in summaries},
        f"{page.title}: seen-unseen accuracy on test (illustration; dots: the chosen parameter)",
        folder / "page.seen-unseen.png", palette,
    )
    if path:
        figures["seen-unseen"] = path
    for sweep in sweeps:
        figures[sweep.key] = plots.sweep_figure(
            sweep.setting, sweep.series(), f"{page.title}: {sweep.method}, test accuracy against {sweep.setting}",
            folder / f"page.{sweep.key}.png",
        )
    return figures


# --------------------------------------------------------------------------- writing


def repeated_seeds(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Entries with more than one row per seed, i.e. the same names run by different specs or
    options: their rows would be averaged together, so the command warns about them."""
    return [
        f"{s.dataset} / {s.label}: seeds {list(s.seeds)} from specs {distinct(r['spec_name'] for r in s.rows)}"
        for s in summarize(list(rows))
        if len(set(s.seeds)) < len(s.seeds)
    ]


def write_leaderboard(
    rows: Sequence[dict[str, Any]], out_dir: str | Path, reported: Sequence[Reported] = (), with_plots: bool = True,
    failures: Mapping[tuple[str, str], int] | None = None,
) -> list[Path]:
    """Write ``index.md``, one ``<dataset>.md`` per data set with its PNG plots, one page per
    method under ``<dataset>/``, and the snippets docs pages include (the home page's top rows,
    run times, each data set's entries) into ``out_dir``.

    ``rows`` are result rows as ``ResultStore.rows`` returns them, with their curves under
    ``"curves"`` when plots of calibration curves are wanted (``zsbench.store.load.load_rows`` adds them).
    ``with_plots=False`` writes the tables only (drawing takes about a second per figure).
    The ``<dataset>/`` folders are generated whole: files left there from earlier runs go. With
    two data sets or more, ``ranking.md`` ranks the methods measured on all of them.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    pages = pages_of(rows, reported, failures)
    palette = plots.Palette({r["method"]: r.get("method_plugin") or r["method"] for r in rows})
    for page in pages:
        details = out_dir / page.slug
        if details.is_dir():
            for old in details.iterdir():
                if old.suffix in (".md", ".png"):
                    old.unlink()
        details.mkdir(exist_ok=True)
        plain, sweeps = split_sweeps(page.rows)
        figures = _figures(page, plain, sweeps, out_dir, palette) if with_plots else {}
        path = out_dir / f"{page.slug}.md"
        path.write_text(render_page(page, {k: Path(page.slug) / p.name for k, p in figures.items()}) + "\n")
        written += [path, *figures.values()]
        if snippet := render_entries(page):
            entries = out_dir / ENTRIES.format(slug=page.slug)
            entries.write_text(snippet)
            written.append(entries)
        for method in method_pages(page):
            figure = method.figure(out_dir) if with_plots else None
            (out_dir / method.path).write_text(method.render(figure) + "\n")
            written += [out_dir / method.path, *([figure] if figure else [])]
        if not any(details.iterdir()):
            details.rmdir()
    ranking = cmp.aggregate_ranking(ranking_inputs(pages))
    left_out = independent_pages(pages)[1]
    if ranking is not None:
        figure = None
        if with_plots:
            figure = plots.critical_difference_figure(
                ranking.methods, ranking.mean_ranks, ranking.critical_difference, ranking.groups(),
                "Mean rank across data sets (bars: not told apart)", out_dir / "ranking.png", palette)
        (out_dir / "ranking.md").write_text(render_ranking(ranking, figure, left_out))
        written += [out_dir / "ranking.md", *([figure] if figure else [])]
    groups = list({id(p.backbones): p.backbones for p in pages if p.backbones}.values())
    for group in groups:
        (out_dir / f"{group.slug}.md").write_text(render_backbones(group) + "\n")
        written.append(out_dir / f"{group.slug}.md")
    index = out_dir / "index.md"
    index.write_text(render_index(pages, ranking is not None, groups))
    top = out_dir / TOP_ROWS
    top.write_text(render_top_rows(pages, out_dir.name, ranking is not None))
    times = out_dir / RUN_TIMES
    times.write_text(render_run_times(pages))
    return [index, *written, top, times]
