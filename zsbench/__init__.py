"""zsbench: benchmark zero-shot and generalized zero-shot learning methods as plugins.

Importing zsbench is cheap: the interface types (which need torch) load on first use of
their names, so the CLI, the spec validator and plugin registration never import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

import pluggy

from zsbench.errors import DataError, PluginError, SpecError, UserError
from zsbench.registry import get_registry
from zsbench.schema import (
    OptionError,
    between,
    component,
    each,
    ge,
    gt,
    integer,
    le,
    lt,
    number,
    one_of,
    option,
    optional,
)

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("zsbench")

_INTERFACES = (
    "Calibrator",
    "ClassSide",
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
    "RunContext",
    "Scorer",
    "Scores",
    "Splits",
)


def __getattr__(name: str) -> Any:
    """The interface types, imported from ``zsbench.interfaces`` (torch) on first use."""
    if name in _INTERFACES:
        value = getattr(importlib.import_module("zsbench.interfaces"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zsbench' has no attribute {name!r}")


__all__ = [
    *_INTERFACES,
    "DataError",
    "OptionError",
    "PluginError",
    "SpecError",
    "UserError",
    "__version__",
    "between",
    "component",
    "each",
    "ge",
    "get_registry",
    "gt",
    "hookimpl",
    "integer",
    "le",
    "lt",
    "number",
    "one_of",
    "option",
    "optional",
]
