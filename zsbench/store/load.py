"""Rows from wherever they are kept: a results database, or exported JSON lines (a ``.jsonl``
file or a folder of them), read alike by the leaderboard, ``zsbench export`` and the benchmarks'
table scripts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zsbench.errors import UserError
from zsbench.store.export import is_jsonl, read_jsonl_rows
from zsbench.store.sqlite import ResultStore


def load_rows(path: str | Path, spec_name: str | None = None) -> list[dict[str, Any]]:
    """Every stored row with its curves (``row["curves"]``: split -> params/u/s/H), from a
    results database or from exported JSON lines (a ``.jsonl`` file or a folder of them)."""
    path = Path(path)
    if is_jsonl(path):
        rows = read_jsonl_rows(path)
        return [r for r in rows if spec_name is None or r["spec_name"] == spec_name]
    if not path.is_file():
        raise UserError(f"{path}: no results database here; run a spec first or pass --results PATH")
    with ResultStore(path, readonly=True) as store:
        return [{**row, "curves": store.curves(row["id"])} for row in store.rows(spec_name=spec_name)]


def unknown_spec_name(paths: Sequence[str | Path], spec_name: str) -> UserError:
    """The error for a ``--spec-name`` that matches no row (a typo?): it names the stored specs."""
    names = set()
    for path in paths:
        if is_jsonl(path):
            names.update(r["spec_name"] for r in read_jsonl_rows(path))
            continue
        with ResultStore(path, readonly=True) as store:
            names.update(store.spec_names())
    listed = ", ".join(sorted(names)) or "none (no rows yet)"
    return UserError(f"{', '.join(map(str, paths))}: no rows of spec {spec_name!r}; the specs stored are: {listed}")


def load_failure_counts(paths: Sequence[str | Path], spec_name: str | None = None) -> dict[tuple[str, str], int]:
    """(dataset, method) -> runs that failed with no result since; counted, never scored."""
    counts: dict[tuple[str, str], int] = {}
    for path in paths:
        if is_jsonl(path):  # exported rows hold results only
            continue
        with ResultStore(path, readonly=True) as store:
            for key, count in store.failure_counts(spec_name).items():
                counts[key] = counts.get(key, 0) + count
    return counts
