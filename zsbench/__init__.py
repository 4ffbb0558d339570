"""zsbench: benchmark zero-shot and generalized zero-shot learning methods as plugins."""

from __future__ import annotations

import pluggy

from zsbench.errors import DataError, PluginError, SpecError, UserError
from zsbench.interfaces import (
    Calibrator,
    ClassSide,
    DatasetBundle,
    Encoder,
    EncoderContext,
    EvalInputs,
    FitData,
    Loss,
    LossContext,
    LossInputs,
    LossOutput,
    Method,
    RunContext,
    Scorer,
    Scores,
    Splits,
)
from zsbench.registry import get_registry

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("zsbench")

__all__ = [
    "Calibrator",
    "ClassSide",
    "DataError",
    "DatasetBundle",
    "Encoder",
    "EncoderContext",
    "EvalInputs",
    "FitData",
    "Loss",
    "LossContext",
    "LossInputs",
    "LossOutput",
    "Method",
    "PluginError",
    "RunContext",
    "Scorer",
    "Scores",
    "SpecError",
    "Splits",
    "UserError",
    "__version__",
    "get_registry",
    "hookimpl",
]
