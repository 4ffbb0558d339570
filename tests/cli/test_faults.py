"""Faults of the database, the data, the spec and the machine, each met the way a user meets it:
through the CLI, asserting the one-paragraph message and exit 2, and that nothing already
computed is lost."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_fixtures.matfiles import tiny_xlsa17
from hypothesis import given, settings
from hypothesis import strategies as st
from support.cli import ONE_RUN, ZSBENCH, one_paragraph, write, zsbench
from support.store import row

from zsbench import registry as registry_module
from zsbench.store.sqlite import ResultStore


@contextlib.contextmanager
def immutable(path: Path):
    """``chattr +i`` (root can write a chmod 444 file; nobody writes an immutable one)."""
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (needs root and a supporting file system)")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


# ---------------------------------------------------------------- the results database


def test_an_immutable_database_stops_the_run_before_any_work(toy):
    spec = write(toy, ONE_RUN)
    assert zsbench("run", spec, "--quiet").returncode == 0
    with immutable(toy / "results.sqlite"):
        result = zsbench("run", spec, "--quiet", "--force")
    message = one_paragraph(result)
    assert result.returncode == 2
    assert "results.sqlite" in message and "readonly" in message and "nothing was run" in message
    assert "run(s) done" not in result.stdout


def test_a_database_in_a_folder_nobody_can_write_is_still_listed(toy):
    assert zsbench("run", write(toy, ONE_RUN), "--quiet").returncode == 0
    folder = toy / "locked"
    folder.mkdir()
    os.replace(toy / "results.sqlite", folder / "results.sqlite")
    with immutable(folder):
        listed = zsbench("results", "--results", folder / "results.sqlite", "--json")
        refused = zsbench("run", write(toy, ONE_RUN), "--quiet", "--results", folder / "results.sqlite")
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["method"] == "least-squares"
    assert refused.returncode == 2 and "locked/results.sqlite" in one_paragraph(refused)


def test_a_database_damaged_in_the_middle_is_refused_by_run_and_results(toy):
    db = toy / "results.sqlite"
    with ResultStore(db) as store:
        for i in range(60):
            store.write_run([row(key=f"k{i}", provenance={"pad": "x" * 500})])
    assert db.stat().st_size > 20480
    with open(db, "r+b") as f:
        f.seek(8192)
        f.write(b"\xff" * (20480 - 8192))
    for args in (("run", write(toy, ONE_RUN), "--quiet"), ("results",), ("leaderboard", "--out", toy / "lb")):
        result = zsbench(*args)
        message = one_paragraph(result)
        assert result.returncode == 2, args
        assert "results.sqlite" in message and "damaged" in message


def test_a_write_failing_after_the_run_keeps_it_in_a_recovery_file(toy, monkeypatch):
    spec = write(toy, ONE_RUN)
    calls = []

    def refuse(self, rows, replace=False):
        calls.append(rows)
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(ResultStore, "write_run", refuse)
        patch.setattr("zsbench.store.sqlite.time.sleep", lambda s: None)
        result = zsbench("run", spec, "--quiet")
    message = one_paragraph(result)
    recovery = "results.sqlite.recovery.jsonl"  # beside the database (here the working folder)
    assert result.returncode == 2 and len(calls) == 3  # retried, then kept
    assert f"saved to {recovery}" in message and f"zsbench results import {recovery}" in message
    saved = json.loads((toy / recovery).read_text())
    assert saved["error"] == "disk I/O error" and saved["rows"][0]["method"] == "least-squares"

    imported = zsbench("results", "import", recovery)
    assert imported.returncode == 0 and "imported 1 run(s)" in imported.stdout
    with ResultStore(toy / "results.sqlite", readonly=True) as store:
        assert [r["H"] for r in store.rows()] == [saved["rows"][0]["H"]]
    again = zsbench("run", spec, "--quiet")
    assert again.returncode == 0 and "0 run(s) done, 1 already in" in again.stdout


def test_two_concurrent_runs_on_one_database_compute_every_task_once(tmp_path):
    spec = write(tmp_path, """
        name: concurrent
        seeds: 6
        datasets:
          - name: synthetic
            num_classes: 12
            per_class: 20
        methods:
          - name: eszsl
    """)
    env = dict(os.environ, ZSBENCH_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    subprocess.run([*ZSBENCH, "data", "--help"], env=env, capture_output=True)  # warm imports
    command = [*ZSBENCH, "run", str(spec), "--quiet", "--results", str(tmp_path / "r.sqlite")]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert not any("Traceback" in err or "IntegrityError" in err for _, err in outs)
    done = [int(out.split(" run(s) done")[0].split()[-1]) for out, _ in outs]
    assert sum(done) == 6, outs  # every task computed exactly once, between them
    with ResultStore(tmp_path / "r.sqlite", readonly=True) as store:
        rows = store.rows()
    assert sorted(r["seed"] for r in rows) == list(range(6))


def test_a_claim_of_a_dead_process_is_taken_over_one_from_elsewhere_with_force(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        import socket

        host = socket.gethostname()
        store.db.execute("INSERT INTO claims (run_key, host, pid, claimed_at) VALUES ('k', ?, ?, 0)", (host, int(dead.stdout)))
        store.db.execute("INSERT INTO claims (run_key, host, pid, claimed_at) VALUES ('j', ?, ?, 0)", (host, os.getppid()))  # alive
        store.db.commit()
        store.db.execute("INSERT INTO claims (run_key, host, pid, claimed_at) VALUES ('x', 'another-machine', 1, 0)")
        store.db.commit()
        assert store.claim("k") == "claimed"
        assert store.claim("j") == "busy"
        assert store.claim("x") == "busy" and store.claim("x", force=True) == "claimed"
    with ResultStore(tmp_path / "r.sqlite") as later:  # closing released this process's claim
        assert [r[0] for r in later.db.execute("SELECT run_key FROM claims")] == ["j"]


def test_an_old_database_gets_added_columns(tmp_path, monkeypatch):
    db = tmp_path / "r.sqlite"
    ResultStore(db).close()
    monkeypatch.setattr("zsbench.store.sqlite.ADDED_COLUMNS", (("results", "extra", "TEXT NOT NULL DEFAULT ''"),))
    with ResultStore(db) as store:
        assert "extra" in {r[1] for r in store.db.execute("PRAGMA table_info(results)")}


# ---------------------------------------------------------------- failed runs


def test_failed_runs_are_recorded_listed_and_counted_never_scored(toy):
    spec = write(toy, """
        name: failing
        datasets: [{name: toy}]
        methods:
          - name: nan-scores
    """)
    result = zsbench("run", spec, "--quiet")
    message = one_paragraph(result)
    assert result.returncode == 2
    assert "method 'nan-scores' (nan-scores) returned non-finite scores (NaN or infinite) for 1 of" in message
    assert "no row is stored" in message
    with ResultStore("results.sqlite", readonly=True) as store:
        assert store.rows() == []
        assert store.failure_counts() == {("toy", "nan-scores"): 1}
    listed = zsbench("results", "--failed")
    assert listed.returncode == 0 and "nan-scores" in listed.stdout and "non-finite" in listed.stdout
    failures = json.loads(zsbench("results", "--failed", "--json").stdout)
    assert failures[0]["provenance"]["run_key"] == failures[0]["run_key"] and failures[0]["user_error"]
    board = zsbench("leaderboard", "--out", toy / "lb", "--no-plots")
    assert board.returncode == 0 and "toy / nan-scores: 1 failed run(s), not scored" in board.stderr


def test_leaderboard_spec_name_matching_nothing_names_the_stored_specs(toy):
    assert zsbench("run", write(toy, ONE_RUN), "--quiet").returncode == 0
    result = zsbench("leaderboard", "--out", toy / "lb", "--spec-name", "fautls")
    assert result.returncode == 2
    assert "results.sqlite: no rows of spec 'fautls'; the specs stored are: faults" in one_paragraph(result)


# ---------------------------------------------------------------- leaderboard output folder


@pytest.mark.parametrize("case", ["immutable folder", "immutable page", "proc"])
def test_an_unwritable_leaderboard_folder_is_a_named_error(toy, case):
    assert zsbench("run", write(toy, ONE_RUN), "--quiet").returncode == 0
    out = toy / "lb"
    assert zsbench("leaderboard", "--out", out, "--no-plots").returncode == 0
    (toy / "empty").mkdir()
    target = {"immutable folder": toy / "empty", "immutable page": out / "index.md", "proc": None}[case]
    folder = {"immutable folder": toy / "empty", "immutable page": out, "proc": "/proc/zsbench-leaderboard"}[case]
    with immutable(target) if target else contextlib.nullcontext():
        result = zsbench("leaderboard", "--out", folder, "--no-plots")
    message = one_paragraph(result)
    assert result.returncode == 2
    assert "cannot write the leaderboard there" in message and "pass --out a folder you can write" in message


# ---------------------------------------------------------------- inputs


def _xlsa17_spec(tmp_path, drop=False):
    return write(tmp_path, f"""
        name: nonfinite
        datasets:
          - name: xlsa17
            root: {tmp_path / 'data'}
            {'drop_nonfinite: true' if drop else ''}
        methods:
          - name: eszsl
            grid: {{gamma: [1.0], lam: [1.0]}}
    """)


@pytest.mark.parametrize("bad", ["nan", "inf", "all"])
def test_non_finite_features_are_an_error_naming_file_field_and_rows(toy, bad):
    from data_fixtures.matfiles import write_mat

    written = tiny_xlsa17(toy / "data")
    features = written["features"].copy()
    if bad == "all":
        features[:] = np.nan
    else:
        features[3, 1], features[7, 0] = (np.nan, np.nan) if bad == "nan" else (np.inf, -np.inf)
    write_mat(toy / "data" / "res101.mat", {"features": features.T, "labels": (written["labels"] + 1.0)[:, None]})
    result = zsbench("run", _xlsa17_spec(toy), "--quiet")
    message = one_paragraph(result)
    rows = 24 if bad == "all" else 2
    assert result.returncode == 2
    assert f"{toy / 'data' / 'res101.mat'}: `features` hold non-finite values (NaN or infinite) in {rows} of 24 rows" in message
    assert "drop_nonfinite: true" in message
    assert not (toy / "results.sqlite").exists() or ResultStore("results.sqlite", readonly=True).rows() == []


def test_drop_nonfinite_leaves_the_affected_instances_out(toy):
    from data_fixtures.matfiles import write_mat

    from zsbench.data.finite import finite_bundle
    from zsbench.runner.grid import load_dataset
    from zsbench.spec import load_spec

    written = tiny_xlsa17(toy / "data")
    features = written["features"].copy()
    features[5, 2] = np.nan
    write_mat(toy / "data" / "res101.mat", {"features": features.T, "labels": (written["labels"] + 1.0)[:, None]})
    spec = load_spec(_xlsa17_spec(toy, drop=True), registry_module.get_registry())
    bundle = load_dataset(spec.datasets[0], registry_module.get_registry())
    assert len(bundle.labels) == 23 and np.isfinite(bundle.features).all()
    kept = np.delete(np.arange(24), 5)
    for name, idx in bundle.splits.as_dict().items():  # renumbered: same instances as before
        np.testing.assert_array_equal(kept[idx], np.setdiff1d(written["splits"][name], [5]))
    np.testing.assert_array_equal(bundle.features, np.delete(features, 5, axis=0))
    assert finite_bundle(bundle) is bundle


def test_non_finite_class_embeddings_are_an_error(toy):
    att = np.random.default_rng(0).normal(size=(3, 6))
    att[1, 4] = np.nan
    tiny_xlsa17(toy / "data", att=att)
    result = zsbench("run", _xlsa17_spec(toy), "--quiet")
    message = one_paragraph(result)
    assert result.returncode == 2
    assert f"{toy / 'data' / 'att_splits.mat'}: `att`: class embeddings (attributes) hold non-finite values" in message
    assert "for 1 of 6 classes (rows 5, 1-based)" in message


def test_threads_beyond_the_cores_are_capped_with_a_warning(toy):
    import torch

    before = torch.get_num_threads()
    try:
        result = zsbench("run", write(toy, ONE_RUN), "--quiet", "--threads", "100000")
        assert result.returncode == 0, result.stderr
        cores = len(os.sched_getaffinity(0))
        assert f"warning: --threads 100000 is more than the {cores} CPU core(s) available here; using {cores}" in result.stderr
        assert torch.get_num_threads() == cores
    finally:
        torch.set_num_threads(before)


def test_a_memory_error_is_not_a_damaged_file_and_keeps_the_cache(toy, monkeypatch):
    from zsbench.data import cache
    from zsbench.data.xlsa17 import read_mat
    from zsbench.errors import ResourceError

    tiny_xlsa17(toy / "data")
    with monkeypatch.context() as patch:
        patch.setattr("scipy.io.loadmat", lambda *a, **k: (_ for _ in ()).throw(MemoryError()))
        with pytest.raises(ResourceError, match="not known to be damaged and was kept") as info:
            read_mat(toy / "data" / "res101.mat")
        assert "download it again" not in str(info.value)
    assert zsbench("run", _xlsa17_spec(toy), "--quiet").returncode == 0  # fills the cache
    entries = list(cache.tables_dir().iterdir())
    monkeypatch.setattr(cache, "_open", lambda folder: (_ for _ in ()).throw(MemoryError()))
    result = zsbench("run", _xlsa17_spec(toy), "--quiet", "--force")
    assert result.returncode == 2 and "not known to be damaged" in one_paragraph(result)
    assert list(cache.tables_dir().iterdir()) == entries and all(e.is_dir() for e in entries)


# ---------------------------------------------------------------- specs and devices


@pytest.mark.parametrize("text, expected", [
    ("ridge: 5.0\n    grid: {ridge.foo: [1, 2]}",
     "methods[0].grid.ridge.foo: 'ridge.foo' goes through 'ridge', which is 5.0, not a mapping of options"),
    ("grid: {lam: [1.0]}\n    lam: 2.0\n    grid: {gamma: [1.0]}",
     "not valid YAML at line 8, column 5: key 'grid' appears twice, at line 6 and at line 8; keep one"),
])
def test_spec_mistakes_are_named_errors(toy, text, expected):
    spec = write(toy, f"""
