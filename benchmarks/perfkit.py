"""Shared by the perf_*.py benchmarks: repeated timing, machine description, docs fragments."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

DOCS_PERF = Path(__file__).resolve().parents[1] / "docs" / "perf"
# The folder holding flo/: $ZSBENCH_DATA (e.g. a copy carried to a GPU machine), else ../shared/data.
SHARED_DATA = Path(os.environ.get("ZSBENCH_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1, sync: bool = False) -> float:
    """Median wall time in seconds over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if sync and torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if sync and torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    desc = f"{os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__}, Python {platform.python_version()}"
    if device.type == "cuda":
        desc += f", GPU {torch.cuda.get_device_name(device)}"
    return desc


def write_fragment(name: str, title: str, command: str, body: str, device: torch.device) -> Path:
    """Write ``docs/perf/<name>.md``, included by docs/performance.md; the device is in the name so
    a GPU run does not overwrite the CPU figures."""
    DOCS_PERF.mkdir(parents=True, exist_ok=True)
    path = DOCS_PERF / f"{name}-{device.type}.md"
    stamp = time.strftime("%Y-%m-%d")
    path.write_text(
        f"### {title} ({device.type})\n\n"
        f"Measured {stamp} on {machine(device)}.  \nRerun: `{command}`\n\n{body.strip()}\n"
    )
    print(path.read_text(), file=sys.stderr)
    return path
