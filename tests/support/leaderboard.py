"""Made-up leaderboard rows: two methods and a swept one, calibrated and not, over three seeds,
with distinct seed-dependent numbers so every mean and CI on a page differs."""

from __future__ import annotations

import numpy as np

from zsbench.store.sqlite import ResultRow

SEEDS = (0, 1, 2)
METHODS = ("alpha-net", "beta-map")
CALIBRATORS = ("none", "metric-rescaling")


def accuracy(method: str, calibrator: str, seed: int, metric: str, kappa: float | None = None) -> float:
    """Distinct, seed-dependent numbers, so every mean and CI in a page differs."""
    base = {"alpha-net": 0.40, "beta-map": 0.55}.get(method, 0.30)
    shift = {"u": 0.0, "s": 0.12, "zsl": 0.05}[metric] + (0.08 if calibrator != "none" else 0.0)
    return base + shift + 0.013 * seed**2 + (0.1 * kappa if kappa is not None else 0.0)


def ausuc_of(method: str, seed: int) -> float:
    return {"alpha-net": 0.30, "beta-map": 0.41}.get(method, 0.2) + 0.02 * seed


def oracle_of(method: str, seed: int) -> float:
    return {"alpha-net": 0.61, "beta-map": 0.72}.get(method, 0.5) - 0.03 * seed**2


def curve(seed: int, steps: int, offset: float) -> dict[str, list[float]]:
    params = np.linspace(0, 1, steps)
    u = np.minimum(0.2 + 0.5 * params + 0.01 * seed + offset, 1.0)  # an accuracy: at most 1
    s = 0.8 - 0.4 * params**2
    return {"params": params.tolist(), "u": u.tolist(), "s": s.tolist(), "H": (2 * u * s / (u + s)).tolist()}


def row(method: str, calibrator: str, seed: int, dataset: str = "Flowers", kappa: float | None = None) -> ResultRow:
    u, s, zsl = (accuracy(method, calibrator, seed, m, kappa) for m in ("u", "s", "zsl"))
    label = method if kappa is None else f"{method}[loss.kappa={kappa}]"
    curves = {}
    if calibrator != "none":  # seeds 0 and 1 share a grid; seed 2 swept a different one
        offset = accuracy(method, calibrator, seed, "u") - 0.4
        curves = {split: curve(seed, 11 if seed < 2 else 7, offset) for split in ("validation", "test")}
    return ResultRow(
        run_key=f"key-{label}-{seed}",
        spec_name="unit",
        spec_hash="abc123",
        dataset=dataset,
        dataset_plugin="flo",
        method=label,
        method_plugin=method,
        calibrator=calibrator,
        seed=seed,
        u=u,
        s=s,
        H=2 * u * s / (u + s),
        zsl=zsl,
        val_u=u,
        val_s=s,
        val_H=2 * u * s / (u + s) - (0.2 if method == "beta-map" and calibrator != "none" else 0.0),
        calibration_param=None if calibrator == "none" else 0.1 * (seed + 1),
        hyperparameters={"ridge": 1.0 if seed < 2 else 10.0},
        sweep={} if kappa is None else {"loss.kappa": kappa},
        side_information="class embeddings (att, 1024-d)",
        features="efficientnet_lite0",
        wall_time=1.0,
        provenance={"zsbench": "0.1.0", "torch": "2.14.1", "device": "cpu", "run_key": f"key-{label}-{seed}",
                    "checksum": "deadbeefcafe0123", "data": {"att_splits.mat": "sha256:0123abcd"},
                    "config": {"seed": seed}},
        curves=curves,
        ausuc=ausuc_of(method, seed),
        oracle_H=None if calibrator == "none" else oracle_of(method, seed),
    )
