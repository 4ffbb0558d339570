"""GZSL baselines as zsbench method plugins: the linear-compatibility methods of Xian et al.'s
benchmark (ESZSL, ALE, SJE, DeViSE), the feature generators f-CLSWGAN and CADA-VAE, and a random
floor. Published numbers to compare against are in ``benchmarks/reported.yaml``."""

from __future__ import annotations

import zsbench
from zsbench_baselines.bilinear import ALE, SJE, DeViSE
from zsbench_baselines.cada_vae import CADAVAE
from zsbench_baselines.clswgan import FCLSWGAN
from zsbench_baselines.eszsl import ESZSL
from zsbench_baselines.random_floor import RandomProjection

METHODS = (ESZSL, ALE, SJE, DeViSE, FCLSWGAN, CADAVAE, RandomProjection)


@zsbench.hookimpl
def register_methods(register):
    for method in METHODS:
        register(method.name, method)
