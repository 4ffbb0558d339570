"""Guards on the protocol's promises, checked against numbers recomputed independently of the
runner: the calibration parameter is validation's choice, AUSUC is the test scores', every run
uses its own seed, and grids expand in the documented order (which decides ties)."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest
import torch
import toy_plugin

import zsbench
from zsbench.evaluation import protocol
from zsbench.evaluation.calibration import ausuc, sweep
from zsbench.registry import Registry
from zsbench.runner.grid import LocalBackend, run_spec
from zsbench.spec import parse_spec
from zsbench.store.sqlite import ResultStore

FITS: list[dict] = []  # what every fit of the recording method saw and scored, in order


class Recording(toy_plugin.LeastSquares):
    """The toy least-squares method, recording its run's seed, draws from the global random
    generators, and the scores it gives each stage."""

    def fit(self, data: zsbench.FitData, context: zsbench.RunContext):
        fit = {"stage": context.stage, "seed": context.seed, "ridge": self.ridge,
               "draws": (random.random(), float(np.random.rand()), float(torch.rand(1)))}
        FITS.append(fit)
        inner = super().fit(data, context)

        class Scorer:
            def scores(self, inputs: zsbench.EvalInputs) -> zsbench.Scores:
                fit["scores"] = inner.scores(inputs)
                fit["features"] = np.asarray(inputs.features)
                return fit["scores"]

        return Scorer()


def recording(ridge: float = 1.0) -> Recording:
    """Toy least squares that records what it sees."""
    return Recording(ridge)


recording.default_grid = {"ridge": [0.1, 10.0]}


@zsbench.hookimpl
def register_methods(register):
    register("recording", recording)


SPEC = {"name": "guards", "seeds": [0, 1, 2], "datasets": [{"name": "toy", "noise": 3.0}],
        "methods": [{"name": "rec", "method": "recording", "calibrators": ["none", "calibrated-stacking"]}]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(rows, fits, bundle) of SPEC run once through the runner."""
    FITS.clear()
    registry = Registry.from_entry_points(extra=[("toy", toy_plugin, None, None), ("guards", sys.modules[__name__], None, None)])
    with ResultStore(tmp_path_factory.mktemp("guards") / "r.sqlite") as store:
        backend = LocalBackend(registry, torch.device("cpu"), show_progress=False)
        run_spec(parse_spec(SPEC, "guards.yaml", registry), store, backend)
        rows = store.rows()
    return rows, list(FITS), backend.bundle(parse_spec(SPEC, "guards.yaml", registry).datasets[0])


def _fit(fits, seed, stage, ridge):
    [fit] = [f for f in fits if f["seed"] == seed and f["stage"] == stage and f["ridge"] == ridge]
    return fit


def _labels(bundle, stage_name, seed):
    stage = protocol.validation_stage(bundle, seed) if stage_name == "validation" else protocol.test_stage(bundle, seed)
    _, labels, seen_mask = protocol.eval_inputs(bundle, stage)
    return labels, seen_mask


def test_the_calibration_parameter_is_validations_choice(runs):
    rows, fits, bundle = runs
    stacking = [r for r in rows if r["calibrator"] == "calibrated-stacking"]
    calibrator = zsbench.get_registry().build("calibrator", "calibrated-stacking")
    disagree = 0
    for row in stacking:
        ridge = row["hyperparameters"]["ridge"]
        val = sweep(_fit(fits, row["seed"], "validation", ridge)["scores"], *_labels(bundle, "validation", row["seed"]), calibrator)
        test_scores = _fit(fits, row["seed"], "test", ridge)["scores"]
        test = sweep(test_scores, *_labels(bundle, "test", row["seed"]), calibrator, val.params)
        assert row["calibration_param"] == val.best()[0], f"seed {row['seed']}: not validation's parameter"
        at_param = sweep(test_scores, *_labels(bundle, "test", row["seed"]), calibrator, torch.tensor([val.best()[0]]))
        assert row["H"] == float(at_param.H[0])
        disagree += test.best()[0] != val.best()[0]
    assert disagree, "validation and test prefer the same parameter on every seed: this guard would not bite"


def test_ausuc_is_the_test_scores(runs):
    rows, fits, bundle = runs
    for row in rows:
        fit = _fit(fits, row["seed"], "test", row["hyperparameters"]["ridge"])
        assert row["ausuc"] == ausuc(fit["scores"], *_labels(bundle, "test", row["seed"]))
        val = _fit(fits, row["seed"], "validation", row["hyperparameters"]["ridge"])
        assert row["ausuc"] != ausuc(val["scores"], *_labels(bundle, "validation", row["seed"]))


def test_every_run_uses_its_own_seed(runs):
    rows, fits, bundle = runs
    assert {r["seed"] for r in rows} == {0, 1, 2}
    for fit in fits:
        seed = fit["seed"]
        assert seed in {0, 1, 2}
        random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
        assert fit["draws"] == (random.random(), float(np.random.rand()), float(torch.rand(1)))
        stage = protocol.validation_stage(bundle, seed) if fit["stage"] == "validation" else protocol.test_stage(bundle, seed)
        assert np.array_equal(fit["features"], protocol.eval_inputs(bundle, stage)[0].features)
    assert len({f["seed"] for f in fits}) == 3
    held_out = [protocol.validation_stage(bundle, s).eval_seen.tolist() for s in (0, 1, 2)]
    assert held_out[0] != held_out[1] != held_out[2], "the seeds draw the same validation split: this guard would not bite"


def test_grids_expand_in_the_documented_order(toy_registry):
    """Sorted option paths, each path's values in the spec's order: on equal validation H the
    first point wins, so this order is part of every result."""
    spec = parse_spec({"name": "g", "datasets": [{"name": "toy"}], "methods": [
        {"name": "ls", "method": "least-squares", "grid": {"ridge": [3.0, 1.0], "fail": [False]}}]}, "g.yaml", toy_registry)
    assert spec.methods[0].grid_points() == [{"fail": False, "ridge": 3.0}, {"fail": False, "ridge": 1.0}]
