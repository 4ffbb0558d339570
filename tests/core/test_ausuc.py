"""AUSUC and the oracle H, computed exactly from breakpoints, against brute-force sweeps."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from zsbench_calibrators import calibrated_stacking, metric_rescaling

from zsbench import Scores
from zsbench.evaluation.calibration import ausuc, oracle_h, sweep_loop
from zsbench.evaluation.metrics import harmonic_mean


@st.composite
def problems(draw, distance: bool):
    """Small score matrices on an integer lattice (many ties, exact float arithmetic)."""
    k = draw(st.integers(2, 6))
    n_seen = draw(st.integers(1, k - 1))
    n = draw(st.integers(1, 30))
    low, high = (0, 8) if distance else (-4, 4)  # a zero distance: never beaten
    values = draw(st.lists(st.lists(st.integers(low, high), min_size=k, max_size=k), min_size=n, max_size=n))
    labels = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    seen = torch.arange(k) < n_seen
    return Scores(torch.tensor(values, dtype=torch.float32), is_distance=distance), torch.tensor(labels), seen


def brute_force(scores, labels, seen, calibrator, params: torch.Tensor) -> tuple[float, float]:
    """(area under u(s), best H) from a plain argmax at each parameter, largest parameter first."""
    params = params.double().sort(descending=True).values
    result = sweep_loop(scores, labels, seen, calibrator, params)
    return float(torch.trapezoid(result.u, result.s)), float(result.H.max())


@settings(max_examples=150, deadline=None)
@given(problems(distance=False))
def test_ausuc_and_stacking_oracle_equal_a_dense_sweep(problem):
    scores, labels, seen = problem
    # integer scores: margins are integers in [-8, 8], so this grid has every breakpoint and
    # a point inside every interval between them, and one beyond each end
    grid = torch.arange(-36, 37, dtype=torch.float64) / 4
    area, best_h = brute_force(scores, labels, seen, calibrated_stacking(), grid)
    assert ausuc(scores, labels, seen) == pytest.approx(area, abs=1e-12)
    assert oracle_h(scores, labels, seen, calibrated_stacking()) == pytest.approx(best_h, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(problems(distance=True))
def test_rescaling_oracle_equals_the_best_over_every_interval(problem):
    scores, labels, seen = problem
    calibrator = metric_rescaling()
    d = scores.values
    d_seen, d_unseen = d[:, seen].min(1).values.double(), d[:, ~seen].min(1).values.double()
    points = (d_unseen[d_seen > 0] / d_seen[d_seen > 0] - 1).unique()  # ascending finite breakpoints
    if not len(points):
        points = torch.zeros(1, dtype=torch.float64)
    # one parameter strictly inside each interval between breakpoints and beyond each end: no ties
    inside = torch.cat([points[:1] - 0.5, (points[1:] + points[:-1]) / 2, points[-1:] + 1])
    _, best_h = brute_force(scores, labels, seen, calibrator, inside.clamp(min=-0.999))
    assert oracle_h(scores, labels, seen, calibrator) == pytest.approx(best_h, abs=1e-12)


def test_ausuc_by_hand():
    # seen class 0 (two samples), unseen class 1 (two samples); columns: seen, unseen
    values = torch.tensor([
        [3.0, 0.0],  # seen, right both ways, margin 3
        [0.0, 1.0],  # seen, right as seen, margin -1
        [1.0, 0.0],  # unseen, right as unseen, margin 1
        [0.0, 2.0],  # unseen, margin -2
    ])
    labels, seen = torch.tensor([0, 0, 1, 1]), torch.tensor([True, False])
    # gamma from +inf down: (s, u) = (0, 1) -> (0.5, 1) at 3 -> (0.5, 0.5) at 1 -> (1, 0.5) at -1 -> (1, 0) at -2
    expected = 0.5 * 1 + 0.5 * (0.5 + 1) / 2 * 0 + 0.5 * 0.5  # flat, vertical drop, flat
    assert ausuc(Scores(values), labels, seen) == pytest.approx(expected)
    assert oracle_h(Scores(values), labels, seen, calibrated_stacking()) == pytest.approx(harmonic_mean(0.5, 1.0))
    assert oracle_h(Scores(values), labels, seen, None) is None


def test_a_perfect_separation_has_area_one():
    values = torch.tensor([[5.0, 0.0], [0.0, 5.0]])
    assert ausuc(Scores(values), torch.tensor([0, 1]), torch.tensor([True, False])) == pytest.approx(1.0)


def test_ausuc_is_the_same_for_distances_and_their_negation():
    g = torch.Generator().manual_seed(3)
    d = torch.rand(50, 7, generator=g)
    labels, seen = torch.randint(0, 7, (50,), generator=g), torch.arange(7) < 4
    assert ausuc(Scores(d, is_distance=True), labels, seen) == pytest.approx(ausuc(Scores(-d), labels, seen))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 8), st.integers(1, 60))
def test_no_grid_value_beats_the_oracle_on_float_scores(seed, k, n):
    g = torch.Generator().manual_seed(seed)
    d = torch.rand(n, k, generator=g) * 3
    labels, seen = torch.randint(0, k, (n,), generator=g), torch.arange(k) < max(1, k // 2)
    for scores, calibrator in ((Scores(d, is_distance=True), metric_rescaling(0.0, 2.0, 401)),
                               (Scores(d - 1.5), calibrated_stacking(-3.0, 3.0, 401))):
        grid = calibrator.grid(torch.zeros(1))
        best_on_grid = float(sweep_loop(scores, labels, seen, calibrator, grid).H.max())
        assert best_on_grid <= oracle_h(scores, labels, seen, calibrator) + 1e-12
