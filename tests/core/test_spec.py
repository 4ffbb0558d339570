from __future__ import annotations

import pytest
from support.paths import ROOT

from zsbench.errors import SpecError
from zsbench.spec import load_spec, parse_spec


def spec(**over):
    base = {
        "name": "t",
        "seeds": [0, 1],
        "datasets": [{"name": "toy"}],
        "methods": [{"name": "ls", "method": "least-squares", "calibrators": ["none", "metric-rescaling"]}],
    }
    base.update(over)
    return base


def test_valid_spec_expands_grid_and_calibrators(toy_registry):
    s = parse_spec(spec(), "s.yaml", toy_registry)
    (m,) = s.methods
    assert m.grid == {"ridge": [0.1, 10.0]}  # the method's documented default grid
    assert [p["ridge"] for p in m.grid_points()] == [0.1, 10.0]
    assert [c.name for c in m.calibrators] == ["none", "metric-rescaling"]
    assert s.seeds == (0, 1)
    assert s.hash == parse_spec(spec(), "other.yaml", toy_registry).hash


def test_sweep_expands_rows(toy_registry):
    s = parse_spec(spec(methods=[{"name": "ls", "method": "least-squares", "grid": {}, "sweep": {"ridge": [1, 2, 3]}}]), "s.yaml", toy_registry)
    assert [m.label for m in s.methods] == ["ls[ridge=1]", "ls[ridge=2]", "ls[ridge=3]"]
    assert [m.options["ridge"] for m in s.methods] == [1, 2, 3]
    assert s.methods[0].sweep == {"ridge": 1}


@pytest.mark.parametrize(
    "over,where,what",
    [
        ({"seeds": "three"}, "seeds", "positive integer"),
        ({"seeds": [1, 1]}, "seeds", "distinct"),
        ({"datasets": []}, "datasets", "non-empty list"),
        ({"datasets": [{"name": "nope"}]}, "datasets[0].name", "unknown dataset 'nope'; known datasets:"),
        ({"datasets": [{"name": "toy", "noize": 1}]}, "datasets[0].noize", "unknown option for dataset 'toy' (did you mean 'noise'?); known options: noise, seed"),
        ({"datasets": [{"name": "toy", "noise": "loud"}]}, "datasets[0].noise", "expected a number, got 'loud'"),
        ({"methods": [{"name": "x", "method": "nope"}]}, "methods[0].method", "unknown method 'nope'"),
        ({"methods": [{"name": "x", "method": "least-squares", "ridge": "big"}]}, "methods[0].ridge", "expected a number"),
        ({"methods": [{"name": "x", "method": "least-squares", "grid": {"ridge": []}}]}, "methods[0].grid.ridge", "non-empty list"),
        ({"methods": [{"name": "x", "method": "least-squares", "grid": {"ridge": ["a"]}}]}, "methods[0].grid.ridge[0]", "expected a number"),
        ({"methods": [{"name": "x", "method": "least-squares", "calibrators": ["magic"]}]}, "methods[0].calibrators[0].name", "unknown calibrator 'magic'"),
        ({"methods": [{"name": "x", "method": "least-squares", "calibrators": [{"name": "metric-rescaling", "alpha": 1}]}]},
         "methods[0].calibrators[0].alpha", "known options: alpha_max, alpha_min, steps"),
        ({"methods": [{"name": "x", "method": "least-squares"}, {"name": "x", "method": "least-squares"}]}, "methods", "x appear(s) twice"),
        ({"extra": 1}, "extra", "unknown top-level key"),
        ({"name": ""}, "name", "non-empty string"),
    ],
)
def test_errors_name_key_path_and_expectation(toy_registry, over, where, what):
    with pytest.raises(SpecError) as err:
        parse_spec(spec(**over), "bench.yaml", toy_registry)
    msg = str(err.value)
    assert msg.startswith(f"bench.yaml: {where}: "), msg
    assert what in msg


def test_yaml_syntax_error_names_line(tmp_path, toy_registry):
    f = tmp_path / "bad.yaml"
    f.write_text("name: t\nseeds: [1, 2\n")
    with pytest.raises(SpecError, match=r"bad.yaml: not valid YAML at line \d+"):
        load_spec(f, toy_registry)


