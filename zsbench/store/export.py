"""Result rows as JSON lines: the committed data behind the published leaderboard.

``zsbench export`` writes one ``<dataset>.jsonl`` per data set, one row per line (each run's
rows with their full provenance and curves), sorted so that the same rows always give the same
bytes; ``zsbench leaderboard --results`` reads such a file or folder as it reads a database.

A row's data identity lists every file its data set read (path, size, SHA-256): for the CUB
subset that is 5,973 files, the same for every row. So the lists are written once, to
``<dataset>.files.json`` beside the rows (a manifest: digest -> list), and each row keeps only the
digest (``files_manifest``); reading the rows puts the lists back, so a row read from the files
is the row that was stored.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from zsbench.errors import DataError, UserError
from zsbench.site.markdown import slug  # the file name a data set's pages use

# Database bookkeeping, not results: differs between two databases holding the same rows.
DROPPED = ("id",)
MANIFEST_SUFFIX = ".files.json"


def manifest_path(rows_file: Path) -> Path:
    """``<dataset>.files.json`` beside ``<dataset>.jsonl``."""
    return rows_file.with_suffix(MANIFEST_SUFFIX)


def _files_digest(files: list[Any]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _with_manifest(row: dict[str, Any], manifest: dict[str, list[Any]]) -> dict[str, Any]:
    """``row`` with its data file list moved into ``manifest`` (a new row; ``row`` is unchanged)."""
    data = (row.get("provenance") or {}).get("data")
    if not isinstance(data, dict) or "files" not in data:
        return row
    digest = _files_digest(data["files"])
    manifest[digest] = data["files"]
    compact = {k: v for k, v in data.items() if k != "files"} | {"files_manifest": digest}
    return {**row, "provenance": {**row["provenance"], "data": compact}}


def _order(row: Mapping[str, Any]) -> tuple:
    return (row["dataset"], row["method"], row["calibrator"], row["seed"], row["run_key"])


def export_rows(rows: Iterable[Mapping[str, Any]], out_dir: str | Path) -> list[Path]:
    """Write ``<out_dir>/<dataset slug>.jsonl`` for each data set of ``rows`` (replacing it)."""
    by_file: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        clean = {k: v for k, v in row.items() if k not in DROPPED}
        by_file.setdefault(slug(row["dataset"]), []).append(clean)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, group in sorted(by_file.items()):
        path = out_dir / f"{name}.jsonl"
        manifest: dict[str, list[Any]] = {}
        compact = [_with_manifest(r, manifest) for r in sorted(group, key=_order)]
        if manifest:
            _replace(manifest_path(path), json.dumps(manifest, sort_keys=True, indent=1) + "\n")
        else:
            manifest_path(path).unlink(missing_ok=True)
        _replace(path, "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in compact))
        written.append(path)
    return written


def _replace(path: Path, text: str) -> None:
    """``path`` holds ``text`` or what it held before (a full disk leaves no half-written file)."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def read_jsonl_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows from a ``.jsonl`` file, or from every ``*.jsonl`` file of a folder (sorted by name),
    each checked against the row schema (file and line named), one per task
    (``zsbench.store.rows.current``)."""
    from zsbench.store.rows import check_rows, current

    path = Path(path)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise UserError(f"{path}: no *.jsonl result files in this folder")
    rows, where = [], []
    manifests: dict[Path, dict] = {}
    for file in files:
        try:
            text = file.read_text()
        except OSError as exc:
            raise DataError(file, f"cannot read the result rows: {exc.strerror or exc}") from None
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise DataError(file, f"line {n}: not a JSON result row ({exc})") from None
            if not isinstance(row, dict) or "run_key" not in row:
                raise DataError(file, f"line {n}: expected a result row (a JSON object with run_key)")
            rows.append(_expand_manifest(row, file, n, manifests))
            where.append(f"{file}: line {n}")
    check_rows(zip(where, rows), curves_required=True)
    return current(rows)


def _expand_manifest(row: dict[str, Any], file: Path, line: int, manifests: dict[Path, dict]) -> dict[str, Any]:
    """``row`` with its data file list read back from the manifest beside ``file``."""
    provenance = row.get("provenance")
    data = provenance.get("data") if isinstance(provenance, dict) else None
    if not isinstance(data, dict) or "files_manifest" not in data:
        return row
    where = manifest_path(file)
    if where not in manifests:
        try:
            manifests[where] = json.loads(where.read_text())
        except FileNotFoundError:
            raise DataError(where, f"missing: {file.name} line {line} lists its data files there") from None
        except (OSError, ValueError) as exc:
            raise DataError(where, f"cannot read the data file manifest: {exc}") from None
    digest = data["files_manifest"]
    if not isinstance(manifests[where], dict) or not isinstance(digest, str) or digest not in manifests[where]:
        raise DataError(where, f"no entry {digest!r} (the data files of {file.name} line {line})")
    data = {k: v for k, v in data.items() if k != "files_manifest"} | {"files": manifests[where][digest]}
    return {**row, "provenance": {**row["provenance"], "data": data}}


def is_jsonl(path: str | Path) -> bool:
    path = Path(path)
    return path.suffix == ".jsonl" or path.is_dir()
