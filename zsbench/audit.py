"""A no-peeking audit for any method: choices must not move when the test split is replaced.

For each method of a spec (first seed, first data set unless told), the validation stage runs
twice with the runner's own code (``runner.select_on_validation``): once on the data set, once on
a copy whose every test-split feature, label, image and text, and the side information of
test-only classes, is replaced (``poison_test_split``: random values, NaN or a shuffle). Any
choice that differs (the grid point, the calibration parameter, validation u/s/H, or any grid
point's validation H) means the method saw the test split. Then each fitted scorer scores the
validation evaluation set in other orders and chunkings: a scorer whose outputs change is
transductive (it uses the batch it scores, e.g. statistics of the evaluation features).

What it cannot see: a plugin that reads the data files from disk by itself.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import click
import numpy as np
import torch

from zsbench import protocol
from zsbench.errors import UserError
from zsbench.interfaces import DatasetBundle, EvalInputs
from zsbench.registry import Registry
from zsbench.spec import NO_CALIBRATION, CalibratorSpec, DatasetSpec, MethodSpec

POISONS = ("random", "nan", "shuffle")
NOISE_IMAGES = 8  # distinct noise images the replaced test images cycle through


# --------------------------------------------------------------------------- poisoning


def test_indices(bundle: DatasetBundle) -> np.ndarray:
    return np.union1d(bundle.splits.test_seen, bundle.splits.test_unseen)


def poison_test_split(bundle: DatasetBundle, kind: str = "random", seed: int = 0,
                      workdir: Path | None = None) -> DatasetBundle:
    """A copy of ``bundle`` with the test split replaced (``kind``: random, nan or shuffle):
    features, labels (shuffled within test_seen and within test_unseen), image files (noise images written to
    ``workdir``), texts, and the class embeddings of classes no validation instance belongs to."""
    if kind not in POISONS:
        raise UserError(f"poison {kind!r}: expected one of {', '.join(POISONS)}")
    rng = np.random.default_rng(seed + 7919)
    test = test_indices(bundle)
    changes: dict[str, Any] = {}
    labels = np.array(bundle.labels, copy=True)
    for part in (bundle.splits.test_seen, np.setdiff1d(bundle.splits.test_unseen, bundle.splits.test_seen)):
        labels[part] = labels[rng.permutation(part)]  # within each part: seen and unseen stay disjoint
    changes["labels"] = labels
    if bundle.features is not None:
        features = np.array(bundle.features, dtype=np.float32, copy=True)
        features[test] = _replace(features, test, kind, rng)
        changes["features"] = features
    if bundle.class_embeddings is not None:
        others = np.setdiff1d(np.arange(len(bundle.labels)), test)
        test_only = np.setdiff1d(np.arange(bundle.num_classes), np.unique(bundle.labels[others]))
        embeddings = np.array(bundle.class_embeddings, dtype=np.float32, copy=True)
        embeddings[test_only] = _replace(embeddings, test_only, kind, rng)
        changes["class_embeddings"] = embeddings
    if bundle.texts is not None:
        texts = list(bundle.texts)
        for i in test:
            texts[i] = tuple(_gibberish(rng) for _ in texts[i]) if kind != "shuffle" else texts[int(rng.choice(test))]
        changes["texts"] = tuple(texts)
    if bundle.image_files is not None:
        files = list(bundle.image_files)
        noise = _noise_images(workdir or Path(tempfile.mkdtemp(prefix="zsbench-audit-")), rng)
        for k, i in enumerate(test):
            files[i] = noise[k % len(noise)] if kind != "shuffle" else bundle.image_files[int(rng.choice(test))]
        changes["image_files"] = tuple(files)
    return attrs.evolve(bundle, **changes)


def _replace(values: np.ndarray, rows: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "nan":
        return np.full((len(rows), values.shape[1]), np.nan, dtype=values.dtype)
    if kind == "shuffle":
        return values[rng.permutation(rows)]
    scale = float(np.nanstd(values)) or 1.0  # far from the data: statistics that see it move
    return (rng.normal(size=(len(rows), values.shape[1])) * 10 * scale + 3 * scale).astype(values.dtype)


def _gibberish(rng: np.random.Generator) -> str:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return " ".join("".join(rng.choice(letters, size=rng.integers(2, 8))) for _ in range(rng.integers(5, 15)))


def _noise_images(folder: Path, rng: np.random.Generator) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(NOISE_IMAGES):
        path = folder / f"noise-{k}.png"
        Image.fromarray(rng.integers(0, 256, size=(256, 256, 3), dtype=np.uint8)).save(path)
        out.append(path)
    return out


# --------------------------------------------------------------------------- choices


def _choices(selection) -> dict[str, Any]:
    """Every choice of a validation stage, flat and named for messages."""
    out: dict[str, Any] = {}
    for name, (_, index, result) in selection.chosen.items():
        param, u, s, h = result.best()
        out[f"{name}: grid point"] = selection.points[index]
        if name != NO_CALIBRATION:
            out[f"{name}: calibration parameter"] = param
        out[f"{name}: validation u"], out[f"{name}: validation s"], out[f"{name}: validation H"] = u, s, h
    for i, per_calibrator in enumerate(selection.sweeps):
        for name, result in per_calibrator.items():
            out[f"{name}: validation H at grid point {selection.points[i] or 'defaults'}"] = result.best()[3]
    return out


def _same(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tolerance
    return a == b


def _subset(inputs: EvalInputs, idx: np.ndarray) -> EvalInputs:
    return EvalInputs(
        features=None if inputs.features is None else inputs.features[idx],
        image_files=None if inputs.image_files is None else tuple(inputs.image_files[i] for i in idx),
    )


def transduction_problems(scorer, inputs: EvalInputs, seed: int = 0, tolerance: float = 1e-4) -> list[str]:
    """Score ``inputs`` whole, reversed, shuffled and in uneven chunks (down to one instance);
    each must give every instance the same scores (to ``tolerance`` times the largest score)."""
    n = len(inputs)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        full = scorer.scores(inputs).values.detach().float().cpu()
        scale = tolerance * (1.0 + float(full.abs().max()))
        problems = []
        for what, order in (("reversed", np.arange(n)[::-1].copy()), ("shuffled", rng.permutation(n))):
            got = scorer.scores(_subset(inputs, order)).values.detach().float().cpu()
            if (diff := float((got - full[order]).abs().max())) > scale:
                problems.append(f"scores change when the evaluation set is {what} (max difference {diff:.3g})")
        cuts = sorted(c for c in {1, 3, n // 3, (2 * n) // 3} if 0 < c < n)
        chunks = np.split(np.arange(n), cuts)
        got = torch.cat([scorer.scores(_subset(inputs, c)).values.detach().float().cpu() for c in chunks])
        if (diff := float((got - full).abs().max())) > scale:
            sizes = ", ".join(str(len(c)) for c in chunks)
            problems.append(f"scores change when the evaluation set is scored in chunks of {sizes} (max difference {diff:.3g})")
    return problems


# --------------------------------------------------------------------------- audit


@attrs.frozen
class AuditResult:
    """One method's audit: empty ``problems`` means it passed."""

    method: str
    dataset: str
    seed: int
    problems: tuple[str, ...]
    checked: int  # choices compared

    @property
    def passed(self) -> bool:
        return not self.problems


