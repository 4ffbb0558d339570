"""Markdown of a data set's page, the index and the aggregate ranking, from the page model.

Every user string goes through ``markdown`` (inert text); every comparison comes from
``comparisons`` (validation-chosen rows, paired differences, ties); every context line comes
from the rows' provenance.

Longer than most: one small renderer per page section, kept beside the page functions that
order them, so a page reads top to bottom in one file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zsbench.site.markdown import (
    GENERATED,
    WIDE,
    Markup,
    code,
    distinct,
    link,
    number,
    sortable,
    table,
    text,
)
from zsbench.site.model import (
    BackboneGroup,
    DatasetPage,
    Reported,
    Sweep,
    order,
    split_sweeps,
)
from zsbench.spec import NO_CALIBRATION
from zsbench.store import comparisons as cmp
from zsbench.store.summary import Estimate, SummaryRow, summarize

REPORTED_TITLE = "Reported in the literature (not measured here)"
MAIN_COLUMNS = ("#", "method", "calibrator", "H", "vs #1", "u", "s", "ZSL", "AUSUC", "oracle H (test)", "seeds",
                "details")
NUMERIC_COLUMNS = ("#", "H", "u", "s", "ZSL", "AUSUC", "oracle H (test)", "seeds")
TEST_ONLY_NOTE = (
    "**AUSUC** is the area under the seen-unseen accuracy curve on test (Chao et al., ECCV 2016), "
    "computed exactly over every offset of calibrated stacking; it depends on the scores alone, not "
    "on a calibration parameter, so a method's rows that chose the same hyper-parameters share it. **Oracle H (test)** is the best H "
    "over every value of the row's calibration parameter *on the test split*: an oracle shown only "
    "to say how far the validated choice is from it. No method may use it for selection, and the "
    "ranking is by H at the parameter chosen on validation. Both are computed after every choice "
    "is made and never feed one."
)
TIES_NOTE = (
    "Each method appears once, with the calibration validation chose (the highest mean validation H). "
    "**vs #1** is the mean and 95% CI of the per-seed H differences from the first row (same split, "
    "same seeds): the *seed interval*, how the difference moves with the split and the training seed. "
    "Where both rows hold their per-image test results, a paired bootstrap over test images (within each "
    "seed, each test class's images redrawn with replacement, the same draws for both rows, "
    "{replicates} replicates, averaged over the seeds) gives the *test-image interval*, how the "
    "difference moves with the sample of test images. *Tied* means either interval contains 0, fewer than "
    "two seeds pair up, or the difference is within the methods' cross-machine tolerance. **=1** marks "
    "the first row and every row tied with it: the rows not told apart from the best. Below them, a row "
    "within the tolerance of the row above shares its rank."
)


def bootstrap_note(pairs: Sequence[cmp.Pair | None]) -> str:
    """Which intervals judged this page's ties: the test-image bootstrap needs per-image results
    in both rows of a pair, which rows written before they were recorded do not have."""
    found = [p for p in pairs if p is not None]
    with_bits = sum(p.bootstrap is not None for p in found)
    if not found:
        return ""
    if with_bits == len(found):
        return "Here every comparison used both intervals."
    if not with_bits:
        return ("Here ties were judged over seeds only: these rows hold no per-image test results "
                "(rerun their spec to record them).")
    return (f"Here {with_bits} of {len(found)} comparisons used both intervals; the others over seeds only "
            "(a row without per-image test results, or another test set).")


def _estimate(summary: SummaryRow, metric: str) -> str:
    return str(summary.estimates[metric]) if metric in summary.estimates else "—"


def oracle(value: str) -> Markup:
    return Markup(f'<span class="zsb-oracle">{value}</span>')


def signed(e: Estimate) -> str:
    """A difference with its sign; one that rounds to zero reads +0.0, never -0.0."""
    return f"{round(e.mean, 1) or 0.0:+.1f}" + ("" if np.isnan(e.half_width) else f" ± {e.half_width:.1f}")


def _stale(summary: SummaryRow) -> str:
    """Why some of a summary's rows did not come from the current code and data ('' if they did)."""
    return distinct(reason for r in summary.rows for reason in r.get("stale", ()))


