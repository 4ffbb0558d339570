"""Rerun a slice of zsbench/specs/flo-efficientnet.yaml in this process and print its rows as JSON.

``python tests/slice_run.py METHOD[,METHOD...] SEED[,SEED...] [THREADS] > run.json`` (data:
``$ZSBENCH_DATA``); ``python tests/slice_run.py compare run.json...`` prints, per method, the
largest difference in H and in u or s between any two of the runs and the committed rows. The
tests run it in subprocesses under different thread and kernel settings; docs/reproducibility.md
measures the cross-machine tolerances with it.
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import torch
import yaml

from zsbench.registry import get_registry
from zsbench.runner.grid import LocalBackend, run_spec
from zsbench.spec import parse_spec
from zsbench.store.sqlite import ResultStore

SPEC = Path(__file__).resolve().parents[1] / "zsbench" / "specs" / "flo-efficientnet.yaml"
NUMBERS = ("u", "s", "H", "zsl", "val_u", "val_s", "val_H", "calibration_param")


def rerun(methods: list[str], seeds: list[int], threads: int = 1) -> list[dict]:
    """The stored rows of ``methods`` x ``seeds`` of the FLO spec, run from scratch."""
    raw = yaml.safe_load(SPEC.read_text())
    raw["seeds"] = seeds
    raw["methods"] = [m for m in raw["methods"] if m["name"] in methods]
    registry = get_registry()
    with tempfile.TemporaryDirectory() as tmp, ResultStore(Path(tmp) / "slice.sqlite") as store:
        backend = LocalBackend(registry, torch.device("cpu"), show_progress=False, threads=threads)
        run_spec(parse_spec(raw, str(SPEC), registry), store, backend)
        return store.rows()


def largest_differences(runs: list[list[dict]], published: list[dict]) -> dict[str, tuple[float, float]]:
    """Per method, the largest |H| and |u or s| difference of one row between any two of the
    runs and ``published`` (rows matched by method, calibrator and seed)."""
    by_row = defaultdict(list)
    for rows in [*runs, published]:
        for r in rows:
            by_row[(r["method"], r["calibrator"], r["seed"])].append(r)
    out: dict[str, tuple[float, float]] = {}
    for (method, _, _), rows in by_row.items():
        pairs = list(itertools.combinations(rows, 2))
        if not pairs:
            continue
        h = max(abs(a["H"] - b["H"]) for a, b in pairs)
        acc = max(abs(a[k] - b[k]) for a, b in pairs for k in ("u", "s"))
        old = out.get(method, (0.0, 0.0))
        out[method] = (max(old[0], h), max(old[1], acc))
    return out


if __name__ == "__main__" and sys.argv[1] == "compare":
    from zsbench.store.export import read_jsonl_rows

    runs = [json.loads(Path(f).read_text()) for f in sys.argv[2:]]
    measured = {m for rows in runs for m in (r["method"] for r in rows)}
    published = [r for r in read_jsonl_rows(Path(__file__).resolve().parents[1] / "docs/leaderboard/results/flo.jsonl") if r["method"] in measured]
    for method, (h, acc) in sorted(largest_differences(runs, published).items()):
        print(f"{method:10s} H {h:.5f}  u/s {acc:.5f}")
elif __name__ == "__main__":
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    rows = rerun(sys.argv[1].split(","), [int(s) for s in sys.argv[2].split(",")], threads)
    keep = ("run_key", "method", "calibrator", "seed", "hyperparameters", "provenance", *NUMBERS)
    json.dump([{k: r[k] for k in keep} for r in rows], sys.stdout)
