"""Deliberately peeking methods, for the audit's tests: each cheats in a way zsbench must catch."""

from __future__ import annotations

import inspect

import numpy as np
import torch
from toy_plugin import LeastSquares

import zsbench
from zsbench import Scores


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


@zsbench.hookimpl
def register_methods(register):
    register("stack-peeker", lambda ridge=1.0: StackPeeker(ridge))
    register("transductive", lambda ridge=1.0: Transductive(ridge))
