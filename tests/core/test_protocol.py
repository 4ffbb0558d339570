from __future__ import annotations

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from toy_plugin import toy_bundle

from zsbench.errors import DataError
from zsbench.evaluation import protocol


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_validation_never_touches_test_images(seed):
    b = toy_bundle()
    stage = protocol.validation_stage(b, seed)
    test = np.union1d(b.splits.test_seen, b.splits.test_unseen)
    used = np.concatenate([stage.fit, stage.eval_seen, stage.eval_unseen])
    assert not np.intersect1d(used, test).size
    assert not np.intersect1d(stage.fit, stage.eval_seen).size
    # unseen validation classes are never trained on, and seen classes keep ~80% of their images
    assert not np.intersect1d(b.labels[stage.fit], b.labels[stage.eval_unseen]).size
    for c in stage.seen_classes:
        n_fit = (b.labels[stage.fit] == c).sum()
        n_held = (b.labels[stage.eval_seen] == c).sum()
        assert n_held == round(0.2 * (n_fit + n_held))


def test_validation_split_is_deterministic_per_seed():
    b = toy_bundle()
    a1, a2, other = (protocol.validation_stage(b, s) for s in (1, 1, 2))
    assert np.array_equal(a1.eval_seen, a2.eval_seen)
    assert not np.array_equal(a1.eval_seen, other.eval_seen)


def test_fit_data_holds_only_training_instances_and_stage_classes():
    b = toy_bundle()
    stage = protocol.validation_stage(b, 0)
    fit = protocol.fit_data(b, stage)
    assert len(fit.labels) == len(stage.fit)
    assert fit.labels.max() < fit.classes.num_seen
    np.testing.assert_array_equal(fit.features, b.features[stage.fit])
    # decision space: train classes then validation-unseen classes, never test classes
    assert set(fit.classes.ids) == set(range(0, 9))
    assert fit.classes.seen.tolist() == [True] * 6 + [False] * 3
    inputs, labels, seen_mask = protocol.eval_inputs(b, stage)
    assert len(inputs) == len(labels) == len(stage.eval_indices)
    assert labels.max() < len(seen_mask)


def test_class_texts_come_from_the_stage_only():
    b = toy_bundle()
    texts = tuple((f"image {i} of class {b.labels[i]}",) for i in range(len(b.labels)))
    b = attrs.evolve(b, texts=texts)
    stage = protocol.validation_stage(b, 0)
    side = protocol.class_side(b, stage)
    allowed = {t for i in np.concatenate([stage.fit, stage.eval_indices]) for t in texts[i]}
    assert all(t in allowed for class_texts in side.texts for t in class_texts)
    test_only = {texts[i][0] for i in b.splits.test_seen}
    assert not test_only & {t for class_texts in side.texts for t in class_texts}


def test_test_stage_rejects_overlapping_seen_and_unseen_classes():
    b = toy_bundle()
    bad = attrs.evolve(b.splits, test_unseen=np.concatenate([b.splits.test_unseen, b.splits.trainval[:3]]))
    with pytest.raises(DataError, match="test_unseen_loc contains 1 classes that are also in trainval_loc"):
        protocol.test_stage(attrs.evolve(b, splits=bad))


def test_empty_split_is_a_data_error():
    b = toy_bundle()
    with pytest.raises(DataError, match="empty val_unseen split"):
        protocol.validation_stage(attrs.evolve(b, splits=attrs.evolve(b.splits, val=b.splits.val[:0])), 0)
