"""A floor every method should beat: features and class embeddings sent through independent random
Gaussian projections to a common space, scored by cosine similarity. Nothing is learned but the
feature normalisation statistics."""

from __future__ import annotations

import attrs
import torch

from zsbench.interfaces import FitData, RunContext
from zsbench_baselines import inputs
from zsbench_baselines.options import RandomOptions
from zsbench_baselines.preprocess import FeatureNorm
from zsbench_baselines.scorer import HeadScorer


class RandomCosine(torch.nn.Module):
    def __init__(self, projection: torch.Tensor, class_codes: torch.Tensor):
        super().__init__()
        self.register_buffer("projection", projection)
        self.register_buffer("class_codes", torch.nn.functional.normalize(class_codes, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(x @ self.projection, dim=1) @ self.class_codes.T


@attrs.frozen
class RandomProjection(RandomOptions):
    """Random floor: cosine similarity after independent random projections (nothing learned)."""

    def fit(self, data: FitData, context: RunContext) -> HeadScorer:
        raw = inputs.features(self.name, data, context.device)
        classes = inputs.class_embeddings(self.name, data, context.device)
        generator = context.generator("cpu")  # the same projections on every device
        project_x = torch.randn(raw.shape[1], self.dim, generator=generator).to(context.device)
        project_s = torch.randn(classes.shape[1], self.dim, generator=generator).to(context.device)
        head = RandomCosine(project_x, classes @ project_s)
        return HeadScorer(self.name, FeatureNorm.fit(self.feature_norm, raw), head, context.device)
