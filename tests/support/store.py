"""A made-up result row, for tests of the store and of what reads it."""

from __future__ import annotations

from zsbench.store.sqlite import ResultRow


def row(key="k1", calibrator="none", **over) -> ResultRow:
    base = dict(
        run_key=key, spec_name="s", spec_hash="h", dataset="toy", dataset_plugin="toy", method="m",
        method_plugin="m", calibrator=calibrator, seed=0, u=0.5, s=0.6, H=0.0, zsl=0.7, val_u=0.4,
        val_s=0.5, val_H=0.44, calibration_param=None, hyperparameters={"ridge": 1.0}, sweep={},
        side_information="emb", features="toy", wall_time=1.0, provenance={"torch": "x", "config": {"run": key}},
        curves={"validation": {"params": [0.0, 1.0], "u": [0.1, 0.2], "s": [0.3, 0.4], "H": [0.2, 0.3]}},
    )
    base.update(over)
    if "H" not in over:  # a row's H is the harmonic mean of its u and s
        base["H"] = 2 * base["u"] * base["s"] / (base["u"] + base["s"])
    return ResultRow(**base)
