"""Results in SQLite, one row per (run, calibrator), with full provenance.

A run's rows and curves are written in one transaction, so a process killed at any moment
(even ``kill -9``) leaves either all of a run or none of it, and the database stays readable.
Opening checks the file is intact (``PRAGMA quick_check``) and, for writers, that it can be
written (a probe in a rolled-back transaction), so a bad database stops a run before any work.
A write that still fails after a run was computed goes to a recovery file beside the database
(``zsbench results import`` brings it back), or, when that folder refuses too, to the cache
folder or the temporary folder. Concurrent writers claim a run before computing it, so each run
is computed once; a claim names its process by host, PID and start time, so a PID reused by
another process does not hold it. Every row written or read is checked against the one row
schema (``zsbench.store.rows``). Failed runs are recorded too. The store knows rows, not methods.

Longer than most: writes, claims and the recovery file share one transaction discipline (a row
is in the database or in the recovery file, never lost, never twice), so they stay one class.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import attrs

from zsbench.errors import UserError
from zsbench.paths import cache_home
from zsbench.store import rows as schema

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
    -- reported from the test scores only, never used to choose anything
    ausuc REAL,
    oracle_H REAL,
    per_image TEXT,  -- JSON: each test prediction's correctness by class (zsbench.store.rows); NULL in older rows
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
    claimed_at REAL NOT NULL,
    started TEXT  -- the claiming process's start (boot id and clock ticks); NULL where unknown
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
    ("results", "per_image", "TEXT"),
    ("claims", "started", "TEXT"),
)

BUSY_TIMEOUT = 30.0  # seconds a statement waits for another writer's lock before it fails
WRITE_ATTEMPTS = 3  # a failed write is retried (a busy or briefly unavailable file) before recovery
RECOVERY_SUFFIX = ".recovery.jsonl"

JSON_COLUMNS = ("hyperparameters", "sweep", "provenance")
OPTIONAL_JSON_COLUMNS = ("per_image",)  # NULL when absent


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
    # AUSUC and the best H over the calibration parameter, both on test, for the leaderboard; reported
    # only, never used to choose anything (None in rows written before they existed)
    ausuc: float | None = None
    oracle_H: float | None = None
    # each test prediction's correctness, by test class, for the test-image bootstrap (zsbench.store.rows)
    per_image: dict[str, dict[str, Any]] | None = None


def recovery_path(db_path: str | Path) -> Path:
    """Where runs that could not be written to ``db_path`` are kept (JSON lines, one run each)."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + RECOVERY_SUFFIX)


def recovery_paths(db_path: str | Path) -> list[Path]:
    """Where a run the database refused is saved, tried in order: beside the database, then in
    the cache folder and the temporary folder (for a full or read-only disk), named after it."""
    db_path = Path(db_path)
    name = f"{db_path.name}-{hashlib.sha256(str(db_path.resolve()).encode()).hexdigest()[:8]}{RECOVERY_SUFFIX}"
    return [recovery_path(db_path), cache_home() / "recovery" / name, Path(tempfile.gettempdir()) / name]


