"""Results in SQLite, one row per (run, calibrator), with full provenance.

A run's rows and curves are written in one transaction, so a process killed at any moment
(even ``kill -9``) leaves either all of a run or none of it, and the database stays readable.
The store knows rows, not methods.
"""

from __future__ import annotations

import json
import sqlite3
import time
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
"""

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


class ResultStore:
    """A results database file; safe to reopen after a crash."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(SCHEMA)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise UserError(f"{self.path}: cannot open the results database: {exc}") from None
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def finished(self, run_key: str) -> bool:
        return self.db.execute("SELECT 1 FROM results WHERE run_key = ? LIMIT 1", (run_key,)).fetchone() is not None

    def write_run(self, rows: list[ResultRow], replace: bool = False) -> None:
        """All rows of one run (one per calibrator) and their curves, atomically."""
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
