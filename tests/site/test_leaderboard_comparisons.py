"""Who wins, by how much, how sure: validation-chosen rows, paired ties, shared ranks within the
cross-machine tolerance, the aggregate ranking, grid-edge marks, inert text and unique names."""

from __future__ import annotations

import markdown
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from zsbench.site.leaderboard import write_leaderboard
from zsbench.site.markdown import Slugs, text
from zsbench.site.model import grid_edges, pages_of
from zsbench.store import comparisons as cmp
from zsbench.store import tolerance
from zsbench.store.summary import summarize

pytestmark = pytest.mark.usefixtures("exact_unmeasured")


def rows_of(method: str, calibrator: str, hs: list[float], val: float = 0.5, plugin: str | None = None,
            dataset: str = "d") -> list[dict]:
    return [{"dataset": dataset, "method": method, "calibrator": calibrator, "seed": seed, "H": h, "u": h, "s": h,
             "zsl": h, "val_H": val, "method_plugin": plugin or method} for seed, h in enumerate(hs)]


def test_validation_not_test_h_chooses_a_methods_calibration():
    summaries = summarize(rows_of("m", "none", [0.6, 0.6, 0.6], val=0.40) + rows_of("m", "cs", [0.5, 0.5, 0.5], val=0.45)
                          + rows_of("n", "none", [0.55] * 3, val=0.5))
    main, others = cmp.validated(summaries)
    assert [(s.method, s.calibrator) for s in main] == [("n", "none"), ("m", "cs")]  # best test H first
    assert [(s.method, s.calibrator) for s in others] == [("m", "none")]


def paired(diffs: list[float]) -> tuple[float, float]:
    d = np.array(diffs) * 100
    return d.mean(), stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))


def test_pairs_are_per_seed_differences_with_a_t_interval():
    a, b = summarize(rows_of("a", "none", [0.60, 0.45, 0.70]) + rows_of("b", "none", [0.55, 0.40, 0.64]))
    pair = cmp.Pair.of(a, b)
    mean, half = paired([0.05, 0.05, 0.06])
    assert pair.difference.mean == pytest.approx(mean) and pair.difference.half_width == pytest.approx(half)
    assert not pair.tied and pair.why == "ahead"  # the seeds' spread would hide it; paired, it shows
    c, d = summarize(rows_of("c", "none", [0.60, 0.40, 0.70]) + rows_of("d", "none", [0.50, 0.52, 0.61]))
    assert cmp.Pair.of(c, d).tied and cmp.Pair.of(c, d).why == "tied: the seed interval contains 0"
    e, f = summarize(rows_of("e", "none", [0.9]) + rows_of("f", "none", [0.1]))
    assert cmp.Pair.of(e, f).tied and "fewer than two" in cmp.Pair.of(e, f).why


def test_rows_within_the_cross_machine_tolerance_are_never_ahead_of_each_other(monkeypatch):
    rows = (rows_of("a", "none", [0.600, 0.601, 0.602]) + rows_of("b", "none", [0.590, 0.591, 0.592])
            + rows_of("c", "none", [0.40, 0.41, 0.42]))
    main, _ = cmp.validated(summarize(rows))
    assert cmp.rank_labels(main) == ["1", "2", "3"]
    assert not cmp.versus_best(main)[1].tied  # exactly 1.0 point apart on every seed: ahead, when exact
    monkeypatch.setitem(tolerance.TOLERANCES, "b", (0.015, 0.015))
    assert cmp.rank_labels(main) == ["=1", "=1", "3"]
    assert cmp.versus_best(main)[1].tied and "tolerance" in cmp.versus_best(main)[1].why


def test_the_page_marks_ties_and_shared_ranks(tmp_path, monkeypatch):
    monkeypatch.setitem(tolerance.TOLERANCES, "b", (0.015, 0.015))
    rows = (rows_of("a", "none", [0.600, 0.601, 0.602]) + rows_of("b", "none", [0.590, 0.591, 0.592])
            + rows_of("c", "none", [0.40, 0.41, 0.42]))
    for i, r in enumerate(rows):
        r.update(id=i, curves={}, side_information="att", features="f", spec_name="s", hyperparameters={},
                 calibration_param=None, wall_time=1.0, run_key=str(i))
    write_leaderboard(rows, tmp_path, with_plots=False)
    table = [line for line in (tmp_path / "d.md").read_text().split("## Measured")[1].splitlines()
             if line.startswith("| ")][2:]
    assert table[0].startswith("| **=1** | a | none | 60.1 ± 0.2 | — |")
    assert table[1].startswith("| **=1** | b | none | 59.1 ± 0.2 | tied -1.0 ± 0.0 |")
    assert table[2].startswith("| 3 | c | none | 41.0 ± 2.5 | -19.1 ± 2.2 |")


