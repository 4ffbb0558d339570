"""Deliberately peeking methods, for the audit's tests: each cheats in a way zsbench must catch,
written as a third party would (public API only, plus what Python lets any code reach)."""

from __future__ import annotations

import inspect
import os

import numpy as np
import torch
from toy_plugin import LeastSquares, toy_bundle

import zsbench
from zsbench import Scores
from zsbench.evaluation import protocol
from zsbench.paths import dataset_root

_MEMORY: dict[str, float] = {}  # survives from one run of the process to the next

if os.environ.get("ZSBENCH_TEST_CHOOSE_ON_TEST"):  # a mutant of zsbench itself: validation is the test stage
    protocol.validation_stage = lambda bundle, seed: protocol.test_stage(bundle)


def _bundle_from_the_stack() -> zsbench.DatasetBundle:
    """What a cheating plugin might do: find the runner's full data set in a caller's frame."""
    for frame in inspect.stack():
        if isinstance(frame.frame.f_locals.get("bundle"), zsbench.DatasetBundle):
            return frame.frame.f_locals["bundle"]
    raise RuntimeError("no bundle on the stack")


class StackPeeker(LeastSquares):
    """Chooses its ridge from the test features' scale (the test split moves its choice)."""

    def fit(self, data, context):
        bundle = _bundle_from_the_stack()
        test = np.union1d(bundle.splits.test_seen, bundle.splits.test_unseen)
        self.ridge = float(np.nan_to_num(np.abs(bundle.features[test]).mean(), nan=1e6))
        return super().fit(data, context)


class CaptionPeeker(LeastSquares):
    """Takes its ridge from the test images' caption embeddings, which a data set computes once for
    every image and the protocol never hands a method for a test image."""

    def fit(self, data, context):
        bundle = _bundle_from_the_stack()
        test = np.union1d(bundle.splits.test_seen, bundle.splits.test_unseen)
        self.ridge = float(np.nan_to_num(np.abs(bundle.caption_embeddings[test]).sum(1).mean(), nan=1e6))
        return super().fit(data, context)


class Transductive(LeastSquares):
    """Standardises each scored batch by its own statistics (evaluation data as preprocessing)."""

    def fit(self, data, context):
        inner = super().fit(data, context)

        class Scorer:
            def scores(self, inputs):
                x = torch.as_tensor(inputs.features)
                centred = zsbench.EvalInputs(features=(x - x.mean(0)).numpy())
                return Scores(inner.scores(centred).values, is_distance=True)

        return Scorer()


def _test_scale(bundle: zsbench.DatasetBundle) -> float:
    test = np.union1d(bundle.splits.test_seen, bundle.splits.test_unseen)
    return float(np.nan_to_num(np.abs(bundle.features[test]).mean(), nan=1e6))


class Memoriser(LeastSquares):
    """Reads the test split once, on its first fit in this process, and keeps its scale in a
    module-level variable: every later run (any stage, any copy of the data) reuses it."""

    def fit(self, data, context):
        if "scale" not in _MEMORY:
            _MEMORY["scale"] = _test_scale(_bundle_from_the_stack())
        self.ridge = _MEMORY["scale"]
        return super().fit(data, context)


class DiskReader(LeastSquares):
    """Opens the data set's file in the data folder itself and takes its ridge from the test features."""

    def fit(self, data, context):
        with np.load(dataset_root("toy-files") / "toy.npz") as f:
            test = np.union1d(f["test_seen"], f["test_unseen"])
            self.ridge = float(np.abs(f["features"][test]).mean())
        return super().fit(data, context)


class TestStagePeeker(LeastSquares):
    """Honest on validation; on the test stage only, takes its ridge from the test features."""

    def fit(self, data, context):
        if context.stage == "test":
            self.ridge = _test_scale(_bundle_from_the_stack())
        return super().fit(data, context)


class FirstBatchCentring(LeastSquares):
    """Centres every batch by the mean of the first batch it scores (the test set, in a run):
    scoring in other orders or chunks later changes nothing, so only the test stage shows it."""

    def fit(self, data, context):
        inner = super().fit(data, context)
        cached: dict[str, torch.Tensor] = {}

        class Scorer:
            def scores(self, inputs):
                x = torch.as_tensor(inputs.features)
                mean = cached.setdefault("mean", x.mean(0))
                return Scores(inner.scores(zsbench.EvalInputs(features=(x - mean).numpy())).values, is_distance=True)

        return Scorer()


class Crashing(LeastSquares):
    def fit(self, data, context):
        raise RuntimeError("crashing on purpose")


class Exiting(LeastSquares):
    def fit(self, data, context):
        import sys

        sys.exit(3)


class Dying(LeastSquares):
    """Ends its process without any clean-up, as a segfault would."""

    def fit(self, data, context):
        import os

        os._exit(9)


def save_toy_files(folder) -> None:
    """The toy data set as one file, ``folder/toy.npz`` (for the ``toy-files`` data set)."""
    b = toy_bundle()
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "toy.npz", features=b.features, labels=b.labels, test_seen=b.splits.test_seen,
             test_unseen=b.splits.test_unseen)


def toy_files(root) -> zsbench.DatasetBundle:
    """The toy data set, read from ``root/toy.npz`` (checked to be the toy data)."""
    with np.load(root / "toy.npz") as f:
        b = toy_bundle()
        assert np.array_equal(f["features"], b.features)
    return b


@zsbench.hookimpl
def register_datasets(register):
    register("toy-files", toy_files)


@zsbench.hookimpl
def register_methods(register):
    register("stack-peeker", lambda ridge=1.0: StackPeeker(ridge))
    register("caption-peeker", lambda ridge=1.0: CaptionPeeker(ridge))
    register("transductive", lambda ridge=1.0: Transductive(ridge))
    register("memoriser", lambda ridge=1.0: Memoriser(ridge))
    register("disk-reader", lambda ridge=1.0: DiskReader(ridge))
    register("test-stage-peeker", lambda ridge=1.0: TestStagePeeker(ridge))
    register("first-batch-centring", lambda ridge=1.0: FirstBatchCentring(ridge))
    register("crashing", lambda ridge=1.0: Crashing(ridge))
    register("exiting", lambda ridge=1.0: Exiting(ridge))
    register("dying", lambda ridge=1.0: Dying(ridge))