def audit_method(task, registry: Registry, bundle: DatasetBundle, device: torch.device,
                 poisons: Sequence[str] = ("random",), tolerance: float = 1e-6) -> AuditResult:
    """Audit one task's method (see the module docstring)."""
    from zsbench.runner import build_calibrators, select_on_validation

    calibrators = build_calibrators(task, registry)
    inputs, _, _ = protocol.eval_inputs(bundle, protocol.validation_stage(bundle, task.seed))
    problems: list[str] = []

    def check_scorer(i: int, scorer) -> None:
        point = task.method.grid_points()[i] or "defaults"
        problems.extend(f"grid point {point}: {p}" for p in transduction_problems(scorer, inputs, task.seed))

    with tempfile.TemporaryDirectory(prefix="zsbench-audit-") as tmp:
        def select(data: DatasetBundle, name: str, on_fit=None):
            # A fresh cache folder per run: no checkpoint of one run may be resumed by the other.
            return select_on_validation(task, registry, data, device, Path(tmp) / name, False, calibrators, on_fit)

        reference = _choices(select(bundle, "reference", check_scorer))
        for kind in poisons:
            poisoned = poison_test_split(bundle, kind, task.seed, Path(tmp) / f"images-{kind}")
            try:
                moved = _choices(select(poisoned, kind))
            except Exception as exc:  # noqa: BLE001 - a validation stage that breaks on poisoned test data read it
                problems.append(f"the validation stage failed when the test split was replaced ({kind}): "
                                f"{type(exc).__name__}: {exc}")
                continue
            for choice, value in reference.items():
                if not _same(value, moved.get(choice), tolerance):
                    problems.append(f"{choice} moved when the test split was replaced ({kind}): "
                                    f"{value!r} -> {moved.get(choice)!r}")
    return AuditResult(task.method.label, task.dataset.label, task.seed, tuple(problems), len(reference))


