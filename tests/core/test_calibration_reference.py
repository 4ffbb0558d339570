"""Calibrators whose parameter is a quantile of the stage model's own training-image switch
points: the sweep is exact, q means a fraction of training images, and neither the choice on
validation nor its conversion for the test model reads the test split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import toy_plugin
from toy_plugin import toy_bundle

import zsbench
from zsbench import Scores
from zsbench.evaluation import protocol
from zsbench.evaluation.calibration import BestScores, oracle_h, sweep, sweep_loop
from zsbench.evaluation.stages import RunSetup, Task, execute, fit_and_score, with_references
from zsbench.registry import Registry
from zsbench.runner.audit import poison_test_split
from zsbench.spec import parse_spec

NAMES = ("metric-rescaling-quantile", "calibrated-stacking-quantile")


def _problem(seed: int, n: int = 120, k: int = 9, n_seen: int = 5):
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(n, k, generator=g, dtype=torch.float64) * 3 + 0.1
    return Scores(values, is_distance=True), torch.randint(0, k, (n,), generator=g), torch.arange(k) < n_seen


def _bound(name: str, seed: int = 1, **options):
    reference, _, seen = _problem(seed, n=50)
    calibrator = zsbench.get_registry().build("calibrator", name, **options)
    best = BestScores.from_scores(reference.higher_is_better(), seen)
    return calibrator.with_reference(best.seen_value, best.unseen_value), best


@pytest.mark.parametrize("name", NAMES)
def test_quantile_sweep_equals_the_loop_and_never_beats_its_oracle(name):
    calibrator, _ = _bound(name, steps=41)
    for seed in range(5):
        scores, labels, seen = _problem(seed)
        params = calibrator.grid(torch.zeros(1))
        fast, slow = sweep(scores, labels, seen, calibrator, params), sweep_loop(scores, labels, seen, calibrator, params)
        torch.testing.assert_close(fast.H, slow.H)
        fine = sweep(scores, labels, seen, calibrator, torch.linspace(0, 1, 20_001, dtype=torch.float64))
        assert oracle_h(scores, labels, seen, calibrator) == pytest.approx(float(fine.H.max()), abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_q_is_the_fraction_of_training_images_moved_to_unseen(name):
    calibrator, best = _bound(name, steps=11)
    for q in (0.0, 0.2, 0.5, 0.9, 1.0):
        seen = calibrator.adjust_seen(best.seen_value, torch.tensor([q], dtype=torch.float64))[0]
        moved = float((seen < best.unseen_value).double().mean())
        assert moved == pytest.approx(q, abs=1 / len(best.seen_value) + 1e-9)


def test_a_quantile_calibrator_without_its_reference_is_refused():
    calibrator = zsbench.get_registry().build("calibrator", "metric-rescaling-quantile")
    scores, labels, seen = _problem(0)
    with pytest.raises(RuntimeError, match="before with_reference"):
        sweep(scores, labels, seen, calibrator)


SPEC = {"name": "quantile", "seeds": [0], "datasets": [{"name": "toy", "noise": 3.0}],
        "methods": [{"name": "ls", "method": "least-squares",
                     "calibrators": ["none", "metric-rescaling", "metric-rescaling-quantile"]}]}


@pytest.fixture(scope="module")
def toy():
    registry = Registry.from_entry_points(extra=[("toy", toy_plugin, None, None)])
    spec = parse_spec(SPEC, "quantile.yaml", registry)
    return registry, Task(spec.name, spec.hash, spec.datasets[0], spec.methods[0], 0)


def _test_stage_alpha(task, registry, bundle):
    """The test model's alpha table (its training images' switch points) and its rows."""
    setup = RunSetup.of(task, registry, bundle, torch.device("cpu"), None, False)
    stage = protocol.test_stage(bundle, task.seed)
    scorer = fit_and_score(setup, stage, {"ridge": 1.0}).scorer
    return with_references(setup.calibrators, scorer, bundle, stage)["metric-rescaling-quantile"].reference


def test_neither_the_choice_nor_its_test_conversion_reads_the_test_split(toy, tmp_path):
    registry, task = toy
    bundle = toy_bundle(noise=3.0)
    rows = {r.calibrator: r for r in execute(task, registry, bundle, torch.device("cpu"), tmp_path / "a", False)}
    reference = _test_stage_alpha(task, registry, bundle)
    for kind in ("random", "shuffle"):
        poisoned = poison_test_split(bundle, kind, 0, tmp_path / kind, side_information=False)
        moved = {r.calibrator: r for r in execute(task, registry, poisoned, torch.device("cpu"), tmp_path / kind, False)}
        assert moved["metric-rescaling-quantile"].calibration_param == rows["metric-rescaling-quantile"].calibration_param
        assert moved["metric-rescaling-quantile"].val_H == rows["metric-rescaling-quantile"].val_H
        assert torch.equal(_test_stage_alpha(task, registry, poisoned), reference), f"{kind}: the test alpha read the test split"
        assert moved["metric-rescaling-quantile"].H != rows["metric-rescaling-quantile"].H  # the poison reached the test scores


def test_the_test_row_applies_q_through_the_trainval_images(toy, tmp_path):
    registry, task = toy
    bundle = toy_bundle(noise=3.0)
    [row] = [r for r in execute(task, registry, bundle, torch.device("cpu"), tmp_path, False)
             if r.calibrator == "metric-rescaling-quantile"]
    stage = protocol.test_stage(bundle, 0)
    setup = RunSetup.of(task, registry, bundle, torch.device("cpu"), None, False)
    calibrators = setup.calibrators
    fit = fit_and_score(setup, stage, row.hyperparameters)
    scorer, scores, labels, seen = fit.scorer, fit.scores, fit.labels, fit.seen_mask
    trainval = scorer.scores(protocol.fit_inputs(bundle, stage)).higher_is_better()
    best = BestScores.from_scores(trainval, seen)
    bound = calibrators["metric-rescaling-quantile"].with_reference(best.seen_value, best.unseen_value)
    at = sweep(scores, labels, seen, bound, torch.tensor([row.calibration_param]))
    assert row.H == float(at.H[0])
    assert np.isin(stage.fit, bundle.splits.trainval).all()
