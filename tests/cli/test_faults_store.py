"""Nothing lost, nothing forged: computed runs survive a database that fails after them, a
method that exits, a reused PID; no invalid row is stored or published by any route, and a
rerun supersedes the rows it replaces. Each through the CLI where a user would meet it."""

from __future__ import annotations

import errno
import json
import math
import os
import socket
import sqlite3
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.cli import ONE_RUN, one_paragraph, write, zsbench
from support.store import row

from zsbench.store import rows as schema
from zsbench.store import sqlite as store_module
from zsbench.store.sqlite import ResultStore, process_start

TWO_SEEDS = ONE_RUN.replace("seeds: 1", "seeds: 2")


def stored(db="results.sqlite", **kw) -> list[dict]:
    with ResultStore(db, readonly=True) as store:
        return store.rows(**kw)


# ---------------------------------------------------------------- the database fails after a run


def test_a_database_locked_after_a_run_says_where_the_run_was_saved_and_how_to_import_it(toy, monkeypatch):
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT", 0.2)
    monkeypatch.setattr("zsbench.store.sqlite.time.sleep", lambda s: None)
    spec = write(toy, TWO_SEEDS)
    original, holder = ResultStore.write_run, []

    def lock_then_write(self, rows, replace=False):
        if not holder:  # another process takes a long write lock as the first run finishes
            other = sqlite3.connect(self.path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            holder.append(other)
        return original(self, rows, replace)

    monkeypatch.setattr(ResultStore, "write_run", lock_then_write)
    result = zsbench("run", spec, "--quiet")
    holder[0].rollback()
    holder[0].close()
    message = one_paragraph(result)
    recovery = "results.sqlite.recovery.jsonl"
    assert result.returncode == 2, message
    assert "database is locked" in message and "the runs not yet started were left" in message
    assert f"saved to {recovery}" in message and f"zsbench results import {recovery} --results results.sqlite" in message
    monkeypatch.setattr(ResultStore, "write_run", original)
    assert zsbench("results", "import", recovery).returncode == 0
    assert [r["seed"] for r in stored()] == [0]
    again = zsbench("run", spec, "--quiet")
    assert again.returncode == 0 and "1 run(s) done, 1 already in" in again.stdout


def test_a_full_disk_sends_the_run_to_the_cache_folder(toy, monkeypatch):
    monkeypatch.setattr("zsbench.store.sqlite.time.sleep", lambda s: None)
    beside_db = toy / "results.sqlite.recovery.jsonl"
    real_append = store_module._append_synced

    def full(self, rows, replace=False):
        raise sqlite3.OperationalError("database or disk is full")

    def append(target, line):
        if target == Path("results.sqlite.recovery.jsonl"):  # the results folder's disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_append(target, line)

    monkeypatch.setattr(ResultStore, "write_run", full)
    monkeypatch.setattr(store_module, "_append_synced", append)
    result = zsbench("run", write(toy, ONE_RUN), "--quiet")
    message = one_paragraph(result)
    saved = list((toy / "cache" / "recovery").glob("results.sqlite-*.recovery.jsonl"))
    assert result.returncode == 2 and not beside_db.exists() and len(saved) == 1
    assert f"saved to {saved[0]}" in message and f"zsbench results import {saved[0]}" in message
    assert json.loads(saved[0].read_text())["rows"][0]["method"] == "least-squares"


def test_a_partial_recovery_line_is_cut_off(tmp_path, monkeypatch):
    target = tmp_path / "r.recovery.jsonl"
    target.write_text('{"kept": 1}\n')

    def fail_fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", fail_fsync)
    with pytest.raises(OSError):
        store_module._append_synced(target, '{"lost": 2}\n')
    assert target.read_text() == '{"kept": 1}\n'


# ---------------------------------------------------------------- a method that exits


def test_a_method_calling_sys_exit_is_a_failed_run_and_the_others_go_on(toy):
    spec = write(toy, """
        name: exiting
        datasets: [{name: toy}]
        methods:
          - name: exits
          - name: least-squares
            grid: {ridge: [1.0]}
    """)
    result = zsbench("run", spec, "--quiet")
    assert result.returncode == 1  # a plugin's fault, not the user's
    assert "method 'exits' (exits) called sys.exit(3)" in result.stderr
    assert [r["method"] for r in stored()] == ["least-squares"]
    with ResultStore("results.sqlite", readonly=True) as store:
        assert store.failure_counts() == {("toy", "exits"): 1}


# ---------------------------------------------------------------- claims


@pytest.mark.skipif(process_start(os.getpid()) is None, reason="process start times are read from Linux's /proc")
def test_a_claim_whose_pid_now_belongs_to_another_process_is_taken_over(tmp_path):
    host, live = socket.gethostname(), os.getppid()
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.db.execute("INSERT INTO claims VALUES ('reused', ?, ?, 0, 'an-older-boot:123')", (host, live))
        store.db.execute("INSERT INTO claims VALUES ('held', ?, ?, 0, ?)", (host, live, process_start(live)))
        store.db.commit()
        assert store.claim("reused") == "claimed"
        assert store.claim("held") == "busy"


# ---------------------------------------------------------------- rows: one schema on every route


def recovery_line(*rows, replace=False) -> str:
    return json.dumps({"error": "x", "replace": replace, "rows": list(rows)}) + "\n"


GOOD = attrs.asdict(row("k1"))
FORGED = {
    "H above 1": ({**GOOD, "H": 5.0}, "H: expected a finite accuracy in [0, 1], got 5.0"),
    "negative u": ({**GOOD, "u": -3.0}, "u: expected a finite accuracy in [0, 1], got -3.0"),
    "seed a word": ({**GOOD, "seed": "zero"}, "seed: expected an integer from 0"),
    "H a word": ({**GOOD, "H": "high"}, "H: expected a finite accuracy in [0, 1], got 'high'"),
    "NaN": ({**GOOD, "zsl": math.nan}, "zsl: expected a finite accuracy in [0, 1], got nan"),
    "H not from u and s": ({**GOOD, "H": 0.9}, "H: 0.9 is not the harmonic mean of u = 0.5 and s = 0.6"),
    "short curve": ({**GOOD, "curves": {"validation": {"params": [0.0], "u": [0.1, 0.2], "s": [0.3], "H": [0.2]}}},
                    "curves.validation: expected non-empty lists params, u, s, H of one length"),
    "curve above 1": ({**GOOD, "curves": {"test": {"params": [0.0], "u": [7.0], "s": [0.3], "H": [0.2]}}},
                      "curves.test.u: expected finite accuracies in [0, 1]"),
    "empty method": ({**GOOD, "method": ""}, "method: expected a non-empty string"),
}


@pytest.mark.parametrize("case", sorted(FORGED))
def test_results_import_refuses_a_forged_row_naming_line_and_field_and_imports_nothing(toy, case):
    bad, expected = FORGED[case]
    file = toy / "forged.jsonl"
    file.write_text(recovery_line(attrs.asdict(row("k0"))) + recovery_line({**bad, "run_key": "k1"}))
    result = zsbench("results", "import", file)
    message = one_paragraph(result)
    assert result.returncode == 2, message
    assert f"{file}: line 2: row 1: not a valid result row" in message and expected in message
    assert stored() == [] and file.exists()  # nothing half-imported, the file kept


@pytest.mark.parametrize("text, expected", [
    (recovery_line(GOOD, {**GOOD}), "line 1: row 2: run k1 with calibrator 'none' is already given at"),
    (recovery_line(), 'line 1: expected a saved run, an object with a non-empty list "rows"'),
    ("[1, 2]\n", 'line 1: expected a saved run'),
    ("{not json\n", "line 1: not JSON"),
    (recovery_line({**GOOD, "extra": 1}), "line 1: row 1: not a result row (fields extra unknown)"),
    (recovery_line({k: v for k, v in GOOD.items() if k != "u"}), "line 1: row 1: not a result row (fields u missing)"),
])
def test_results_import_refuses_malformed_files_by_line(toy, text, expected):
    file = toy / "bad.jsonl"
    file.write_text(text)
    result = zsbench("results", "import", file)
    assert result.returncode == 2 and expected in one_paragraph(result)


def test_exported_rows_that_were_tampered_with_are_not_published(toy):
    assert zsbench("run", write(toy, ONE_RUN), "--quiet").returncode == 0
    assert zsbench("export", "--out", toy / "rows").returncode == 0
    exported = next((toy / "rows").glob("*.jsonl"))
    good = json.loads(exported.read_text())
    for field, value, expected in (("H", math.nan, "H: expected a finite accuracy in [0, 1], got nan"),
                                   ("u", -2.0, "u: expected a finite accuracy in [0, 1], got -2.0")):
        exported.write_text(json.dumps({**good, field: value}) + "\n")
        result = zsbench("leaderboard", "--results", exported, "--out", toy / "lb", "--no-plots")
        message = one_paragraph(result)
        assert result.returncode == 2, message
        assert f"{exported}: line 1: not a valid result row: {expected}" in message
        assert not (toy / "lb").exists()


def test_a_row_forged_into_the_database_is_refused_when_read(toy):
    with ResultStore("results.sqlite") as store:
        store.write_run([row("k1")])
        store.db.execute("UPDATE results SET seed = 'zero'")
        store.db.commit()
    for args in (("results",), ("leaderboard", "--out", toy / "lb", "--no-plots"), ("export", "--out", toy / "x")):
        result = zsbench(*args)
        message = one_paragraph(result)
        assert result.returncode == 2, args
        assert "results.sqlite: results row id 1: not a valid result row: seed: expected an integer" in message


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(schema.ACCURACIES + schema.OPTIONAL_ACCURACIES),
       value=st.one_of(st.floats().filter(lambda v: not 0 <= v <= 1), st.text(max_size=3), st.booleans()))