def versus(pair: cmp.Pair | None) -> str:
    if pair is None:
        return "—"
    return ("tied " if pair.tied else "") + signed(Estimate(-pair.difference.mean, pair.difference.half_width,
                                                             pair.difference.n))


def rank_cell(rank: str) -> Markup:
    """A rank as the table shows it: the rows tied with the best (``=1``) in bold."""
    return Markup(f"**{rank}**" if rank == "=1" else rank)


def details_link(page: DatasetPage, summary: SummaryRow) -> Markup:
    """The row's details: its method's page, at the calibrator's section."""
    from zsbench.site.methods import calibrator_anchor

    method = page.method_slugs()[summary.method]
    return Markup(f"[details]({page.slug}/{method}.md#{calibrator_anchor(summary)})")


def measured_table(page: DatasetPage, main: Sequence[SummaryRow]) -> list[str]:
    """The main table: each method's validated row, best H first, with its rank and tie mark."""
    pairs = cmp.versus_best(main)
    body = [
        [
            rank_cell(rank), s.method + (" (stale)" if _stale(s) else ""), s.calibrator, s.estimates["H"], versus(pair),
            *(s.estimates[m] for m in ("u", "s", "zsl")), _estimate(s, "ausuc"), oracle(_estimate(s, "oracle_H")),
            len(s.seeds), details_link(page, s),
        ]
        for rank, s, pair in zip(cmp.rank_labels(main, pairs), main, pairs)
    ]
    return sortable(table(MAIN_COLUMNS, body, right=NUMERIC_COLUMNS), css="zsb-main")


def other_calibrations(page: DatasetPage, others: Sequence[SummaryRow], chosen: Mapping[str, str]) -> list[str]:
    if not others:
        return []
    header = ["method", "calibrator", "H", "val H", "validation chose", "details"]
    body = [[s.method, s.calibrator, s.estimates["H"], Estimate.of(r["val_H"] for r in s.rows), chosen[s.method],
             details_link(page, s)] for s in others]
    return [
        "## Other calibrations (not chosen on validation)", "",
        "Shown for reference, never ranked: validation preferred the method's row in the table above.", "",
        *sortable(table(header, body, right=("H", "val H"))), "",
    ]


def pairs_table(main: Sequence[SummaryRow]) -> list[str]:
    found = cmp.pairs(main)
    if not found:
        return []
    body = [[f"{p.a.label} vs {p.b.label}", signed(p.difference), p.difference.n, interval(p), p.why]
            for p in found]
    return [
        "## Paired comparisons", "",
        f"Every pair among the top {min(len(main), 5)} rows: the mean and 95% CI over seeds of the per-seed "
        "differences of H (first minus second, percentage points; the seed interval), over the seeds both "
        "have, and the 95% test-image interval of the same difference (— where a row has no per-image "
        "results). " + bootstrap_note(found), "",
        *sortable(table(["pair", "H difference", "paired seeds", "test-image interval", "verdict"], body,
                        right=("H difference", "paired seeds", "test-image interval"))),
        "",
    ]


def interval(pair: cmp.Pair) -> str:
    return "—" if pair.bootstrap is None else str(pair.bootstrap)


def calibration_gain_table(summaries: Sequence[SummaryRow]) -> list[str]:
    """Each method's H without and with each calibrator, and the gain: the mean and 95% CI of
    the per-seed differences over the seeds both rows have (empty without such pairs)."""
    plain = {s.method: s for s in summaries if s.calibrator == NO_CALIBRATION}
    body = []
    for s in cmp.ranked(summaries):
        base = plain.get(s.method)
        if s.calibrator == NO_CALIBRATION or base is None:
            continue
        pair = cmp.Pair.of(s, base)
        if pair.difference.n:
            body.append([s.method, s.calibrator, base.estimates["H"], s.estimates["H"], signed(pair.difference),
                         pair.difference.n, interval(pair)])
    if not body:
        return []
    header = ["method", "calibrator", "H uncalibrated", "H calibrated", "gain (points)", "paired seeds",
              "test-image interval"]
    return sortable(table(header, body, right=header[2:]))


