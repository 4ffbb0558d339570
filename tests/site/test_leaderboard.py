"""The leaderboard: measured tables with CIs computed independently here, a separate reported
section, readable PNG plots, and the command's error handling."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from scipy import stats
from support.leaderboard import CALIBRATORS, METHODS, SEEDS, accuracy, ausuc_of, oracle_of, row
from support.paths import ROOT

from zsbench.cli import main
from zsbench.cli.leaderboard import leaderboard
from zsbench.errors import DataError
from zsbench.site.leaderboard import (
    REPORTED_TITLE,
    Reported,
    load_reported,
    pages_of,
    slug,
    write_leaderboard,
)
from zsbench.store.load import load_rows
from zsbench.store.sqlite import ResultStore

pytestmark = pytest.mark.usefixtures("exact_unmeasured")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KAPPAS = (0.25, 0.5, 0.75)


@pytest.fixture
def results_db(tmp_path) -> Path:
    path = tmp_path / "results.sqlite"
    with ResultStore(path) as store:
        for method in METHODS:
            for seed in SEEDS:
                store.write_run([row(method, c, seed) for c in CALIBRATORS])
        for kappa in KAPPAS:
            for seed in SEEDS:
                store.write_run([row("gamma-clr", c, seed, kappa=kappa) for c in CALIBRATORS])
    return path


@pytest.fixture
def reported_file(tmp_path) -> Path:
    path = tmp_path / "reported.yaml"
    path.write_text(yaml.safe_dump([
        {"method": "PaperNet", "dataset": "FLOWERS", "u": 73.0, "s": 73.6, "H": 73.3, "zsl": 76.8, "source": "Some et al. 2019"},
        {"method": "OtherNet", "dataset": "CUB", "u": 59.3, "s": 52.6, "H": 55.8, "source": "Other et al. 2018"},
    ]))
    return path


def ci(values: list[float]) -> str:
    """Mean ± 95% CI half-width (Student t, n-1 dof), in percent, the way a reader checks it."""
    v = np.array(values) * 100
    half = stats.t.ppf(0.975, len(v) - 1) * np.std(v, ddof=1) / np.sqrt(len(v))
    return f"{v.mean():.1f} ± {half:.1f}"


def table_lines(page: str, section: str) -> list[str]:
    body = page.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return [line for line in body.splitlines() if line.startswith("| ")][2:]


def assert_png(path: Path) -> None:
    assert path.is_file() and path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 5_000  # a drawn figure, not an empty canvas


def test_pages_have_independently_computed_cis_sorted_by_h(results_db, reported_file, tmp_path):
    out = tmp_path / "site"
    written = write_leaderboard(load_rows(results_db), out, load_reported(reported_file), with_plots=False)
    assert [p.relative_to(out).as_posix() for p in written] == [
        "index.md", "flowers.md", "_flowers-entries.md", "flowers/alpha-net.md", "flowers/beta-map.md", "cub.md",
        "_top-rows.md", "_run-times.md",
    ]
    page = (out / "flowers.md").read_text()
    assert page.startswith("---\nhide:\n  - toc\n---\n")  # the wide table gets the toc's width
    header = page.split("## Measured", 1)[1].split("\n| ", 1)[1].split("\n", 1)[0]
    assert [c.strip() for c in header.strip(" |").split("|")] == [
        "#", "method", "calibrator", "H", "vs #1", "u", "s", "ZSL", "AUSUC", "oracle H (test)", "seeds", "details"
    ]
    measured = table_lines(page, "Measured")
    assert len(measured) == len(METHODS)  # one validated row per method; swept entries are not in this table
    others = table_lines(page, "Other calibrations (not chosen on validation)")
    assert len(others) == len(METHODS)
    for method in METHODS:
        for cal in CALIBRATORS:
            line = next(r for r in measured + others if f"| {method} | {cal} |" in r)
            if line in others:
                continue
            hs = []
            for seed in SEEDS:
                u, s = accuracy(method, cal, seed, "u"), accuracy(method, cal, seed, "s")
                hs.append(2 * u * s / (u + s))
            cells = [c.strip() for c in line.strip(" |").split(" | ")]
            assert [cells[3], *cells[5:8]] == [ci(hs), *(ci([accuracy(method, cal, seed, m) for seed in SEEDS]) for m in ("u", "s", "zsl"))]
            assert cells[8] == ci([ausuc_of(method, seed) for seed in SEEDS])
            oracle = "—" if cal == "none" else ci([oracle_of(method, seed) for seed in SEEDS])
            assert cells[9] == f'<span class="zsb-oracle">{oracle}</span>'
            assert cells[10] == "3" and cells[11] == f"[details](flowers/{method}.md#cal-{cal})"
    # best H first; validation (not test H) chose each method's calibration: alpha-net calibrated,
    # beta-map uncalibrated (its calibrated row, better on test, lost on validation)
    assert measured[0].startswith("| 1 | beta-map | none |")
    assert measured[1].startswith("| 2 | alpha-net | metric-rescaling |")
    assert "| beta-map | metric-rescaling |" in others[0] and others[0].endswith("| none | [details](flowers/beta-map.md#cal-metric-rescaling) |")
    assert "PaperNet" not in "\n".join(measured)
    assert '<div class="zsb-sortable zsb-main" markdown>' in page.split("## Measured", 1)[1].split("| #", 1)[0]

    # what calibration buys: paired per-seed gains, computed here independently
    gains = table_lines(page, "What calibration buys")
    assert len(gains) == len(METHODS)
    for method in METHODS:
        line = next(r for r in gains if r.startswith(f"| {method} | metric-rescaling |"))
        diffs = np.array([
            (lambda u, s: 2 * u * s / (u + s))(accuracy(method, "metric-rescaling", seed, "u"), accuracy(method, "metric-rescaling", seed, "s"))
            - (lambda u, s: 2 * u * s / (u + s))(accuracy(method, "none", seed, "u"), accuracy(method, "none", seed, "s"))
            for seed in SEEDS
        ]) * 100
        half = stats.t.ppf(0.975, len(diffs) - 1) * np.std(diffs, ddof=1) / np.sqrt(len(diffs))
        assert f"| +{diffs.mean():.1f} ± {half:.1f} | 3 |" in line

    # details one click away: per-seed choices, provenance keys, wall time
    details = (out / "flowers" / "beta-map.md").read_text()
    assert "[Back to the Flowers leaderboard](../flowers.md)" in details
    assert "## beta-map + metric-rescaling {#cal-metric-rescaling}" in details
    assert "## beta-map, no calibration {#cal-none}" in details
    assert "Validation chose the calibration none" in details and "| metric-rescaling (not chosen) |" in details
    seeds = table_lines(details, "beta-map + metric-rescaling {#cal-metric-rescaling}")
    assert [line.split(" | ")[:3] for line in seeds] == [
        ["| 0", "ridge=1", "0.1"], ["| 1", "ridge=1", "0.2"], ["| 2", "ridge=10", "0.3"]
    ]
    assert all(line.endswith("| 1.0 |") for line in seeds)  # wall time
    provenance = table_lines(details, "Provenance")
    assert "| torch | 2.14.1 |" in provenance and "| checksum | `deadbeefcafe0123` |" in provenance
    assert any(line.startswith(r"| run\_key | seed 0: key-beta-map-0; seed 1: key-beta-map-1") for line in provenance)
    assert "class embeddings (att, 1024-d)" in details and r"efficientnet\_lite0" in details
    # nested provenance (data checksums, the spec entries) folded, once per distinct value
    assert details.count('??? note "data (every seed)"') == 1 and "att_splits.mat: sha256:0123abcd" in details
    assert [details.count(f'??? note "config (seed {seed})"') for seed in SEEDS] == [1, 1, 1]

    # the sweep: its own table, one row per (value, calibrator), CIs over seeds
    sweep = table_lines(page, "Sweeps")
    assert len(sweep) == len(KAPPAS) * len(CALIBRATORS)
    line = next(r for r in sweep if r.startswith("| 0.5 | none |"))
    assert ci([accuracy("gamma-clr", "none", seed, "u", 0.5) for seed in SEEDS]) in line

    # literature numbers: a separate, labelled section on the matching data set only
    assert page.count(REPORTED_TITLE) == 1
    assert page.index(REPORTED_TITLE) > page.index("## Measured")
    reported = table_lines(page, REPORTED_TITLE)
    assert reported == ["| PaperNet | 73.0 | 73.6 | 73.3 | 76.8 | not stated | not stated | no: its features are not "
                        "stated | Some et al. 2019 |  |"]
    cub = (out / "cub.md").read_text()
    assert "OtherNet" in cub and "No runs of this data set" in cub and "## Measured" not in cub

    index = (out / "index.md").read_text()
    assert "[Flowers](flowers.md)" in index and "[CUB](cub.md)" in index
    assert "| beta-map |" in index and "beta-map + metric-rescaling" not in index  # validated, not best test H
    top = (out / "_top-rows.md").read_text().splitlines()  # the home page's results, linking from docs/
    assert top[2] == (f"**[Flowers](site/flowers.md)**: features efficientnet\\_lite0; side information class "
                      f"embeddings (att, 1024-d); {len(SEEDS)} seeds")
    assert top[8].startswith("| 1 | beta-map |") and top[9].startswith("| 2 | alpha-net + metric-rescaling |")


def test_rows_from_before_the_test_only_metrics_show_dashes(tmp_path):
    rows = [{**attrs.asdict(row("solo", "metric-rescaling", seed)), "id": seed, "curves": {}} for seed in SEEDS]
    for r in rows:
        del r["ausuc"], r["oracle_H"]  # as an old database's rows
    write_leaderboard(rows, tmp_path, with_plots=False)
    cells = [c.strip() for c in table_lines((tmp_path / "flowers.md").read_text(), "Measured")[0].strip(" |").split(" | ")]
    assert cells[8] == "—" and cells[9] == '<span class="zsb-oracle">—</span>'


def test_regenerating_removes_pages_of_methods_no_longer_run(results_db, tmp_path):
    rows = load_rows(results_db)
    write_leaderboard(rows, tmp_path, with_plots=False)
    assert (tmp_path / "flowers" / "alpha-net.md").is_file()
    write_leaderboard([r for r in rows if r["method"] != "alpha-net"], tmp_path, with_plots=False)
    assert not (tmp_path / "flowers" / "alpha-net.md").exists() and (tmp_path / "flowers" / "beta-map.md").is_file()


@pytest.mark.slow
def test_plots_are_png_files_linked_from_the_page(results_db, tmp_path):
    written = write_leaderboard(load_rows(results_db), tmp_path)
    page = (tmp_path / "flowers.md").read_text()
    pngs = sorted(p.relative_to(tmp_path).as_posix() for p in written if p.suffix == ".png")
    assert pngs == [
        "flowers/alpha-net.validation.png",
        "flowers/beta-map.validation.png",
        "flowers/page.h-bars.png",
        "flowers/page.h-test.png",
        "flowers/page.h-validation.png",
        "flowers/page.seen-unseen.png",
        "flowers/page.sweep.gamma-clr.loss-kappa.png",
    ]
    for name in pngs:
        assert_png(tmp_path / name)
        if Path(name).name.startswith("page."):
            assert f"]({name})" in page
        else:
            assert f"]({Path(name).name})" in (tmp_path / name.replace(".validation.png", ".md")).read_text()
    assert page.index("flowers/page.h-bars.png") < page.index("## Measured")  # the bar chart opens the page
    assert "test curve for illustration" in page.lower()


def test_rows_without_curves_give_tables_and_no_calibration_plots(tmp_path):
    rows = [{**attrs.asdict(row("solo", "none", seed)), "curves": {}, "id": seed} for seed in SEEDS]
    written = write_leaderboard(rows, tmp_path / "out")  # no curves: only the bar chart to draw
    assert [p.relative_to(tmp_path / "out").as_posix() for p in written] == [
        "index.md", "flowers.md", "flowers/page.h-bars.png", "_flowers-entries.md", "flowers/solo.md", "_top-rows.md",
        "_run-times.md"]
    page = written[1].read_text()
    assert "## Calibration" not in page and REPORTED_TITLE not in page and "## What calibration buys" not in page
    assert "## Validation curves" not in written[3].read_text()
    assert ci([accuracy("solo", "none", s, "u") for s in SEEDS]) in page


def test_one_seed_shows_the_mean_without_an_interval(tmp_path):
    rows = [{**attrs.asdict(row("solo", "metric-rescaling", 0)), "id": 1}]
    write_leaderboard(rows, tmp_path, with_plots=False)
    line = table_lines((tmp_path / "flowers.md").read_text(), "Measured")[0]
    assert f"| {100 * accuracy('solo', 'metric-rescaling', 0, 'u'):.1f} |" in line and "±" not in line


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- {method: X, dataset: D, u: 1, s: 2, H: 3}", "'source' must be a non-empty string"),
        ("- {method: X, dataset: D, u: 140, source: S}", "'u' must be a percentage"),
        ("- {method: X, dataset: D, source: S}", "at least one of"),
        ("- {method: X, dataset: D, H: 3, source: S, year: 2019}", "unknown key(s) ['year']"),
        ("method: X", "expected a list"),
        ("- [", "not valid YAML"),
    ],
)
def test_bad_reported_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "reported.yaml"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        load_reported(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_command_writes_pages_and_reads_the_default_reported_file(results_db, reported_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "benchmarks").mkdir()
    reported_file.rename(tmp_path / "benchmarks" / "reported.yaml")
    result = CliRunner().invoke(leaderboard, ["--results", str(results_db), "--out", "lb", "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "wrote 5 page(s), 0 plot(s) and the home page's top rows" in result.output and "2 reported result(s)" in result.output
    assert REPORTED_TITLE in (tmp_path / "lb" / "flowers.md").read_text()


def test_command_combines_several_databases_in_one_invocation(results_db, tmp_path):
    other = tmp_path / "cub.sqlite"
    with ResultStore(other) as store:
        store.write_run([attrs.evolve(row("alpha-net", "none", 0, dataset="CUB"), run_key="cub-0")])
    result = CliRunner().invoke(
        leaderboard, ["--results", str(results_db), "--results", str(other), "--out", str(tmp_path / "lb"), "--no-plots"]
    )
    assert result.exit_code == 0, result.output
    assert "from 31 row(s)" in result.output
    assert (tmp_path / "lb" / "cub" / "alpha-net.md").is_file() and (tmp_path / "lb" / "flowers" / "beta-map.md").is_file()


def test_command_warns_when_two_specs_share_entry_names(results_db, tmp_path):
    with ResultStore(results_db) as store:
        store.write_run([attrs.evolve(row("alpha-net", "none", 0), run_key="other", spec_name="rerun")])
    result = CliRunner().invoke(leaderboard, ["--results", str(results_db), "--out", str(tmp_path), "--no-plots"])
    assert result.exit_code == 0
    assert "warning: Flowers / alpha-net: seeds [0, 0, 1, 2] from specs unit, rerun" in result.output
    assert "--spec-name" in result.output
    quiet = CliRunner().invoke(
        leaderboard, ["--results", str(results_db), "--out", str(tmp_path), "--no-plots", "--spec-name", "unit"]
    )
    assert quiet.exit_code == 0 and "warning" not in quiet.output


def test_command_without_a_database_exits_2_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["leaderboard", "--results", str(tmp_path / "missing.sqlite"), "--out", str(tmp_path / "lb")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "missing.sqlite" in err and "no results database" in err
    assert "Traceback" not in err and not (tmp_path / "lb").exists()


def test_slugs_are_file_safe():
    assert slug("CUB-200 (res101)") == "cub-200-res101"
    assert slug("///") == "unnamed"


def test_shipped_reported_numbers_load_and_are_consistent():

    from zsbench.site.leaderboard import load_reported

    rows = load_reported(ROOT / "benchmarks" / "reported.yaml")
    assert {r.dataset for r in rows} == {"cub", "flo"}
    for r in rows:
        if r.u is not None and r.s is not None:  # H = 2us/(u+s), to the paper's rounding
            assert abs(2 * r.u * r.s / (r.u + r.s) - r.H) < 0.15, r


def test_reported_numbers_join_the_one_page_measured_with_their_dataset_plugin():
    rows = [{"dataset": "cub-subset", "dataset_plugin": "cub"}, {"dataset": "flo", "dataset_plugin": "flo"},
            {"dataset": "flo[backbone=a]", "dataset_plugin": "flo"}]
    cub, flo, other = (Reported("m", d, 1.0, 2.0, 3.0, None, "paper") for d in ("CUB", "flo", "awa2"))
    pages = {p.title: p for p in pages_of(rows, [cub, flo, other])}
    assert pages["cub-subset"].reported == [cub]  # no page named cub: the subset run's page
    assert pages["flo"].reported == [flo] and pages["flo[backbone=a]"].reported == []  # the name wins
    assert pages["awa2"].reported == [other] and not pages["awa2"].rows  # measured nowhere: own page


def test_run_times_count_each_run_once_whatever_its_calibrations(tmp_path):
    """Both calibrations of a run are rows of one run with one wall time: summed once."""
    rows = [{**attrs.asdict(attrs.evolve(row(m, cal, seed), wall_time=10.0 * (seed + 1) + (m == "beta-map"))),
             "curves": {}, "id": i}
            for i, (m, cal, seed) in enumerate((m, cal, seed) for m in ("alpha-net", "beta-map")
                                               for cal in ("none", "calibrated-stacking") for seed in SEEDS)]
    write_leaderboard(rows, tmp_path, with_plots=False)
    total = sum(10.0 * (seed + 1) + extra for seed in SEEDS for extra in (0, 1))
    assert f"| Flowers | {2 * len(SEEDS)} | {total:.0f} s | {total / 60:.1f} min |" in \
        (tmp_path / "_run-times.md").read_text()


def test_the_header_states_classes_and_test_images_where_rows_recorded_them():
    from zsbench.site.pages import context_block

    counts = {"seen_classes": 7, "unseen_classes": 3, "test_seen_images": 78, "test_unseen_images": 127}
    recorded = attrs.asdict(attrs.evolve(row("alpha-net", "none", 0),
                                         provenance={**row("alpha-net", "none", 0).provenance, "counts": counts}))
    older = attrs.asdict(row("alpha-net", "none", 1))
    header = "\n".join(context_block([recorded, older]))
    assert "; 7 seen / 3 unseen classes, 78 seen-class + 127 unseen-class test images scored" in header
    assert "unseen classes" not in "\n".join(context_block([older]))  # older rows: omitted
