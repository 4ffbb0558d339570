"""What a new user meets first: mistakes in specs and data folders explained where they are made."""

from __future__ import annotations

import pytest
from support.cli import write
from support.cli import zsbench as cli

import zsbench
from zsbench.errors import DataError, SpecError
from zsbench.store.results import in_spec_order

SPEC = """
name: first-hour
datasets: [{name: synthetic}]
methods:
  - {method}
"""


def validate(tmp_path, method: str):
    return cli("validate", write(tmp_path, SPEC.replace("{method}", method)))


def test_misspelled_method_and_option_names_get_a_suggestion(tmp_path):
    out = validate(tmp_path, "name: eszl")
    assert out.returncode == 2 and "unknown method 'eszl' (did you mean 'eszsl'?)" in out.stderr
    out = validate(tmp_path, "{name: eszsl, lamm: 1.0}")
    assert "methods[0].lamm: unknown option for method 'eszsl' (did you mean 'lam'?)" in out.stderr


def test_a_number_yaml_reads_as_text_is_explained_and_grid_errors_keep_their_path(tmp_path):
    out = validate(tmp_path, "{name: eszsl, lam: 1e3}")
    assert out.returncode == 2
    assert "methods[0].lam: expected a number, got '1e3' (YAML reads 1e3 as text" in out.stderr
    assert "1.0e+03, or as 1000" in out.stderr
    out = validate(tmp_path, "{name: eszsl, grid: {lam: [1.0, 1e3]}}")
    assert "methods[0].grid.lam[1]: expected a number, got '1e3'" in out.stderr


def test_a_misspelled_feature_file_is_named_by_validate_and_by_the_run(tmp_path):
    flo = tmp_path / "flo"
    flo.mkdir()
    for name in ("efficientnet_lite0.mat", "att_splits.mat", "setid.mat", "imagelabels.mat"):
        (flo / name).write_bytes(b"")
    spec = write(tmp_path, f"name: f\ndatasets: [{{name: flo, root: {flo}, features: efficientnet_lite0.mt}}]\n"
                           "methods: [{name: eszsl}]\n", "flo.yaml")
    out = cli("validate", spec)
    assert out.returncode == 2
    assert ("datasets[0].features: no file 'efficientnet_lite0.mt' in " f"{flo} (did you mean "
            "'efficientnet_lite0.mat'?)") in out.stderr
    with pytest.raises(DataError, match=r"efficientnet_lite0\.mt: feature file not found \(the `features` option\)"):
        zsbench.get_registry().build("dataset", "flo", root=flo, features="efficientnet_lite0.mt")


def test_a_missing_data_folder_mentions_zsbench_data(tmp_path):
    with pytest.raises(DataError, match=r"set ZSBENCH_DATA to the folder that holds flo/"):
        zsbench.get_registry().build("dataset", "flo", root=tmp_path / "flo")


def test_summaries_list_calibrators_in_the_spec_order():
    def row(method, calibrator):
        calibrators = [{"name": "none"}, {"name": "calibrated-stacking"}]
        return {"dataset": "d", "method": method, "calibrator": calibrator,
                "provenance": {"config": {"method": {"calibrators": calibrators}}}}

    stored = [row("a", "calibrated-stacking"), row("b", "none"), row("a", "none"), row("b", "calibrated-stacking")]
    assert [(r["method"], r["calibrator"]) for r in in_spec_order(stored)] == [
        ("a", "none"), ("a", "calibrated-stacking"), ("b", "none"), ("b", "calibrated-stacking")]


def test_a_run_ends_by_saying_what_to_do_next(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "cache"))
    spec = write(tmp_path, "name: next\nseeds: 1\ndatasets: [{name: synthetic, num_classes: 10, per_class: 10, "
                           "images: false}]\nmethods: [{name: random}]\n")
    out = cli("run", spec, "--results", tmp_path / "r.sqlite", "--quiet")
    assert out.returncode == 0, out.stderr
    assert f"next: `zsbench results --results {tmp_path / 'r.sqlite'}`" in out.stdout
    assert "zsbench leaderboard" in out.stdout
    with pytest.raises(SpecError):  # the API raises what the command prints, and never exits
        zsbench.run(str(tmp_path / "missing.yaml"))


def test_validate_refuses_a_distance_calibrator_for_a_similarity_method(tmp_path):
    out = validate(tmp_path, "{name: eszsl, calibrators: [none, metric-rescaling]}")
    assert out.returncode == 2
    assert ("methods[0].calibrators[1]: calibrator 'metric-rescaling' rescales distances, but method 'eszsl' "
            "returns similarity scores") in out.stderr
    assert validate(tmp_path, "{name: eszsl, calibrators: [none, calibrated-stacking]}").returncode == 0
    clarel = validate(tmp_path, "{name: clarel, calibrators: [none, metric-rescaling]}")
    assert clarel.returncode == 0, clarel.stderr
