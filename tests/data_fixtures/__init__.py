"""Small data files written by the data-layer tests (never committed binaries)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest


@contextmanager
def isolated_cache(tmp_path_factory):
    """The conftest's isolated cache, for module-scoped fixtures (set up before it is)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZSBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "zsbench-cache"))
        yield
