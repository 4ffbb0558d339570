"""The GPU paths, on a CUDA device (every test here is skipped without one).

``scripts/device-check.sh`` runs them on a lent GPU machine. They check what the CPU tests
cannot: that training, the calibration sweep and evaluation really run on the device, under
mixed precision, without host-device synchronisations inside training steps, and give the CPU's
decisions where the arithmetic is the same.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from support.baselines import FAST as BASELINES_FAST
from support.baselines import make_problem
from support.clarel import FAST as CLAREL_FAST
from support.clarel import SEEN, UNSEEN, top1_accuracy, word_problem

import zsbench
from zsbench.evaluation.calibration import sweep
from zsbench.interfaces import RunContext, Scores

# ZSBENCH_REQUIRE_CUDA (set by scripts/device-check.sh) turns "skipped" into failures, so a GPU
# machine whose torch cannot see its GPU does not pass by skipping everything.
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not torch.cuda.is_available() and not os.environ.get("ZSBENCH_REQUIRE_CUDA"),
        reason="no CUDA device",
    ),
]
CUDA = torch.device("cuda")
CPU = torch.device("cpu")
SMALL_TEXT = {"name": "cnn-lstm", "word_dim": 16, "filters": 8, "lstm_hidden": 16, "max_tokens": 8}


def _context(tmp_path, device: torch.device, seed: int = 0) -> RunContext:
    return RunContext(seed=seed, device=device, cache_dir=tmp_path, show_progress=False, registry=zsbench.get_registry())


@contextlib.contextmanager
def synchronisations():
    """Collects the messages of torch's CUDA sync debug mode for every synchronising call."""
    caught: list[str] = []
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield caught
        finally:
            torch.cuda.set_sync_debug_mode("default")
    caught.extend(str(r.message) for r in records if "synchroniz" in str(r.message).lower())


def test_calibration_sweep_on_the_gpu_equals_the_cpu():
    registry = zsbench.get_registry()
    generator = torch.Generator().manual_seed(0)
    n, k, seen = 2558, 102, 82  # FLO's test set
    labels = torch.randint(k, (n,), generator=generator)
    distances = torch.rand(n, k, generator=generator) + 0.3 * torch.nn.functional.one_hot(labels, k)
    seen_mask = torch.arange(k) < seen
    for name in ("metric-rescaling", "calibrated-stacking"):
        calibrator = registry.build("calibrator", name)
        cpu = sweep(Scores(distances, is_distance=True), labels, seen_mask, calibrator)
        gpu = sweep(Scores(distances.to(CUDA), is_distance=True), labels, seen_mask, calibrator)
        torch.testing.assert_close(gpu.params, cpu.params)
        # Same decisions up to float ties: per-class accuracies agree to one image in a class.
        torch.testing.assert_close(gpu.H, cpu.H, atol=0.02, rtol=0)


@pytest.mark.parametrize("texts", [False, True], ids=["class-level", "instance-text"])
def test_clarel_trains_on_the_gpu_under_bf16_and_scores_stay_there(tmp_path, texts):
    from zsbench_clarel.method import Clarel
    from zsbench_clarel.precision import amp_dtype

    assert amp_dtype(CUDA, True) == torch.bfloat16  # an H100/H200 has bf16: no loss scaling
    fit, features, labels = word_problem(texts=texts)
    options = dict(CLAREL_FAST, text_encoder=SMALL_TEXT) if texts else CLAREL_FAST
    scorer = Clarel(steps=300, **options).fit(fit, _context(tmp_path, CUDA))
    scores = scorer.scores(zsbench.EvalInputs(features=features))
    assert scores.values.device.type == "cuda" and torch.isfinite(scores.values).all()
    seen = labels < SEEN
    assert top1_accuracy(scorer, features[seen], labels[seen], list(range(SEEN))) > 0.6
    if not texts:  # the CPU test's bar for transfer to unseen classes (chance 1/3)
        unseen = list(range(SEEN, SEEN + UNSEEN))
        assert top1_accuracy(scorer, features[~seen], labels[~seen], unseen) > 0.6