def context_block(rows: Sequence[dict[str, Any]]) -> list[str]:
    """What the numbers are about, from the rows' provenance, in short lines a reader takes in at
    a glance: data set, split and test stage; image features; side information; seeds, spec and
    code; environment."""
    prov = [r.get("provenance") or {} for r in rows]
    configs = [(p.get("config") or {}).get("dataset") or {} for p in prov]

    def data_set(c: Mapping[str, Any]) -> str:
        options = ", ".join(f"{k}={v}" for k, v in sorted((c.get("options") or {}).items()))
        return f"{c.get('plugin', '?')}" + (f" ({options})" if options else "")

    commits = distinct(f"{(p.get('git') or {}).get('commit', '?')[:10]}"
                       + (" (uncommitted changes)" if (p.get("git") or {}).get("dirty") else "") for p in prov)
    environment = distinct(
        f"Python {p.get('python', '?')}, torch {p.get('torch', '?')}, numpy {p.get('numpy', '?')}, "
        f"{p.get('platform', '?')}, device {p.get('device', '?')}" for p in prov)
    backbones = distinct((c.get("backbone") or {}).get("name") for c in configs)
    sizes = distinct(_size(p["counts"]) for p in prov if isinstance(p.get("counts"), Mapping))
    seeds = sorted({r["seed"] for r in rows})
    items = [
        ("Data set", distinct(data_set(c) for c in configs) + "; the data set's own train / validation / test "
         f"split, protocol version {distinct(p.get('protocol') for p in prov) or '?'}"
         + (f"; {sizes}" if sizes else "")),
        ("Image features", distinct(r.get("features") for r in rows)
         + (f" (backbone {backbones}, extracted from the images)" if backbones else " (the data set's features file)")),
        ("Side information", distinct(r.get("side_information") for r in rows)),
        ("Runs", f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))}); spec "
         f"{distinct(r.get('spec_name') for r in rows)}; code at commit {commits or 'not recorded'}"),
    ]
    items.append(("Environment", environment or "not recorded"))
    return ['<div class="zsb-context" markdown>', "",
            *(f"- **{name}**: {text(value)}" for name, value in items), "", "</div>", ""]


def _size(counts: Mapping[str, Any]) -> str:
    """A run's test stage in words (rows recorded before the counts were have none: omitted)."""
    return (f"{counts.get('seen_classes', '?')} seen / {counts.get('unseen_classes', '?')} unseen classes, "
            f"{counts.get('test_seen_images', '?')} seen-class + {counts.get('test_unseen_images', '?')} "
            "unseen-class test images scored")


def reported_section(page: DatasetPage) -> list[str]:
    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}"

    measured = {r.get("features") for r in page.rows}

    def comparable(e: Reported) -> str:
        if page.joined_by_plugin:
            return f"no: the full {e.dataset}, not {page.title}"
        if not e.features:
            return "no: its features are not stated"
        if e.features not in measured:
            return "no: other features"
        return "features match; protocol as stated"

    entries = sorted(page.reported, key=lambda e: -(e.H if e.H is not None else -1))
    body = [[e.method, pct(e.u), pct(e.s), pct(e.H), pct(e.zsl), e.features or "not stated",
             e.protocol or "not stated", comparable(e), e.source, e.notes] for e in entries]
    header = ["method", "u", "s", "H", "ZSL", "features", "protocol", "comparable", "source", "notes"]
    return [
        f"## {REPORTED_TITLE}", "",
        "Numbers as printed in the cited papers (percent), each with the features and protocol it was "
        "measured under. They were not produced by zsbench and are kept apart from the measured table; "
        "*comparable* says whether a row may be read beside it.", "",
        *sortable(table(header, body, right=("u", "s", "H", "ZSL"))), "",
    ]


def failure_note(failures: Mapping[str, int]) -> list[str]:
    """Failed runs are counted on the page, never scored."""
    if not failures:
        return []
    items = ", ".join(f"{method}: {count}" for method, count in sorted(failures.items()))
    return [f"**Failed runs** (counted, not scored; `zsbench results --failed` shows why): {text(items)}", ""]


