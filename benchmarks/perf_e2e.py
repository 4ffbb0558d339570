"""End to end: the real-FLO spec (CLAREL + every linear baseline, 3 seeds), local vs Ray backend.

Runs ``zsbench run`` on a copy of zsbench/specs/flo-efficientnet.yaml restricted to CLAREL and the
linear baselines, once with ``--backend local`` and once with ``--backend ray`` (a local Ray
instance using every core), each into a fresh results database and a fresh cache, and checks
that both give the same rows.

    ZSBENCH_DATA=../shared/data python benchmarks/perf_e2e.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from perfkit import write_fragment

LINEAR = {"clarel", "eszsl", "ale", "sje", "devise", "random"}
SPEC = Path(__file__).resolve().parent / "flo-efficientnet.yaml"


def run_once(spec: Path, backend: str, workdir: Path) -> tuple[float, list[dict]]:
    db = workdir / f"{backend}.sqlite"
    env = {**os.environ, "ZSBENCH_CACHE": str(workdir / f"cache-{backend}")}
    zsbench = [sys.executable, "-m", "zsbench"]
    start = time.perf_counter()
    subprocess.run([*zsbench, "run", str(spec), "--results", str(db), "--quiet", "--backend", backend],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    rows = json.loads(subprocess.run([*zsbench, "results", "--results", str(db), "--json"], check=True,
                                     env=env, capture_output=True, text=True).stdout)
    return elapsed, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per backend (each takes minutes)")
    args = parser.parse_args()
    if not os.environ.get("ZSBENCH_DATA"):
        sys.exit("set ZSBENCH_DATA to the folder holding flo/ (e.g. ../shared/data)")
    raw = yaml.safe_load(SPEC.read_text())
    raw["methods"] = [m for m in raw["methods"] if m["name"] in LINEAR]
    raw["name"] = "flo-efficientnet-linear"
    times: dict[str, list[float]] = {"local": [], "ray": []}
    results: list[dict] = []  # every run's rows, all backends and repeats: all must agree
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(yaml.safe_dump(raw))
        for i in range(args.repeats):
            for backend in times:
                work = Path(tmp) / f"{backend}-{i}"
                work.mkdir()
                elapsed, rows = run_once(spec, backend, work)
                times[backend].append(elapsed)
                results.append({(r["method"], r["calibrator"], r["seed"]): (r["u"], r["s"], r["H"]) for r in rows})
    same = all(r == results[0] for r in results)
    local, ray = (statistics.median(times[b]) for b in ("local", "ray"))
    spread = {b: f"{min(t):.0f}-{max(t):.0f} s" for b, t in times.items()}
    body = f"""
{len(raw['methods'])} methods x 3 seeds = {3 * len(raw['methods'])} runs on the real FLO data
(`flo-efficientnet.yaml` restricted to CLAREL and the linear baselines); {args.repeats} run(s) per
backend, alternating, each into a fresh cache; median wall time including start-up, and the range.
Every run of both backends gave {'identical' if same else 'DIFFERENT'} rows.

| backend | wall time (median) | range | runs per minute |
|---|---:|---:|---:|
| local (one process, one torch thread) | {local:.0f} s | {spread['local']} | {60 * 3 * len(raw['methods']) / local:.1f} |
| Ray (local instance, {os.cpu_count()} CPUs, one task per CPU) | {ray:.0f} s | {spread['ray']} | {60 * 3 * len(raw['methods']) / ray:.1f} |
| speed-up | {local / ray:.2f}x | | |
"""
    write_fragment("e2e", "End to end, real FLO", f"ZSBENCH_DATA=../shared/data python benchmarks/perf_e2e.py --repeats {args.repeats}",
                   body, torch.device("cpu"))


if __name__ == "__main__":
    main()
