"""Result rows as JSON lines: the committed data behind the published leaderboard.

``zsbench export`` writes one ``<dataset>.jsonl`` per data set, one row per line (each run's
rows with their full provenance and curves), sorted so that the same rows always give the same
bytes; ``zsbench leaderboard --results`` reads such a file or folder as it reads a database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import click

from zsbench.errors import DataError, UserError

# Database bookkeeping, not results: differs between two databases holding the same rows.
DROPPED = ("id",)


def _order(row: Mapping[str, Any]) -> tuple:
    return (row["dataset"], row["method"], row["calibrator"], row["seed"], row["run_key"])


def export_rows(rows: Iterable[Mapping[str, Any]], out_dir: str | Path) -> list[Path]:
    """Write ``<out_dir>/<dataset slug>.jsonl`` for each data set of ``rows`` (replacing it)."""
    from zsbench.leaderboard import slug

    by_file: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        clean = {k: v for k, v in row.items() if k not in DROPPED}
        by_file.setdefault(slug(row["dataset"]), []).append(clean)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, group in sorted(by_file.items()):
        path = out_dir / f"{name}.jsonl"
        lines = [json.dumps(r, sort_keys=True, separators=(",", ":")) for r in sorted(group, key=_order)]
        path.write_text("\n".join(lines) + "\n")
        written.append(path)
    return written


def read_jsonl_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows from a ``.jsonl`` file, or from every ``*.jsonl`` file of a folder (sorted by name)."""
    path = Path(path)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise UserError(f"{path}: no *.jsonl result files in this folder")
    rows = []
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
            rows.append(row)
    return rows


def is_jsonl(path: str | Path) -> bool:
    path = Path(path)
    return path.suffix == ".jsonl" or path.is_dir()


@click.command("export")
@click.option("--results", "results_path", default="results.sqlite", show_default=True,
              type=click.Path(dir_okay=False), help="SQLite results database.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for one <dataset>.jsonl per data set (e.g. docs/leaderboard/results).")
@click.option("--spec-name", default=None, help="Only rows of this spec.")
def export(results_path: str, out_dir: str, spec_name: str | None) -> None:
    """Write the stored rows, with provenance and curves, as JSON lines (one file per data set)."""
    from zsbench.leaderboard import load_rows

    rows = load_rows(results_path, spec_name)
    if not rows:
        raise UserError(f"{results_path}: no result rows" + (f" of spec {spec_name!r}" if spec_name else ""))
    written = export_rows(rows, out_dir)
    click.echo(f"wrote {len(rows)} row(s) to {', '.join(map(str, written))}")