def stale_note(summaries: Sequence[SummaryRow]) -> list[str]:
    """A warning under the table naming the rows from other code or data than the current."""
    flagged = [(s, why) for s in summaries if (why := _stale(s))]
    if not flagged:
        return []
    items = "; ".join(f"{text(s.method)} / {text(s.calibrator)}: {code(why)}" for s, why in flagged)
    return [f"**Stale rows** (marked *(stale)*: not from the current code or data; rerun their spec): {items}", ""]


def bars_alt(main: Sequence[SummaryRow]) -> str:
    """The H bar chart in words: which rows are tied with the best (what its solid bars show)."""
    tied = [s.label for s, rank in zip(main, cmp.rank_labels(main)) if rank == "=1"]
    return ("H on test per method, mean and 95% CI over seeds; "
            + (f"tied with #1: {'; '.join(tied)}" if tied else f"#1: {main[0].label}, ahead of every other row"
               if main else "no rows"))


BARS_WIDTH = 520  # px on a desktop (its type about 14 px), so the chart and the context share its first screen


def image(figures: Mapping[str, Path], key: str, alt: str, width: int | None = None) -> list[str]:
    """A figure; with ``width``, shown at most that wide (a phone shrinks it to its own width)."""
    size = f'{{ width="{width}" }}' if width else ""
    return [f"![{text(alt)}]({figures[key].as_posix()}){size}", ""] if key in figures else []


def sweep_section(sweeps: Sequence[Sweep], figures: Mapping[str, Path]) -> list[str]:
    lines = ["## Sweeps", ""]
    for sweep in sweeps:
        lines += [f"### {text(sweep.method)}: {text(sweep.setting)}", ""]
        lines += image(figures, sweep.key, f"{sweep.method}: u, s and H against {sweep.setting}")
        body = [
            [number(value), calibrator, len(s.seeds), *(s.estimates[m] for m in ("u", "s", "H", "zsl"))]
            for calibrator, points in sweep.series().items()
            for value, s in sorted(points, key=lambda p: order(p[0]))
        ]
        lines += sortable(table([text(sweep.setting), "calibrator", "seeds", "u", "s", "H", "ZSL"], body,
                                right=("seeds", "u", "s", "H", "ZSL")))
        lines.append("")
    return lines


def render_page(page: DatasetPage, figures: Mapping[str, Path]) -> str:
    plain, sweeps = split_sweeps(page.rows)
    lines = [*WIDE, f"# {text(page.title)}", "", GENERATED, ""]
    if page.rows:
        lines += context_block(page.rows)
        if page.backbones:
            lines += [f"Other backbones: [{text(page.backbones.title)}]({page.backbones.slug}.md).", ""]
        lines += image(figures, "h-bars", bars_alt(best_rows(page)), width=BARS_WIDTH)
        lines += ["## Measured", ""]
        lines += failure_note(page.failures)
        if plain:
            summaries = summarize(plain)
            main, others = cmp.validated(summaries)
            lines += [
                "Test accuracy in percent (per-class mean top-1): u on unseen classes, s on seen classes, their "
                "harmonic mean H, and ZSL top-1 among unseen classes only; each cell is the mean and 95% "
                "confidence interval (Student t) over seeds (with one seed, the mean). Hyper-parameters and the "
                "calibration parameter were chosen on the validation split, then the method was refit on "
                "trainval and tested once.", "",
                *measured_table(page, main), "",
                *stale_note(summaries),
                TIES_NOTE.format(replicates=cmp.BOOTSTRAP_REPLICATES) + " "
                + bootstrap_note([*cmp.versus_best(main), *cmp.pairs(main)]), "",
                "Click a column's header to sort by it. " + TEST_ONLY_NOTE + " Each row's *details* link opens its "
                "method's page: the choices per seed, provenance, wall time and validation curves.", "",
                *pairs_table(main),
                *other_calibrations(page, others, cmp.chosen_calibrators(summaries)),
            ]
            if gain := calibration_gain_table(summaries):
                lines += ["## What calibration buys", "",
                          "H of each method without calibration and with each calibrator, side by side; the gain is "
                          "the mean and 95% CI of the per-seed differences (percentage points), and its test-image "
                          "interval the 95% paired bootstrap over test images (— where a row has no per-image "
                          "results).", "", *gain, ""]
        else:
            lines += ["Only swept entries were run on this data set; see below.", ""]
    else:
        lines += ["No runs of this data set are in the results database.", "", *failure_note(page.failures)]
    if "h-validation" in figures or "seen-unseen" in figures:
        lines += ["## Calibration", ""]
        lines += image(figures, "h-validation", "H against the calibration parameter on validation")
        if "h-test" in figures:
            lines += ["The test curve below is for illustration only: the parameter was chosen on validation and "
                      "the test split was evaluated at that one value for the table above.", ""]
        lines += image(figures, "h-test", "Test curve for illustration; the parameter was chosen on validation")
        lines += image(figures, "seen-unseen", "Seen-unseen accuracy curves on test")
    if sweeps:
        lines += sweep_section(sweeps, figures)
    if page.reported:
        lines += reported_section(page)
    return "\n".join(lines)


