"""The CLI over the Python API: shipped specs by name, results as csv / parquet / json, messages
printed as written (no rich markup eaten)."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch
from support.api import RIDGE_CELL, run_cell, toy_dataset
from support.cli import write
from support.cli import zsbench as cli
from support.paths import ROOT

import zsbench
from zsbench import api


@pytest.fixture
def results_db(tmp_path, monkeypatch):
    monkeypatch.setattr(api, "_session", {})
    torch.set_num_threads(1)
    zsbench.register(toy_dataset, name="toy", kind="dataset")
    path = tmp_path / "r.sqlite"
    zsbench.evaluate(run_cell(RIDGE_CELL, 1)["NotebookRidge"], datasets=["toy"], seeds=2,
                     calibrators=["none", "metric-rescaling"], results=path, quiet=True)
    return path


def test_specs_lists_the_shipped_specs_and_validate_finds_them_by_name():
    listed = cli("specs")
    assert listed.returncode == 0 and "demo" in listed.stdout and "flo-efficientnet" in listed.stdout
    ok = cli("validate", "demo")
    assert ok.returncode == 0 and "demo.yaml: 1 dataset(s) x 4 method(s) x 3 seed(s)" in ok.stdout
    missing = cli("validate", "benchmarks/dmeo.yaml")
    assert missing.returncode == 2 and "did you mean 'demo'" in missing.stderr and "zsbench specs" in missing.stderr


def test_results_as_csv_json_and_parquet(results_db, tmp_path):
    out = cli("results", "--results", results_db, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert out.returncode == 0 and len(rows) == 4
    assert {r["calibrator"] for r in rows} == {"none", "metric-rescaling"} and all(r["H"] and r["zsbench"] for r in rows)
    as_json = cli("results", "--results", results_db, "--format", "json")
    assert [r["H"] for r in json.loads(as_json.stdout)] == [float(r["H"]) for r in rows]
    pyarrow_parquet = pytest.importorskip("pyarrow.parquet")
    target = tmp_path / "rows.parquet"
    assert cli("results", "--results", results_db, "--format", "parquet", "--out", target).returncode == 0
    table = pyarrow_parquet.read_table(target)
    assert table.num_rows == 4 and table.column("H").to_pylist() == [float(r["H"]) for r in rows]
    refused = cli("results", "--results", results_db, "--format", "parquet")
    assert refused.returncode == 2 and "--out FILE" in refused.stderr


def test_messages_keep_their_brackets(tmp_path):
    spec = write(tmp_path, "name: s\ndatasets: [{name: synthetic}]\nmethods: [{name: 'x[ray]'}]\n")
    out = cli("validate", spec)
    assert out.returncode == 2 and "unknown method 'x[ray]'" in out.stderr


def test_the_shipped_specs_are_package_data():
    from importlib import resources

    from zsbench.specs import names, packaged

    assert {"demo", "flo-efficientnet", "cub-subset"} <= set(names())
    assert resources.files("zsbench.specs").joinpath("demo.yaml").is_file()
    assert packaged("demo").read_text().startswith("#")


@pytest.mark.slow
def test_the_wheel_carries_the_specs(tmp_path):
    """Built from a copy of the sources, so the checkout gets no build folders."""
    import shutil
    import subprocess
    import sys
    import zipfile

    pytest.importorskip("setuptools")
    root = ROOT
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for part in ("zsbench", "plugins"):
        shutil.copytree(root / part, source / part, ignore=ignore)
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(root / part, source / part)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "wheel"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "wheel").glob("zsbench-*.whl")
    with zipfile.ZipFile(wheel) as z:
        files = set(z.namelist())
        metadata = z.read(next(f for f in files if f.endswith(".dist-info/METADATA"))).decode()
    assert {f"zsbench/specs/{name}.yaml" for name in ("demo", "flo-efficientnet", "cub-subset", "cub50")} <= files
    assert "Name: zsbench" in metadata
