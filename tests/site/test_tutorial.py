"""The Python API tutorial (docs/examples/tutorial/tutorial.py) runs as written, cell by cell."""

from __future__ import annotations

import pytest
import torch
from shared_data import SHARED_DATA
from support.paths import ROOT

TUTORIAL = ROOT / "docs" / "examples" / "tutorial" / "tutorial.py"


def cells() -> list[str]:
    """The tutorial's cells, each a ``# %%`` block (the marker kept, so line numbers hold)."""
    parts = TUTORIAL.read_text().split("# %%")
    return ["# %%" + part for part in parts[1:]]


def run_cells(source: list[str], tmp_path, monkeypatch) -> dict:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    torch.set_num_threads(1)
    namespace = {"__name__": "__main__"}
    for i, cell in enumerate(source):
        exec(compile(cell, f"<tutorial cell {i + 1}>", "exec"), namespace)
    return namespace


@pytest.fixture(autouse=True)
def fresh_session(monkeypatch):
    from zsbench import api

    monkeypatch.setattr(api, "_session", {})


@pytest.mark.slow
def test_the_tutorial_runs_on_the_demo_data(tmp_path, monkeypatch):
    namespace = run_cells(cells()[:5], tmp_path, monkeypatch)
    table = namespace["table"]
    assert list(table.method) == ["SemanticAutoEncoder"] * 2 + ["eszsl"] * 2
    assert table[["u", "s", "H", "H_ci"]].notna().all().all() and (table.seeds == 3).all()
    assert (tmp_path / "tutorial-demo.png").stat().st_size > 0


@pytest.mark.realdata
@pytest.mark.slow
def test_the_tutorial_runs_on_real_flo(tmp_path, monkeypatch):
    if not (SHARED_DATA / "flo" / "efficientnet_lite0.mat").is_file():
        pytest.skip(f"{SHARED_DATA}/flo is not present (set ZSBENCH_TEST_DATA)")
    monkeypatch.setenv("ZSBENCH_DATA", str(SHARED_DATA))
    method, _, _, plot, _, flo = cells()
    namespace = run_cells([method, plot, flo], tmp_path, monkeypatch)
    real = namespace["real"]
    assert list(real.method) == ["SemanticAutoEncoder", "eszsl"] and set(real.calibrator) == {"calibrated-stacking"}
    assert (real.H > 0).all() and real.H_ci.notna().all()
    assert (tmp_path / "tutorial-flo.png").stat().st_size > 0