def best_rows(page: DatasetPage) -> list[SummaryRow]:
    """The page's validated rows, best H first."""
    plain, _ = split_sweeps(page.rows)
    return cmp.validated(summarize(plain))[0]


def render_index(pages: Sequence[DatasetPage], ranking: bool, groups: Sequence[BackboneGroup] = ()) -> str:
    lines = [
        "# Leaderboard", "", GENERATED, "",
        "Measured with `zsbench run` under the Xian et al. GZSL protocol (the Concepts page "
        "of the documentation says what each number means); every number is the mean and 95% "
        "confidence interval over seeds. Each data set's page also lists numbers reported in the "
        "literature, in a separate table.", "",
    ]
    body = []
    for page in pages:
        plain, sweeps = split_sweeps(page.rows)
        main = best_rows(page)
        tied = sum(p is not None and p.tied for p in cmp.versus_best(main))
        body.append([
            link(page.title, f"{page.slug}.md"), len({r["method"] for r in plain}) + len(sweeps),
            main[0].label if main else "—", main[0].estimates["H"] if main else "—",
            tied if main else "—", len(page.reported),
        ])
    if body:
        lines += table(["data set", "measured entries", "best measured (validated row)", "H", "tied with it",
                        "reported"], body, right=("H", "tied with it"))
    else:
        lines.append("The results database has no rows yet.")
    if ranking:
        lines += ["", "Across data sets: the [aggregate ranking](ranking.md) (mean rank and critical difference)."]
    for group in groups:
        lines += ["", f"Across backbones: [{text(group.title)}]({group.slug}.md)."]
    return "\n".join(lines) + "\n"


def render_top_rows(pages: Sequence[DatasetPage], folder: str, ranking: bool, top: int = 3) -> str:
    """The home page's results: each data set's best validated rows, ties to the best marked,
    linking to its leaderboard (``folder``: the leaderboard's folder, seen from the home page)."""
    lines = [GENERATED, ""]
    for page in pages:
        if main := best_rows(page):
            pairs = cmp.versus_best(main)
            body = [[rank_cell(rank), s.label, s.estimates["H"], versus(pair)]
                    for rank, s, pair in list(zip(cmp.rank_labels(main, pairs), main, pairs))[:top]]
            seeds = len({r["seed"] for r in page.rows})
            lines += [f"**{link(page.title, f'{folder}/{page.slug}.md')}**: "
                      + text(f"features {distinct(r.get('features') for r in page.rows)}; side information "
                             f"{distinct(r.get('side_information') for r in page.rows)}; {seeds} seeds"), "",
                      *sortable(table(["#", "method", "H", "vs #1"], body, right=("#", "H"))), ""]
    if len(lines) == 2:
        return "No results yet.\n"
    if ranking:
        lines += [f"Across data sets: the [aggregate ranking]({folder}/ranking.md).", ""]
    return "\n".join(lines)


def render_run_times(pages: Sequence[DatasetPage]) -> str:
    """Each data set's run time, the one figure every docs page quotes: the runs behind its rows
    and the sum of their wall times (each run's fit, calibration and scoring, one core)."""
    body = []
    for page in pages:
        runs = {r["run_key"]: r["wall_time"] for r in page.rows}
        total = sum(runs.values())
        body.append([page.title, len(runs), f"{total:.0f} s", f"{total / 60:.1f} min"])
    head = ["data set", "runs", "run time (sum of the runs' wall times)", "minutes"]
    return "\n".join([GENERATED, "", *table(head, body, right=head[1:])]) + "\n"


