"""A method's page on one data set: every calibrator's rows per seed, the choices validation
made (marked when at the edge of their grid), and the provenance."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import yaml

from zsbench.site import plots
from zsbench.site.markdown import (
    GENERATED,
    WIDE,
    Markup,
    distinct,
    number,
    seed_list,
    settings,
    slug,
    sortable,
    table,
    text,
)
from zsbench.site.model import DatasetPage, grid_edges, split_sweeps
from zsbench.site.pages import TEST_ONLY_NOTE, _estimate, oracle
from zsbench.spec import NO_CALIBRATION
from zsbench.store import comparisons as cmp
from zsbench.store.summary import SummaryRow, summarize


def calibrator_anchor(summary: SummaryRow) -> str:
    """The section id of a calibrator's rows on its method's page (calibrators are named by
    their plugins; the prefix keeps the id clear of the page's other headings)."""
    return f"cal-{slug(summary.calibrator)}"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return number(value)
    if isinstance(value, (dict, list)):
        return Markup(f"`{text(json.dumps(value, sort_keys=True))}`".replace("\\`", "'"))
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{8,}", value):
        return Markup(f"`{value}`")
    return str(value)


# libyaml's emitter when present: the same text as the pure-Python SafeDumper, several times faster
# (the provenance blocks were most of `zsbench leaderboard`'s time).
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

def provenance_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every provenance key the runs have, one line each: one value when all seeds agree, else
    the value of each seed. Nested mappings (the spec entries) follow the table, folded."""
    runs = {r["seed"]: r.get("provenance") or {} for r in sorted(rows, key=lambda r: r["seed"])}
    keys = sorted({k for p in runs.values() for k in p})
    flat = [k for k in keys if not any(isinstance(p.get(k), dict) for p in runs.values())]
    body = []
    for key in flat:
        values = {seed: _value(p.get(key, "—")) for seed, p in runs.items()}
        if len(set(values.values())) == 1:
            body.append([key, next(iter(values.values()))])
        else:
            body.append([key, Markup("; ".join(f"seed {seed}: {text(v) if type(v) is str else v}"
                                               for seed, v in values.items()))])
    lines = table(["provenance", "value"], body) if body else []
    for key in (k for k in keys if k not in flat):
        by_text: dict[str, list[int]] = {}  # seeds that recorded the same mapping share one block
        for seed, p in runs.items():
            if key in p:
                by_text.setdefault(yaml.dump(p[key], Dumper=_DUMPER, sort_keys=True, default_flow_style=False).rstrip(), []).append(seed)
        for dump, seeds in by_text.items():
            which = "every seed" if len(seeds) == len(runs) else seed_list(seeds)
            title = text(f"{key} ({which})").replace('"', "&quot;")
            lines += ["", f'??? note "{title}"', "", "    ```yaml",
                      *(f"    {line}" for line in dump.replace("`", "'").splitlines()), "    ```"]
    return lines


def seed_table(summary: SummaryRow) -> list[str]:
    """What was chosen on validation and measured on test, one line per seed; a choice at the
    edge of its grid is marked."""
    header = ["seed", "chosen hyper-parameters", "calibration parameter", "val H", "H", "u", "s", "ZSL",
              "AUSUC", "oracle H (test)", "wall time (s)"]

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.1f}"

    def chosen(r: dict[str, Any]) -> str:
        edges = grid_edges(r)
        return settings(r["hyperparameters"]) + (f" (at the edge of its grid: {', '.join(edges)})" if edges else "")

    body = [
        [
            r["seed"], chosen(r),
            "—" if r["calibration_param"] is None else number(r["calibration_param"]),
            *(pct(r[k]) for k in ("val_H", "H", "u", "s", "zsl")),
            pct(r.get("ausuc")), oracle(pct(r.get("oracle_H"))), f"{r['wall_time']:.1f}",
        ]
        for r in sorted(summary.rows, key=lambda r: r["seed"])
    ]
    return table(header, body, right=("seed", "val H", "H", "u", "s", "ZSL", "AUSUC", "oracle H (test)", "wall time (s)"))


@attrs.frozen
class MethodPage:
    """One method's details on one data set: every calibrator's rows, per seed."""

    page: DatasetPage
    method: str
    summaries: tuple[SummaryRow, ...]

    @property
    def path(self) -> Path:
        return Path(self.page.slug) / f"{self.page.method_slugs()[self.method]}.md"

    def figure(self, out_dir: Path) -> Path | None:
        """H against each calibrator's parameter on validation, one line per seed (seeds are not
        methods: they take matplotlib's colour cycle, not the site's method colours)."""
        curves = {
            s.calibrator: {f"seed {r['seed']}": [r["curves"]["validation"]] for r in s.rows
                           if r.get("curves", {}).get("validation")}
            for s in self.summaries if s.calibrator != NO_CALIBRATION
        }
        chosen = {s.calibrator: {f"seed {r['seed']}": r["calibration_param"] for r in s.rows} for s in self.summaries}
        return plots.calibration_figure(
            curves, f"{self.page.title}, {self.method}: H on validation (dots: the chosen parameter)",
            out_dir / self.path.with_suffix(".validation.png"), chosen=chosen,
        )

    def render(self, figure: Path | None) -> str:
        rows = [r for s in self.summaries for r in s.rows]
        chosen = cmp.chosen_calibrators(self.summaries)[self.method]
        lines = [
            *WIDE, f"# {text(self.method)} on {text(self.page.title)}", "", GENERATED, "",
            f"[Back to the {text(self.page.title)} leaderboard](../{self.page.slug}.md)", "",
            text(f"Side information: {distinct(r['side_information'] for r in rows)}. "
                 f"Features (backbone): {distinct(r['features'] for r in rows)}. "
                 f"Method plugin: {distinct(r['method_plugin'] for r in rows)}. "
                 f"Specs: {distinct(r['spec_name'] for r in rows)}. "
                 f"Validation chose the calibration {chosen} (highest mean validation H): it is the method's result."),
            "",
        ]
        body = [
            [s.calibrator + ("" if s.calibrator == chosen else " (not chosen)"),
             *(s.estimates[m] for m in ("H", "u", "s", "zsl")), _estimate(s, "ausuc"),
             oracle(_estimate(s, "oracle_H")), len(s.seeds)]
            for s in cmp.ranked(self.summaries)
        ]
        lines += sortable(table(["calibrator", "H", "u", "s", "ZSL", "AUSUC", "oracle H (test)", "seeds"], body,
                                right=("H", "u", "s", "ZSL", "AUSUC", "oracle H (test)", "seeds")))
        lines += ["", TEST_ONLY_NOTE, ""]
        if figure:
            lines += ["## Validation curves", "", f"![H against the calibration parameter on validation, per seed]({figure.name})", ""]
        for s in cmp.ranked(self.summaries):
            title = f"{s.method}, no calibration" if s.calibrator == NO_CALIBRATION else s.label
            lines += [f"## {text(title)} {{#{calibrator_anchor(s)}}}", "", *sortable(seed_table(s)), ""]
        lines += ["## Provenance", "", *provenance_table(rows), ""]
        return "\n".join(lines)


def method_pages(page: DatasetPage) -> list[MethodPage]:
    plain, _ = split_sweeps(page.rows)
    by_method: dict[str, list[SummaryRow]] = {}
    for s in summarize(plain):
        by_method.setdefault(s.method, []).append(s)
    return [MethodPage(page, m, tuple(group)) for m, group in by_method.items()]
