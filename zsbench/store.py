"""Results in SQLite, one row per (run, calibrator), with full provenance.

A run's rows and curves are written in one transaction, so a process killed at any moment
(even ``kill -9``) leaves either all of a run or none of it, and the database stays readable.
Opening checks the file is intact (``PRAGMA quick_check``) and, for writers, that it can be
written (a probe in a rolled-back transaction), so a bad database stops a run before any work.
A write that still fails after a run was computed goes to a recovery file beside the database
(``zsbench results import`` brings it back). Concurrent writers claim a run before computing
it, so each run is computed once. Failed runs are recorded too. The store knows rows, not methods.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import warnings
from pathlib import Path
from typing import Any

import attrs

from zsbench.errors import UserError

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    run_key TEXT NOT NULL,
    spec_name TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    dataset TEXT NOT NULL,
    dataset_plugin TEXT NOT NULL,
    method TEXT NOT NULL,
    method_plugin TEXT NOT NULL,
    calibrator TEXT NOT NULL,
    seed INTEGER NOT NULL,
    u REAL NOT NULL, s REAL NOT NULL, H REAL NOT NULL, zsl REAL NOT NULL,
    val_u REAL NOT NULL, val_s REAL NOT NULL, val_H REAL NOT NULL,
    calibration_param REAL,
    hyperparameters TEXT NOT NULL,
    sweep TEXT NOT NULL,
    side_information TEXT NOT NULL,
    features TEXT NOT NULL,
    wall_time REAL NOT NULL,
    provenance TEXT NOT NULL,
    created_at REAL NOT NULL,
    -- leaderboard (#14): reported from the test scores only, never used to choose anything
    ausuc REAL,
    oracle_H REAL,
    UNIQUE (run_key, calibrator)
);
CREATE TABLE IF NOT EXISTS curves (
    result_id INTEGER NOT NULL REFERENCES results(id) ON DELETE CASCADE,
    split TEXT NOT NULL,
    params TEXT NOT NULL, u TEXT NOT NULL, s TEXT NOT NULL, H TEXT NOT NULL,
    PRIMARY KEY (result_id, split)
);
CREATE INDEX IF NOT EXISTS results_run ON results(run_key);
CREATE TABLE IF NOT EXISTS claims (
    run_key TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    claimed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY,
    run_key TEXT NOT NULL,
    spec_name TEXT NOT NULL,
    dataset TEXT NOT NULL,
    method TEXT NOT NULL,
    seed INTEGER NOT NULL,
    error TEXT NOT NULL,
    user_error INTEGER NOT NULL,
    provenance TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

# Columns added after a table was first released: (table, column, SQL definition with a default).
# An older database gets each missing one by ALTER TABLE when it is opened for writing; to add a
# column, add it to ResultRow (with a default) and append one line here.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("results", "ausuc", "REAL"),
    ("results", "oracle_H", "REAL"),
)

WRITE_ATTEMPTS = 3  # a failed write is retried (a busy or briefly unavailable file) before recovery
RECOVERY_SUFFIX = ".recovery.jsonl"

JSON_COLUMNS = ("hyperparameters", "sweep", "provenance")


@attrs.frozen
class ResultRow:
    """One measured row: a method with one calibrator on one data set and seed (accuracies in [0, 1])."""

    run_key: str
    spec_name: str
    spec_hash: str
    dataset: str
    dataset_plugin: str
    method: str
    method_plugin: str
    calibrator: str
    seed: int
    u: float
    s: float
    H: float
    zsl: float
    val_u: float
    val_s: float
    val_H: float
    calibration_param: float | None
    hyperparameters: dict[str, Any]
    sweep: dict[str, Any]
    side_information: str
    features: str
    wall_time: float
    provenance: dict[str, Any]
    curves: dict[str, dict[str, list[float]]] = attrs.field(factory=dict)  # split -> params/u/s/H
    # leaderboard (#14): AUSUC and the best H over the calibration parameter, both on test; reported
    # only, never used to choose anything (None in rows written before they existed)
    ausuc: float | None = None
    oracle_H: float | None = None


def recovery_path(db_path: str | Path) -> Path:
    """Where runs that could not be written to ``db_path`` are kept (JSON lines, one run each)."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + RECOVERY_SUFFIX)


