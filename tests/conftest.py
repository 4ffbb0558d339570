from __future__ import annotations

import importlib
import os
import sys
import tempfile
from pathlib import Path

import pytest

# Test modules sit in area folders (core/, cli/, ...); the helpers they share live here and in
# support/, imported by module name. Their asserts are rewritten like a test module's.
sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("support")
from shared_data import SHARED_DATA  # noqa: E402

# Set before any fixture (module-scoped ones included) runs: tests never touch a user's cache.
os.environ["ZSBENCH_CACHE"] = tempfile.mkdtemp(prefix="zsbench-test-cache-")
# Ray without token authentication, in every process a test starts: Ray would otherwise write a
# token to ~/.ray/auth_token, and `ray start` nodes started later demand it of every driver.
os.environ["RAY_AUTH_MODE"] = "disabled"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch):
    """No user data root or strictness setting leaks into a test."""
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
def toy(monkeypatch, tmp_path):
    """A working folder whose CLI registry is the installed plugins plus the toy and faulty test
    plugins, with its own cache."""
    from zsbench import registry as registry_module
    from zsbench.registry import Registry

    plugins = [(name, importlib.import_module(f"{name}_plugin"), None, None) for name in ("toy", "faulty")]
    monkeypatch.setattr(registry_module, "_default", Registry.from_entry_points(extra=plugins))
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture
def exact_unmeasured(monkeypatch):
    """Methods without a measured cross-machine tolerance count as exact: for tests of the
    statistics themselves, whose made-up methods were never measured (the default is infinite)."""
    from zsbench.store import tolerance

    monkeypatch.setattr(tolerance, "UNMEASURED", (0.0, 0.0))
