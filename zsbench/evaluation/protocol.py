"""The GZSL protocol: the one place that decides which split may see what.

Validation stage: fit on ``train`` minus a seeded 20% hold-out of its images (val_seen), evaluate
on that hold-out and on ``val`` (val_unseen, classes never trained on); every choice
(hyper-parameters, calibration) is made here. Test stage: refit on ``trainval``, evaluate once on
``test_seen`` + ``test_unseen``.

xlsa17's ``train_loc`` and ``val_loc`` reuse some ``test_seen_loc`` images (the proposed split
re-cut trainval but kept the old train/val lists). Those images are dropped from the validation
stage, so that no test image influences any choice.

Class prototypes built from per-image captions (``DatasetBundle.prototype_captions``): "stage"
(the paper's) averages the captions of every image of the stage, the scored ones included, as
the paper must for unseen classes; "unscored" holds out a seeded 20% of each unseen class's
evaluation images, whose captions alone form that class's side information and which are not
scored, and takes seen classes' captions from their training images: no scorer then sees the
captions of an image it scores.
"""

from __future__ import annotations

from typing import Literal

import attrs
import numpy as np
import torch

from zsbench.errors import DataError
from zsbench.interfaces import (
    PROTOTYPE_CAPTIONS,
    SIDE_INFORMATION,
    ClassSide,
    DatasetBundle,
    EvalInputs,
    FitData,
)

VAL_SEEN_FRACTION = 0.2
PROTOTYPE_FRACTION = 0.2  # of an unseen class's images, held out for its prototype ("unscored")


