"""zsbench: benchmark zero-shot and generalized zero-shot learning methods as plugins.

Importing zsbench is cheap: the interface types (which need torch) load on first use of
their names, so the CLI, the spec validator and plugin registration never import torch.
"""

from __future__ import annotations

import importlib
import sys
import types
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
_API = ("Results", "evaluate", "list_plugins", "load_results", "register", "registered", "run", "unregister")


def __getattr__(name: str) -> Any:
    """The interface types (torch) and the Python API, imported on first use."""
    if name in _INTERFACES or name in _API:
        module = "zsbench.interfaces" if name in _INTERFACES else "zsbench.api"
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zsbench' has no attribute {name!r}")


class _Package(types.ModuleType):
    """``zsbench.runner.audit`` is the function ``zsbench.api.audit``, though the ``zsbench audit``
    command's module has that name: importing the module (it stays in ``sys.modules``) must not
    replace the function."""

    @property
    def audit(self):
        # By name, like ``__getattr__``: the API is no import of the core, whose code identity
        # follows import statements (``zsbench.runner.identity``).
        return importlib.import_module("zsbench.api").audit

    @audit.setter
    def audit(self, module: Any) -> None:  # the import system naming the submodule: ignored
        pass


sys.modules[__name__].__class__ = _Package


__all__ = [  # noqa: F822 - the API and interface names load on first use
    *_INTERFACES,
    *_API,
    "DataError",
    "OptionError",
    "PluginError",
    "SpecError",
    "UserError",
    "__version__",
    "audit",
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
