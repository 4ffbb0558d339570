"""Feature normalisation fitted on the training features only and replayed on evaluation features.

Public GZSL code often fits scalers on train and test features together; here the statistics
come from ``FitData.features`` alone and travel inside the scorer.
"""

from __future__ import annotations

import attrs
import torch

from zsbench_baselines.options import Norm


@attrs.frozen
class FeatureNorm:
    """``(x - shift) / scale``, then optional row L2 normalisation.

    ``l2`` needs no statistics; ``standard`` (per-dimension mean/std) and ``minmax`` (per-dimension
    min/range, to [0, 1] on the training data) remember the training statistics.
    """

    kind: str
    shift: torch.Tensor | None = None
    scale: torch.Tensor | None = None

    @classmethod
    def fit(cls, kind: Norm, x: torch.Tensor) -> FeatureNorm:
        if kind == "standard":
            return cls(kind, x.mean(0), _safe(x.std(0)))
        if kind == "minmax":
            low = x.min(0).values
            return cls(kind, low, _safe(x.max(0).values - low))
        return cls(kind)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.shift is not None:
            x = (x - self.shift) / self.scale
        if self.kind == "l2":
            x = torch.nn.functional.normalize(x, dim=1)
        return x


def _safe(scale: torch.Tensor) -> torch.Tensor:
    """Constant training dimensions get scale 1 instead of a division by zero."""
    return torch.where(scale > 1e-8, scale, torch.ones_like(scale))

