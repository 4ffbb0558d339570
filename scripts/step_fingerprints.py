"""Fingerprints of ALE's training on real FLO (lr 10, seed 0, validation stage), step by step:
initial weights, inputs, the class coordinates, the first gradient, the weights after some steps
and epochs. Run it under different settings (MKL_CBWR, ATEN_CPU_CAPABILITY) and compare outputs
to see at which step two environments part (docs/reproducibility.md). Needs $ZSBENCH_DATA."""

import hashlib
import json
import sys
from pathlib import Path

import torch
import yaml
from zsbench_baselines import inputs
from zsbench_baselines.ranking_losses import ale_loss
from zsbench_baselines.side_info import span_basis
from zsbench_baselines.training import minibatches, seeded

import zsbench
from zsbench.evaluation import protocol
from zsbench.evaluation.environment import environment, pin_numerics
from zsbench.registry import get_registry
from zsbench.runner.grid import load_dataset
from zsbench.spec import parse_spec

SPEC = Path(__file__).resolve().parents[1] / "benchmarks" / "flo-efficientnet.yaml"


def fingerprint(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()[:12]


def main() -> dict[str, str]:
    torch.set_num_threads(1)
    pin_numerics()
    out = {}
    # Initial weights come from torch's own kernels (no BLAS).
    out["init_linear"] = fingerprint(seeded(lambda: torch.nn.Linear(1280, 512), 0, torch.device("cpu")).weight)
    registry = get_registry()
    spec = parse_spec(yaml.safe_load(SPEC.read_text()), str(SPEC), registry)
    bundle = load_dataset(spec.datasets[0], registry)
    data = protocol.fit_data(bundle, protocol.validation_stage(bundle, 0), "auto")
    context = zsbench.RunContext(seed=0, device=torch.device("cpu"), cache_dir=None, stage="validation", show_progress=False)
    _, x, y, classes = inputs.training_set("ale", data, torch.device("cpu"), "l2", "l2")
    basis = span_basis(classes[: data.classes.num_seen])
    seen = classes[: data.classes.num_seen] @ basis
    out |= {"inputs": fingerprint(x), "basis": fingerprint(basis), "seen_coords": fingerprint(seen)}
    v = torch.zeros(x.shape[1], seen.shape[1], requires_grad=True)
    optimizer = torch.optim.SGD([v], lr=10.0, momentum=0.9)
    generator, step = context.generator(), 0
    for epoch in range(1, 4):
        for idx in minibatches(len(x), 256, generator):
            loss = ale_loss(x[idx] @ v @ seen.T, y[idx], 1.0).mean()
            optimizer.zero_grad()
            loss.backward()
            if step == 0:
                out["first_grad"] = fingerprint(v.grad)
            optimizer.step()
            step += 1
            if step in (1, 2, 10, 100):
                out[f"v_step{step}"] = fingerprint(v)
        out[f"v_epoch{epoch}"] = fingerprint(v)
    env = environment()["torch"]
    return out | {"mkl": env["mkl"]["branch"] if env["mkl"] else None, "cpu_capability": env["cpu_capability"]}


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
