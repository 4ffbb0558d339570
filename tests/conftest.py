from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Caches and data roots under a temporary folder: tests never touch a user's cache."""
    cache = tmp_path_factory.getbasetemp() / "zsbench-cache"
    monkeypatch.setenv("ZSBENCH_CACHE", str(cache))
    monkeypatch.delenv("ZSBENCH_DATA", raising=False)
    monkeypatch.delenv("ZSBENCH_STRICT_PLUGINS", raising=False)
    from zsbench.registry import reset_registry

    reset_registry()
    yield
    reset_registry()


@pytest.fixture
def toy_registry():
    """Installed plugins plus the toy dataset and method."""
    from zsbench.registry import Registry

    toy = importlib.import_module("toy_plugin")
    return Registry.from_entry_points(extra=[("toy", toy, None, None)])


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
