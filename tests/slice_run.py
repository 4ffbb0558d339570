"""Rerun a slice of benchmarks/flo-efficientnet.yaml in this process and print its rows as JSON.

``python tests/slice_run.py METHOD[,METHOD...] SEED`` (data: ``$ZSBENCH_DATA``). The tests run it
in subprocesses under different thread and kernel settings; docs/reproducibility.md measures the
cross-machine tolerances with it.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch
import yaml

from zsbench.registry import get_registry
from zsbench.runner import LocalBackend, run_spec
from zsbench.spec import parse_spec
from zsbench.store import ResultStore

SPEC = Path(__file__).resolve().parents[1] / "benchmarks" / "flo-efficientnet.yaml"
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


if __name__ == "__main__":
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    rows = rerun(sys.argv[1].split(","), [int(s) for s in sys.argv[2].split(",")], threads)
    keep = ("run_key", "method", "calibrator", "seed", "hyperparameters", "provenance", *NUMBERS)
    json.dump([{k: r[k] for k in keep} for r in rows], sys.stdout)
