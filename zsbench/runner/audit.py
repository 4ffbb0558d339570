"""A no-peeking audit for any method: choices and models must not move when the test split is replaced.

For the tasks of a spec (first seed unless told), the runner's own stages run in fresh processes
(``zsbench.runner.audit_worker``): once on the data set, once per poisoned copy, in which every test-split
feature, label, image and text, and the side information of test-only classes, is replaced
(``poison_test_split``: random values, NaN or a shuffle), and whose data folder is a copy where
only the images of non-test instances are linked and every other file is replaced by random
bytes. Each process has its own cache and temporary folders, so neither memory nor files carry
anything from one run to the other. A task fails the audit when any validation choice differs
(the grid point, the calibration parameter, validation u/s/H, any grid point's validation H),
when the test-stage model of a chosen grid point scores the validation evaluation set differently
(the test stage's fit and its first scored batch must not depend on the test split), or when a
scorer's outputs depend on the batch it scores (transduction).

What it cannot see: a plugin that opens files by an absolute path of its own, outside the data
folder it is given; state an in-process component (sent to the processes by value) held in the
calling process before the audit, which every process receives alike.
"""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from zsbench.errors import UserError
from zsbench.interfaces import DatasetBundle, EvalInputs
from zsbench.registry import Registry
from zsbench.runner.audit_worker import Job
from zsbench.spec import NO_CALIBRATION, CalibratorSpec, DatasetSpec, MethodSpec

POISONS = ("random", "nan", "shuffle")
NOISE_IMAGES = 8  # distinct noise images the replaced test images cycle through


# --------------------------------------------------------------------------- poisoning


def test_indices(bundle: DatasetBundle) -> np.ndarray:
    return np.union1d(bundle.splits.test_seen, bundle.splits.test_unseen)


def poison_test_split(bundle: DatasetBundle, kind: str = "random", seed: int = 0,
                      workdir: Path | None = None, side_information: bool = True) -> DatasetBundle:
    """A copy of ``bundle`` with the test split replaced (``kind``: random, nan or shuffle):
    features, labels (shuffled within test_seen and within test_unseen), image files (noise images
    written to ``workdir``) and, with ``side_information``, texts, their per-image caption
    embeddings and the class embeddings of classes no validation instance belongs to (the test
    stage may use those: they are left for it; so are, with unscored caption prototypes, the unseen
    test images' labels, which say whose held-out captions describe each unseen class)."""
    if kind not in POISONS:
        raise UserError(f"poison {kind!r}: expected one of {', '.join(POISONS)}")
    rng = np.random.default_rng(seed + 7919)
    test = test_indices(bundle)
    changes: dict[str, Any] = {}
    labels = np.array(bundle.labels, copy=True)
    parts = [bundle.splits.test_seen, np.setdiff1d(bundle.splits.test_unseen, bundle.splits.test_seen)]
    if not side_information and _unscored_prototypes(bundle):
        parts = parts[:1]  # which unseen images are a class's decide its held-out captions: side information
    for part in parts:
        labels[part] = labels[rng.permutation(part)]  # within each part: seen and unseen stay disjoint
    changes["labels"] = labels
    if bundle.features is not None:
        features = np.array(bundle.features, dtype=np.float32, copy=True)
        features[test] = _replace(features, test, kind, rng)
        changes["features"] = features
    if side_information and bundle.class_embeddings is not None:
        others = np.setdiff1d(np.arange(len(bundle.labels)), test)
        test_only = np.setdiff1d(np.arange(bundle.num_classes), np.unique(bundle.labels[others]))
        embeddings = np.array(bundle.class_embeddings, dtype=np.float32, copy=True)
        embeddings[test_only] = _replace(embeddings, test_only, kind, rng)
        changes["class_embeddings"] = embeddings
    if side_information and bundle.texts is not None:
        texts = list(bundle.texts)
        for i in test:
            texts[i] = tuple(_gibberish(rng) for _ in texts[i]) if kind != "shuffle" else texts[int(rng.choice(test))]
        changes["texts"] = tuple(texts)
    if side_information and bundle.caption_embeddings is not None:  # computed from the texts, once per image
        captions = np.array(bundle.caption_embeddings, dtype=np.float32, copy=True)
        captions[test] = _replace(captions, test, kind, rng)
        changes["caption_embeddings"] = captions
    if bundle.image_files is not None:
        files = list(bundle.image_files)
        noise = _noise_images(workdir or Path(tempfile.mkdtemp(prefix="zsbench-audit-")), rng)
        for k, i in enumerate(test):
            files[i] = noise[k % len(noise)] if kind != "shuffle" else bundle.image_files[int(rng.choice(test))]
        changes["image_files"] = tuple(files)
    return attrs.evolve(bundle, **changes)


def _unscored_prototypes(bundle: DatasetBundle) -> bool:
    """Whether the test stage describes each unseen class by the captions of a held-out part of its
    test images (``prototype_captions: unscored``): their class labels are then the class side
    information the test stage may use, not something it scores."""
    has_captions = bundle.texts is not None or bundle.caption_embeddings is not None
    return has_captions and bundle.prototype_captions == "unscored"


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


