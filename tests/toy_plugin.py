"""A small in-memory plugin for core tests: a class-structured dataset and a least-squares method."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import zsbench
from zsbench import DatasetBundle, Scores, Splits


def toy_bundle(num_classes: int = 12, per_class: int = 30, dim: int = 16, emb: int = 8, noise: float = 2.0, seed: int = 0) -> DatasetBundle:
    """Classes 0-5 seen for training, 6-8 validation-unseen, 9-11 test-unseen (xlsa17 shape)."""
    rng = np.random.default_rng(seed)
    class_emb = rng.normal(size=(num_classes, emb)).astype(np.float32)
    mixing = rng.normal(size=(emb, dim)).astype(np.float32)
    labels = np.repeat(np.arange(num_classes), per_class)
    features = (class_emb[labels] @ mixing + noise * rng.normal(size=(len(labels), dim))).astype(np.float32)
    idx = np.arange(len(labels))
    train_cls, val_cls, test_cls = np.arange(0, 6), np.arange(6, 9), np.arange(9, 12)
    in_cls = lambda cs: idx[np.isin(labels, cs)]  # noqa: E731
    trainval_all = in_cls(np.concatenate([train_cls, val_cls]))
    test_seen = trainval_all[::5]
    trainval = np.setdiff1d(trainval_all, test_seen)
    # Like xlsa17: train/val lists cover trainval and test_seen together.
    return DatasetBundle(
        name="toy",
        labels=labels,
        class_names=tuple(f"class_{c:02d}" for c in range(num_classes)),
        splits=Splits(trainval=trainval, test_seen=test_seen, test_unseen=in_cls(test_cls), train=in_cls(train_cls), val=in_cls(val_cls)),
        features=features,
        feature_name="toy",
        class_embeddings=class_emb,
        side_information="toy class embeddings",
        source="toy",
    )


class LeastSquares:
    """Ridge map from features to class embeddings; scores are negative distances to them."""

    def __init__(self, ridge: float = 1.0, fail: bool = False):
        self.ridge, self.fail = ridge, fail

    def fit(self, data: zsbench.FitData, context: zsbench.RunContext):
        if self.fail:
            raise RuntimeError("toy method asked to fail")
        x = torch.as_tensor(data.features)
        y = torch.as_tensor(data.classes.embeddings)[torch.as_tensor(data.labels)]
        w = torch.linalg.solve(x.T @ x + self.ridge * torch.eye(x.shape[1]), x.T @ y)
        protos = torch.as_tensor(data.classes.embeddings)
        noise = torch.rand(1, generator=context.generator("cpu")).item() * 1e-6  # seed-dependent, tiny

        class Scorer:
            def scores(self, inputs: zsbench.EvalInputs) -> Scores:
                z = torch.as_tensor(inputs.features) @ w
                return Scores(torch.cdist(z, protos) + noise, is_distance=True)

        return Scorer()


def least_squares(ridge: float = 1.0, fail: bool = False) -> LeastSquares:
    """Ridge regression onto class embeddings (toy)."""
    return LeastSquares(ridge, fail)


least_squares.default_grid = {"ridge": [0.1, 10.0]}


def toy_dataset(root: Path, noise: float = 2.0, seed: int = 0) -> DatasetBundle:
    """An in-memory toy data set."""
    return toy_bundle(noise=noise, seed=seed)


@zsbench.hookimpl
def register_datasets(register):
    register("toy", toy_dataset)


@zsbench.hookimpl
def register_methods(register):
    register("least-squares", least_squares)