def _append_synced(target: Path, line: str) -> None:
    """``line`` appended and on disk, or the file as it was (a partial line is cut off)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as out:
        size = out.tell()
        try:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())
        except OSError:
            try:
                out.truncate(size)
            except OSError:
                pass
            raise


class ResultStore:
    """A results database file; safe to reopen after a crash.

    ``readonly=True`` (listing, leaderboards) checks integrity only; writers also probe a write.
    """

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._claimed: set[str] = set()
        self.recovered: dict[Path, int] = {}  # recovery file -> runs saved there by this store
        try:
            if readonly:
                self.db = self._connect_readonly()
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT)
                self._wal()
                self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._check_intact()
            if readonly and not self._has_table("results"):
                raise UserError(f"{self.path}: an SQLite file without zsbench's results table, not a "
                                "zsbench results database; pass --results with the database `zsbench run` wrote")
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

    def _connect_readonly(self) -> sqlite3.Connection:
        """Read-only; in a folder nobody can write (so no writer can exist), SQLite cannot make
        its shared-memory file and is told the database is immutable instead."""
        uri = self.path.resolve().as_uri()
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT)
        try:
            db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            return db
        except sqlite3.OperationalError as exc:
            db.close()
            if "unable to open" not in str(exc) or _can_create_in(self.path.parent):
                raise
        return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, timeout=BUSY_TIMEOUT)

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
            self.db.execute("INSERT INTO claims (run_key, host, pid, claimed_at) VALUES ('zsbench-write-probe', '', 0, 0)")
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
        is released in the same transaction. Rows that break the row schema are refused."""
        schema.check_rows((f"run {r.run_key}", attrs.asdict(r)) for r in rows)
        with self.db:  # one transaction
            self._insert(rows, replace)
        self._claimed -= {r.run_key for r in rows}

    def _insert(self, rows: list[ResultRow], replace: bool) -> None:
        """The rows, their curves, and the release of their claims, in the caller's transaction."""
        if replace:
            for key in {r.run_key for r in rows}:
                self.db.execute("DELETE FROM results WHERE run_key = ?", (key,))
        for row in rows:
            data = attrs.asdict(row)
            curves = data.pop("curves")
            for col in JSON_COLUMNS:
                data[col] = json.dumps(data[col], sort_keys=True, default=str)
            for col in OPTIONAL_JSON_COLUMNS:
                data[col] = None if data[col] is None else json.dumps(data[col], sort_keys=True)
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

    def keep_run(self, rows: list[ResultRow], replace: bool = False) -> Path | None:
        """``write_run``, retried; when the database still refuses, the run goes to a recovery
        file (returned) so that no computed run is lost."""
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
        return self.save_for_recovery(rows, replace, str(error))

    def save_for_recovery(self, rows: list[ResultRow], replace: bool, error: str) -> Path:
        """Append the run to the first recovery file that takes it (``recovery_paths``), synced
        to disk; when none does, the run is printed to stderr as the last copy left."""
        line = json.dumps({"error": error, "replace": replace, "rows": [attrs.asdict(r) for r in rows]},
                          default=str) + "\n"
        refusals = []
        for target in recovery_paths(self.path):
            try:
                _append_synced(target, line)
            except OSError as exc:
                refusals.append(f"{target}: {exc.strerror or exc}")
                continue
            self.recovered[target] = self.recovered.get(target, 0) + 1
            return target
        sys.stderr.write(f"error: run {rows[0].run_key} could not be saved anywhere ({'; '.join(refusals)}); "
                         "its recovery line follows: save it to a file and pass it to `zsbench results import`\n")
        sys.stderr.write(line)
        sys.stderr.flush()
        raise UserError(f"{self.path}: a computed run could be written neither to the database ({error}) nor to "
                        f"a recovery file ({'; '.join(refusals)}); its rows were printed above")

    def recovery_message(self) -> str | None:
        """Where this store saved the runs the database refused, and the command that imports
        them (None when it saved none)."""
        if not self.recovered:
            return None
        return " ".join(
            f"{count} computed run(s) could not be written to {self.path} and were saved to {target}; once the "
            f"database is writable, run `zsbench results import {target} --results {self.path}`."
            for target, count in self.recovered.items()
        )

    def import_runs(self, source: str | Path) -> tuple[int, int]:
        """Write the runs of a recovery file, all or none; returns (imported, already stored).
        Every row is checked first: an invalid one is refused with its line and field."""
        source = Path(source)
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, ValueError) as exc:
            raise UserError(f"{source}: cannot read the recovery file ({type(exc).__name__}: {exc})") from None
        batches = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                batches.append(_recovered_run(source, n, line))
        schema.check_rows((f"{source}: line {n}: row {i + 1}", attrs.asdict(r))
                          for n, (rows, _) in batches for i, r in enumerate(rows))
        imported = skipped = 0
        try:
            with self.db:  # one transaction: nothing half-imported
                for _, (rows, replace) in batches:
                    if not replace and self.finished(rows[0].run_key):
                        skipped += 1
                        continue
                    self._insert(rows, replace)
                    imported += 1
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{self.path}: the database refused the import ({exc}); nothing was imported "
                            f"and {source} is kept") from None
        return imported, skipped

    # ------------------------------------------------------------------ claims (concurrent runs)

    def claim(self, run_key: str, force: bool = False) -> str:
        """Take ``run_key`` for this process: 'claimed', 'finished' (stored already; never with
        ``force``) or 'busy' (a live process on this host, or any process elsewhere, holds it).
        A claim of a process that died on this host (or whose PID now belongs to a process that
        started later) is taken over; one from another machine (whose process cannot be checked
        from here) only with ``force``. A database that refuses the claim is a user error."""
        host, pid, started = socket.gethostname(), os.getpid(), process_start(os.getpid())
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")  # one claimer at a time
                if not force and self.finished(run_key):
                    return "finished"
                holder = self.db.execute("SELECT host, pid, started FROM claims WHERE run_key = ?",
                                         (run_key,)).fetchone()
                elsewhere = holder is not None and holder[0] != host
                if (holder is not None and tuple(holder) != (host, pid, started) and _alive(*holder)
                        and not (force and elsewhere)):
                    return "busy"
                self.db.execute("INSERT OR REPLACE INTO claims (run_key, host, pid, claimed_at, started) "
                                "VALUES (?, ?, ?, ?, ?)", (run_key, host, pid, time.time(), started))
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{self.path}: the results database refused to record the next run ({exc}); "
                            "the runs not yet started were left") from None
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

    def rows(self, spec_name: str | None = None, dataset: str | None = None,
             superseded: bool = False) -> list[dict[str, Any]]:
        """Every current result row as a dict (JSON columns decoded), oldest first, each checked
        against the row schema; with ``superseded``, the rows a rerun of their task replaced
        (``zsbench.store.rows.current``) instead."""
        query, args = "SELECT * FROM results WHERE 1=1", []
        if spec_name:
            query, args = query + " AND spec_name = ?", [*args, spec_name]
        if dataset:
            query, args = query + " AND dataset = ?", [*args, dataset]
        out = []
        for r in self.db.execute(query + " ORDER BY id", args):
            row = dict(r)
            for col in JSON_COLUMNS:
                try:
                    row[col] = json.loads(row[col])
                except (TypeError, ValueError):
                    pass  # left as stored: the schema check names the field
            for col in OPTIONAL_JSON_COLUMNS:
                if row.get(col) is not None:
                    try:
                        row[col] = json.loads(row[col])
                    except (TypeError, ValueError):
                        pass  # left as stored: the schema check names the field
            out.append(row)
        schema.check_rows((f"{self.path}: results row id {row['id']}", row) for row in out)
        return schema.superseded(out) if superseded else schema.current(out)

    def delete_rows(self, ids: list[int]) -> None:
        """Remove the result rows with these ids (and their curves), in one transaction."""
        with self.db:
            self.db.executemany("DELETE FROM results WHERE id = ?", [(i,) for i in ids])

    def curves(self, result_id: int) -> dict[str, dict[str, list[float]]]:
        return {
            r["split"]: {k: json.loads(r[k]) for k in ("params", "u", "s", "H")}
            for r in self.db.execute("SELECT * FROM curves WHERE result_id = ?", (result_id,))
        }


