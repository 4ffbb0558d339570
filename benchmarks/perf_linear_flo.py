"""The linear baselines on real FLO as whole processes: what a user waits for, start-up included.

For each of ESZSL, ALE, SJE and DeViSE, times ``zsbench run SPEC --force --quiet`` where SPEC is
one seed of ``zsbench/specs/flo-efficientnet.yaml`` restricted to that method, with the ``none`` and
``calibrated-stacking`` calibrators. Wall time is measured around the process and CPU time from
the operating system's accounting of the finished child; H comes from the rows the run stored.

    ZSBENCH_DATA=../shared/data python benchmarks/perf_linear_flo.py [--repeats 3] [--baseline DIR]

``--baseline DIR`` also times an older checkout (``git worktree add DIR <commit>``) through the
same installed console script with ``PYTHONPATH=DIR:DIR/plugins``, alternating run by run with
this checkout, and reports whether both stored the same u, s and H.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from perfkit import SHARED_DATA, Baseline, write_fragment

ROOT = Path(__file__).resolve().parents[1]
ZSBENCH = str(Path(sys.executable).parent / "zsbench")
METHODS = ("eszsl", "ale", "sje", "devise")
CALIBRATORS = ("none", "calibrated-stacking")


def spec_for(method: str) -> dict:
    return {
        "name": f"flo-{method}",
        "seeds": 1,
        "device": "cpu",
        "datasets": [{"name": "flo", "features": "efficientnet_lite0.mat", "images": False}],
        "methods": [{"name": method, "calibrators": list(CALIBRATORS)}],
    }


def timed_run(spec: Path, db: Path, env: dict[str, str]) -> tuple[float, float, dict]:
    """(wall s, CPU s, {calibrator: (u, s, H)}) of one whole ``zsbench run`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([ZSBENCH, "run", str(spec), "--results", str(db), "--force", "--quiet"], check=True, env=env,
                   cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rows = json.loads(subprocess.run([ZSBENCH, "results", "--results", str(db), "--json"], check=True, env=env,
                                     cwd=ROOT, capture_output=True, text=True).stdout)
    return wall, cpu, {r["calibrator"]: (r["u"], r["s"], r["H"]) for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="counted runs per method and tree, after one warm-up")
    parser.add_argument("--baseline", type=Path, default=None, help="an older checkout to time the same way")
    args = parser.parse_args()
    if not (SHARED_DATA / "flo").is_dir():
        sys.exit(f"{SHARED_DATA / 'flo'}: not found; set ZSBENCH_DATA to the folder holding flo/")
    baseline = Baseline(args.baseline) if args.baseline else None
    trees = {"this checkout": None}
    if baseline:
        trees[baseline.label] = baseline.pythonpath()
    # wall and CPU times, and every run's rows, by method and tree
    walls: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}
    rows: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for method in METHODS:
            spec = tmp / f"{method}.yaml"
            spec.write_text(yaml.safe_dump(spec_for(method)))
            for i in range(args.repeats + 1):  # run 0 is the warm-up: disk caches and the feature table
                for tree, pythonpath in trees.items():
                    env = {**os.environ, "ZSBENCH_DATA": str(SHARED_DATA), "ZSBENCH_CACHE": str(tmp / "cache")}
                    env.pop("PYTHONPATH", None)
                    if pythonpath:
                        env["PYTHONPATH"] = pythonpath
                    wall, cpu, got = timed_run(spec, tmp / f"{method}-{len(tree)}.sqlite", env)
                    print(f"{method} {tree} run {i}: {wall:.2f} s wall, {cpu:.2f} s CPU", file=sys.stderr)
                    rows.setdefault((method, tree), []).append(got)
                    if i:
                        walls.setdefault((method, tree), []).append(wall)
                        cpus.setdefault((method, tree), []).append(cpu)

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"

    names = list(trees)
    header = ["method", "H none / calibrated-stacking (%)"]
    header += [f"wall, {t}" for t in names] + [f"CPU, {t}" for t in names]
    if len(names) == 2:
        header += ["CPU after/before", "same u, s, H"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for method in METHODS:
        first = rows[(method, names[0])][0]
        h = " / ".join(f"{100 * first[c][2]:.2f}" for c in CALIBRATORS)
        cells = [f"`{method}`", h] + [cell(walls[(method, t)]) for t in names] + [cell(cpus[(method, t)]) for t in names]
        if len(names) == 2:
            ratio = statistics.median(cpus[(method, names[0])]) / statistics.median(cpus[(method, names[1])])
            same = all(r == first for t in names for r in rows[(method, t)])
            cells += [f"{ratio:.2f}", "yes" if same else "NO"]
        lines.append("| " + " | ".join(cells) + " |")
    body = (
        f"Each cell: median (min-max) of {args.repeats} whole-process runs after one warm-up"
        + (", alternating between the trees" if len(names) == 2 else "")
        + ". Each run: `zsbench run SPEC --force --quiet`, SPEC being one seed of "
        "`zsbench/specs/flo-efficientnet.yaml` restricted to one method with the `none` and "
        "`calibrated-stacking` calibrators. Wall time includes start-up; CPU time is user + system "
        "of the finished process. H is the test harmonic mean stored by the run.\n\n" + "\n".join(lines)
    )
    command = "ZSBENCH_DATA=../shared/data python benchmarks/perf_linear_flo.py --repeats " + str(args.repeats)
    if baseline:
        command = baseline.rerun(command)
    write_fragment("linear-flo", "Linear baselines on real FLO, whole processes", command, body,
                   torch.device("cpu"))


if __name__ == "__main__":
    main()
