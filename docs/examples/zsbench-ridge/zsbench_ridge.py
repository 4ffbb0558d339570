"""zsbench-ridge: a complete, minimal third-party zsbench plugin.

It registers one method, ``ridge-embedding``: ridge regression from image features to class
embeddings, fitted on the training view only; an image's score for a class is the cosine
similarity between the embedding predicted for the image and the class embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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


class RidgeEmbedding:
    def __init__(self, ridge: float):
        self.ridge = ridge

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


def ridge_embedding(ridge: float = 1.0) -> RidgeEmbedding:
    """Ridge regression from image features to class embeddings; cosine-similarity scores."""
    if ridge <= 0:
        raise zsbench.UserError(f"ridge-embedding: the ridge strength must be positive, got {ridge}")
    return RidgeEmbedding(ridge)


# Searched on the validation split when a spec gives no grid of its own.
ridge_embedding.default_grid = {"ridge": [0.1, 1.0, 10.0, 100.0]}


@zsbench.hookimpl
def register_methods(register):
    register("ridge-embedding", ridge_embedding)
