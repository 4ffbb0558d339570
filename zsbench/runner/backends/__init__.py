"""Backends other than the in-process ``runner.LocalBackend``.

A backend is any object with ``run(tasks) -> Iterator[(Task, list[ResultRow] | Failure)]``
that yields each task as it finishes; ``runner.run_spec`` stays the only writer of results.
Importing this package never imports an optional dependency: each backend imports its own
(e.g. Ray) when it starts.
"""

from __future__ import annotations

from zsbench.runner.backends.ray import RayBackend

__all__ = ["RayBackend"]