def test_any_accuracy_outside_0_1_or_not_a_number_is_refused(field, value):
    found = schema.problems({**GOOD, field: value})
    assert any(p.startswith(f"{field}: expected a finite accuracy") for p in found), found


def test_an_sqlite_file_without_zsbench_tables_is_a_named_error(toy):
    sqlite3.connect(toy / "other.sqlite").execute("CREATE TABLE t (x)").connection.commit()
    for args in (("results",), ("leaderboard", "--out", toy / "lb"), ("export", "--out", toy / "x")):
        result = zsbench(*args, "--results", toy / "other.sqlite")
        assert result.returncode == 2, args
        assert "other.sqlite: an SQLite file without zsbench's results table" in one_paragraph(result)


# ---------------------------------------------------------------- stale rows are superseded


def test_a_rerun_supersedes_the_stale_row_and_prune_stale_removes_it(toy):
    spec = write(toy, ONE_RUN)
    assert zsbench("run", spec, "--quiet", "--results", "first.sqlite").returncode == 0
    fresh = stored("first.sqlite")[0]
    old = {k: v for k, v in fresh.items() if k not in ("id", "created_at")}
    with ResultStore("results.sqlite") as store:  # the same task, computed by older code
        store.write_run([attrs.evolve(row(), **{**old, "run_key": "older-code", "u": 0.1, "s": 0.1, "H": 0.1,
                                                             "per_image": None})])
    assert zsbench("run", spec, "--quiet").returncode == 0  # computes it again: a new run key

    listed = json.loads(zsbench("results", "--json").stdout)
    assert [(r["run_key"], r["H"]) for r in listed] == [(fresh["run_key"], fresh["H"])]
    board = zsbench("leaderboard", "--out", toy / "lb", "--no-plots", "--stale", "refuse")
    assert board.returncode == 0 and "from 1 row(s)" in board.stdout
    assert [r["run_key"] for r in stored(superseded=True)] == ["older-code"]

    pruned = zsbench("results", "--prune-stale")
    assert pruned.returncode == 0 and "deleted 1 row(s) superseded by a rerun and 0 stale" in pruned.stdout
    assert stored(superseded=True) == [] and len(stored()) == 1


def test_the_current_rows_are_worked_out_in_one_pass(monkeypatch):
    """Deciding which rows are current reads the rows once, not once per row: per row, a store
    of 20,000 rows took minutes to list (the kill -9 test's writer outran its reader for good)."""
    listed = [{**attrs.asdict(row(key=f"k{i}")), "created_at": i} for i in range(50)]
    passes = []
    kept = schema._kept
    monkeypatch.setattr(schema, "_kept", lambda rows: passes.append(1) or kept(rows))
    assert schema.current(listed) == listed and len(passes) == 1


def test_ones_own_rows_merged_with_the_published_ones_count_once(toy):
    assert zsbench("run", write(toy, ONE_RUN), "--quiet").returncode == 0
    assert zsbench("export", "--out", toy / "published").returncode == 0
    board = zsbench("leaderboard", "--results", "results.sqlite", "--results", toy / "published",
                    "--out", toy / "lb", "--no-plots")
    assert board.returncode == 0 and "from 1 row(s)" in board.stdout