name: s
datasets: [{{name: toy}}]
methods:
  - name: least-squares
    {text}
""")
    result = zsbench("validate", spec)
    assert result.returncode == 2
    assert f"{spec}: {expected}" in one_paragraph(result)


def test_a_spec_that_is_not_utf8_is_a_named_error(toy):
    spec = toy / "latin1.yaml"
    spec.write_bytes("name: caf\u00e9\ndatasets: [{name: toy}]\nmethods: [{name: eszsl}]\n".encode("latin-1"))
    result = zsbench("validate", spec)
    assert result.returncode == 2
    assert f"{spec}: not UTF-8 text: byte 0xe9 at line 1 cannot be decoded; save the spec as UTF-8" in one_paragraph(result)


def test_a_device_torch_cannot_use_is_named_by_file_key_or_option(toy):
    tpu = write(toy, ONE_RUN + "device: tpu\n", "tpu.yaml")
    result = zsbench("validate", tpu)
    assert result.returncode == 2
    assert f"{tpu}: device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'" in one_paragraph(result)

    result = zsbench("run", write(toy, ONE_RUN), "--quiet", "--device", "mps")
    assert result.returncode == 2 and not (toy / "results.sqlite").exists()  # before any work
    assert "--device: device 'mps': zsbench runs on 'cpu' or 'cuda'" in one_paragraph(result)

    import torch

    if not torch.cuda.is_available():
        far = write(toy, ONE_RUN + "device: cuda:7\n", "far.yaml")
        result = zsbench("run", far, "--quiet")
        assert result.returncode == 2
        assert f"{far}: device: device 'cuda:7' was asked for, but torch sees no CUDA device" in one_paragraph(result)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.booleans(), min_size=12, max_size=12).filter(lambda bad: not all(bad)))
def test_dropping_rows_keeps_every_split_pointing_at_the_same_instances(bad):
    from zsbench.data.finite import finite_bundle
    from zsbench.interfaces import DatasetBundle, Splits

    features = np.arange(24, dtype=np.float32).reshape(12, 2)
    features[np.array(bad), 1] = np.inf
    order = np.random.default_rng(len(bad)).permutation(12)
    splits = Splits(trainval=order[:4], test_seen=order[4:6], test_unseen=order[6:9], train=order[9:11], val=order[11:])
    bundle = DatasetBundle(name="p", labels=np.arange(12) % 3, class_names=("a", "b", "c"), splits=splits,
                           features=features, class_embeddings=np.eye(3, dtype=np.float32),
                           texts=[[f"text {i}"] for i in range(12)])
    kept = finite_bundle(bundle, drop=True)
    assert np.isfinite(kept.features).all() and len(kept.labels) == 12 - sum(bad)
    for name, idx in splits.as_dict().items():
        survivors = [i for i in idx if not bad[i]]
        new = kept.splits.as_dict()[name]
        np.testing.assert_array_equal(kept.features[new, 0], features[survivors, 0])  # same instances
        assert [kept.texts[j] for j in new] == [[f"text {i}"] for i in survivors]
        np.testing.assert_array_equal(kept.labels[new], bundle.labels[survivors])
