"""Result rows as data: flat records, pandas and Arrow tables, the summary over seeds, HTML.

pandas and pyarrow are optional: they are imported only by the methods that return their types,
so the CLI's light verbs never load them.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from zsbench.errors import UserError

# Columns of ``Results.records``, in order: what was run, the test numbers, the choices made on
# validation, then provenance.
RECORD_COLUMNS = (
    "spec_name", "dataset", "method", "method_plugin", "calibrator", "seed",
    "u", "s", "H", "zsl", "ausuc", "oracle_H",
    "val_u", "val_s", "val_H", "calibration_param", "choices", "grid_edges", "sweep",
    "side_information", "features", "wall_time",
    "run_key", "spec_hash", "zsbench", "torch", "device", "git_commit", "git_dirty", "code", "data",
)


def _optional(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"this needs {module}, which is not installed: pip install {extra}") from None


def record(row: dict[str, Any]) -> dict[str, Any]:
    """One stored row as a flat record of ``RECORD_COLUMNS`` (choices, sweep, code and data
    identity as JSON text, so every column has one type)."""
    prov = row.get("provenance") or {}
    git = prov.get("git") or {}
    identity = prov.get("code"), prov.get("data")
    return {
        **{k: row.get(k) for k in RECORD_COLUMNS[:15]},
        "calibration_param": row.get("calibration_param"),
        "choices": json.dumps(row.get("hyperparameters") or {}, sort_keys=True),
        "grid_edges": ",".join(prov.get("grid_edges") or ()),
        "sweep": json.dumps(row.get("sweep") or {}, sort_keys=True),
        "side_information": row.get("side_information"),
        "features": row.get("features"),
        "wall_time": row.get("wall_time"),
        "run_key": row.get("run_key"),
        "spec_hash": row.get("spec_hash"),
        "zsbench": prov.get("zsbench"),
        "torch": prov.get("torch"),
        "device": prov.get("device"),
        "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
        "code": None if identity[0] is None else json.dumps(identity[0], sort_keys=True),
        "data": None if identity[1] is None else json.dumps(identity[1], sort_keys=True),
    }


def in_spec_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with each method's calibrators in the order its spec lists them (the order the
    database stores them in depends on which grid point each calibrator chose)."""
    first: dict[tuple[str, str], int] = {}
    for i, r in enumerate(rows):
        first.setdefault((r["dataset"], r["method"]), i)

    def position(r: dict[str, Any]) -> tuple[int, int]:
        config = ((r.get("provenance") or {}).get("config") or {}).get("method") or {}
        names = [c.get("name") for c in config.get("calibrators", [])]
        return first[(r["dataset"], r["method"])], names.index(r["calibrator"]) if r["calibrator"] in names else len(names)

    return sorted(rows, key=position)


@attrs.frozen
class Results:
    """Stored rows of one run (or of a results database): one per run and calibrator, accuracies
    in [0, 1]; ``failures`` holds the message of each run that failed."""

    rows: tuple[dict[str, Any], ...]
    failures: tuple[str, ...] = ()
    path: str | None = None  # the results database, when kept
    spec_name: str | None = None  # the spec run, after a run
    outcome: Any = attrs.field(default=None, eq=False, repr=False)  # the runner's Outcome, after a run

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def records(self) -> list[dict[str, Any]]:
        """Flat records (``RECORD_COLUMNS``), the rows of ``to_pandas`` and ``to_arrow``."""
        return [record(r) for r in self.rows]

    def to_pandas(self):
        """A ``pandas.DataFrame``, one row per run and calibrator."""
        pandas = _optional("pandas", "pandas")
        return pandas.DataFrame(self.records(), columns=list(RECORD_COLUMNS))

    def to_arrow(self):
        """A ``pyarrow.Table`` with the columns of ``to_pandas``."""
        pyarrow = _optional("pyarrow", "pyarrow")
        records = self.records()
        return pyarrow.Table.from_pylist(records) if records else pyarrow.table({c: [] for c in RECORD_COLUMNS})

    def summary_rows(self) -> list[dict[str, Any]]:
        """Mean and 95% CI half-width (percent) per data set, method and calibrator over seeds:
        the CLI's table as records (``<metric>`` and ``<metric>_ci``; the CI is NaN for one seed)."""
        from zsbench.store.summary import METRICS, TEST_ONLY_METRICS, summarize

        out = []
        for s in summarize(in_spec_order(list(self.rows))):
            entry: dict[str, Any] = {"dataset": s.dataset, "method": s.method, "calibrator": s.calibrator,
                                     "seeds": len(s.seeds)}
            for metric in (*METRICS, *TEST_ONLY_METRICS):
                estimate = s.estimates.get(metric)
                entry[metric] = estimate.mean if estimate else math.nan
                entry[f"{metric}_ci"] = estimate.half_width if estimate else math.nan
            out.append(entry)
        return out

    def summary(self):
        """``summary_rows`` as a ``pandas.DataFrame``."""
        pandas = _optional("pandas", "pandas")
        return pandas.DataFrame(self.summary_rows())

    def _repr_html_(self) -> str:
        """The summary table for Jupyter (labels are escaped: they come from specs and plugins)."""
        from zsbench.store.summary import METRICS

        head = "".join(f"<th>{h}</th>" for h in ("dataset", "method", "calibrator", "seeds", *METRICS))
        body = []
        for r in self.summary_rows():
            cells = [html.escape(str(r[k])) for k in ("dataset", "method", "calibrator", "seeds")]
            cells += [f"{r[m]:.1f}" + ("" if math.isnan(r[f"{m}_ci"]) else f" ± {r[f'{m}_ci']:.1f}") for m in METRICS]
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        failed = "".join(f"<li>{html.escape(f)}</li>" for f in self.failures)
        return (f"<table><caption>test accuracy (%), mean ± 95% CI over seeds ({len(self.rows)} rows)"
                f"</caption><tr>{head}</tr>{''.join(body)}</table>"
                + (f"<p>{len(self.failures)} run(s) failed:</p><ul>{failed}</ul>" if failed else ""))

    def text(self, format: str) -> str:
        """The records as ``csv``, or the stored rows as ``json`` (what ``results --json`` prints)."""
        if format == "json":
            return json.dumps(list(self.rows), indent=2, sort_keys=True)
        if format == "csv":
            import csv
            import io

            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=RECORD_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.records())
            return out.getvalue()
        raise UserError(f"format {format!r}: expected csv or json (parquet is written to a file)")

    def write(self, path: str | Path, format: str) -> None:
        """Write ``csv``, ``json`` (see ``text``) or ``parquet`` (the ``to_arrow`` table) to ``path``."""
        if format == "parquet":
            parquet = _optional("pyarrow.parquet", "pyarrow")
            parquet.write_table(self.to_arrow(), str(path))
        else:
            Path(path).write_text(self.text(format))
