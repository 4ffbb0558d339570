"""Calibration sweep speed: 1,000 alpha values over the FLO test set, vectorised vs a loop.

Scores come from a ridge map of the real FLO features onto the class embeddings, fitted on
trainval (../shared/data/flo); without that folder, random distances of the same shape
(2,558 test images x 102 classes) stand in, and the page says so.

    python benchmarks/perf_calibration.py [--device cpu|cuda] [--alphas 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from perfkit import SHARED_DATA, median_time, write_fragment

from zsbench import Scores
from zsbench.evaluation.calibration import sweep, sweep_loop
from zsbench.registry import get_registry


def flo_test_scores(device: torch.device) -> tuple[Scores, torch.Tensor, torch.Tensor, str]:
    flo = SHARED_DATA / "flo"
    if not (flo / "efficientnet_lite0.mat").exists():
        g = torch.Generator().manual_seed(0)
        labels = torch.randint(0, 102, (2558,), generator=g)
        return (Scores(torch.rand(2558, 102, generator=g).to(device), is_distance=True), labels,
                torch.arange(102) < 82, "random distances (../shared/data absent)")
    from scipy.io import loadmat

    feats = loadmat(flo / "efficientnet_lite0.mat")
    split = loadmat(flo / "att_splits.mat")
    x = torch.as_tensor(feats["features"].T, dtype=torch.float32)
    y = torch.as_tensor(feats["labels"].ravel().astype(np.int64) - 1)
    emb = torch.as_tensor(split["att"].T, dtype=torch.float32)
    loc = {k: torch.as_tensor(split[k].ravel().astype(np.int64) - 1) for k in ("trainval_loc", "test_seen_loc", "test_unseen_loc")}
    seen_cls = torch.unique(y[loc["trainval_loc"]])
    unseen_cls = torch.unique(y[loc["test_unseen_loc"]])
    classes = torch.cat([seen_cls, unseen_cls])
    xt = x[loc["trainval_loc"]]
    mu = xt.mean(0)
    w = torch.linalg.solve((xt - mu).T @ (xt - mu) + 10 * torch.eye(x.shape[1]), (xt - mu).T @ emb[y[loc["trainval_loc"]]])
    test = torch.cat([loc["test_seen_loc"], loc["test_unseen_loc"]])
    dist = torch.cdist((x[test] - mu) @ w, emb[classes])
    position = torch.full((102,), -1, dtype=torch.long)
    position[classes] = torch.arange(len(classes))
    return (Scores(dist.to(device), is_distance=True), position[y[test]], torch.arange(len(classes)) < len(seen_cls),
            "ridge-regression distances on the real FLO test set")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--alphas", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    scores, labels, seen, source = flo_test_scores(device)
    rescaling = get_registry().build("calibrator", "metric-rescaling", alpha_max=2.0, steps=args.alphas)
    params = rescaling.grid(torch.zeros(1))
    fast = sweep(scores, labels, seen, rescaling, params)
    slow = sweep_loop(scores, labels, seen, rescaling, params)
    assert torch.allclose(fast.H, slow.H), "vectorised and loop sweeps disagree"
    t_fast = median_time(lambda: sweep(scores, labels, seen, rescaling, params), args.repeats, sync=True)
    loop_repeats = max(1, args.repeats // 2)
    t_slow = median_time(lambda: sweep_loop(scores, labels, seen, rescaling, params), loop_repeats, warmup=0, sync=True)
    n, k = scores.values.shape
    body = f"""
Sweep of {args.alphas} alpha values over {n} test images x {k} classes ({source}); both
computations give identical u, s, H. Median of {args.repeats} runs (loop: {loop_repeats}, no warm-up).

| computation | time | per alpha |
|---|---:|---:|
| vectorised `zsbench.evaluation.calibration.sweep` | {t_fast * 1e3:.1f} ms | {t_fast / args.alphas * 1e6:.1f} µs |
| per-alpha Python loop (`sweep_loop`) | {t_slow * 1e3:.1f} ms | {t_slow / args.alphas * 1e6:.1f} µs |
| speed-up | {t_slow / t_fast:.0f}x | |
"""
    write_fragment("calibration", "Calibration sweep", f"python benchmarks/perf_calibration.py --device {device.type}", body, device)


if __name__ == "__main__":
    main()
