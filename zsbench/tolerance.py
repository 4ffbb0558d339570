"""How far a method's H may move when its run is repeated on another machine.

Absolute tolerances on H, as a fraction in [0, 1] (the rows' unit), measured by rerunning under
varied thread, BLAS and kernel settings; a method not measured gets 0.0: exact.
"""

from __future__ import annotations

TOLERANCES: dict[str, float] = {}


def cross_machine_tolerance(method: str) -> float:
    """The absolute tolerance on ``method``'s H across machines (0.0: reproduces exactly)."""
    return TOLERANCES.get(method, 0.0)