def render_entries(page: DatasetPage) -> str:
    """Every measured entry of a data set, one table per method in a snippet section named by
    the method's file name (``--8<-- "leaderboard/_<data set>-entries.md:<method>"``), so a docs
    page that discusses a method includes its numbers instead of pasting them ('' without
    measured entries)."""
    plain, _ = split_sweeps(page.rows)
    summaries = summarize(plain)
    if not summaries:
        return ""
    chosen = cmp.chosen_calibrators(summaries)
    slugs = page.method_slugs()
    lines = [GENERATED, ""]
    header = ["entry", "chosen on validation", "u", "s", "H", "ZSL", "seeds"]
    for method in dict.fromkeys(s.method for s in summaries):
        body = [[s.label, "yes" if chosen[s.method] == s.calibrator else "no",
                 *(s.estimates[m] for m in ("u", "s", "H", "zsl")), len(s.seeds)]
                for s in summaries if s.method == method]
        lines += [f"<!-- --8<-- [start:{slugs[method]}] -->", "",
                  *table(header, body, right=("u", "s", "H", "ZSL", "seeds")), "",
                  f"<!-- --8<-- [end:{slugs[method]}] -->", ""]
    return "\n".join(lines)


def _scored_images(page: DatasetPage) -> int:
    """The most test images one of the page's runs scored (0 where rows did not record counts)."""
    counts = [(r.get("provenance") or {}).get("counts") or {} for r in page.rows]
    return max((int(c.get("test_seen_images", 0)) + int(c.get("test_unseen_images", 0)) for c in counts), default=0)


def _contents(page: DatasetPage) -> set[str]:
    """What identifies the data the page's runs read (their data provenance's file manifest): each
    file's content, and the name of each per-image file (in a data set's subfolder: an image's
    captions or pixels are the same image's, however another copy was preprocessed). Top-level
    names (``res101.mat``) are a layout's, shared by unrelated data sets, so only their content counts."""
    files = [f for r in page.rows for f in (((r.get("provenance") or {}).get("data") or {}).get("files") or ())
             if isinstance(f, Mapping)]
    return ({f"content {f['sha256']}" for f in files if f.get("sha256")}
            | {f"image file {f['name']}" for f in files if "/" in str(f.get("name", ""))})


def independent_pages(pages: Sequence[DatasetPage]) -> tuple[list[DatasetPage], dict[str, str]]:
    """The pages the aggregate ranking counts, and {left-out title: the title standing for it}.
    Pages whose runs read a file of the same content or per-image files of the same name (a
    subset's captions, another backbone's split, one features file under two labels) share data,
    and the ranking's test takes data sets as independent samples: of each group of pages so
    linked, the one whose runs scored the most test images stands for the group."""
    groups: list[tuple[set[str], list[DatasetPage]]] = []
    for page in (p for p in pages if p.rows):
        contents, members = _contents(page), [page]
        for group in [g for g in groups if contents & g[0]]:
            groups.remove(group)
            contents, members = contents | group[0], group[1] + members
        groups.append((contents, members))
    order = {page.title: i for i, page in enumerate(pages)}
    kept, left_out = [], {}
    for _, members in groups:
        members.sort(key=lambda p: order[p.title])
        best = max(members, key=_scored_images)  # the first page wins a tie
        kept.append(best)
        left_out.update({p.title: best.title for p in members if p is not best})
    return sorted(kept, key=lambda p: order[p.title]), left_out


def ranking_inputs(pages: Sequence[DatasetPage]) -> dict[str, dict[str, float]]:
    """data set -> method plugin -> mean test H of the plugin's entry validation prefers (the
    highest mean validation H among the plugin's validated rows), for independent data sets."""
    out: dict[str, dict[str, float]] = {}
    for page in independent_pages(pages)[0]:
        best: dict[str, tuple[float, float]] = {}
        for s in best_rows(page):
            val = float(np.mean([r["val_H"] for r in s.rows]))
            if cmp.plugin(s) not in best or val > best[cmp.plugin(s)][0]:
                best[cmp.plugin(s)] = (val, s.estimates["H"].mean)
        if best:
            out[page.title] = {m: h for m, (_, h) in best.items()}
    return out


