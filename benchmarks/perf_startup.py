"""Start-up of the ``zsbench`` command, timed as whole processes over repeated runs.

``--help``, ``validate zsbench/specs/demo.yaml`` and ``plugins`` are timed from process start to
exit; ``run`` from process start to its first fit, which a probe method (installed for the
measurement only, from a temporary folder on PYTHONPATH) stamps and then ends the process. The
probe's spec loads a small synthetic data set, written during the warm-up run.

    python benchmarks/perf_startup.py [--repeats 7] [--baseline DIR]

``--baseline DIR`` also times an older checkout (e.g. ``git worktree add /tmp/old f1c3d07``),
run through the same installed console script with ``PYTHONPATH=DIR:DIR/plugins``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch
from perfkit import Baseline, write_fragment

ROOT = Path(__file__).resolve().parents[1]
ZSBENCH = str(Path(sys.executable).parent / "zsbench")
TARGETS = {"--help": 0.5, "validate": 0.5, "plugins": 1.0, "run": 2.0}

PROBE = textwrap.dedent('''
    """Stamps the wall clock at its first fit, then ends the process (benchmark only)."""
    import os, time

    import zsbench


    def first_fit_probe():
        """Start-up probe."""
        return Probe()


    class Probe:
        def fit(self, data, context):
            with open(os.environ["ZSBENCH_PROBE_STAMP"], "w") as f:
                f.write(repr(time.time()))
            os._exit(0)


    @zsbench.hookimpl
    def register_methods(register):
        register("first-fit-probe", first_fit_probe)
''')

SPEC = """
name: startup-probe
seeds: 1
device: cpu
datasets:
  - name: synthetic
    num_classes: 15
    per_class: 20
    text: none
    images: false
methods:
  - name: probe
    method: first-fit-probe
    grid: {}
    calibrators: [none]
"""


def install_probe(folder: Path) -> None:
    folder.mkdir()
    (folder / "zsbench_startup_probe.py").write_text(PROBE)
    dist = folder / "zsbench_startup_probe-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: zsbench-startup-probe\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[zsbench]\nstartup_probe = zsbench_startup_probe\n")


def timed(args: list[str], env: dict[str, str], stamp: Path | None) -> float:
    """Seconds from just before the process starts to its exit (or to the probe's stamp)."""
    if stamp is not None:
        stamp.unlink(missing_ok=True)
    start_wall, start = time.time(), time.perf_counter()
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    if stamp is None:
        return elapsed
    return float(stamp.read_text()) - start_wall


def measure(label: str, args: list[str], env: dict[str, str], repeats: int, stamp: Path | None) -> list[float]:
    timed(args, env, stamp)  # warm-up: disk caches, and the run's synthetic data set
    times = [timed(args, env, stamp) for _ in range(repeats)]
    print(f"{label}: median {statistics.median(times):.3f} s over {repeats}", file=sys.stderr)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline", type=Path, default=None, help="an older checkout to time the same way")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        install_probe(tmp / "probe")
        (tmp / "probe.yaml").write_text(SPEC)
        stamp = tmp / "stamp"
        commands = {
            "--help": ([ZSBENCH, "--help"], None),
            "validate": ([ZSBENCH, "validate", "zsbench/specs/demo.yaml"], None),
            "plugins": ([ZSBENCH, "plugins"], None),
            "run": ([ZSBENCH, "run", str(tmp / "probe.yaml"), "--results", str(tmp / "r.sqlite"), "--force",
                     "--quiet"], stamp),
        }
        baseline = Baseline(args.baseline) if args.baseline else None
        trees = {"this checkout": str(tmp / "probe")}
        if baseline:
            trees[baseline.label] = baseline.pythonpath(tmp / "probe")
        results: dict[str, dict[str, list[float]]] = {}
        for tree, path in trees.items():
            env = {**os.environ, "PYTHONPATH": path, "ZSBENCH_DATA": str(tmp / "data"),
                   "ZSBENCH_CACHE": str(tmp / "cache"), "ZSBENCH_PROBE_STAMP": str(stamp)}
            results[tree] = {name: measure(f"{tree}: {name}", argv, env, args.repeats, st)
                             for name, (argv, st) in commands.items()}

    header = "| command | target | " + " | ".join(f"{t}: median (min-max)" for t in results) + " | met |"
    lines = [header, "|" + " --- |" * (3 + len(results))]
    for name, target in TARGETS.items():
        shown = "`zsbench run` to its first fit" if name == "run" else f"`zsbench {name}`"
        cells = [f"{statistics.median(r[name]):.2f} s ({min(r[name]):.2f}-{max(r[name]):.2f})" for r in results.values()]
        met = "yes" if statistics.median(results["this checkout"][name]) < target else "no"
        lines.append(f"| {shown} | < {target:g} s | " + " | ".join(cells) + f" | {met} |")
    body = (
        f"Whole processes, {args.repeats} runs each after one warm-up, timed with `time.perf_counter` "
        "around the subprocess (the run: to the wall-clock stamp of its first fit). "
        "`validate` checks zsbench/specs/demo.yaml.\n\n" + "\n".join(lines)
    )
    command = f"python benchmarks/perf_startup.py --repeats {args.repeats}"
    if baseline:
        command = baseline.rerun(command)
    write_fragment("startup", "CLI start-up", command, body, torch.device("cpu"))


if __name__ == "__main__":
    main()
