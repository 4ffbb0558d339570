"""Seen/unseen calibrators: CLAREL's multiplicative metric rescaling and Chao et al.'s
additive calibrated stacking. The sweep itself lives in ``zsbench.calibration``."""

from __future__ import annotations

import attrs
import torch

import zsbench


@attrs.frozen
class MetricRescaling:
    """Distances to seen prototypes times (1 + alpha) (CLAREL, Sec. 2.1)."""

    alpha_min: float = 0.0
    alpha_max: float = 1.0
    steps: int = 201
    name: str = "metric-rescaling"
    neutral: float = 0.0
    requires_distance: bool = True

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
class CalibratedStacking:
    """Seen-class scores minus gamma (Chao et al., ECCV 2016)."""

    gamma_min: float | None = None
    gamma_max: float | None = None
    steps: int = 201
    name: str = "calibrated-stacking"
    neutral: float = 0.0
    requires_distance: bool = False

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


def _check_grid(low: float, high: float, steps: int, what: str) -> None:
    if steps < 1:
        raise zsbench.UserError(f"{what}: steps must be at least 1, got {steps}")
    if high < low:
        raise zsbench.UserError(f"{what}: the grid's upper end {high} is below its lower end {low}")


def metric_rescaling(alpha_min: float = 0.0, alpha_max: float = 1.0, steps: int = 201) -> MetricRescaling:
    """Multiplicative metric rescaling: seen distances times (1 + alpha), alpha chosen on validation."""
    _check_grid(alpha_min, alpha_max, steps, "metric-rescaling")
    if alpha_min <= -1:
        raise zsbench.UserError(f"metric-rescaling: alpha_min must be > -1 (1 + alpha scales distances), got {alpha_min}")
    return MetricRescaling(alpha_min, alpha_max, steps)


def calibrated_stacking(
    gamma_min: float | None = None, gamma_max: float | None = None, steps: int = 201
) -> CalibratedStacking:
    """Calibrated stacking: seen scores minus gamma, gamma chosen on validation."""
    if gamma_min is not None and gamma_max is not None:
        _check_grid(gamma_min, gamma_max, steps, "calibrated-stacking")
    elif steps < 1:
        raise zsbench.UserError(f"calibrated-stacking: steps must be at least 1, got {steps}")
    return CalibratedStacking(gamma_min, gamma_max, steps)


@zsbench.hookimpl
def register_calibrators(register):
    register("metric-rescaling", metric_rescaling)
    register("calibrated-stacking", calibrated_stacking)
