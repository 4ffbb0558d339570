"""The summary over seeds: which rows are averaged together, and the interval they get."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from zsbench.store.summary import Estimate, dataset_label, summarize


def row(dataset: str, seed: int, h: float, backbone: str | None = None) -> dict:
    config = {"dataset": {"backbone": {"name": backbone}} if backbone else {}}
    return {"dataset": dataset, "method": "m", "calibrator": "none", "seed": seed, "H": h, "u": h, "s": h, "zsl": h,
            "provenance": {"config": config}}


def test_a_single_backbone_is_never_averaged_with_the_data_sets_own_features():
    """A spec giving one backbone (a mapping, not a list) labels its data set plainly; its rows
    are still a data set of their own in every summary (CLI, API, leaderboard)."""
    rows = [row("flo", 0, 0.5), row("flo", 1, 0.6), row("flo", 0, 0.2, "lite1"), row("flo[backbone=lite2]", 0, 0.3, "lite2")]
    assert [dataset_label(r) for r in rows] == ["flo", "flo", "flo[backbone=lite1]", "flo[backbone=lite2]"]
    assert [(s.dataset, s.seeds) for s in summarize(rows)] == [
        ("flo", (0, 1)), ("flo[backbone=lite1]", (0,)), ("flo[backbone=lite2]", (0,))]


@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=12))
def test_the_interval_is_students_t_on_the_seeds_in_percent(values):
    e = Estimate.of(values)
    v = np.array(values) * 100
    assert e.n == len(values) and e.mean == pytest.approx(v.mean())
    assert e.half_width == pytest.approx(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)), abs=1e-9)


def test_one_seed_has_a_mean_and_no_interval():
    e = Estimate.of([0.42])
    assert e.mean == pytest.approx(42.0) and np.isnan(e.half_width) and str(e) == "42.0"
