"""The real FLO data through the CLI: a short run, and corrupted copies of the real files."""

from __future__ import annotations

import json
import shutil
import textwrap

import numpy as np
import pytest
from scipy.io import loadmat, savemat
from support.cli import zsbench

pytestmark = pytest.mark.realdata

SPEC = """
name: flo-short
seeds: [0]
datasets:
  - name: flo
    root: {root}
    features: efficientnet_lite0.mat
    images: false
methods:
  - name: eszsl
    calibrators: [none, calibrated-stacking]
  - name: clarel
    embed_dim: 128
    steps: 300
    eval_every: null
    checkpoint_every: null
    grid: {{}}
    calibrators: [none, metric-rescaling]
"""


@pytest.fixture
def flo_copy(shared_data, tmp_path):
    """A writable FLO folder: the feature file linked, the small files copied."""
    root = tmp_path / "flo"
    root.mkdir()
    (root / "efficientnet_lite0.mat").symlink_to(shared_data / "flo" / "efficientnet_lite0.mat")
    for name in ("att_splits.mat", "cat_to_name.json"):
        shutil.copy(shared_data / "flo" / name, root / name)
    return root


def run(tmp_path, root):
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent(SPEC.format(root=root)))
    return zsbench("run", spec, "--results", tmp_path / "r.sqlite", "--quiet")


@pytest.mark.slow
def test_short_run_on_real_flo_stores_rows_above_chance(flo_copy, tmp_path):
    out = run(tmp_path, flo_copy)
    assert out.returncode == 0, out.stderr
    rows = json.loads(zsbench("results", "--results", tmp_path / "r.sqlite", "--json").stdout)
    by = {(r["method"], r["calibrator"]): r for r in rows}
    assert set(by) == {("eszsl", "none"), ("eszsl", "calibrated-stacking"), ("clarel", "none"), ("clarel", "metric-rescaling")}
    for r in rows:
        assert r["features"] == "efficientnet_lite0" and r["zsl"] > 0.15  # 20 unseen classes: chance 0.05
    # calibration chosen on validation must not make H collapse on test
    assert by[("eszsl", "calibrated-stacking")]["H"] > 0.2


def _rewrite_splits(root, **changes):
    mat = loadmat(root / "att_splits.mat")
    mat = {k: v for k, v in mat.items() if not k.startswith("__")}
    mat.update(changes)
    savemat(root / "att_splits.mat", mat)


@pytest.mark.parametrize(
    "corrupt,expected",
    [
        (lambda root, m: _rewrite_splits(root, test_unseen_loc=np.vstack([m["test_unseen_loc"], [[99999]]])), "test_unseen_loc"),
        (lambda root, m: _rewrite_splits(root, test_unseen_loc=np.vstack([m["test_unseen_loc"], m["trainval_loc"][:5]])), "unseen"),
        (lambda root, m: (root / "att_splits.mat").write_bytes((root / "att_splits.mat").read_bytes()[:5000]), "att_splits.mat"),
    ],
    ids=["index-out-of-range", "seen-unseen-overlap", "truncated-mat"],
)
def test_corrupted_real_files_exit_2_naming_the_file(flo_copy, tmp_path, corrupt, expected):
    corrupt(flo_copy, loadmat(flo_copy / "att_splits.mat"))
    out = run(tmp_path, flo_copy)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "att_splits.mat" in out.stderr and expected in out.stderr
    assert "Traceback" not in out.stderr
