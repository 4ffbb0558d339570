from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zsbench.evaluation.metrics import gzsl_accuracy, harmonic_mean, per_class_accuracy, zsl_top1


def reference_per_class(y_true, y_pred):
    """Plain loop: the definition of Xian et al.'s per-class mean top-1."""
    accs = []
    for c in sorted(set(y_true)):
        idx = [i for i, y in enumerate(y_true) if y == c]
        accs.append(sum(y_pred[i] == c for i in idx) / len(idx))
    return sum(accs) / len(accs)


labels = st.lists(st.integers(0, 6), min_size=1, max_size=60)


@given(labels, st.data())
def test_per_class_accuracy_matches_reference(y_true, data):
    y_pred = data.draw(st.lists(st.integers(0, 9), min_size=len(y_true), max_size=len(y_true)))
    assert per_class_accuracy(y_true, y_pred) == pytest.approx(reference_per_class(y_true, y_pred))


@given(labels)
def test_all_right_and_all_wrong(y_true):
    assert per_class_accuracy(y_true, y_true) == 1.0
    assert per_class_accuracy(y_true, [y + 100 for y in y_true]) == 0.0


def test_per_class_weights_classes_not_samples():
    # class 0: 9 samples all right; class 1: one sample, wrong -> mean of 1.0 and 0.0
    assert per_class_accuracy([0] * 9 + [1], [0] * 9 + [0]) == 0.5


def test_classes_only_in_predictions_do_not_count():
    assert per_class_accuracy([3, 3], [3, 7]) == 0.5


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 labels but y_pred has 3"):
        per_class_accuracy([0, 1], [0, 1, 2])


@given(st.floats(0, 1), st.floats(0, 1))
def test_harmonic_mean(u, s):
    h = harmonic_mean(u, s)
    assert h == (0.0 if u + s == 0 else pytest.approx(2 * u * s / (u + s)))
    assert min(u, s) - 1e-12 <= h <= max(u, s) + 1e-12
    assert float(harmonic_mean(torch.tensor([u]), torch.tensor([s]))[0]) == pytest.approx(h)


def test_gzsl_and_zsl_on_a_constructed_example():
    # 4 classes: 0, 1 seen; 2, 3 unseen. Scores higher-is-better.
    scores = torch.tensor(
        [
            [5.0, 0.0, 4.0, 0.0],  # seen 0 -> 0 right
            [0.0, 1.0, 3.0, 0.0],  # seen 1 -> 2 wrong
            [3.0, 0.0, 2.0, 0.0],  # unseen 2 -> 0 wrong in GZSL, right in ZSL
            [0.0, 0.0, 0.0, 1.0],  # unseen 3 -> 3 right
        ]
    )
    labels = torch.tensor([0, 1, 2, 3])
    seen_mask = torch.tensor([True, True, False, False])
    u, s, h = gzsl_accuracy(scores, labels, seen_mask, seen_mask[labels])
    assert (u, s) == (0.5, 0.5) and h == pytest.approx(0.5)
    assert zsl_top1(scores, labels, ~seen_mask) == 1.0


@settings(max_examples=50)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_zsl_uses_unseen_samples_and_classes_only(n_seen, n_unseen, seed):
    g = np.random.default_rng(seed)
    k = n_seen + n_unseen
    labels = torch.as_tensor(g.integers(0, k, size=40))
    scores = torch.as_tensor(g.normal(size=(40, k)))
    unseen = torch.arange(k) >= n_seen
    rows = unseen[labels]
    if not rows.any():
        assert zsl_top1(scores, labels, unseen) == 0.0
        return
    sub = scores[rows][:, unseen]
    pred = (sub.argmax(1) + n_seen).tolist()
    assert zsl_top1(scores, labels, unseen) == pytest.approx(reference_per_class(labels[rows].tolist(), pred))
