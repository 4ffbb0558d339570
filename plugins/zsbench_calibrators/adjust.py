"""The calibrators' grids and seen-score adjustments (torch); options in ``zsbench_calibrators``."""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from zsbench_calibrators import (
    CalibratedStackingOptions,
    CalibratedStackingQuantileOptions,
    MetricRescalingOptions,
    MetricRescalingQuantileOptions,
)


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


class _Quantile:
    """A base adjustment whose parameter q is a quantile of the switch points (``base``'s
    parameter at which a sample turns unseen) of the stage model's own training images: q is the
    fraction of those images the adjustment would move to unseen. Raw parameters differ between
    the validation model and the model refit on trainval when their scores are on different
    scales; that fraction does not depend on the scale. ``with_reference`` binds it to one
    stage's model; only the bound calibrator adjusts scores."""

    base: ClassVar[type]
    neutral: ClassVar[float] = float("nan")  # no q leaves every model's scores unchanged
    needs_reference: ClassVar[bool] = True

    def with_reference(self, seen_value: torch.Tensor, unseen_value: torch.Tensor) -> BoundQuantile:
        points = self.base.switch_points(self, seen_value, unseen_value)
        points = points[torch.isfinite(points)].sort().values.cpu()
        if len(points) == 0:
            from zsbench.errors import UserError

            raise UserError(f"calibrator {self.name!r}: the model gives no finite switch point on its "
                            "training images (every seen distance is zero?), so no quantile can be taken")
        return BoundQuantile(self, points)

    def grid(self, margins: torch.Tensor) -> torch.Tensor:
        return torch.linspace(self.q_min, self.q_max, self.steps, dtype=torch.float64)

    def _unbound(self, *args: object) -> torch.Tensor:
        raise RuntimeError(f"calibrator {self.name!r} was used before with_reference (zsbench.evaluation.stages.with_references)")

    adjust_seen = switch_points = _unbound


@attrs.frozen
class BoundQuantile:
    """A quantile calibrator bound to one stage model's sorted training-image switch points."""

    calibrator: _Quantile
    reference: torch.Tensor = attrs.field(eq=False, repr=False)

    @property
    def name(self) -> str:
        return self.calibrator.name

    @property
    def neutral(self) -> float:
        return self.calibrator.neutral

    @property
    def requires_distance(self) -> bool:
        return self.calibrator.requires_distance

    def grid(self, margins: torch.Tensor) -> torch.Tensor:
        return self.calibrator.grid(margins)

    def raw(self, q: torch.Tensor) -> torch.Tensor:
        """The base adjustment's parameter for each quantile q (linear interpolation)."""
        return torch.quantile(self.reference, q.double().cpu().clamp(0, 1)).to(q.device)

    def adjust_seen(self, seen_scores: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        return self.calibrator.base.adjust_seen(self.calibrator, seen_scores, self.raw(params).to(params.dtype))

    def switch_points(self, seen_value: torch.Tensor, unseen_value: torch.Tensor) -> torch.Tensor:
        """q at and below which a sample stays seen: the inverse of ``raw`` at its base switch
        point; -inf where no q in [0, 1] keeps it seen (only the all-seen point, H = 0, is then
        out of reach)."""
        ref = self.reference.to(seen_value.device)
        s = self.calibrator.base.switch_points(self.calibrator, seen_value, unseen_value)
        n = len(ref)
        j = torch.searchsorted(ref, s.contiguous(), right=True)  # ref[j-1] <= s < ref[j]
        lo = ref[(j - 1).clamp(0, n - 1)]
        hi = ref[j.clamp(max=n - 1)]
        frac = torch.where(hi > lo, (s - lo) / torch.where(hi > lo, hi - lo, 1.0), 0.0)
        q = ((j - 1).double() + frac) / max(n - 1, 1)
        q = torch.where(j >= n, 1.0, q)
        return torch.where(j == 0, -torch.inf, q)


@attrs.frozen
class MetricRescalingQuantile(_Quantile, MetricRescalingQuantileOptions):
    """Metric rescaling, alpha the q-quantile of the training images' switch points."""

    name: ClassVar[str] = "metric-rescaling-quantile"
    requires_distance: ClassVar[bool] = True
    base: ClassVar[type] = MetricRescaling


@attrs.frozen
class CalibratedStackingQuantile(_Quantile, CalibratedStackingQuantileOptions):
    """Calibrated stacking, gamma the q-quantile of the training images' margins."""

    name: ClassVar[str] = "calibrated-stacking-quantile"
    requires_distance: ClassVar[bool] = False
    base: ClassVar[type] = CalibratedStacking
