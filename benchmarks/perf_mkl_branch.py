"""What MKL's vendor-independent branch costs: CPU time of float32 matrix products of the sizes
the benchmarked methods compute, on torch's MKL with one thread, under ``MKL_CBWR=AUTO`` and
``MKL_CBWR=COMPATIBLE`` (docs/reproducibility.md explains why the branch matters).

    python benchmarks/perf_mkl_branch.py [--repeats 3]

MKL reads ``MKL_CBWR`` when it loads, so each branch is timed in its own processes, alternating;
a cell is the median over ``--repeats`` processes. Writes docs/perf/mkl-branch-cpu.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
from perfkit import write_fragment

from zsbench.evaluation.environment import environment

SHAPES = [(256, 1280, 512), (256, 512, 82), (1000, 1280, 102), (64, 1024, 64)]
BRANCHES = ("AUTO", "COMPATIBLE")


def milliseconds(m: int, k: int, n: int, generator: torch.Generator) -> float:
    """CPU time of one (m x k) @ (k x n) product, after warm-up, over about 2 GFLOP of repeats."""
    a, b = torch.randn(m, k, generator=generator), torch.randn(k, n, generator=generator)
    for _ in range(3):
        a @ b
    reps = max(3, int(2e9 / (2 * m * k * n)))
    start = time.process_time()
    for _ in range(reps):
        a @ b
    return (time.process_time() - start) / reps * 1e3


def child() -> None:
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    print(json.dumps({"branch": environment()["torch"]["mkl"]["branch"],
                      "ms": [milliseconds(m, k, n, generator) for m, k, n in SHAPES]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    times: dict[str, list[list[float]]] = {b: [] for b in BRANCHES}
    for _ in range(args.repeats):
        for branch in BRANCHES:
            out = subprocess.run([sys.executable, __file__, "--child"], env={**os.environ, "MKL_CBWR": branch},
                                 capture_output=True, text=True, check=True).stdout
            record = json.loads(out)
            if record["branch"] != branch:
                raise SystemExit(f"MKL_CBWR={branch}: MKL reports branch {record['branch']!r}; is torch on MKL?")
            times[branch].append(record["ms"])
    median = {b: [statistics.median(run[i] for run in times[b]) for i in range(len(SHAPES))] for b in BRANCHES}
    rows = [f"| {m} x {k} x {n} | {median['AUTO'][i]:.3f} ms | {median['COMPATIBLE'][i]:.3f} ms "
            f"| {median['COMPATIBLE'][i] / median['AUTO'][i]:.1f}x |" for i, (m, k, n) in enumerate(SHAPES)]
    cpu = environment()["cpu"]
    body = (
        f"CPU: {cpu['model']} ({cpu['vendor']}). One torch thread; each cell is the CPU time of one float32 product "
        f"(about 2 GFLOP of repeats after 3 warm-up products), median over {args.repeats} processes per branch, "
        "alternating.\n\n"
        "| product (m x k x n) | `MKL_CBWR=AUTO` | `MKL_CBWR=COMPATIBLE` | COMPATIBLE / AUTO |\n"
        "| --- | ---: | ---: | ---: |\n" + "\n".join(rows)
    )
    write_fragment("mkl-branch", "MKL's vendor-independent branch", f"python benchmarks/perf_mkl_branch.py "
                   f"--repeats {args.repeats}", body, torch.device("cpu"))


if __name__ == "__main__":
    main()