def test_aggregate_ranking_is_the_mean_rank_with_the_nemenyi_critical_difference():
    results = {"d1": {"a": 0.6, "b": 0.5, "c": 0.4, "x": 0.9}, "d2": {"a": 0.5, "b": 0.5, "c": 0.7},
               "d3": {"a": 0.7, "b": 0.6, "c": 0.5}}
    ranking = cmp.aggregate_ranking(results)
    assert ranking.methods == ("a", "b", "c")  # x is not measured everywhere
    assert ranking.mean_ranks == pytest.approx(((1 + 2.5 + 1) / 3, (2 + 2.5 + 2) / 3, (3 + 1 + 3) / 3))
    # Demšar 2006, Table 5(a): q_0.05 = 2.343 for k = 3
    assert ranking.critical_difference == pytest.approx(2.343 * np.sqrt(3 * 4 / (6 * 3)), abs=1e-3)
    assert ranking.groups() == [(0, 2)]
    assert cmp.aggregate_ranking({"d1": results["d1"]}) is None


def test_a_choice_at_the_edge_of_its_grid_is_marked_on_the_methods_page(tmp_path):
    def row(seed, lr):
        return {**rows_of("m", "none", [0.5])[0], "seed": seed, "id": seed, "curves": {}, "side_information": "att",
                "features": "f", "spec_name": "s", "hyperparameters": {"lr": lr, "epochs": 10},
                "calibration_param": None, "wall_time": 1.0, "run_key": str(seed),
                "provenance": {"config": {"method": {"grid": {"lr": [1.0, 3.0, 10.0], "epochs": [10, 20]}}}}}

    assert grid_edges(row(0, 10.0)) == ["lr"] and grid_edges(row(0, 3.0)) == []  # two-value grids: no edge
    write_leaderboard([row(0, 10.0), row(1, 3.0)], tmp_path, with_plots=False)
    page = (tmp_path / "d" / "m.md").read_text()
    assert "| 0 | epochs=10, lr=10 (at the edge of its grid: lr) |" in page
    assert "| 1 | epochs=10, lr=3 |" in page


def test_a_single_backbone_is_part_of_the_data_set_title():
    rows = [{"dataset": "flo", "provenance": {"config": {"dataset": {"backbone": {"name": "lite1"}}}}},
            {"dataset": "flo", "provenance": {"config": {"dataset": {}}}},
            {"dataset": "flo[backbone=lite2]", "provenance": {"config": {"dataset": {"backbone": {"name": "lite2"}}}}}]
    assert [p.title for p in pages_of(rows, [])] == ["flo[backbone=lite1]", "flo", "flo[backbone=lite2]"]


HOSTILE = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@given(HOSTILE)
def test_user_text_renders_as_itself_and_nothing_else(value):
    html = markdown.markdown(f"before {text(value)} after", extensions=["attr_list", "tables", "md_in_html"])
    assert "<a" not in html and "<img" not in html and "<em" not in html and "<code" not in html
    assert "<" not in html.removeprefix("<p>").removesuffix("</p>").replace("<br />", "")


@given(st.lists(HOSTILE, min_size=1, max_size=12, unique=True))
def test_distinct_names_never_share_a_file_name(names):
    slugs = Slugs(names)
    files = [slugs[n] for n in names]
    assert len({f.lower() for f in files}) == len(names)
    assert all(f and set(f) <= set("abcdefghijklmnopqrstuvwxyz0123456789-") for f in files)
    assert not {"index", "ranking"} & set(files)


def test_rows_that_differ_only_by_backbone_get_a_method_by_backbone_page(tmp_path):
    h = {("lite0", "a"): [0.50, 0.52, 0.54], ("lite0", "b"): [0.40, 0.45, 0.41],
         ("lite1", "a"): [0.45, 0.46, 0.50], ("lite1", "b"): [0.48, 0.49, 0.47]}
    rows = []
    for (backbone, method), hs in h.items():
        for r in rows_of(method, "none", hs, dataset="flo" if backbone == "lite0" else f"flo[backbone={backbone}]"):
            r.update(id=len(rows), curves={}, side_information="att", features=f"efficientnet_{backbone}",
                     spec_name="s", hyperparameters={}, calibration_param=None, wall_time=1.0, run_key=str(len(rows)),
                     provenance={"config": {"dataset": {"plugin": "flo", "options": {}, "backbone": {"name": backbone}}}})
            rows.append(r)
    written = write_leaderboard(rows, tmp_path, with_plots=False)
    assert tmp_path / "flo-methods-by-backbone.md" in written
    page = (tmp_path / "flo-methods-by-backbone.md").read_text()
    assert "(pages: [lite0](flo-backbone-lite0" in page  # a single backbone is named in the label too
    assert "- **Image features**: efficientnet\\_lite0, efficientnet\\_lite1 (backbone lite0, lite1, extracted" in page
    assert "| a | 52.0 ± 5.0 | 47.0 ± 6.6 |" in page and "| b | 42.0 ± 6.6 | 48.0 ± 2.5 |" in page
    mean, half = paired([0.05, 0.06, 0.04])
    assert f"| a | lite0 − lite1 | +{mean:.1f} ± {half:.1f} | 3 | — | higher |" in page  # no per-image bits
    assert "| b | lite0 − lite1 | -6.0 ± " in page and "[flo: methods by backbone](flo-methods-by-backbone.md)" in (
        tmp_path / "index.md").read_text()