def assert_no_peeking(method: str, bundle: DatasetBundle, *, options: dict[str, Any] | None = None,
                      grid: dict[str, list[Any]] | None = None, calibrators: Sequence[str] = (NO_CALIBRATION,),
                      seed: int = 0, registry: Registry | None = None, poisons: Sequence[str] = POISONS,
                      device: str = "cpu", tolerance: float = 1e-6) -> AuditResult:
    """For plugin authors' tests: audit method plugin ``method`` on ``bundle``; raises
    ``AssertionError`` naming the method and every choice that moved."""
    from zsbench.registry import get_registry
    from zsbench.runner import Task

    registry = registry or get_registry()
    entry = registry.get("method", method)
    spec = MethodSpec(method, entry.name, dict(options or {}),
                      dict(grid if grid is not None else getattr(entry.factory, "default_grid", {})),
                      tuple(CalibratorSpec(c) for c in calibrators))
    task = Task("audit", "", DatasetSpec(bundle.name, "in-memory", None, {}), spec, seed)
    result = audit_method(task, registry, bundle, torch.device(device), poisons, tolerance)
    if not result.passed:
        raise AssertionError(f"method {method!r} peeks at the test split or is transductive:\n- "
                             + "\n- ".join(result.problems))
    return result


# --------------------------------------------------------------------------- command


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--method", "methods", multiple=True, help="Only these method entries (by name; repeatable).")
@click.option("--seed", type=int, default=None, help="Seed to audit [default: the spec's first].")
@click.option("--poison", "poisons", multiple=True, type=click.Choice(POISONS),
              help="How the test split is replaced (repeatable) [default: random].")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--tolerance", type=float, default=1e-6, show_default=True, help="Largest allowed change of a number.")
@click.option("--threads", type=click.IntRange(min=0), default=1, show_default=True, help="torch CPU threads (0: default).")
@click.pass_context
def audit(ctx: click.Context, spec: str, methods: tuple[str, ...], seed: int | None, poisons: tuple[str, ...],
          device: str, tolerance: float, threads: int) -> None:
    """Check that no method of SPEC peeks at the test split or scores transductively."""
    import sys

    from zsbench.cli import _registry, console
    from zsbench.runner import load_dataset, plan, resolve_device
    from zsbench.spec import load_spec

    registry = _registry(ctx)
    parsed = load_spec(spec, registry)
    labels = {m.label for m in parsed.methods}
    if unknown := sorted(set(methods) - labels):
        raise UserError(f"{spec}: --method {', '.join(unknown)}: no such method entry; entries: {', '.join(sorted(labels))}")
    seed = parsed.seeds[0] if seed is None else seed
    if seed not in parsed.seeds:
        raise UserError(f"{spec}: --seed {seed} is not one of the spec's seeds {list(parsed.seeds)}")
    if threads:
        torch.set_num_threads(threads)
    chosen = resolve_device(device)
    tasks = [t for t in plan(parsed) if t.seed == seed and (not methods or t.method.label in methods)]
    bundles: dict[str, DatasetBundle] = {}
    failed = []
    for task in tasks:
        if task.dataset.label not in bundles:
            bundles[task.dataset.label] = load_dataset(task.dataset, registry)
        console.print(f"auditing {task.describe()} ...", highlight=False)
        result = audit_method(task, registry, bundles[task.dataset.label], chosen, poisons or ("random",), tolerance)
        if result.passed:
            console.print(f"[green]ok[/]: {task.describe()}: {result.checked} choices unchanged, scorer not transductive", highlight=False)
        else:
            failed.append(result)
            for problem in result.problems:
                console.print(f"[red]PEEKS[/]: {task.describe()}: {problem}", highlight=False)
    console.print(f"{len(tasks) - len(failed)} of {len(tasks)} method run(s) passed the audit")
    if failed:
        sys.exit(1)