class ResultStore:
    """A results database file; safe to reopen after a crash.

    ``readonly=True`` (listing, leaderboards) checks integrity only; writers also probe a write.
    """

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._claimed: set[str] = set()
        try:
            if readonly:
                self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path, timeout=30)
                self._wal()
                self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._check_intact()
            if not readonly:
                self.db.executescript(SCHEMA)
                self._add_missing_columns()
                self._probe_write()
        except (sqlite3.DatabaseError, OSError) as exc:
            self._close_quietly()
            raise UserError(f"{self.path}: cannot open the results database: {exc}") from None
        except UserError:
            self._close_quietly()
            raise
        self.db.row_factory = sqlite3.Row

    def _wal(self) -> None:
        """WAL mode; switching it does not wait on SQLite's busy timeout, so two writers opening
        a new file at once are retried here."""
        for attempt in range(50):
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1)

    def _close_quietly(self) -> None:
        if getattr(self, "db", None) is not None:
            self.db.close()

    def _check_intact(self) -> None:
        try:
            problems = [r[0] for r in self.db.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            if "malformed" not in str(exc) and "not a database" not in str(exc):
                raise
            problems = [str(exc)]
        if problems != ["ok"]:
            shown = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
            raise UserError(
                f"{self.path}: the results database is damaged (integrity check: {shown}); nothing "
                f"was run. Restore it from a backup, or recover what is readable with `sqlite3 "
                f"{self.path} .recover | sqlite3 fixed.sqlite` and pass --results fixed.sqlite"
            )

    def _probe_write(self) -> None:
        """A real write, rolled back: a read-only, immutable or full file fails here, not after a run."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO claims VALUES ('zsbench-write-probe', '', 0, 0)")
            self.db.execute("ROLLBACK")
        except sqlite3.DatabaseError as exc:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise UserError(
                f"{self.path}: the results database cannot be written ({exc}); nothing was run. "
                "Make the file and its folder writable, or pass --results with another path"
            ) from None

    def _add_missing_columns(self) -> None:
        for table, column, definition in ADDED_COLUMNS:
            have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                with self.db:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def close(self) -> None:
        """Closes the file, releasing the claims of runs this process did not finish."""
        for key in list(self._claimed):
            try:
                self.release(key)
            except sqlite3.DatabaseError:
                break  # a dead claim is taken over by the next run on this host
        self.db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def finished(self, run_key: str) -> bool:
        return self.db.execute("SELECT 1 FROM results WHERE run_key = ? LIMIT 1", (run_key,)).fetchone() is not None

    def write_run(self, rows: list[ResultRow], replace: bool = False) -> None:
        """All rows of one run (one per calibrator) and their curves, atomically; the run's claim
        is released in the same transaction."""
        with self.db:  # one transaction
            if replace:
                for key in {r.run_key for r in rows}:
                    self.db.execute("DELETE FROM results WHERE run_key = ?", (key,))
            for row in rows:
                data = attrs.asdict(row)
                curves = data.pop("curves")
                for col in JSON_COLUMNS:
                    data[col] = json.dumps(data[col], sort_keys=True, default=str)
                data["created_at"] = time.time()
                cols = ", ".join(data)
                marks = ", ".join(f":{c}" for c in data)
                cur = self.db.execute(f"INSERT INTO results ({cols}) VALUES ({marks})", data)
                for split, curve in curves.items():
                    self.db.execute(
                        "INSERT INTO curves VALUES (?, ?, ?, ?, ?, ?)",
                        (cur.lastrowid, split, *(json.dumps(curve[k]) for k in ("params", "u", "s", "H"))),
                    )
            for key in {r.run_key for r in rows}:
                self.db.execute("DELETE FROM claims WHERE run_key = ?", (key,))
        self._claimed -= {r.run_key for r in rows}

    def keep_run(self, rows: list[ResultRow], replace: bool = False) -> Path | None:
        """``write_run``, retried; when the database still refuses, the run goes to the recovery
        file beside it (returned) so that no computed run is lost."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                self.write_run(rows, replace=replace)
                return None
            except sqlite3.IntegrityError:
                if self.finished(rows[0].run_key):  # another writer stored this run first
                    return None
                raise
            except (sqlite3.DatabaseError, OSError) as exc:
                error = exc
                time.sleep(0.2 * (attempt + 1))
        target = recovery_path(self.path)
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps({"error": str(error), "replace": replace,
                                  "rows": [attrs.asdict(r) for r in rows]}, default=str) + "\n")
            out.flush()
            os.fsync(out.fileno())
        return target

    def import_runs(self, source: str | Path) -> tuple[int, int]:
        """Write the runs of a recovery file; returns (imported, already stored)."""
        source = Path(source)
        try:
            lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
            runs = [json.loads(line) for line in lines]
            batches = [([ResultRow(**r) for r in run["rows"]], bool(run.get("replace"))) for run in runs]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise UserError(f"{source}: not a zsbench recovery file ({type(exc).__name__}: {exc})") from None
        imported = skipped = 0
        for rows, replace in batches:
            if not replace and self.finished(rows[0].run_key):
                skipped += 1
                continue
            self.write_run(rows, replace=replace)
            imported += 1
        return imported, skipped

    # ------------------------------------------------------------------ claims (concurrent runs)

    def claim(self, run_key: str, force: bool = False) -> str:
        """Take ``run_key`` for this process: 'claimed', 'finished' (stored already; never with
        ``force``) or 'busy' (a live process on this host, or any process elsewhere, holds it).
        A claim of a process that died on this host is taken over."""
        host, pid = socket.gethostname(), os.getpid()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")  # one claimer at a time
            if not force and self.finished(run_key):
                return "finished"
            holder = self.db.execute("SELECT host, pid FROM claims WHERE run_key = ?", (run_key,)).fetchone()
            if holder is not None and (holder[0], holder[1]) != (host, pid) and _alive(*holder):
                return "busy"
            self.db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?)", (run_key, host, pid, time.time()))
        self._claimed.add(run_key)
        return "claimed"

    def release(self, run_key: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM claims WHERE run_key = ? AND host = ? AND pid = ?",
                            (run_key, socket.gethostname(), os.getpid()))
        self._claimed.discard(run_key)

    # ------------------------------------------------------------------ failed runs

    def record_failure(self, run_key: str, spec_name: str, dataset: str, method: str, seed: int,
                       error: str, user_error: bool, provenance: dict[str, Any]) -> None:
        """A run that failed (kept as history; a later success supersedes it in ``failures``).
        A database that refuses this write only loses the record: the caller reports the failure."""
        try:
            self._insert_failure(run_key, spec_name, dataset, method, seed, error, user_error, provenance)
        except sqlite3.DatabaseError as exc:
            warnings.warn(f"{self.path}: the failure of run {run_key} could not be recorded ({exc})", stacklevel=2)

    def _insert_failure(self, run_key, spec_name, dataset, method, seed, error, user_error, provenance) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO failures (run_key, spec_name, dataset, method, seed, error, user_error, "
                "provenance, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_key, spec_name, dataset, method, seed, error, int(user_error),
                 json.dumps(provenance, sort_keys=True, default=str), time.time()),
            )
            self.db.execute("DELETE FROM claims WHERE run_key = ?", (run_key,))
        self._claimed.discard(run_key)

    def failures(self, spec_name: str | None = None) -> list[dict[str, Any]]:
        """The latest failure of every run that has no stored result, oldest first."""
        if not self._has_table("failures"):
            return []
        query = ("SELECT * FROM failures f WHERE id = (SELECT MAX(id) FROM failures g WHERE g.run_key = f.run_key) "
                 "AND NOT EXISTS (SELECT 1 FROM results r WHERE r.run_key = f.run_key)")
        args: list[Any] = []
        if spec_name:
            query, args = query + " AND spec_name = ?", [spec_name]
        out = []
        for r in self.db.execute(query + " ORDER BY id", args):
            row = dict(r)
            row["provenance"] = json.loads(row["provenance"])
            row["user_error"] = bool(row["user_error"])
            out.append(row)
        return out

    def failure_counts(self, spec_name: str | None = None) -> dict[tuple[str, str], int]:
        """(dataset, method) -> how many runs failed with no result stored since (for leaderboards)."""
        counts: dict[tuple[str, str], int] = {}
        for f in self.failures(spec_name):
            counts[f["dataset"], f["method"]] = counts.get((f["dataset"], f["method"]), 0) + 1
        return counts

    def spec_names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT spec_name FROM results ORDER BY spec_name")]

    def _has_table(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None

    def rows(self, spec_name: str | None = None, dataset: str | None = None) -> list[dict[str, Any]]:
        """Every result row as a dict (JSON columns decoded), oldest first."""
        query, args = "SELECT * FROM results WHERE 1=1", []
        if spec_name:
            query, args = query + " AND spec_name = ?", [*args, spec_name]
        if dataset:
            query, args = query + " AND dataset = ?", [*args, dataset]
        out = []
        for r in self.db.execute(query + " ORDER BY id", args):
            row = dict(r)
            for col in JSON_COLUMNS:
                row[col] = json.loads(row[col])
            out.append(row)
        return out

    def curves(self, result_id: int) -> dict[str, dict[str, list[float]]]:
        return {
            r["split"]: {k: json.loads(r[k]) for k in ("params", "u", "s", "H")}
            for r in self.db.execute("SELECT * FROM curves WHERE result_id = ?", (result_id,))
        }


def _alive(host: str, pid: int) -> bool:
    """Whether the claiming process still runs (only knowable on this host: elsewhere, assume so)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
