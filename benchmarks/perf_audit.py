"""How long `zsbench audit` takes on a published spec (default: the real FLO spec, every built-in
method entry, seed 0): wall time, CPU time of the whole process tree, and the machine's load while
it ran, written to docs/perf/audit-cpu.md (docs/audit.md includes it).

    ZSBENCH_DATA=../shared/data python benchmarks/perf_audit.py [--spec zsbench/specs/flo-efficientnet.yaml]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from perfkit import SHARED_DATA, write_fragment

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="zsbench/specs/flo-efficientnet.yaml")
    args = parser.parse_args()
    zsbench = shutil.which("zsbench", path=str(Path(sys.executable).parent)) or "zsbench"
    env = {**os.environ, "ZSBENCH_DATA": str(SHARED_DATA)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run([zsbench, "audit", args.spec], cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = max(load, os.getloadavg()[0])
    if done.returncode not in (0, 1):  # 1: a method peeked, which is still a measured audit
        sys.exit(f"error: zsbench audit failed:\n{done.stderr}")
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    verdict = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    body = (f"| spec | wall | CPU (user + system) | load average (1 min, largest seen) | result |\n"
            f"| --- | ---: | ---: | ---: | --- |\n"
            f"| `{args.spec}` | {wall:.0f} s | {user + system:.0f} s ({user:.0f} + {system:.0f}) | {load:.1f} | {verdict} |")
    write_fragment("audit", "zsbench audit of a published spec, seed 0, `--poison random`",
                   f"ZSBENCH_DATA=../shared/data python benchmarks/perf_audit.py --spec {args.spec}", body,
                   torch.device("cpu"))


if __name__ == "__main__":
    main()
