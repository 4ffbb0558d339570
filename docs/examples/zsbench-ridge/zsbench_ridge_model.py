"""The ``ridge-embedding`` model (torch), imported only when a run builds it."""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from zsbench_ridge import RidgeOptions

import zsbench
from zsbench import EvalInputs, FitData, RunContext, Scores


class RidgeScorer:
    """A fitted map: features -> predicted class embedding, compared with every class."""

    def __init__(self, mean: torch.Tensor, weights: torch.Tensor, classes: torch.Tensor):
        self.mean, self.weights, self.classes = mean, weights, classes

    def scores(self, inputs: EvalInputs) -> Scores:
        x = torch.as_tensor(inputs.features, dtype=torch.float32, device=self.mean.device)
        predicted = F.normalize((x - self.mean) @ self.weights, dim=1)
        return Scores(predicted @ self.classes.T, is_distance=False)  # (n, K), higher is better


@attrs.frozen
class RidgeEmbedding(RidgeOptions):  # the options (and their defaults) are inherited
    def fit(self, data: FitData, context: RunContext) -> RidgeScorer:
        if data.features is None or data.classes.embeddings is None:
            raise zsbench.UserError(
                "ridge-embedding needs precomputed image features and class embeddings; "
                "this data set lacks one of them"
            )
        device = context.device
        x = torch.as_tensor(data.features, dtype=torch.float32, device=device)
        classes = torch.as_tensor(data.classes.embeddings, dtype=torch.float32, device=device)
        targets = classes[torch.as_tensor(data.labels, device=device)]  # seen classes only
        mean = x.mean(dim=0)
        x = x - mean
        eye = torch.eye(x.shape[1], device=device)
        weights = torch.linalg.solve(x.T @ x + self.ridge * eye, x.T @ targets)
        return RidgeScorer(mean, weights, F.normalize(classes, dim=1))
