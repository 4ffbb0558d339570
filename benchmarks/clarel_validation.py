"""Validation-only CLAREL experiments on real FLO: how a setting changes validation u, s, H.

Uses the protocol's validation stage (train minus a seeded 20% hold-out, val_loc as unseen;
test images excluded), so settings can be explored without touching the test split.

    ZSBENCH_DATA=../shared/data python benchmarks/clarel_validation.py \\
        '{"steps": 1000, "embed_dim": 256, "text_encoder": {"name": "class-projection", "standardize": false}}' \\
        '{"steps": 1000, "embed_dim": 256}'
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from zsbench import RunContext
from zsbench.evaluation import protocol
from zsbench.evaluation.calibration import sweep
from zsbench.paths import dataset_root
from zsbench.registry import get_registry


def main() -> None:
    torch.set_num_threads(1)
    registry = get_registry()
    bundle = registry.build("dataset", "flo", root=dataset_root("flo"), features="efficientnet_lite0.mat", images=False)
    emb = torch.nn.functional.normalize(torch.as_tensor(bundle.class_embeddings), dim=1)
    cosine = emb @ emb.T
    off_diagonal = cosine[~torch.eye(len(emb), dtype=torch.bool)]
    print(f"class embeddings: mean pairwise cosine {float(off_diagonal.mean()):.2f}")
    stage = protocol.validation_stage(bundle, seed=0)
    fit = protocol.fit_data(bundle, stage)
    inputs, labels, seen = protocol.eval_inputs(bundle, stage)
    rescaling = registry.build("calibrator", "metric-rescaling", alpha_max=1.0, steps=201)
    for text in sys.argv[1:] or ['{"steps": 1000, "embed_dim": 256}']:
        options = {"eval_every": None, "checkpoint_every": None, **json.loads(text)}
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as cache:
            method = registry.build("method", "clarel", **options)
            context = RunContext(seed=0, device=torch.device("cpu"), cache_dir=Path(cache), show_progress=False,
                                 registry=registry)
            scores = method.fit(fit, context).scores(inputs)
        plain = sweep(scores, labels, seen, None)
        alpha, u, s, h = sweep(scores, labels, seen, rescaling).best()
        print(f"{text}\n  alpha=0: u={float(plain.u[0]):.3f} s={float(plain.s[0]):.3f} H={float(plain.H[0]):.3f}"
              f" | best alpha={alpha:.3f}: u={u:.3f} s={s:.3f} H={h:.3f} ({time.perf_counter() - start:.0f}s)")


if __name__ == "__main__":
    main()
