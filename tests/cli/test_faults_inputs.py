"""Hostile inputs that must neither hang, exhaust memory, nor be used when damaged: specs with
alias bombs or huge grids, hung plugins, a cache entry that rotted or is not an entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest
from support.cli import one_paragraph, write, zsbench
from support.paths import ROOT

from zsbench.data import cache

# ---------------------------------------------------------------- specs: bounded work


ALIAS_BOMB = """
name: bomb
description: &a9 [&a8 [&a7 [&a6 [&a5 [&a4 [&a3 [&a2 [&a1 [&a0 [x, x, x, x, x, x, x, x, x, x],
  *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0], *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1],
  *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2], *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3],
  *a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4], *a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5],
  *a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6], *a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7],
  *a8, *a8, *a8, *a8, *a8, *a8, *a8, *a8, *a8]
datasets: [{name: toy}]
methods: [{name: least-squares}]
"""

RECURSIVE = """
name: loop
description: &self {again: *self}
datasets: [{name: toy}]
methods: [{name: least-squares}]
"""

HUGE_GRID = """
name: huge
datasets: [{name: toy}]
methods:
  - name: least-squares
    grid: {ridge: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], a: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
           b: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], c: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
           d: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], e: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
           f: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], g: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
           h: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}
"""


@pytest.mark.parametrize("text, expected", [
    (ALIAS_BOMB, "spec.yaml: expands to more than 1000000 values (YAML aliases"),
    (RECURSIVE, "spec.yaml: a YAML alias refers to a mapping or list that contains it (a recursive alias)"),
    (HUGE_GRID, "spec.yaml: methods[0].grid: 1000000000 grid points, more than the 10000 a method may have"),
    ("name: s\nseeds: 1000000000\ndatasets: [{name: toy}]\nmethods: [{name: least-squares}]\n",
     "spec.yaml: seeds: 1000000000 seeds is more than the 100000 runs a spec may have"),
    ("name: s\nseeds: [-1]\ndatasets: [{name: toy}]\nmethods: [{name: least-squares}]\n",
     "spec.yaml: seeds: a seed is an integer from 0 to 4294967295, got -1"),
    ("name: s\nseeds: [4294967296]\ndatasets: [{name: toy}]\nmethods: [{name: least-squares}]\n",
     "spec.yaml: seeds: a seed is an integer from 0 to 4294967295, got 4294967296"),
    ("name: s\ndatasets: [{name: toy}]\nmethods: [{name: least-squares, grid: {ridge: [1.0, .inf]}}]\n",
     "spec.yaml: methods[0].grid.ridge[1]: expected finite numbers, got inf"),
    ("name: s\ndatasets: [{name: toy}]\nmethods: [{name: least-squares, ridge: .nan}]\n",
     "spec.yaml: methods[0].ridge: expected finite numbers, got nan"),
], ids=["alias-bomb", "recursive-alias", "huge-grid", "many-seeds", "negative-seed", "big-seed", "inf-grid", "nan-option"])
@pytest.mark.parametrize("verb", ["validate", "run"])
def test_specs_asking_for_unbounded_or_invalid_work_are_named_errors(toy, text, expected, verb):
    spec = toy / "spec.yaml"
    spec.write_text(text)
    result = zsbench(verb, spec, *(["--quiet"] if verb == "run" else []))  # refused before anything expands
    assert result.returncode == 2 and expected in one_paragraph(result)


def test_validate_reports_grid_points_and_the_limits_are_configurable(toy, monkeypatch):
    text = "name: s\nseeds: [0, 1, 2]\ndatasets: [{name: toy}]\nmethods: [{name: least-squares, grid: {ridge: [1, 2, 3]}}]\n"
    spec = write(toy, text)
    result = zsbench("validate", spec)
    assert result.returncode == 0 and "= 3 run(s), 3 grid point(s)" in " ".join(result.stdout.split())
    monkeypatch.setenv("ZSBENCH_MAX_GRID_POINTS", "2")
    assert "methods[0].grid: 3 grid points, more than the 2 a method may have" in one_paragraph(zsbench("validate", spec))
    monkeypatch.delenv("ZSBENCH_MAX_GRID_POINTS")
    monkeypatch.setenv("ZSBENCH_MAX_RUNS", "2")
    assert "= 3 runs, more than the 2 a spec may have" in one_paragraph(zsbench("validate", spec))
    monkeypatch.setenv("ZSBENCH_MAX_RUNS", "lots")
    refused = zsbench("validate", spec)
    assert refused.returncode == 2 and "$ZSBENCH_MAX_RUNS: expected a positive whole number, got 'lots'" in refused.stderr


def test_duplicate_method_names_are_found_in_linear_time(toy):
    entries = "".join(f"  - {{name: m{i}, method: least-squares}}\n" for i in range(30_000))
    spec = write(toy, f"name: many\ndatasets: [{{name: toy}}]\nmethods:\n{entries}  - {{name: m7, method: least-squares}}\n")
    result = zsbench("validate", spec)
    assert result.returncode == 2 and "methods: names must be unique, m7 appear(s) twice" in one_paragraph(result)


# ---------------------------------------------------------------- plugins that hang

HANGING = {
    "toy_hangs_at_import.py": "import time\ntime.sleep(600)\n",
    "toy_hangs_in_hook.py": textwrap.dedent("""
        import time
        import zsbench

        @zsbench.hookimpl
        def register_methods(register):
            time.sleep(600)
    """),
}


@pytest.mark.parametrize("args", [["plugins", "--json"], ["validate", "benchmarks/demo.yaml"]])
def test_a_plugin_that_hangs_in_its_import_or_hook_is_named_and_skipped(tmp_path, args):
    for name, text in HANGING.items():
        (tmp_path / name).write_text(text)
    dist = tmp_path / "zsbench_hangs-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: zsbench-hangs\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[zsbench]\n" + "".join(f"{n[:-3]} = {n[:-3]}\n" for n in HANGING))
    env = dict(os.environ, ZSBENCH_PLUGIN_TIMEOUT="3",
               PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", "from zsbench.cli import main; main()", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stderr
    assert ("plugin 'toy_hangs_at_import' (toy_hangs_at_import) failed to import: it hung: did not return "
            "within 3 s") in done.stderr
    assert "plugin 'toy_hangs_in_hook' failed in register_methods: it hung: did not return within 3 s" in done.stderr
    if args[0] == "plugins":
        assert "eszsl" in {c["name"] for c in json.loads(done.stdout)["components"]}


# ---------------------------------------------------------------- the cache verifies what it reads


def _table(calls):
    def build():
        calls.append(1)
        return {"features": cache.matrix_column(np.arange(4096, dtype=np.float32).reshape(64, 64))}
    return build


def test_bit_rot_in_a_cached_table_is_detected_and_the_entry_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "cache"))
    calls = []
    cache.cached_table("k", _table(calls))
    stored = cache.tables_dir() / "k" / cache.TABLE_FILE
    data = bytearray(stored.read_bytes())
    at = data.index(np.arange(4096, dtype=np.float32).tobytes()) + 400
    data[at:at + 16] = b"\xff" * 16  # 16 bytes inside the features: still a valid Arrow file
    stored.write_bytes(bytes(data))
    table = cache.cached_table("k", _table(calls))
    assert calls == [1, 1]
    np.testing.assert_array_equal(cache.read_matrix(table, "features").reshape(-1), np.arange(4096, dtype=np.float32))


@pytest.mark.parametrize("kind", ["symlink to a valid entry", "plain file", "symlinked table"])
def test_a_cache_entry_that_is_not_a_regular_entry_is_rebuilt(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "cache"))
    calls = []
    elsewhere = cache.tables_dir() / "elsewhere"
    cache.cached_table("elsewhere", _table(calls))  # a valid entry, checksum and all
    entry = cache.tables_dir() / "k"
    if kind == "symlinked table":
        cache.cached_table("k", _table(calls))
        (entry / cache.TABLE_FILE).unlink()
        (entry / cache.TABLE_FILE).symlink_to(elsewhere / cache.TABLE_FILE)
    elif kind == "plain file":
        entry.write_text("not an entry")
    else:
        entry.symlink_to(elsewhere)
    table = cache.cached_table("k", _table(calls))
    assert len(calls) == (3 if kind == "symlinked table" else 2)  # "k" was built again, not read through a link
    assert entry.is_dir() and not entry.is_symlink() and not (entry / cache.TABLE_FILE).is_symlink()
    assert cache.read_matrix(table, "features").shape == (64, 64)
    assert (elsewhere / cache.TABLE_FILE).is_file()  # what a link pointed at is left alone


def test_a_cache_that_cannot_be_written_warns_and_the_table_is_used_uncached(tmp_path, monkeypatch):
    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    monkeypatch.setenv("ZSBENCH_CACHE", str(blocked))
    calls = []
    with pytest.warns(UserWarning, match="the cache cannot be written .* set ZSBENCH_CACHE"):
        table = cache.cached_table("k", _table(calls))
    assert isinstance(table, pa.Table) and cache.read_matrix(table, "features").shape == (64, 64)
