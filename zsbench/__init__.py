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
    component_option,
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


# The Python API (``zsbench.api``), imported on first use.
_API = ("Results", "audit", "evaluate", "list_plugins", "load_results", "register", "registered", "run", "unregister")


def __getattr__(name: str) -> Any:
    """The interface types (torch) and the Python API, imported on first use."""
    if name in _INTERFACES or name in _API:
        module = "zsbench.interfaces" if name in _INTERFACES else "zsbench.api"
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zsbench' has no attribute {name!r}")


__all__ = [  # noqa: F822 - the API and interface names load on first use
    *_INTERFACES,
    *_API,
    "DataError",
    "OptionError",
    "PluginError",
    "SpecError",
    "UserError",
    "__version__",
    "between",
    "component",
    "component_option",
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
