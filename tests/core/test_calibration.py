from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from zsbench_calibrators import calibrated_stacking, metric_rescaling

from zsbench import Scores
from zsbench.errors import UserError
from zsbench.evaluation.calibration import sweep, sweep_loop


def random_problem(seed: int, n: int = 80, k: int = 9, n_seen: int = 5, distance: bool = True):
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(n, k, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, k, (n,), generator=g)
    seen = torch.arange(k) < n_seen
    return Scores(values if distance else values - 1.5, is_distance=distance), labels, seen


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 8), st.integers(1, 40))
def test_vectorised_sweep_equals_per_parameter_loop(seed, k, n):
    scores, labels, seen = random_problem(seed, n=n, k=k, n_seen=max(1, k // 2))
    for calibrator in (metric_rescaling(0.0, 2.0, 17), calibrated_stacking(-1.0, 1.0, 17)):
        params = calibrator.grid(torch.zeros(1))
        fast = sweep(scores, labels, seen, calibrator, params)
        slow = sweep_loop(scores, labels, seen, calibrator, params)
        torch.testing.assert_close(fast.u, slow.u)
        torch.testing.assert_close(fast.s, slow.s)
        torch.testing.assert_close(fast.H, slow.H)


def test_rescaling_moves_decisions_towards_unseen():
    # one seen class (0) and one unseen (1); every sample is slightly closer to the seen prototype
    d = torch.tensor([[1.0, 1.2], [1.0, 1.5], [2.0, 2.1], [1.0, 3.0]])
    labels = torch.tensor([1, 1, 1, 0])
    seen = torch.tensor([True, False])
    result = sweep(Scores(d, is_distance=True), labels, seen, metric_rescaling(0.0, 1.0, 11))
    assert result.u[0] == 0.0 and result.s[0] == 1.0  # alpha = 0: all to seen
    # alpha = 0.5: seen 1.5 > 1.2 and 3.0 > 2.1 go unseen; 1.5 vs 1.5 is a tie, which seen wins
    i = int(torch.argmin((result.params - 0.5).abs()))
    assert result.u[i] == pytest.approx(2 / 3) and result.s[i] == 1.0
    best_param, u, s, h = result.best()
    assert (u, s, h) == (1.0, 1.0, 1.0) and 0.5 < best_param < 2.0


def test_stacking_subtracts_gamma_from_seen_scores():
    """Hand-computed: seen class 0, unseen class 1, similarity scores (higher is better).
    gamma = 0.3: A (margin 0.5) stays seen (wrong), B (margin 0.2) goes unseen (right), C (seen,
    margin 0.4) stays seen (right): u = 1/2, s = 1, H = 2/3. Adding gamma would keep all seen."""
    scores = torch.tensor([[1.0, 0.5], [0.9, 0.7], [0.8, 0.4]])
    labels = torch.tensor([1, 1, 0])
    seen = torch.tensor([True, False])
    result = sweep(Scores(scores), labels, seen, calibrated_stacking(), torch.tensor([0.0, 0.3, 0.6]))
    torch.testing.assert_close(result.u, torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    torch.testing.assert_close(result.s, torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(result.H, torch.tensor([0.0, 2 / 3, 0.0], dtype=torch.float64))
    assert result.best()[0] == pytest.approx(0.3)


def test_stacking_grid_spans_the_data_and_includes_zero():
    grid = calibrated_stacking(steps=5).grid(torch.tensor([-3.0, 0.5, 7.0]))
    assert grid.min() == -3.0 and grid.max() == 7.0 and (grid == 0).any()


def test_rescaling_refuses_similarity_scores():
    scores, labels, seen = random_problem(0, distance=False)
    with pytest.raises(UserError, match="rescales distances"):
        sweep(scores, labels, seen, metric_rescaling())


def test_no_calibrator_is_plain_argmax():
    scores, labels, seen = random_problem(3, distance=False)
    res = sweep(scores, labels, seen, None)
    from zsbench.evaluation.metrics import gzsl_accuracy

    u, s, h = gzsl_accuracy(scores.values, labels, seen, seen[labels])
    assert (float(res.u[0]), float(res.s[0]), float(res.H[0])) == pytest.approx((u, s, h))


@pytest.mark.parametrize("factory,kwargs,match", [
    (metric_rescaling, {"alpha_min": -2.0}, "alpha_min.*must be a number > -1, got -2.0"),
    (metric_rescaling, {"alpha_min": 1.0, "alpha_max": 0.0}, "below its lower end"),
    (calibrated_stacking, {"steps": 0}, "steps.*must be an integer >= 1, got 0"),
])
def test_bad_calibrator_options(factory, kwargs, match):
    with pytest.raises(UserError, match=match):
        factory(**kwargs)
