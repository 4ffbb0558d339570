"""Shared by the perf_*.py benchmarks: repeated timing, machine description, docs fragments, and
the older checkout some of them time beside this one."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import attrs
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


@attrs.frozen
class Baseline:
    """An older checkout (``git worktree add DIR <commit>``) measured beside this one: its core and
    plugins go first on PYTHONPATH, so the installed console script, entry points and dependencies
    are shared and only the code differs."""

    root: Path = attrs.field(converter=lambda p: Path(p).resolve())

    @property
    def commit(self) -> str:
        out = subprocess.run(["git", "-C", str(self.root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        return out or self.root.name

    @property
    def label(self) -> str:
        return f"before ({self.commit})"

    def pythonpath(self, *extra: Path | str) -> str:
        """PYTHONPATH for a process running this checkout; a child must not start in another tree,
        whose folder ``python -m`` would put first."""
        return os.pathsep.join([str(self.root), str(self.root / "plugins"), *map(str, extra)])

    def rerun(self, command: str, flags: str = "") -> str:
        """The fragment's Rerun line: it wraps the command in backticks, so this closes the second span."""
        return f"{command} --baseline DIR{flags}`, DIR being made by `git worktree add DIR {self.commit}"