def test_figures_draw_labels_that_look_like_formulas_as_text(tmp_path):
    import attrs
    from support.leaderboard import CALIBRATORS, SEEDS, row

    hostile = r"m$\notacommand{$"
    rows = [{**attrs.asdict(row(m, c, seed, dataset=r"d$\frac{$")), "id": i, "method": m}
            for i, (m, c, seed) in enumerate((m, c, s) for m in (hostile, "plain") for c in CALIBRATORS for s in SEEDS)]
    for r in rows:
        r["curves"] = r["curves"] or {}
    written = write_leaderboard(rows, tmp_path)
    assert sum(p.suffix == ".png" for p in written) >= 5  # bars, curves, seen-unseen, method pages


def test_a_method_whose_tolerance_was_never_measured_is_never_ranked_ahead(monkeypatch):
    """No measurement, no claim: an unmeasured method's rows tie, however far apart."""
    monkeypatch.setattr(tolerance, "UNMEASURED", (float("inf"), float("inf")))  # the shipped default
    rows = rows_of("unmeasured-a", "none", [0.80, 0.81, 0.82]) + rows_of("unmeasured-b", "none", [0.20, 0.21, 0.22])
    main, _ = cmp.validated(summarize(rows))
    assert cmp.rank_labels(main) == ["=1", "=1"]
    assert cmp.versus_best(main)[1].tied and "tolerance" in cmp.versus_best(main)[1].why


def test_each_data_sets_entries_are_a_snippet_with_a_section_per_method(tmp_path):
    rows = rows_of("a", "none", [0.60, 0.62], val=0.4) + rows_of("a", "cs", [0.5, 0.52], val=0.5) + rows_of(
        "b", "none", [0.3, 0.32])
    for i, r in enumerate(rows):
        r.update(id=i, curves={}, side_information="att", features="f", spec_name="s", hyperparameters={},
                 calibration_param=None, wall_time=1.0, run_key=str(i))
    assert tmp_path / "_d-entries.md" in write_leaderboard(rows, tmp_path, with_plots=False)
    snippet = (tmp_path / "_d-entries.md").read_text()
    section = snippet.split("<!-- --8<-- [start:a] -->")[1].split("<!-- --8<-- [end:a] -->")[0]
    assert "| a + cs | yes | 51.0 ± 12.7 |" in section and "| a | no | 61.0 ± 12.7 |" in section
    assert "| b |" not in section and "<!-- --8<-- [start:b] -->" in snippet


def test_only_rows_tied_with_the_best_share_its_rank(monkeypatch):
    """Tolerance ties do not chain into rank 1: c is within the tolerance of b, b of a, but c is
    behind a on every seed by more than it, so c is not marked as tied with the best."""
    for method in "abc":
        monkeypatch.setitem(tolerance.TOLERANCES, method, (0.015, 0.015))
    rows = (rows_of("a", "none", [0.600, 0.601, 0.602]) + rows_of("b", "none", [0.590, 0.591, 0.592])
            + rows_of("c", "none", [0.578, 0.579, 0.580]) + rows_of("d", "none", [0.570, 0.571, 0.572]))
    main, _ = cmp.validated(summarize(rows))
    versus = cmp.versus_best(main)
    assert versus[1].tied and not versus[2].tied and not versus[3].tied
    assert cmp.rank_labels(main) == ["=1", "=1", "=3", "=3"]
    assert [label == "=1" for label in cmp.rank_labels(main)] == [i == 0 or versus[i].tied for i in range(4)]


