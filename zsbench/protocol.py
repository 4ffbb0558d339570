"""The GZSL protocol: the one place that decides which split may see what.

Validation stage: fit on ``train`` minus a seeded 20% hold-out of its images (val_seen), evaluate
on that hold-out and on ``val`` (val_unseen, classes never trained on); every choice
(hyper-parameters, calibration) is made here. Test stage: refit on ``trainval``, evaluate once on
``test_seen`` + ``test_unseen``.

xlsa17's ``train_loc`` and ``val_loc`` reuse some ``test_seen_loc`` images (the proposed split
re-cut trainval but kept the old train/val lists). Those images are dropped from the validation
stage, so that no test image influences any choice.
"""

from __future__ import annotations

from typing import Literal

import attrs
import numpy as np
import torch

from zsbench.errors import DataError
from zsbench.interfaces import ClassSide, DatasetBundle, EvalInputs, FitData

VAL_SEEN_FRACTION = 0.2


@attrs.frozen
class Stage:
    """One fit/evaluate round: instance indices and the classes of its decision space."""

    name: Literal["validation", "test"]
    fit: np.ndarray
    eval_seen: np.ndarray
    eval_unseen: np.ndarray
    seen_classes: np.ndarray  # global class ids
    unseen_classes: np.ndarray

    @property
    def classes(self) -> np.ndarray:
        return np.concatenate([self.seen_classes, self.unseen_classes])

    @property
    def eval_indices(self) -> np.ndarray:
        return np.concatenate([self.eval_seen, self.eval_unseen])


def _classes(bundle: DatasetBundle, idx: np.ndarray) -> np.ndarray:
    return np.unique(bundle.labels[idx])


def _check_nonempty(bundle: DatasetBundle, stage: str, **parts: np.ndarray) -> None:
    for part, idx in parts.items():
        if len(idx) == 0:
            raise DataError(bundle.source or bundle.name, f"the {stage} stage has an empty {part} split")


def validation_stage(bundle: DatasetBundle, seed: int) -> Stage:
    """Seeded split of ``train`` into fit / val_seen; ``val`` is val_unseen; test images excluded."""
    splits = bundle.splits
    test = np.union1d(splits.test_seen, splits.test_unseen)
    train = np.setdiff1d(splits.train, test)
    val_unseen = np.setdiff1d(splits.val, test)
    rng = np.random.default_rng(seed)
    held_out = np.zeros(len(train), dtype=bool)
    # Hold out 20% of each class's images, so every seen class is in both parts.
    labels = bundle.labels[train]
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        k = int(round(VAL_SEEN_FRACTION * len(members)))
        if len(members) > 1:
            held_out[rng.choice(members, size=max(k, 1), replace=False)] = True
    fit, val_seen = train[~held_out], train[held_out]
    _check_nonempty(bundle, "validation", train=fit, val_seen=val_seen, val_unseen=val_unseen)
    seen, unseen = _classes(bundle, fit), _classes(bundle, val_unseen)
    return Stage("validation", fit, val_seen, val_unseen, seen, np.setdiff1d(unseen, seen))


def test_stage(bundle: DatasetBundle) -> Stage:
    """Refit on trainval, evaluate on test_seen and test_unseen."""
    s = bundle.splits
    _check_nonempty(bundle, "test", trainval=s.trainval, test_seen=s.test_seen, test_unseen=s.test_unseen)
    seen, unseen = _classes(bundle, s.trainval), _classes(bundle, s.test_unseen)
    overlap = np.intersect1d(seen, unseen)
    if len(overlap):
        raise DataError(
            bundle.source or bundle.name,
            f"test_unseen_loc contains {len(overlap)} classes that are also in trainval_loc "
            f"(e.g. {bundle.class_names[overlap[0]]!r}); seen and unseen classes must be disjoint",
        )
    return Stage("test", s.trainval, s.test_seen, s.test_unseen, seen, unseen)


def class_side(bundle: DatasetBundle, stage: Stage) -> ClassSide:
    """Side information of the stage's classes, seen first. Per-instance texts of a class are
    gathered from the stage's instances only (fit and evaluation), never from other splits."""
    ids = stage.classes
    texts = None
    if bundle.texts is not None:
        allowed = np.concatenate([stage.fit, stage.eval_indices])
        by_class: dict[int, list[str]] = {int(c): [] for c in ids}
        for i in allowed:
            by_class[int(bundle.labels[i])].extend(bundle.texts[i])
        texts = tuple(tuple(by_class[int(c)]) for c in ids)
    return ClassSide(
        ids=ids,
        names=tuple(bundle.class_names[c] for c in ids),
        seen=np.arange(len(ids)) < len(stage.seen_classes),
        embeddings=None if bundle.class_embeddings is None else bundle.class_embeddings[ids],
        texts=texts,
    )


def _select(bundle: DatasetBundle, idx: np.ndarray, attr: str):
    value = getattr(bundle, attr)
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return value[idx]
    return tuple(value[i] for i in idx)


def fit_data(bundle: DatasetBundle, stage: Stage) -> FitData:
    """What the method may learn from: the stage's fit instances and its classes."""
    classes = class_side(bundle, stage)
    position = {int(c): k for k, c in enumerate(classes.ids)}
    labels = np.array([position[int(c)] for c in bundle.labels[stage.fit]], dtype=np.int64)
    return FitData(
        labels=labels,
        classes=classes,
        features=_select(bundle, stage.fit, "features"),
        image_files=_select(bundle, stage.fit, "image_files"),
        texts=_select(bundle, stage.fit, "texts"),
        feature_name=bundle.feature_name,
    )


def eval_inputs(bundle: DatasetBundle, stage: Stage) -> tuple[EvalInputs, torch.Tensor, torch.Tensor]:
    """Evaluation instances (no labels), their labels as column indices, and the seen mask."""
    ids = stage.classes
    position = np.full(bundle.num_classes, -1, dtype=np.int64)
    position[ids] = np.arange(len(ids))
    idx = stage.eval_indices
    labels = torch.as_tensor(position[bundle.labels[idx]])
    seen_mask = torch.as_tensor(np.arange(len(ids)) < len(stage.seen_classes))
    inputs = EvalInputs(features=_select(bundle, idx, "features"), image_files=_select(bundle, idx, "image_files"))
    return inputs, labels, seen_mask