# --------------------------------------------------------------------------- comparisons


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


def poisoned_data_folder(root: Path, bundle: DatasetBundle, out: Path) -> None:
    """A copy of data folder ``root`` at ``out`` holding no test information: the image files of
    non-test instances are linked, every other file is replaced by random bytes of its size."""
    test = set(test_indices(bundle).tolist())
    clean = {Path(f).resolve() for i, f in enumerate(bundle.image_files or ()) if i not in test}
    rng = np.random.default_rng(0)
    for folder, _, files in os.walk(root, followlinks=True):
        target = out / Path(folder).relative_to(root)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            source = Path(folder, name)
            if source.resolve() in clean:
                (target / name).symlink_to(source.resolve())
                continue
            with open(target / name, "wb") as f:
                left = source.stat().st_size
                while left > 0:
                    f.write(rng.bytes(min(left, 1 << 22)))
                    left -= 1 << 22


# --------------------------------------------------------------------------- audit


@attrs.frozen
class AuditResult:
    """One method's audit: empty ``problems`` and no ``error`` means it passed; ``error`` is
    why the method itself failed (it raised, or ended its process) on the unpoisoned data."""

    method: str
    dataset: str
    seed: int
    problems: tuple[str, ...]
    checked: int  # choices and test-stage models compared
    error: str | None = None

    @property
    def passed(self) -> bool:
        return not self.problems and self.error is None


def _child_env(workdir: Path, data_home: Path | None) -> dict[str, str]:
    """A fresh cache and temporary folder, and the poisoned data home when there is one; the
    modules the audit's registry came from stay importable."""
    for name in ("cache", "tmp"):
        (workdir / name).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ZSBENCH_CACHE=str(workdir / "cache"), TMPDIR=str(workdir / "tmp"),
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    if data_home is not None:
        env["ZSBENCH_DATA"] = str(data_home)
    return env


def _run_child(job: Job, workdir: Path, data_home: Path | None) -> list[dict[str, Any]]:
    """Run ``job`` in fresh processes until each task has a result per stage; a process that dies
    fails what it was on and a new one takes the rest. Per task: the validation result, with the
    test stage's ``probes`` added, or ``error``."""
    out = workdir / "out"
    out.mkdir(parents=True)
    job_path = workdir / "job.pkl"
    job_path.write_bytes(pickle.dumps(job))
    env = _child_env(workdir, data_home)
    while True:
        (out / "current").unlink(missing_ok=True)
        code = subprocess.run([sys.executable, "-m", "zsbench.runner.audit_worker", str(job_path), str(out)],
                              env=env, stdin=subprocess.DEVNULL, check=False).returncode
        if code == 0:
            break
        if not (out / "current").exists():  # it died before any method ran: the same would happen again
            raise UserError(f"the audit's worker process ended (exit code {code}) before auditing any method; "
                            "see the messages above")
        (out / f"{(out / 'current').read_text()}.pkl").write_bytes(pickle.dumps(
            {"error": f"the method ended the audit's process (exit code {code})"}))
    results = []
    for i in range(len(job.tasks)):
        result = pickle.loads((out / f"validation-{i}.pkl").read_bytes())
        if job.test_bundle is not None and not result.get("error"):
            test = pickle.loads((out / f"test-{i}.pkl").read_bytes())
            result = test if test.get("error") else {**result, **test}
        results.append(result)
    return results


def _compare(reference: dict[str, Any], moved: dict[str, Any], kind: str, tolerance: float) -> list[str]:
    if moved.get("error"):
        return [f"the method failed when the test split was replaced ({kind}): {moved['error']}"]
    problems = [f"{choice} moved when the test split was replaced ({kind}): {value!r} -> {moved['choices'].get(choice)!r}"
                for choice, value in reference["choices"].items()
                if not _same(value, moved["choices"].get(choice), tolerance)]
    for point, scores in reference.get("probes", {}).items():
        if point not in moved.get("probes", {}):
            continue  # not chosen under poisoning (reported above), or no test stage for this poison
        scale = tolerance * (1.0 + float(np.abs(scores).max()))
        if (diff := float(np.abs(moved["probes"][point] - scores).max())) > scale:
            problems.append(f"the test-stage model at grid point {point} changed when the test split was "
                            f"replaced ({kind}): its validation scores moved by up to {diff:.3g}")
    return problems


