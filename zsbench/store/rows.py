"""The one schema of a result row, checked on every route into the store or onto a page.

A row comes from a finished run, a recovery file (``zsbench results import``), a database or
exported JSON lines (``leaderboard --results rows.jsonl``); each route calls ``check_rows``, so a
forged or damaged row (H = 5, a seed ``"zero"``, a NaN, a curve of mismatched lengths) is
refused with where it came from and the field named, never stored or published.

A row may carry ``per_image``: the correctness of each of its test predictions, grouped by test
class (``PER_IMAGE_GROUPS``: classes ascending, each class's images in bundle order, one bit
each, ``numpy.packbits`` in base64), so a test-image bootstrap can be computed from rows alone.
Its u and s recomputed from the bits must be the row's u and s: bits that do not produce the
row's numbers are refused. Rows written before the field existed have none.

Reading also keeps one row per task: two copies of a run (the same run key and calibrator, e.g.
one's own rows merged with the published ones) are one row, and a rerun of a task after its
code or data changed supersedes the older row (``current``) instead of being averaged with it.
"""

from __future__ import annotations

import base64
import binascii
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
PER_IMAGE_GROUPS = ("unseen", "seen")  # per_image keys: the test images of unseen and of seen classes
PER_IMAGE_KEYS = ("classes", "sizes", "bits")
ACCURACY_TOLERANCE = 1e-9  # u and s from the bits vs the row's: float64 sums in another order


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
    if row.get("per_image") is not None:
        out.extend(_per_image_problems(row))
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


def pack_bits(correct: Any) -> str:
    """Booleans as ``numpy.packbits`` bytes in base64 text (8 images a byte, zero-padded)."""
    import numpy as np

    return base64.b64encode(np.packbits(np.asarray(correct, dtype=bool)).tobytes()).decode("ascii")


def unpack_bits(text: str, n: int) -> Any:
    """The ``n`` booleans ``pack_bits`` wrote; ValueError when ``text`` is not base64 of exactly
    ``ceil(n / 8)`` bytes with zero padding bits."""
    import numpy as np

    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"not base64 ({exc})") from None
    if len(raw) != (n + 7) // 8:
        raise ValueError(f"{len(raw)} bytes, expected {(n + 7) // 8} for {n} images")
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))
    if bits[n:].any():
        raise ValueError("padding bits after the last image are set")
    return bits[:n].astype(bool)


def per_class_means(group: Mapping[str, Any]) -> Any:
    """Each class's accuracy (a float64 array) of one ``per_image`` group."""
    import numpy as np

    sizes = np.asarray(group["sizes"], dtype=np.int64)
    bits = unpack_bits(group["bits"], int(sizes.sum()))
    if not len(sizes):
        return np.zeros(0)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.add.reduceat(bits.astype(np.float64), starts) / sizes


def _per_image_problems(row: Mapping[str, Any]) -> list[str]:
    per_image = row["per_image"]
    if not isinstance(per_image, Mapping) or sorted(per_image) != sorted(PER_IMAGE_GROUPS):
        return [f"per_image: expected an object with {' and '.join(PER_IMAGE_GROUPS)}, got {per_image!r:.80}"]
    out: list[str] = []
    classes: dict[str, set[int]] = {}
    for name, metric in zip(PER_IMAGE_GROUPS, ("u", "s")):
        where, group = f"per_image.{name}", per_image[name]
        if not isinstance(group, Mapping) or sorted(group) != sorted(PER_IMAGE_KEYS):
            out.append(f"{where}: expected an object with {', '.join(PER_IMAGE_KEYS)}, got {group!r:.80}")
            continue
        ids, sizes, bits = group["classes"], group["sizes"], group["bits"]
        if not (isinstance(ids, list) and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in ids)
                and ids == sorted(set(ids))):
            out.append(f"{where}.classes: expected distinct class indices >= 0 in ascending order, got {ids!r:.80}")
            continue
        if not (isinstance(sizes, list) and len(sizes) == len(ids)
                and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes)):
            out.append(f"{where}.sizes: expected {len(ids)} positive image counts (one per class), got {sizes!r:.80}")
            continue
        if not isinstance(bits, str):
            out.append(f"{where}.bits: expected base64 text, got {type(bits).__name__}")
            continue
        try:
            means = per_class_means(group)
        except ValueError as exc:
            out.append(f"{where}.bits: {exc}")
            continue
        classes[name] = set(ids)
        recomputed = float(means.mean()) if len(means) else 0.0
        if _fraction(row.get(metric)) and abs(recomputed - row[metric]) > ACCURACY_TOLERANCE:
            out.append(f"{where}: the bits give {metric} = {recomputed!r}, but the row has {metric} = {row[metric]!r}")
    if len(classes) == 2 and classes["seen"] & classes["unseen"]:
        out.append(f"per_image: classes {sorted(classes['seen'] & classes['unseen'])[:5]} are both seen and unseen")
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