@attrs.frozen
class Stage:
    """One fit/evaluate round: instance indices and the classes of its decision space."""

    name: Literal["validation", "test"]
    fit: np.ndarray
    eval_seen: np.ndarray
    eval_unseen: np.ndarray
    seen_classes: np.ndarray  # global class ids
    unseen_classes: np.ndarray
    # Unseen-class images whose captions form their class's prototype and which are never scored
    # (prototype_captions "unscored"); empty otherwise.
    prototype_images: np.ndarray = attrs.field(factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def classes(self) -> np.ndarray:
        return np.concatenate([self.seen_classes, self.unseen_classes])

    @property
    def eval_indices(self) -> np.ndarray:
        return np.concatenate([self.eval_seen, self.eval_unseen])


def _classes(bundle: DatasetBundle, idx: np.ndarray) -> np.ndarray:
    return np.unique(bundle.labels[idx])


def _seeded_fraction(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A mask of ``round(fraction * n)`` (at least one) seeded members of each class with 2+."""
    held_out = np.zeros(len(labels), dtype=bool)
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        k = int(round(fraction * len(members)))
        if len(members) > 1:
            held_out[rng.choice(members, size=max(k, 1), replace=False)] = True
    return held_out


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
    # Hold out 20% of each class's images, so every seen class is in both parts.
    held_out = _seeded_fraction(bundle.labels[train], VAL_SEEN_FRACTION, rng)
    fit, val_seen = train[~held_out], train[held_out]
    _check_nonempty(bundle, "validation", train=fit, val_seen=val_seen, val_unseen=val_unseen)
    seen, unseen = _classes(bundle, fit), _classes(bundle, val_unseen)
    stage = Stage("validation", fit, val_seen, val_unseen, seen, np.setdiff1d(unseen, seen))
    return _hold_out_prototypes(bundle, stage, rng)


def _has_captions(bundle: DatasetBundle) -> bool:
    return bundle.texts is not None or bundle.caption_embeddings is not None


def _hold_out_prototypes(bundle: DatasetBundle, stage: Stage, rng: np.random.Generator) -> Stage:
    """With "unscored" prototypes, move a seeded part of each unseen class's evaluation images
    out of scoring: their captions alone describe the class."""
    if bundle.prototype_captions not in PROTOTYPE_CAPTIONS:
        raise DataError(bundle.source or bundle.name, f"prototype_captions="
                        f"{bundle.prototype_captions!r} is not one of {', '.join(PROTOTYPE_CAPTIONS)}")
    if bundle.prototype_captions == "stage" or not _has_captions(bundle):
        return stage
    held = _seeded_fraction(bundle.labels[stage.eval_unseen], PROTOTYPE_FRACTION, rng)
    scored = stage.eval_unseen[~held]
    _check_nonempty(bundle, stage.name, scored_unseen=scored)
    held_classes, scored_classes = _classes(bundle, stage.eval_unseen[held]), _classes(bundle, scored)
    if min(len(held_classes), len(scored_classes)) < len(stage.unseen_classes):
        raise DataError(bundle.source or bundle.name, f"the {stage.name} stage has an unseen class "
                        "with a single image: it cannot both describe the class and be scored "
                        "(use prototype_captions: stage)")
    return attrs.evolve(stage, eval_unseen=scored, prototype_images=stage.eval_unseen[held])


def test_stage(bundle: DatasetBundle, seed: int = 0) -> Stage:
    """Refit on trainval, evaluate on test_seen and test_unseen (``seed`` draws the held-out
    prototype images when prototypes are "unscored")."""
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
    stage = Stage("test", s.trainval, s.test_seen, s.test_unseen, seen, unseen)
    return _hold_out_prototypes(bundle, stage, np.random.default_rng(seed))


def caption_images(bundle: DatasetBundle, stage: Stage) -> np.ndarray:
    """The images whose captions may describe the stage's classes: never another split's, and
    with "unscored" prototypes never a scored image's."""
    parts = [stage.fit, stage.prototype_images]
    if bundle.prototype_captions == "stage":
        parts.append(stage.eval_indices)
    return np.concatenate(parts)


def _require(bundle: DatasetBundle, side: str, value: object, what: str) -> None:
    if value is None:
        raise DataError(bundle.source or bundle.name, f"side_information {side!r} needs {what}, "
                        "which this data set does not have")


def class_side(bundle: DatasetBundle, stage: Stage, side: str = "auto") -> ClassSide:
    """Side information of the stage's classes, seen first, of the kind ``side`` names
    (SIDE_INFORMATION). Captions of a class (its texts, or its class-mean caption embedding)
    come from ``caption_images`` only."""
    if side not in SIDE_INFORMATION:
        raise DataError(bundle.source or bundle.name,
                        f"side_information={side!r} is not one of {', '.join(SIDE_INFORMATION)}")
    ids = stage.classes
    allowed = caption_images(bundle, stage)
    texts = embeddings = None
    if bundle.texts is not None and side in ("auto", "captions"):
        by_class: dict[int, list[str]] = {int(c): [] for c in ids}
        for i in allowed:
            by_class[int(bundle.labels[i])].extend(bundle.texts[i])
        texts = tuple(tuple(by_class[int(c)]) for c in ids)
    if side == "caption-means":
        _require(bundle, side, bundle.caption_embeddings, "per-image caption embeddings (the "
                 "dataset's caption_model option, over text_c10/<class folder>/<image>.txt)")
        rows = bundle.caption_embeddings[allowed]
        embeddings = np.stack([rows[bundle.labels[allowed] == c].mean(0) for c in ids])
    elif side == "class-sentences":
        _require(bundle, side, bundle.class_sentences, "class sentence embeddings (`att` of "
                 "sent_splits.mat in the data folder)")
        embeddings = bundle.class_sentences[ids]
    elif side != "captions" and bundle.class_embeddings is not None:
        embeddings = bundle.class_embeddings[ids]
    if side == "captions":
        _require(bundle, side, texts, "per-image texts (text_c10/<class folder>/<image>.txt)")
    return ClassSide(
        ids=ids,
        names=tuple(bundle.class_names[c] for c in ids),
        seen=np.arange(len(ids)) < len(stage.seen_classes),
        embeddings=embeddings,
        texts=texts,
    )


def side_information(bundle: DatasetBundle, side: str = "auto") -> str:
    """What a row given ``side`` learnt from, for the leaderboard's side-information column."""
    if side == "captions":
        return "per-image captions (text_c10)"
    if side == "caption-means":
        width = bundle.caption_embeddings.shape[1] if bundle.caption_embeddings is not None else "?"
        return f"class-mean caption embeddings ({bundle.caption_encoder}, {width}-d)"
    if side == "class-sentences":
        width = bundle.class_sentences.shape[1] if bundle.class_sentences is not None else "?"
        return f"class sentence embeddings (sent_splits.mat, {width}-d)"
    if side == "class-embeddings":
        return bundle.embeddings_info or "class embeddings"
    return bundle.side_information


def _select(bundle: DatasetBundle, idx: np.ndarray, attr: str):
    value = getattr(bundle, attr)
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return value[idx]
    return tuple(value[i] for i in idx)


def fit_data(bundle: DatasetBundle, stage: Stage, side: str = "auto") -> FitData:
    """What the method may learn from: the stage's fit instances and its classes (``side``: the
    kind of side information, see ``class_side``)."""
    classes = class_side(bundle, stage, side)
    position = {int(c): k for k, c in enumerate(classes.ids)}
    labels = np.array([position[int(c)] for c in bundle.labels[stage.fit]], dtype=np.int64)
    return FitData(
        labels=labels,
        classes=classes,
        features=_select(bundle, stage.fit, "features"),
        image_files=_select(bundle, stage.fit, "image_files"),
        texts=_select(bundle, stage.fit, "texts") if side in ("auto", "captions") else None,
        feature_name=bundle.feature_name,
    )


def fit_inputs(bundle: DatasetBundle, stage: Stage) -> EvalInputs:
    """The stage's training instances as inputs to score (no labels): the reference a calibrator
    may read (``zsbench.evaluation.stages.with_references``); never an evaluation image."""
    return EvalInputs(features=_select(bundle, stage.fit, "features"),
                      image_files=_select(bundle, stage.fit, "image_files"))


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
