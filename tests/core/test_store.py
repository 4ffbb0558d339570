from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from support.paths import TESTS
from support.store import row

from zsbench.errors import UserError
from zsbench.store.sqlite import ResultStore


def test_round_trip_and_resume_marker(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        assert not store.finished("k1")
        store.write_run([row(), row(calibrator="metric-rescaling", calibration_param=0.3)])
        assert store.finished("k1")
        rows = store.rows()
        assert [r["calibrator"] for r in rows] == ["none", "metric-rescaling"]
        assert rows[0]["hyperparameters"] == {"ridge": 1.0}
        assert store.curves(rows[1]["id"])["validation"]["H"] == [0.2, 0.3]


def test_a_failed_write_leaves_nothing_half_written(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.write_run([row("k0")])
        with pytest.raises(sqlite3.IntegrityError):
            store.write_run([row("k1"), row("k0")])  # k0 is stored already: the second insert fails
        assert [r["run_key"] for r in store.rows()] == ["k0"] and not store.finished("k1")


def test_replace_rewrites_a_run(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.write_run([row(u=0.1)])
        store.write_run([row(u=0.9)], replace=True)
        assert [r["u"] for r in store.rows()] == [0.9]


def test_unreadable_database_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UserError, match="bad.sqlite: cannot open the results database"):
        ResultStore(bad)


WRITER = """
import sys, time
sys.path.insert(0, {tests!r})
from support.store import row
from zsbench.store.sqlite import ResultStore
store = ResultStore({db!r})
i = 0
while True:
    store.write_run([row(key=f"k{{i}}"), row(key=f"k{{i}}", calibrator="metric-rescaling")])
    i += 1
"""


@pytest.mark.slow
def test_kill_9_mid_writes_keeps_every_finished_run(tmp_path):
    db = tmp_path / "r.sqlite"
    code = WRITER.format(tests=str(TESTS), db=str(db))
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.5)
        if db.exists():
            try:
                with ResultStore(db) as s:
                    if len(s.rows()) >= 20:
                        break
            except Exception:  # noqa: BLE001 - still being created
                pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with ResultStore(db) as store:
        rows = store.rows()
        assert len(rows) >= 20
        by_run: dict[str, int] = {}
        for r in rows:
            by_run[r["run_key"]] = by_run.get(r["run_key"], 0) + 1
        assert set(by_run.values()) == {2}  # every run whole: both calibrators or neither
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
