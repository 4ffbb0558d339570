"""The calibrators' grids and seen-score adjustments (torch); options in ``zsbench_calibrators``."""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from zsbench_calibrators import CalibratedStackingOptions, MetricRescalingOptions


@attrs.frozen
class MetricRescaling(MetricRescalingOptions):
    """Distances to seen prototypes times (1 + alpha) (CLAREL, Sec. 2.1)."""

    name: ClassVar[str] = "metric-rescaling"
    neutral: ClassVar[float] = 0.0
    requires_distance: ClassVar[bool] = True

    def grid(self, margins: torch.Tensor) -> torch.Tensor:
        return torch.linspace(self.alpha_min, self.alpha_max, self.steps, dtype=torch.float64)

    def adjust_seen(self, seen_scores: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        # Scores are negated distances (<= 0): -(1 + a) d is increasing in -d for a > -1.
        shape = (-1,) + (1,) * seen_scores.dim()
        return seen_scores[None] * (1 + params.reshape(shape))

    def switch_points(self, seen_value: torch.Tensor, unseen_value: torch.Tensor) -> torch.Tensor:
        """alpha at and below which a sample stays seen: (1 + alpha) d_seen <= d_unseen."""
        seen, unseen = seen_value.double(), unseen_value.double()
        ratio = unseen / torch.where(seen < 0, seen, -1.0)
        return torch.where(seen < 0, ratio - 1, torch.inf)  # a zero seen distance is never beaten


@attrs.frozen
class CalibratedStacking(CalibratedStackingOptions):
    """Seen-class scores minus gamma (Chao et al., ECCV 2016)."""

    name: ClassVar[str] = "calibrated-stacking"
    neutral: ClassVar[float] = 0.0
    requires_distance: ClassVar[bool] = False

    def grid(self, margins: torch.Tensor) -> torch.Tensor:
        """Unset ends span the validation margins (best seen minus best unseen score), since
        scores of different methods live on different scales; 0 is always included."""
        margins = margins.double().cpu()
        low = self.gamma_min if self.gamma_min is not None else min(float(margins.min()), 0.0)
        high = self.gamma_max if self.gamma_max is not None else max(float(margins.max()), 0.0)
        return torch.cat([torch.linspace(low, high, self.steps, dtype=torch.float64),
                          torch.zeros(1, dtype=torch.float64)]).unique()

    def adjust_seen(self, seen_scores: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        shape = (-1,) + (1,) * seen_scores.dim()
        return seen_scores[None] - params.reshape(shape)

    def switch_points(self, seen_value: torch.Tensor, unseen_value: torch.Tensor) -> torch.Tensor:
        """gamma at and below which a sample stays seen: the margin best seen minus best unseen."""
        return seen_value.double() - unseen_value.double()
