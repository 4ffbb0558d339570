"""GZSL baselines as zsbench method plugins: the linear-compatibility methods of Xian et al.'s
benchmark (ESZSL, ALE, SJE, DeViSE), the feature generators f-CLSWGAN and CADA-VAE, and a random
floor. Published numbers to compare against are in ``benchmarks/reported.yaml``.

Registration reads only ``options`` (no torch); ``METHODS`` (the model classes) imports them.
"""

from __future__ import annotations

from typing import Any

import zsbench
from zsbench_baselines import options


@zsbench.hookimpl
def register_methods(register):
    for declared in options.METHODS:
        register(declared)


def __getattr__(name: str) -> Any:
    if name == "METHODS":  # the model classes themselves (imports torch)
        from zsbench.schema import declared

        return tuple(declared(o).load() for o in options.METHODS)
    raise AttributeError(f"module 'zsbench_baselines' has no attribute {name!r}")