def render_backbones(group: BackboneGroup) -> str:
    """Method x backbone: each method's validated H per backbone, and for each method the paired
    per-seed differences between backbones (the runs differ in nothing else)."""
    by_backbone = {b: {s.method: s for s in best_rows(page)} for b, page in group.pages}
    backbones = list(by_backbone)
    methods = list(dict.fromkeys(m for rows in by_backbone.values() for m in rows))
    body = [[m, *(by_backbone[b][m].estimates["H"] if m in by_backbone[b] else "—" for b in backbones)]
            for m in methods]
    pairs = [
        [m, f"{a} − {b}", signed(pair.difference), pair.difference.n, interval(pair),
         pair.why.replace("ahead", "higher").replace("behind", "lower")]
        for m in methods
        for i, a in enumerate(backbones) for b in backbones[i + 1:]
        if m in by_backbone[a] and m in by_backbone[b]
        for pair in (cmp.Pair.of(by_backbone[a][m], by_backbone[b][m]),)
    ]
    links = ", ".join(f"[{text(b)}]({page.slug}.md)" for b, page in group.pages)
    lines = [
        *WIDE, f"# {text(group.title)}", "", GENERATED, "",
        *context_block([r for _, page in group.pages for r in page.rows]),
        f"The same data set and methods with each image backbone (pages: {links}). Each cell is the test H "
        "(mean and 95% CI over seeds) of the calibration validation chose on that backbone.", "",
        *sortable(table(["method", *(text(b) for b in backbones)], body, right=backbones)), "",
        "## Paired differences between backbones", "",
        "Per method, the mean and 95% CI of the per-seed differences of H between two backbones "
        "(percentage points; same seeds, same split), and the 95% test-image interval of the same difference "
        "(a paired bootstrap over the test images; — where a row has no per-image results).", "",
        *sortable(table(["method", "backbones", "H difference", "paired seeds", "test-image interval", "verdict"],
                        pairs, right=("H difference", "paired seeds", "test-image interval"))), "",
    ]
    return "\n".join(lines)


def render_ranking(ranking: cmp.Ranking, figure: Path | None, left_out: Mapping[str, str] | None = None) -> str:
    """``left_out``: pages not ranked -> the page standing for their dataset plugin."""
    lines = [
        "# Aggregate ranking", "", GENERATED, "",
        f"Methods measured on every one of {len(ranking.datasets)} data sets "
        f"({text(', '.join(ranking.datasets))}), ranked on each by the test H of the entry validation "
        "prefers (rank 1 = best; ties share the mean rank), then averaged. Two methods whose mean ranks "
        f"differ by less than the critical difference ({ranking.critical_difference:.2f}, Nemenyi test at "
        "95%, Demšar 2006) are not told apart; the bars join such methods. The test takes data sets as "
        "independent samples, so data sets that share input files count once.", "",
    ]
    if (0, len(ranking.methods) - 1) in ranking.groups():
        lines += [f"**With {len(ranking.datasets)} data sets no two methods are told apart**: every mean rank lies "
                  "within the critical difference of every other. The order is a description of these data sets, "
                  "not a finding; more independent data sets narrow the critical difference.", ""]
    if left_out:
        items = "; ".join(f"{text(page)} (shares input files with {text(kept)})" for page, kept in left_out.items())
        lines += [f"Not ranked, because their runs read input files of the same content, or the same images' "
                  f"files, as a ranked data set's (the one whose runs scored the most test images stands for "
                  f"them): {items}.", ""]
    if figure:
        lines += [f"![Critical-difference diagram of mean ranks]({figure.name})", ""]
    header = ["method", "mean rank", *ranking.datasets]
    body = [[m, f"{r:.2f}", *(f"{ranking.ranks[d][m]:g}" for d in ranking.datasets)]
            for m, r in zip(ranking.methods, ranking.mean_ranks)]
    lines += sortable(table([text(h) for h in header], body, right=header[1:]))
    return "\n".join(lines) + "\n"
