"""Seen/unseen calibrators: CLAREL's multiplicative metric rescaling and Chao et al.'s
additive calibrated stacking, each also with its parameter as a quantile of the stage model's
own training-image switch points (a unit that carries from the validation model to the refit one).
The sweep itself lives in ``zsbench.evaluation.calibration``; the grids and score adjustments
(torch) in ``zsbench_calibrators.adjust``, imported when a run builds one."""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

import attrs

import zsbench
from zsbench import between, gt, integer, number, option, optional

STEPS_DOC = "values swept"


def _ordered(low: float | None, high: float | None) -> None:
    if low is not None and high is not None and high < low:
        raise zsbench.OptionError(f"the grid's upper end {high} is below its lower end {low}")


@zsbench.component("calibrator", "metric-rescaling", build="zsbench_calibrators.adjust:MetricRescaling")
@attrs.frozen
class MetricRescalingOptions:
    """Multiplicative metric rescaling: seen distances times (1 + alpha), alpha chosen on validation."""

    alpha_min: float = option(0.0, gt(-1), doc="lower end of the swept range (1 + alpha scales distances)")
    alpha_max: float = option(1.0, gt(-1), doc="upper end")
    steps: int = option(201, integer(1), doc=STEPS_DOC)

    requires_distance: ClassVar[bool] = True  # validate refuses it for a method of similarity scores

    def __attrs_post_init__(self) -> None:
        _ordered(self.alpha_min, self.alpha_max)


@zsbench.component("calibrator", "calibrated-stacking", build="zsbench_calibrators.adjust:CalibratedStacking")
@attrs.frozen
class CalibratedStackingOptions:
    """Calibrated stacking: seen scores minus gamma, gamma chosen on validation."""

    gamma_min: float | None = option(None, optional(number()),
                                     doc="lower end; null: the smallest validation margin (best seen minus best unseen score), or 0")
    gamma_max: float | None = option(None, optional(number()),
                                     doc="upper end; null: the largest validation margin, or 0")
    steps: int = option(201, integer(1), doc="values swept (0 is always added)")

    def __attrs_post_init__(self) -> None:
        _ordered(self.gamma_min, self.gamma_max)


Q_DOC = ("fraction of the stage's own training images the adjustment would move to unseen; "
         "lower end of the swept range")


@attrs.frozen
class _QuantileOptions:
    q_min: float = option(0.0, between(0.0, 1.0), doc=Q_DOC)
    q_max: float = option(1.0, between(0.0, 1.0), doc="upper end")
    steps: int = option(201, integer(1), doc=STEPS_DOC)

    def __attrs_post_init__(self) -> None:
        _ordered(self.q_min, self.q_max)


@zsbench.component("calibrator", "metric-rescaling-quantile", build="zsbench_calibrators.adjust:MetricRescalingQuantile")
@attrs.frozen
class MetricRescalingQuantileOptions(_QuantileOptions):
    """Metric rescaling with q chosen on validation: alpha is the q-quantile of the stage model's
    training-image switch points (best unseen over best seen distance, minus 1)."""

    requires_distance: ClassVar[bool] = True


@zsbench.component("calibrator", "calibrated-stacking-quantile", build="zsbench_calibrators.adjust:CalibratedStackingQuantile")
@attrs.frozen
class CalibratedStackingQuantileOptions(_QuantileOptions):
    """Calibrated stacking with q chosen on validation: gamma is the q-quantile of the stage
    model's training-image margins (best seen minus best unseen score)."""


@zsbench.hookimpl
def register_calibrators(register):
    register(MetricRescalingOptions)
    register(CalibratedStackingOptions)
    register(MetricRescalingQuantileOptions)
    register(CalibratedStackingQuantileOptions)


def __getattr__(name: str) -> Any:
    """The calibrators themselves (torch), also under factory-style names (``metric_rescaling``)."""
    adjust = importlib.import_module("zsbench_calibrators.adjust")
    lazy = {"metric_rescaling": adjust.MetricRescaling, "calibrated_stacking": adjust.CalibratedStacking,
            "MetricRescaling": adjust.MetricRescaling, "CalibratedStacking": adjust.CalibratedStacking}
    if name in lazy:
        return lazy[name]
    raise AttributeError(f"module 'zsbench_calibrators' has no attribute {name!r}")
