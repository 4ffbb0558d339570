"""CPU time of float32 matrix products of the sizes the benchmarked methods compute, on torch's
MKL with one thread. Run it under MKL_CBWR=AUTO and MKL_CBWR=COMPATIBLE to see what MKL's
vendor-independent branch costs (docs/reproducibility.md)."""

import time

import torch

from zsbench.evaluation.environment import environment

SHAPES = [(256, 1280, 512), (256, 512, 82), (1000, 1280, 102), (64, 1024, 64)]


def microseconds(m: int, k: int, n: int, generator: torch.Generator) -> float:
    a, b = torch.randn(m, k, generator=generator), torch.randn(k, n, generator=generator)
    for _ in range(3):
        a @ b
    reps = max(3, int(2e9 / (2 * m * k * n)))
    start = time.process_time()
    for _ in range(reps):
        a @ b
    return round((time.process_time() - start) / reps * 1e6, 1)


if __name__ == "__main__":
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    times = {f"{m}x{k}x{n}": microseconds(m, k, n, generator) for m, k, n in SHAPES}
    print(environment()["torch"]["mkl"]["branch"], times, "us of CPU time per product")