def test_missing_spec_file(tmp_path, toy_registry):
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "nope.yaml", toy_registry)


@pytest.mark.parametrize("name", ["demo", "flo-efficientnet", "gzsl", "clarel-ablation"])
def test_shipped_benchmark_specs_are_valid(name):

    from zsbench.registry import get_registry

    path = ROOT / "zsbench" / "specs" / f"{name}.yaml"
    spec = load_spec(path, get_registry(strict=True))
    assert spec.name == name and spec.methods


def test_list_options_reject_a_scalar(toy_registry):
    raw = spec(methods=[{"name": "c", "method": "clarel", "image_encoder": {"name": "feature-projection", "hidden": 512}}])
    with pytest.raises(SpecError, match=r"methods\[0\]\.image_encoder\.hidden: expected .*list.*got 512"):
        parse_spec(raw, "bench.yaml", toy_registry)


def _method(**entry):
    return {"datasets": [{"name": "synthetic"}], "methods": [{"name": "m", "calibrators": ["none"], **entry}]}


@pytest.mark.parametrize(
    "over,where,what",
    [
        (_method(method="ale", epochs=-1), "methods[0].epochs", "expected an integer >= 1, got -1"),
        (_method(method="ale", epochs=2.5), "methods[0].epochs", "expected an integer, got 2.5"),
        (_method(method="eszsl", gamma=-3.0), "methods[0].gamma", "expected a number > 0, got -3.0"),
        (_method(method="eszsl", grid={"gamma": [1.0, -1.0]}), "methods[0].grid.gamma[1]", "expected a number > 0, got -1.0"),
        (_method(method="eszsl", feature_norm="zscore"), "methods[0].feature_norm",
         "expected one of 'none', 'l2', 'standard', 'minmax', got 'zscore'"),
        (_method(method="clarel", steps=-5), "methods[0].steps", "expected an integer >= 0, got -5"),
        (_method(method="clarel", lr_decay_steps=[10, -1]), "methods[0].lr_decay_steps",
         "expected null or a list, each item an integer >= 0, got [10, -1]"),
        (_method(method="clarel", loss={"name": "clarel", "kappa": 1.5}), "methods[0].loss.kappa",
         "expected in [0, 1], got 1.5"),
        (_method(method="clarel", text_encoder={"name": "auto-text", "word_vector": "w.bin"}),
         "methods[0].text_encoder.word_vector", "unknown option for encoder 'auto-text' (did you mean 'word_vectors'?); known options: blocks, dropout"),
        (_method(method="clarel", text_encoder={"name": "auto-text", "dropout": 1.0}),
         "methods[0].text_encoder.dropout", "expected null or in [0, 1), got 1.0"),
        (_method(method="clarel", text_encoder="auto"), "methods[0].text_encoder", "unknown encoder 'auto' (did you mean 'auto-text'?); known encoders: auto-text"),
        (_method(method="eszsl", calibrators=[{"name": "calibrated-stacking", "steps": -2}]),
         "methods[0].calibrators[0].steps", "expected an integer >= 1, got -2"),
        (_method(method="eszsl", calibrators=[{"name": "metric-rescaling", "alpha_min": 0.5, "alpha_max": 0.1}]),
         "methods[0].calibrators[0]", "calibrator 'metric-rescaling': the grid's upper end 0.1 is below its lower end 0.5"),
        ({"datasets": [{"name": "synthetic", "num_classes": 2}]}, "datasets[0].num_classes", "expected an integer >= 5, got 2"),
    ],
)
def test_validate_range_checks_every_option_through_the_schemas(toy_registry, over, where, what):
    """The issue's cases (negative epochs, steps, gamma, calibrator steps) and the rest of the
    schema: caught by validate, naming the key path, the constraint and the value."""
    with pytest.raises(SpecError) as err:
        parse_spec(spec(**over), "bench.yaml", toy_registry)
    assert f"bench.yaml: {where}: {what}" in str(err.value)
