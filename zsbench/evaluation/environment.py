"""The numeric environment a result was computed in, and the settings zsbench pins in it.

Trained methods are sensitive to the last bits of a matrix product (a WARP rank, an argmax or a
chosen epoch can flip), so a row is only comparable bit for bit with a rerun in the same numeric
environment: CPU vendor, model and SIMD flags (which kernels torch and the BLAS dispatch to),
torch's CPU capability and MKL's code branch, BLAS vendors and versions, thread counts and
torch's deterministic flag. ``environment()`` records them in every row's provenance and
``numeric_signature`` is the part two environments must share for results to be identical.

``pin_numerics`` removes what can be removed cheaply: one BLAS and OpenMP thread per task
(reduction order) and deterministic torch algorithms. MKL picks its kernels per CPU vendor and
instruction set, which is where results on Intel and AMD CPUs part; ``MKL_CBWR=COMPATIBLE`` in
the environment makes MKL take one code path on both, but its matrix products are 2.3 to 3.4
times slower here (docs/reproducibility.md), so it is left to the user and recorded.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from functools import cache
from pathlib import Path
from typing import Any

# mkl_cbwr.h: the branch query and the values it answers.
_MKL_CBWR_BRANCH = 1
_MKL_BRANCHES = {0: "OFF", 1: "OFF", 2: "AUTO", 3: "COMPATIBLE", 4: "SSE2", 6: "SSSE3", 7: "SSE4_1", 8: "SSE4_2",
                 9: "AVX", 10: "AVX2", 11: "AVX512_MIC", 12: "AVX512", 13: "AVX512_MIC_E1", 14: "AVX512_E1"}
# CPU flags that change which kernels torch, MKL or OpenBLAS dispatch to.
_DISPATCH_FLAGS = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512", "amx", "asimd", "sve", "neon")
# Environment variables that change kernels or threads.
_SETTINGS = ("MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "MKL_NUM_THREADS", "OMP_NUM_THREADS",
             "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "ATEN_CPU_CAPABILITY", "MKL_DEBUG_CPU_TYPE")


def pin_numerics() -> None:
    """Fix what makes reruns differ on one machine besides torch's thread count (the backends
    set it): the BLAS pools numpy and scipy use get one thread, so their reduction
    order never depends on the cores a machine has, and torch runs deterministic algorithms."""
    import torch
    from threadpoolctl import threadpool_limits

    # BLAS pools only: an OpenMP limit would also cap torch's intra-op pool, which --threads sets.
    threadpool_limits(1, user_api="blas")
    # warn_only: an op without a deterministic CPU kernel still runs (none of the built-in
    # methods uses one), with a warning rather than a failed run. Not through
    # torch.use_deterministic_algorithms: it imports torch._inductor, which fails in a Ray worker
    # that has torch._dynamo half imported ("module 'torch._dynamo' has no attribute 'utils'"),
    # and every retry of the task after it. Inductor's own flag is set only where it is loaded
    # already; zsbench compiles nothing.
    torch._C._set_deterministic_algorithms(True, warn_only=True)
    inductor = sys.modules.get("torch._inductor.config")
    if inductor is not None:
        inductor.deterministic = True


@cache
def _cpu() -> dict[str, Any]:
    info: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("vendor_id", "model name", "cpu family", "model", "flags", "Features") and key not in info:
                info[key] = value.strip()
    flags = (info.get("flags") or info.get("Features") or "").split()
    return {
        "machine": platform.machine(),
        "vendor": info.get("vendor_id", ""),
        "model": info.get("model name") or platform.processor() or "",
        "family": info.get("cpu family", ""),
        "model_number": info.get("model", ""),
        "flags": sorted(f for f in flags if f.startswith(_DISPATCH_FLAGS)),
        "cores": os.cpu_count(),
    }


def _mkl() -> dict[str, Any] | None:
    """MKL as linked into torch (threadpoolctl does not see it: it is linked statically)."""
    import torch

    if not torch.backends.mkl.is_available():
        return None
    try:
        lib = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        buffer = ctypes.create_string_buffer(256)
        lib.MKL_Get_Version_String(buffer, len(buffer))
        branch = lib.mkl_serv_cbwr_get(_MKL_CBWR_BRANCH)
    except (OSError, AttributeError):  # another platform or build: MKL is there, its details are not
        return {"version": "?", "branch": "?"}
    return {"version": buffer.value.decode(errors="replace").strip(), "branch": _MKL_BRANCHES.get(branch, str(branch))}


def environment() -> dict[str, Any]:
    """JSON-able record of the numeric environment of this process (see the module docstring)."""
    import numpy as np
    import torch
    from threadpoolctl import threadpool_info

    return {
        "cpu": _cpu(),
        "torch": {
            "version": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "mkl": _mkl(),
            "mkldnn": torch.backends.mkldnn.is_available(),
        },
        "numpy": np.__version__,
        "blas": sorted(
            ({k: pool.get(k) for k in ("internal_api", "version", "architecture", "threading_layer", "num_threads")}
             for pool in threadpool_info()),
            key=lambda pool: (pool["internal_api"], str(pool["version"])),
        ),
        "settings": {k: os.environ[k] for k in _SETTINGS if k in os.environ},
    }


def numeric_signature(env: dict[str, Any]) -> dict[str, Any]:
    """What two environments must share for a rerun to give the same bits: everything recorded
    except the core count (threads are recorded, and pinned, separately)."""
    return {**env, "cpu": {k: v for k, v in env.get("cpu", {}).items() if k != "cores"}}


def environment_differences(recorded: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """Where two environments' numeric signatures differ, as ``path: recorded -> current``
    (empty: a rerun here should give the same bits)."""
    if not recorded:
        return ["no environment recorded (a row from an older zsbench)"]

    def flat(value: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(value, dict):
            return {k: v for key, sub in value.items() for k, v in flat(sub, f"{prefix}{key}.").items()}
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            return {k: v for i, sub in enumerate(value) for k, v in flat(sub, f"{prefix}{i}.").items()}
        return {prefix.rstrip("."): value}

    old, new = flat(numeric_signature(recorded)), flat(numeric_signature(current))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]
