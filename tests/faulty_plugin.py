"""Methods that misbehave (NaN scores, ``sys.exit`` in ``fit``), for the tests of what zsbench
refuses to store and of runs that must go on after one method fails."""

from __future__ import annotations

import sys

import torch

import zsbench
from zsbench.interfaces import Scores


class NaNScores:
    def fit(self, data: zsbench.FitData, context: zsbench.RunContext):
        classes = len(data.classes)

        class Scorer:
            def scores(self, inputs: zsbench.EvalInputs) -> Scores:
                values = torch.zeros(len(inputs), classes)
                values[0, 0] = float("nan")
                return Scores(values)

        return Scorer()


def nan_scores() -> NaNScores:
    """Scores with one NaN (a diverged model)."""
    return NaNScores()


class Exits:
    def fit(self, data: zsbench.FitData, context: zsbench.RunContext):
        sys.exit(3)


def exits() -> Exits:
    """Calls ``sys.exit(3)`` in ``fit`` (a plugin that ends the process)."""
    return Exits()


@zsbench.hookimpl
def register_methods(register):
    register("nan-scores", nan_scores)
    register("exits", exits)
