"""The plugin guide's third-party backbone installs as a package and runs through the CLI: as a
dataset backbone for a baseline, in ``zsbench features``, and its unreadable-image error."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.paths import ROOT

EXAMPLE = ROOT / "docs" / "examples" / "zsbench-colorhist"
BIN = Path(sys.executable).parent


def run(args, env, cwd, code=0) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == code, f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_the_guide_shows_the_backbone_example_files():
    guide = (ROOT / "docs" / "plugins.md").read_text()
    for name in ("pyproject.toml", "zsbench_colorhist.py"):
        assert f'--8<-- "zsbench-colorhist/{name}"' in guide and (EXAMPLE / name).is_file()


@pytest.mark.slow
def test_the_third_party_backbone_installs_and_runs(tmp_path):
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed in this environment (needed to build the example)")
    source, site = tmp_path / "src", tmp_path / "site"
    shutil.copytree(EXAMPLE, source)
    # The site first, then whatever zsbench checkout the tests import (a worktree's, not the installed one).
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "ZSBENCH_CACHE": str(tmp_path / "cache")}
    env.pop("ZSBENCH_DATA", None)
    run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", site, source], env, tmp_path)
    listed = json.loads(run([BIN / "zsbench", "plugins", "encoder", "--json"], env, tmp_path).stdout)
    entry = next(c for c in listed["components"] if c["name"] == "color-histogram")
    assert entry["distribution"] == "zsbench-colorhist" and entry["options"] == ["bins", "num_workers", "side"]

    dataset = {"name": "synthetic", "num_classes": 12, "per_class": 8, "text": "none",
               "backbone": {"name": "color-histogram", "bins": 4, "num_workers": 1}}
    spec = tmp_path / "hist.yaml"
    spec.write_text(yaml.safe_dump({"name": "hist", "seeds": 1, "device": "cpu", "datasets": [dataset],
                                    "methods": [{"name": "eszsl", "calibrators": ["none", "calibrated-stacking"]}]}))
    results = tmp_path / "results.sqlite"
    run([BIN / "zsbench", "run", spec, "--results", results, "--quiet"], env, tmp_path)
    rows = json.loads(run([BIN / "zsbench", "results", "--results", results, "--json"], env, tmp_path).stdout)
    assert {r["features"] for r in rows} == {"color-histogram (4^3 bins)"} and len(rows) == 2
    out = tmp_path / "hist.mat"
    proc = run([BIN / "zsbench", "features", spec, "--out", out], env, tmp_path)
    assert "x 64 features" in proc.stdout and out.is_file()

    # An unreadable image, decoded in a worker process: exit 2 and a message naming the file.
    folder = next((tmp_path / "cache" / "data").rglob("jpg")) if (tmp_path / "cache" / "data").exists() else None
    if folder is None:
        folder = next(Path(env["ZSBENCH_CACHE"]).rglob("jpg"))
    (folder / "image_00003.jpg").write_bytes(b"broken")
    proc = run([BIN / "zsbench", "run", spec, "--results", tmp_path / "other.sqlite", "--quiet"], env, tmp_path, code=2)
    assert "image_00003.jpg: cannot read image" in proc.stderr
