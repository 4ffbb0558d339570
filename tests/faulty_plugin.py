"""A method that returns NaN scores, for the tests of what zsbench refuses to store."""

from __future__ import annotations

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


@zsbench.hookimpl
def register_methods(register):
    register("nan-scores", nan_scores)
