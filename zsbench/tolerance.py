"""How far a published row may move when rerun in another numeric environment (another CPU
family, BLAS branch, kernel set or thread count), per method: measured, not guessed.

Each value is the largest difference of one row (one method, calibrator and seed) seen between
the committed FLO rows and reruns of them on an AMD EPYC under varied settings (MKL's per-CPU
and ``COMPATIBLE`` branches, torch's AVX512, AVX2 and default kernels, one and two threads),
rounded up in the second significant digit. docs/reproducibility.md gives the commands and the
runs behind every number. A method that was not measured gets an infinite tolerance: nothing is
known about how far its rows move, so no difference between them counts as a ranking.
"""

from __future__ import annotations

import math

# Absolute, in the rows' unit (a fraction in [0, 1]): (H, u and s).
_MEASURED: dict[str, tuple[float, float]] = {
    "eszsl": (1e-6, 1e-6),  # closed form: identical everywhere measured; 1e-6 is the floor
    "random": (1e-6, 1e-6),
    "ale": (0.0036, 0.0072),
    "sje": (0.0038, 0.0047),
    "devise": (0.0011, 0.0015),
}


def _measured(method: str) -> tuple[float, float]:
    return _MEASURED.get(method, (math.inf, math.inf))


def cross_machine_tolerance(method: str) -> float:
    """Largest absolute change of a row's H measured for ``method`` across environments."""
    return _measured(method)[0]


def cross_machine_accuracy_tolerance(method: str) -> float:
    """Largest absolute change of a row's u or s measured for ``method`` across environments."""
    return _measured(method)[1]
