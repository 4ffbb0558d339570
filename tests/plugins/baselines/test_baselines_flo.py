"""The baselines on real data: FLO (../shared/data/flo, EfficientNet-Lite0 features and Reed et
al.'s class text embeddings), read with scipy directly. Fit on trainval (82 seen classes), scored
on test_unseen (20 classes, ZSL chance 5%). Skipped when the data is absent."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from shared_data import SHARED_DATA

from zsbench.evaluation.metrics import zsl_top1
from zsbench.interfaces import ClassSide, EvalInputs, FitData, RunContext

FLO = SHARED_DATA / "flo"
pytestmark = [pytest.mark.slow, pytest.mark.realdata]


@pytest.fixture(scope="module")
def flo() -> tuple[FitData, EvalInputs, torch.Tensor]:
    if not (FLO / "efficientnet_lite0.mat").is_file():
        pytest.skip(f"{FLO} is not present")
    from scipy.io import loadmat

    features_file, splits = loadmat(FLO / "efficientnet_lite0.mat"), loadmat(FLO / "att_splits.mat")
    features = features_file["features"].T.astype(np.float32)  # stored 1280 x N
    labels = features_file["labels"].ravel().astype(np.int64) - 1  # Oxford labels 1..102
    trainval, test_unseen = (splits[k].ravel().astype(np.int64) - 1 for k in ("trainval_loc", "test_unseen_loc"))
    seen, unseen = np.unique(labels[trainval]), np.unique(labels[test_unseen])
    assert len(seen) == 82 and len(unseen) == 20 and not np.intersect1d(seen, unseen).size
    ids = np.concatenate([seen, unseen])
    column = np.full(labels.max() + 1, -1)
    column[ids] = np.arange(len(ids))
    classes = ClassSide(ids=ids, names=tuple(str(i + 1) for i in ids), seen=np.arange(len(ids)) < len(seen),
                        embeddings=splits["att"].T[ids].astype(np.float32))
    fit = FitData(labels=column[labels[trainval]], classes=classes, features=features[trainval],
                  feature_name="efficientnet_lite0")
    return fit, EvalInputs(features=features[test_unseen]), torch.as_tensor(column[labels[test_unseen]])


def context() -> RunContext:
    return RunContext(seed=0, device=torch.device("cpu"), cache_dir=Path("/nonexistent"), show_progress=False)


def zsl(scores: torch.Tensor, labels: torch.Tensor) -> float:
    return zsl_top1(scores, labels, torch.arange(scores.shape[1]) >= 82)


def test_eszsl_is_far_above_chance_on_flo(flo):
    from zsbench_baselines.eszsl import ESZSL

    fit, inputs, labels = flo
    accuracy = zsl(ESZSL().fit(fit, context()).scores(inputs).values, labels)
    assert accuracy > 0.25, f"ESZSL ZSL top-1 {accuracy:.3f} (chance 0.05)"


@pytest.fixture
def one_thread():
    """Timings on one thread: two threads on a busy 2-core machine can be 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_fit_times_and_accuracy_of_every_method_on_flo(flo, capsys, one_thread):
    """Each method with its default options; the printed table feeds the benchmark budget."""
    from zsbench_baselines import METHODS

    fit, inputs, labels = flo
    rows = []
    for method in METHODS:
        start = time.perf_counter()
        scorer = method().fit(fit, context())
        seconds = time.perf_counter() - start
        rows.append((method.name, seconds, zsl(scorer.scores(inputs).values, labels)))
    with capsys.disabled():
        print("\nFLO trainval fit (5,631 images), ZSL top-1 on test_unseen:")
        for name, seconds, accuracy in rows:
            print(f"  {name:10s} {seconds:6.1f} s  ZSL {accuracy:.3f}")
    for name, _, accuracy in rows:
        if name == "random":
            assert accuracy < 0.15, f"the random floor reached {accuracy:.3f}"
        else:
            assert accuracy > 0.15, f"{name}: ZSL top-1 {accuracy:.3f} (chance 0.05)"