def test_one_colour_per_method_plugin_whatever_the_entry_or_the_page():
    from zsbench.site.plots import COLOURS, Palette

    palette = Palette({"clarel-att": "clarel", "clarel-sent": "clarel", "ale-att": "ale", "ale": "ale", "sje": "sje"})
    assert palette.colour("clarel-att") == palette.colour("clarel-sent") == palette.colour("clarel")
    assert len({palette.colour(m) for m in ("clarel", "ale", "sje")}) == 3  # within the palette: never shared
    assert {palette.colour(m) for m in ("clarel", "ale", "sje")} <= set(COLOURS)
    assert palette.dashes("clarel-att") != palette.dashes("clarel-sent")  # entries of a plugin: told apart
    assert palette.dashes("ale") != palette.dashes("ale-att")


def test_the_h_chart_says_which_rows_are_tied_with_the_best(tmp_path, monkeypatch):
    """The chart's text (its alt) names exactly the rows ranked =1, the ones its solid bars show."""
    for method in "abc":
        monkeypatch.setitem(tolerance.TOLERANCES, method, (0.015, 0.015))
    rows = (rows_of("a", "none", [0.600, 0.601, 0.602]) + rows_of("b", "none", [0.590, 0.591, 0.592])
            + rows_of("c", "none", [0.578, 0.579, 0.580]))
    for i, r in enumerate(rows):
        r.update(id=i, curves={}, side_information="att", features="f", spec_name="s", hyperparameters={},
                 calibration_param=None, wall_time=1.0, run_key=str(i))
    write_leaderboard(rows, tmp_path)
    page = (tmp_path / "d.md").read_text()
    assert "tied with #1: a; b](d/page.h-bars.png)" in page
    assert "| **=1** | b | none |" in page and "| 3 | c | none |" in page


def test_the_aggregate_ranking_counts_data_sets_that_share_input_files_once(tmp_path):
    """A subset of a data set reads its images' files (captions of the same names, here another
    copy), another backbone the same split file: ranking them apart would count one data set
    twice. The page that scored the most test images stands for them; a data set whose files
    only share a layout's top-level names (res101.mat) counts on its own."""
    rows = []
    for dataset, files, images, hs in (("sub", ["text/1.txt", "res101.mat"], 100, {"a": 0.3, "b": 0.6}),
                                       ("full", ["text/1.txt", "text/2.txt", "res101.mat"], 900, {"a": 0.6, "b": 0.3}),
                                       ("flo", ["res101.mat"], 500, {"a": 0.5, "b": 0.4}),
                                       ("flo-lite1", ["res101.mat"], 400, {"a": 0.3, "b": 0.4}),
                                       ("awa2", ["res101.mat"], 700, {"a": 0.5, "b": 0.6})):
        for method, h in hs.items():
            for r in rows_of(method, "none", [h, h + 0.01, h + 0.02], dataset=dataset):
                r.update(id=len(rows), curves={}, side_information="att", features="f", spec_name="s",
                         hyperparameters={}, calibration_param=None, wall_time=1.0, run_key=str(len(rows)),
                         dataset_plugin="xlsa17", provenance={
                             "counts": {"test_seen_images": images // 2, "test_unseen_images": images - images // 2},
                             "data": {"files": [{"name": f, "sha256": f"{dataset}'s copy of {f}"} for f in files]
                                      + ([{"name": "split.mat", "sha256": "flo's split"}] if "flo" in dataset else [])}})
                rows.append(r)
    write_leaderboard(rows, tmp_path, with_plots=False)
    ranking = (tmp_path / "ranking.md").read_text()
    assert "every one of 3 data sets (full, flo, awa2)" in ranking
    assert "| a | 1.33 | 1 | 1 | 2 |" in ranking and "| b | 1.67 | 2 | 2 | 1 |" in ranking
    assert "sub (shares input files with full); flo-lite1 (shares input files with flo)" in ranking
    assert "With 3 data sets no two methods are told apart" in ranking  # 1.33 and 1.67, CD 1.13


@given(st.floats(-200, 200, allow_nan=False), st.floats(0, 50, allow_nan=False))
def test_a_difference_never_reads_minus_zero_and_keeps_its_rounded_value(mean, half):
    from zsbench.site.pages import signed
    from zsbench.store.summary import Estimate

    shown = signed(Estimate(mean, half, 3))
    assert not shown.startswith("-0.0 ") and float(shown.split(" ± ")[0]) == pytest.approx(mean, abs=0.05 + 1e-9)


@given(st.floats(-100, 100, allow_nan=False), st.floats(0, 100, allow_nan=False))
def test_a_test_image_interval_never_reads_minus_zero(low, width):
    shown = str(cmp.Interval(low, low + width, 3, 1000))
    assert "-0.0" not in shown
    assert [float(x) for x in shown.strip("[]").split(", ")] == pytest.approx([low, low + width], abs=0.05 + 1e-9)