@pytest.mark.parametrize("texts", [False, True], ids=["class-level", "instance-text"])
def test_clarel_training_steps_do_not_synchronise(tmp_path, texts):
    """The steps between two progress reports queue work and never wait for the GPU: a run of
    12 steps synchronises exactly as often as a run of 2 (its final report)."""
    from zsbench_clarel.method import Clarel, _Fit
    from zsbench_clarel.trainer import train

    fit, _, _ = word_problem(texts=texts)
    options = dict(CLAREL_FAST, text_encoder=SMALL_TEXT) if texts else CLAREL_FAST
    counts = {}
    for steps in (2, 12):
        method = Clarel(steps=steps, texts_per_image=2, **options).settings()
        context = _context(tmp_path, CUDA)
        run = _Fit(method, fit, context)
        generator = context.generator()
        assert generator.device.type == "cuda"
        with synchronisations() as caught:
            train(run.model, run.step_loss, method.train_config, device=CUDA, generator=generator)
        counts[steps] = caught
    assert len(counts[12]) == len(counts[2]), counts[12]


def test_a_cpu_checkpoint_is_not_resumed_on_the_gpu_and_a_gpu_one_is(tmp_path):
    from zsbench_clarel.method import Clarel

    fit, _, _ = word_problem()
    options = dict(CLAREL_FAST, steps=4, checkpoint_every=2, checkpoint_dir=str(tmp_path))
    Clarel(**options).fit(fit, _context(tmp_path, CPU))
    first = Clarel(**options).fit(fit, _context(tmp_path, CUDA))
    assert first.training.resumed_from == 0  # the CPU's random state means nothing here
    again = Clarel(**options).fit(fit, _context(tmp_path, CUDA))
    assert again.training.resumed_from == 4
    torch.testing.assert_close(again.prototypes, first.prototypes)


@pytest.mark.parametrize("name", sorted(BASELINES_FAST))
def test_baselines_fit_and_score_on_the_gpu(name):
    registry = zsbench.get_registry()
    problem = make_problem()
    method = registry.build("method", name, **BASELINES_FAST[name])
    context = RunContext(seed=0, device=CUDA, cache_dir=Path("/nonexistent"), show_progress=False)
    scores = method.fit(problem.fit, context).scores(problem.eval_inputs)
    assert scores.values.device.type == "cuda" and torch.isfinite(scores.values).all()
    if name in ("eszsl", "random"):  # no sampling on the device: the CPU's numbers
        on_cpu = registry.build("method", name, **BASELINES_FAST[name]).fit(
            problem.fit,
            RunContext(seed=0, device=CPU, cache_dir=Path("/nonexistent"), show_progress=False),
        )
        expected = on_cpu.scores(problem.eval_inputs).values
        torch.testing.assert_close(scores.values.cpu(), expected, rtol=1e-3, atol=1e-3)


def _images(folder, count: int = 6):
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"image{i}.png"
        Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_timm_extraction_on_the_gpu_matches_the_cpu(tmp_path):
    """float32 on the GPU gives the CPU's features; bf16 autocast stays close and is cached apart."""
    from zsbench_clarel.timm_image import TimmBackbone

    paths = _images(tmp_path)

    def extract(device, amp):
        context = zsbench.EncoderContext("image", 8, device=device)
        encoder = TimmBackbone(model="resnet18", feature_cache=str(tmp_path / "cache"), amp=amp).build(context)
        return encoder.extractor, encoder.prepare(paths)

    _, cpu = extract(CPU, True)  # amp has no effect on the CPU
    full_extractor, full = extract(CUDA, False)
    bf16_extractor, bf16 = extract(CUDA, True)
    assert full_extractor.folder == extract(CPU, False)[0].folder != bf16_extractor.folder
    assert full_extractor.last_hits == len(paths)  # the CPU's cached features, same precision
    assert bf16_extractor.last_hits == 0
    cosine = torch.nn.functional.cosine_similarity(bf16, cpu, dim=1)
    assert (cosine > 0.99).all(), cosine
    # Recomputed on the GPU in float32 (no cache): the CPU's numbers up to summation order.
    fresh = TimmBackbone(model="resnet18", feature_cache=str(tmp_path / "fresh"), amp=False).build(zsbench.EncoderContext("image", 8, device=CUDA)).prepare(paths)
    torch.testing.assert_close(fresh, cpu, rtol=1e-3, atol=1e-3)
    assert torch.equal(full, cpu)


def test_cli_run_on_the_gpu_records_the_device(tmp_path, monkeypatch):
    from support.cli import SMALL, write
    from support.cli import zsbench as cli

    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "cache"))
    spec = write(tmp_path, SMALL)
    db = tmp_path / "results.sqlite"
    result = cli("run", spec, "--results", db, "--device", "cuda", "--quiet")
    assert result.returncode == 0, result.stderr
    shown = cli("results", "--results", db, "--json")
    rows = json.loads(shown.stdout)
    assert rows and all(
        row["provenance"]["device"] == torch.cuda.get_device_name(0) for row in rows
    )
