"""The leaderboard's page model: which rows make which page, under which unique file name.

A data set's page is keyed by its exact title (the row's data set label, with its backbone
when the spec gave one), never by a lossy slug, so two distinct labels never share a page;
``Slugs`` then gives each page and each method page a file name of its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from zsbench.site.markdown import Slugs, slug
from zsbench.store.summary import SummaryRow, dataset_label, summarize


@attrs.frozen
class Reported:
    """One published result, in percent as printed in the source, with the features and
    protocol it was measured under when the entry states them."""

    method: str
    dataset: str
    u: float | None
    s: float | None
    H: float | None
    zsl: float | None
    source: str
    notes: str = ""
    features: str = ""
    protocol: str = ""


@attrs.define
class DatasetPage:
    """Everything on one data set's page; ``slug`` is set once every page is known."""

    title: str
    rows: list[dict[str, Any]] = attrs.field(factory=list)
    reported: list[Reported] = attrs.field(factory=list)
    failures: dict[str, int] = attrs.field(factory=dict)  # method -> failed runs, counted, never scored
    joined_by_plugin: bool = False  # the reported numbers are of the full data set, not this label
    slug: str = ""
    backbones: BackboneGroup | None = None  # the pages of the same runs with other backbones

    def method_slugs(self) -> Slugs:
        return Slugs(r["method"] for r in self.rows)


def pages_of(rows: Sequence[dict[str, Any]], reported: Sequence[Reported],
             failures: Mapping[tuple[str, str], int] | None = None) -> list[DatasetPage]:
    """One page per data set title, in first-seen order. Reported entries join the measured
    data set whose title matches case-insensitively, else the one measured data set read by
    the dataset plugin of that name (marked: the literature's full data set beside a subset);
    else a page of their own."""
    pages: dict[str, DatasetPage] = {}
    by_plugin: dict[str, set[str]] = {}
    for r in rows:
        title = dataset_label(r)
        pages.setdefault(title, DatasetPage(title)).rows.append(r)
        by_plugin.setdefault((r.get("dataset_plugin") or r["dataset"]).lower(), set()).add(title)
    folded = {title.lower(): title for title in pages}
    for entry in reported:
        key, joined = folded.get(entry.dataset.lower()), False
        if key is None and len(by_plugin.get(entry.dataset.lower(), ())) == 1:
            key, joined = next(iter(by_plugin[entry.dataset.lower()])), True
        page = pages.setdefault(key or entry.dataset, DatasetPage(key or entry.dataset))
        page.reported.append(entry)
        page.joined_by_plugin = page.joined_by_plugin or joined
    for (dataset, method), count in (failures or {}).items():
        pages.setdefault(dataset, DatasetPage(dataset)).failures[method] = count
    groups = backbone_groups(list(pages.values()))
    slugs = Slugs([*pages, *(g.title for g in groups)])
    for page in pages.values():
        page.slug = slugs[page.title]
    for group in groups:
        group.slug = slugs[group.title]
        for _, page in group.pages:
            page.backbones = group
    return list(pages.values())


def page_backbone(page: DatasetPage) -> str | None:
    """The one backbone every row of the page extracted its features with (None: none, or several)."""
    names = {((((r.get("provenance") or {}).get("config") or {}).get("dataset") or {}).get("backbone") or {}).get("name")
             for r in page.rows}
    return next(iter(names)) if len(names) == 1 and None not in names else None


@attrs.define
class BackboneGroup:
    """Data set pages whose rows differ only by backbone: the same label before ``[backbone=...]``,
    the same dataset plugin and options."""

    base: str
    pages: list[tuple[str, DatasetPage]]  # (backbone, page), in first-seen order
    slug: str = ""

    @property
    def title(self) -> str:
        return f"{self.base}: methods by backbone"


def backbone_groups(pages: Sequence[DatasetPage]) -> list[BackboneGroup]:
    """The groups of two backbones or more (``pages_of`` names them and links their pages)."""
    groups: dict[str, BackboneGroup] = {}
    for page in pages:
        if (backbone := page_backbone(page)) is None:
            continue
        config = ((page.rows[0].get("provenance") or {}).get("config") or {}).get("dataset") or {}
        key = json.dumps([page.title.split("[backbone=")[0], config.get("plugin"), config.get("options")], sort_keys=True)
        groups.setdefault(key, BackboneGroup(page.title.split("[backbone=")[0], [])).pages.append((backbone, page))
    return [g for g in groups.values() if len(g.pages) > 1]


# --------------------------------------------------------------------------- sweeps


def _sweep_value(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool)) or value is None else json.dumps(value, sort_keys=True)


def order(value: Any) -> tuple[int, Any]:
    """Numbers in numeric order, then everything else by its text."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return (0, value) if number else (1, str(value))


@attrs.frozen
class Sweep:
    """Rows of one method entry swept over one setting, across values, calibrators and seeds."""

    method: str  # the entry's name without the ``[setting=value]`` suffix
    setting: str
    rows: tuple[dict[str, Any], ...]

    @property
    def key(self) -> str:
        """Names this sweep's figure: dots never occur in a slug, so no two sweeps share it."""
        return f"sweep.{slug(self.method)}.{slug(self.setting)}"

    def series(self) -> dict[str, list[tuple[Any, SummaryRow]]]:
        """calibrator -> (setting value, summary over seeds) for each value."""
        out: dict[str, list[tuple[Any, SummaryRow]]] = {}
        for s in summarize(list(self.rows)):
            out.setdefault(s.calibrator, []).append((_sweep_value(s.rows[0]["sweep"][self.setting]), s))
        return out


def split_sweeps(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Sweep]]:
    """Rows of unswept entries, and the sweeps (grouped by entry name and setting)."""
    plain, groups = [], {}
    for r in rows:
        if not r.get("sweep"):
            plain.append(r)
            continue
        (setting, value), *_ = sorted(r["sweep"].items())
        method = r["method"].removesuffix(f"[{setting}={value}]")
        groups.setdefault((method, setting), []).append(r)
    return plain, [Sweep(m, s, tuple(g)) for (m, s), g in groups.items()]


def grid_edges(row: Mapping[str, Any]) -> list[str]:
    """The hyper-parameters this row chose at the low or high end of a numeric grid of three or
    more values (the grid as the run recorded it in its provenance): the optimum may lie
    outside the grid."""
    grid = ((((row.get("provenance") or {}).get("config") or {}).get("method") or {}).get("grid")) or {}
    edges = []
    for key, value in sorted((row.get("hyperparameters") or {}).items()):
        values = grid.get(key)
        if not isinstance(values, list) or len(values) < 3:
            continue
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(numbers) == len(values) and value in (min(numbers), max(numbers)):
            edges.append(key)
    return edges
