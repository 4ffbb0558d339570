"""The one schema of a result row, checked on every route into the store or onto a page.

A row comes from a finished run, a recovery file (``zsbench results import``), a database or
exported JSON lines (``leaderboard --results rows.jsonl``); each route calls ``check_rows``, so a
forged or damaged row (H = 5, a seed ``"zero"``, a NaN, a curve of mismatched lengths) is
refused with where it came from and the field named, never stored or published.

Reading also keeps one row per task: two copies of a run (the same run key and calibrator, e.g.
one's own rows merged with the published ones) are one row, and a rerun of a task after its
code or data changed supersedes the older row (``current``) instead of being averaged with it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from zsbench.errors import UserError

TEXT_FIELDS = ("run_key", "spec_name", "spec_hash", "dataset", "dataset_plugin", "method", "method_plugin",
               "calibrator", "side_information", "features")
ACCURACIES = ("u", "s", "H", "zsl", "val_u", "val_s", "val_H")  # fractions in [0, 1]
OPTIONAL_ACCURACIES = ("ausuc", "oracle_H")  # None in rows written before they existed
MAPPINGS = ("hyperparameters", "sweep", "provenance")
CURVE_SPLITS = ("validation", "test")
CURVE_KEYS = ("params", "u", "s", "H")
MAX_SEED = 2**63 - 1  # SQLite's INTEGER
H_TOLERANCE = 1e-9  # H is computed from u and s in float64: a stored H that is not 2us/(u+s) was edited


class RowError(UserError):
    """A result row that breaks the schema; the message names where it came from and the field."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fraction(value: Any) -> bool:
    return _number(value) and math.isfinite(value) and 0.0 <= value <= 1.0


def _harmonic(u: float, s: float) -> float:
    return 0.0 if u + s == 0 else 2 * u * s / (u + s)


def problems(row: Any, curves_required: bool = False) -> list[str]:
    """What is wrong with ``row`` (a mapping of field -> value), as 'field: why' lines; empty
    when it is a valid result row."""
    if not isinstance(row, Mapping):
        return [f"expected a result row (a JSON object), got {type(row).__name__}"]
    out = []
    for name in TEXT_FIELDS:
        if not isinstance(row.get(name), str) or not row[name].strip():
            out.append(f"{name}: expected a non-empty string, got {row.get(name)!r}")
    seed = row.get("seed")
    if not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED):
        out.append(f"seed: expected an integer from 0 to {MAX_SEED}, got {seed!r}")
    for name in ACCURACIES:
        if not _fraction(row.get(name)):
            out.append(f"{name}: expected a finite accuracy in [0, 1], got {row.get(name)!r}")
    for name in OPTIONAL_ACCURACIES:
        if row.get(name) is not None and not _fraction(row[name]):
            out.append(f"{name}: expected a finite accuracy in [0, 1] or null, got {row[name]!r}")
    if all(_fraction(row.get(k)) for k in ("H", "u", "s")) and abs(row["H"] - _harmonic(row["u"], row["s"])) > H_TOLERANCE:
        out.append(f"H: {row['H']!r} is not the harmonic mean of u = {row['u']!r} and s = {row['s']!r}")
    param = row.get("calibration_param")
    if param is not None and not (_number(param) and math.isfinite(param)):
        out.append(f"calibration_param: expected a finite number or null, got {param!r}")
    wall = row.get("wall_time")
    if not (_number(wall) and math.isfinite(wall) and wall >= 0):
        out.append(f"wall_time: expected a finite number of seconds >= 0, got {wall!r}")
    if "created_at" in row and not (_number(row["created_at"]) and math.isfinite(row["created_at"])):
        out.append(f"created_at: expected a finite time stamp, got {row['created_at']!r}")
    for name in MAPPINGS:
        if not isinstance(row.get(name), Mapping):
            out.append(f"{name}: expected a JSON object, got {row.get(name)!r}")
    if "curves" in row or curves_required:
        out.extend(_curve_problems(row.get("curves")))
    return out


def _curve_problems(curves: Any) -> list[str]:
    if not isinstance(curves, Mapping):
        return [f"curves: expected an object of split -> curve, got {curves!r}"]
    out = []
    for split, curve in curves.items():
        where = f"curves.{split}"
        if split not in CURVE_SPLITS:
            out.append(f"{where}: expected a split among {', '.join(CURVE_SPLITS)}")
            continue
        if not isinstance(curve, Mapping) or sorted(curve) != sorted(CURVE_KEYS):
            out.append(f"{where}: expected the lists {', '.join(CURVE_KEYS)}, got {curve!r:.80}")
            continue
        lengths = {len(v) if isinstance(v, list) else -1 for v in curve.values()}
        if len(lengths) != 1 or -1 in lengths or 0 in lengths:
            out.append(f"{where}: expected non-empty lists {', '.join(CURVE_KEYS)} of one length")
            continue
        if not all(_number(p) and math.isfinite(p) for p in curve["params"]):
            out.append(f"{where}.params: expected finite numbers")
        for key in ("u", "s", "H"):
            if not all(_fraction(v) for v in curve[key]):
                out.append(f"{where}.{key}: expected finite accuracies in [0, 1]")
    return out


def check_rows(rows: Iterable[tuple[str, Any]], curves_required: bool = False) -> None:
    """Refuse the whole batch when any row is invalid or a (run key, calibrator) repeats;
    ``rows`` are (where, row) pairs, where naming the file and line (or the database row)."""
    seen: dict[tuple[str, str], str] = {}
    for where, row in rows:
        found = problems(row, curves_required)
        if found:
            shown = "; ".join(found[:4]) + (f" (and {len(found) - 4} more)" if len(found) > 4 else "")
            raise RowError(f"{where}: not a valid result row: {shown}; nothing was stored or published")
        key = (row["run_key"], row["calibrator"])
        if key in seen:
            raise RowError(f"{where}: run {row['run_key']} with calibrator {row['calibrator']!r} is "
                           f"already given at {seen[key]}; nothing was stored or published")
        seen[key] = where


def task_of(row: Mapping[str, Any]) -> tuple[str, ...]:
    """What a row measures, whatever code and data computed it: its spec, data set, method,
    seed and calibrator, and the configuration of its run (the spec entries behind the labels)."""
    config = (row.get("provenance") or {}).get("config")
    return (row["spec_name"], row["dataset"], row["method"], str(row["seed"]), row["calibrator"],
            json.dumps(config, sort_keys=True, default=str))


def current(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with one row per task: a copy of a (run key, calibrator) already listed is
    dropped, and of rows measuring one task with different code or data only the newest is kept
    (a rerun supersedes, never averages). Order is kept."""
    kept = _kept(rows)
    return [r for r in rows if id(r) in kept]


def superseded(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows ``current`` leaves out."""
    kept = _kept(rows)
    return [r for r in rows if id(r) not in kept]


def _kept(rows: Sequence[dict[str, Any]]) -> set[int]:
    newest: dict[tuple[str, ...], dict[str, Any]] = {}
    copies: set[tuple[str, str]] = set()
    for row in rows:
        if (row["run_key"], row["calibrator"]) in copies:
            continue
        copies.add((row["run_key"], row["calibrator"]))
        task = task_of(row)
        if task not in newest or row.get("created_at", 0) >= newest[task].get("created_at", 0):
            newest[task] = row
    return {id(r) for r in newest.values()}