def audit_tasks(tasks: Sequence[Any], registry: Registry, bundle: DatasetBundle, device: str = "cpu",
                poisons: Sequence[str] = ("random",), tolerance: float = 1e-6, threads: int = 1,
                data_root: Path | None = None) -> list[AuditResult]:
    """Audit ``tasks`` (one data set ``bundle``, one seed) as the module docstring says; the data
    set is poisoned once per kind and every task reuses it. ``data_root`` is the data set's
    folder, copied without its test information for the poisoned runs."""
    from zsbench.runner.backends.ray import plugin_refs

    seed = tasks[0].seed
    job = Job(bundle, bundle, tuple(tasks), plugin_refs(registry), registry.strict, device, threads, transduction=True)
    with tempfile.TemporaryDirectory(prefix="zsbench-audit-") as tmp:
        runs = {"reference": (job, Path(tmp) / "reference", None)}
        for kind in poisons:
            folder = Path(tmp) / kind
            poisoned = poison_test_split(bundle, kind, seed, folder / "images")
            # The test stage keeps the class side information; NaN test inputs give NaN test scores.
            test_bundle = None if kind == "nan" else poison_test_split(bundle, kind, seed, folder / "images",
                                                                       side_information=False)
            data_home = folder / "data"
            data_home.mkdir(parents=True)
            if data_root is not None and data_root.is_dir():
                poisoned_data_folder(data_root, bundle, data_home / tasks[0].dataset.plugin)
            runs[kind] = (attrs.evolve(job, bundle=poisoned, test_bundle=test_bundle, transduction=False),
                          folder, data_home)
        # Independent processes: side by side, so that the audit takes about one run on two cores.
        with ThreadPoolExecutor(max_workers=len(runs)) as pool:
            futures = {name: pool.submit(_run_child, *run) for name, run in runs.items()}
            outputs = {name: future.result() for name, future in futures.items()}
    reference = outputs.pop("reference")
    moved = outputs
    results = []
    for i, task in enumerate(tasks):
        ref = reference[i]
        problems: list[str] = []
        if not ref.get("error"):
            problems.extend(ref["transduction"])
            for kind in poisons:
                problems.extend(_compare(ref, moved[kind][i], kind, tolerance))
        checked = 0 if ref.get("error") else len(ref["choices"]) + len(ref["probes"])
        results.append(AuditResult(task.method.label, task.dataset.label, task.seed, tuple(problems), checked,
                                   ref.get("error")))
    return results


def audit_spec(spec: Any, registry: Registry, methods: Sequence[str] = (), seed: int | None = None,
               poisons: Sequence[str] = ("random",), device: str = "cpu", tolerance: float = 1e-6,
               threads: int = 1, on_start: Callable[[Any], None] | None = None) -> Iterator[tuple[Any, AuditResult]]:
    """Audit the method entries of parsed spec ``spec`` (those labelled in ``methods``, or all)
    at ``seed`` (default: its first): per data set, loaded once and audited with its data folder.
    ``on_start(task)`` is called as each data set's audit begins; (task, result) pairs are
    yielded as each data set's audit ends, so a later data set's failure loses none of them."""
    from zsbench.paths import dataset_root
    from zsbench.runner.grid import load_dataset, plan, resolve_device

    labels = {m.label for m in spec.methods}
    if unknown := sorted(set(methods) - labels):
        raise UserError(f"{spec.file}: --method {', '.join(unknown)}: no such method entry; "
                        f"entries: {', '.join(sorted(labels))}")
    seed = spec.seeds[0] if seed is None else seed
    if seed not in spec.seeds:
        raise UserError(f"{spec.file}: --seed {seed} is not one of the spec's seeds {list(spec.seeds)}")
    try:
        chosen = resolve_device(device)
    except UserError as exc:
        raise UserError(f"--device: {exc}") from None
    tasks = [t for t in plan(spec) if t.seed == seed and (not methods or t.method.label in methods)]
    for dataset in spec.datasets:
        mine = [t for t in tasks if t.dataset.label == dataset.label]
        if not mine:
            continue
        bundle = load_dataset(dataset, registry, chosen)
        for task in mine if on_start is not None else ():
            on_start(task)
        root = dataset_root(dataset.plugin, dataset.root)
        yield from zip(mine, audit_tasks(mine, registry, bundle, str(chosen), poisons, tolerance, threads, root),
                       strict=True)


def assert_no_peeking(method: str, bundle: DatasetBundle, *, options: dict[str, Any] | None = None,
                      grid: dict[str, list[Any]] | None = None, calibrators: Sequence[str] = (NO_CALIBRATION,),
                      seed: int = 0, registry: Registry | None = None, poisons: Sequence[str] = POISONS,
                      device: str = "cpu", tolerance: float = 1e-6) -> AuditResult:
    """For plugin authors' tests: audit method plugin ``method`` on ``bundle``; raises
    ``AssertionError`` naming the method and every choice that moved. The audit runs it in fresh
    processes: a plugin module must be importable by name there."""
    from zsbench.evaluation.stages import Task
    from zsbench.registry import get_registry

    registry = registry or get_registry()
    entry = registry.get("method", method)
    spec = MethodSpec(method, entry.name, dict(options or {}),
                      dict(grid if grid is not None else getattr(entry.factory, "default_grid", {})),
                      tuple(CalibratorSpec(c) for c in calibrators))
    task = Task("audit", "", DatasetSpec(bundle.name, "in-memory", None, {}), spec, seed)
    (result,) = audit_tasks([task], registry, bundle, device, poisons, tolerance)
    if not result.passed:
        reasons = [f"it failed: {result.error}"] if result.error else list(result.problems)
        raise AssertionError(f"method {method!r} peeks at the test split or is transductive:\n- "
                             + "\n- ".join(reasons))
    return result


# --------------------------------------------------------------------------- command