def process_start(pid: int) -> str | None:
    """When process ``pid`` started, as '<boot id>:<clock ticks since boot>' (Linux's /proc);
    None where that cannot be read, and then a claim is checked by PID alone."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after the command name, which may hold spaces
    return f"{boot}:{fields[19]}"  # field 22 of stat(5), starttime


def _alive(host: str, pid: int, started: str | None = None) -> bool:
    """Whether the claiming process still runs (only knowable on this host: elsewhere, assume so):
    its PID exists and, when its start was recorded, belongs to a process that started then."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started is None or process_start(pid) in (None, started)


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (tried: root passes os.access even when the
    folder is immutable)."""
    probe = folder / f".zsbench-probe-{os.getpid()}"
    try:
        probe.touch()
    except OSError:
        return False
    probe.unlink()
    return True


def _recovered_run(source: Path, n: int, line: str) -> tuple[int, tuple[list[ResultRow], bool]]:
    """Line ``n`` of a recovery file: (n, (rows, replace)); anything else names the line."""
    try:
        run = json.loads(line)
    except ValueError as exc:
        raise UserError(f"{source}: line {n}: not JSON ({exc}); not a zsbench recovery file") from None
    if not isinstance(run, dict) or not isinstance(run.get("rows"), list) or not run["rows"]:
        raise UserError(f"{source}: line {n}: expected a saved run, an object with a non-empty list \"rows\"")
    fields = {f.name for f in attrs.fields(ResultRow)}
    required = {f.name for f in attrs.fields(ResultRow) if f.default is attrs.NOTHING}
    rows = []
    for i, row in enumerate(run["rows"], 1):
        if not isinstance(row, dict) or set(row) - fields or required - set(row):
            have = set(row) if isinstance(row, dict) else set()
            wrong = sorted(have - fields) or sorted(required - have)
            raise UserError(f"{source}: line {n}: row {i}: not a result row (fields {', '.join(wrong) or 'none'} "
                            f"{'unknown' if have - fields else 'missing'})")
        rows.append(ResultRow(**row))
    if len({r.run_key for r in rows}) != 1:
        raise UserError(f"{source}: line {n}: the rows of one saved run have different run keys")
    return n, (rows, bool(run.get("replace")))
