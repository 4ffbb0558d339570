"""The one Scorer every baseline returns: training-fitted normalisation, then a frozen head that
maps feature rows to (n, K) higher-is-better scores over all classes of the fit (GZSL)."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import torch

from zsbench.interfaces import EvalInputs, Scores
from zsbench_baselines.inputs import features


@attrs.frozen
class HeadScorer:
    method: str
    norm: Callable[[torch.Tensor], torch.Tensor]  # preprocessing fitted on the training features
    head: torch.nn.Module
    device: torch.device
    chunk: int = 8192  # rows per forward pass, to bound memory on large test sets

    def scores(self, inputs: EvalInputs) -> Scores:
        x = features(self.method, inputs, self.device)
        self.head.eval()
        with torch.no_grad():
            values = torch.cat([self.head(self.norm(part)) for part in x.split(self.chunk)])
        return Scores(values=values, is_distance=False)


class Compatibility(torch.nn.Module):
    """Bilinear compatibility x W s_k for every class k, stored as the product M = W S^T."""

    def __init__(self, matrix: torch.Tensor):
        super().__init__()
        self.register_buffer("matrix", matrix)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.matrix
