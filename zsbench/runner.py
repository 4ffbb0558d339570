"""The (dataset x method x seed) grid, run through the GZSL protocol, with resume.

Each task is a pure function of its spec entries and seed (``execute``), returning the rows to
store; only the driver writes to the results database, so other backends (Ray) reuse ``execute``
unchanged.
"""

from __future__ import annotations

import platform
import random
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

import zsbench
from zsbench import protocol
from zsbench.calibration import sweep
from zsbench.errors import UserError
from zsbench.interfaces import DatasetBundle, Scores
from zsbench.metrics import zsl_top1
from zsbench.paths import cache_home, dataset_root
from zsbench.registry import Registry
from zsbench.spec import (
    NO_CALIBRATION,
    BenchmarkSpec,
    DatasetSpec,
    MethodSpec,
    canonical_hash,
    set_path,
)
from zsbench.store import ResultRow, ResultStore

PROTOCOL_VERSION = 1  # bump when the protocol changes, so old rows are not reused


@attrs.frozen
class Task:
    """One (dataset, method, seed) run of a spec."""

    spec_name: str
    spec_hash: str
    dataset: DatasetSpec
    method: MethodSpec
    seed: int

    @property
    def key(self) -> str:
        return canonical_hash(
            {"dataset": self.dataset.as_dict(), "method": self.method.as_dict(), "seed": self.seed, "protocol": PROTOCOL_VERSION}
        )

    def describe(self) -> str:
        return f"{self.dataset.label} / {self.method.label} / seed {self.seed}"


@attrs.frozen
class Failure:
    task: Task
    message: str
    user_error: bool


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; anything else must be a device torch knows."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"device {name!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} was asked for, but torch sees no CUDA device here; use 'auto' or 'cpu'")
    return device


def plan(spec: BenchmarkSpec) -> list[Task]:
    return [
        Task(spec.name, spec.hash, d, m, seed) for d in spec.datasets for m in spec.methods for seed in spec.seeds
    ]


def load_dataset(spec: DatasetSpec, registry: Registry) -> DatasetBundle:
    root = dataset_root(spec.plugin, spec.root)
    return registry.build("dataset", spec.plugin, root=root, **spec.options)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _provenance(task: Task, registry: Registry, device: torch.device) -> dict[str, Any]:
    method = registry.get("method", task.method.plugin)
    dataset = registry.get("dataset", task.dataset.plugin)
    return {
        "zsbench": zsbench.__version__,
        "method_plugin": f"{method.plugin} ({method.distribution or '?'} {method.version or '?'})",
        "dataset_plugin": f"{dataset.plugin} ({dataset.distribution or '?'} {dataset.version or '?'})",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "spec_name": task.spec_name,
        "spec_hash": task.spec_hash,
        "run_key": task.key,
        "protocol": PROTOCOL_VERSION,
        "config": {"dataset": task.dataset.as_dict(), "method": task.method.as_dict(), "seed": task.seed},
    }


def _options(method: MethodSpec, point: dict[str, Any]) -> dict[str, Any]:
    options = method.options
    for path, value in point.items():
        options = set_path(options, path, value)
    return options


def _fit_and_score(task, registry, bundle, stage, point, device, cache_dir, show_progress, calibrators) -> tuple[Scores, Any, Any]:
    seed_everything(task.seed)
    method = registry.build("method", task.method.plugin, **_options(task.method, point))
    inputs, labels, seen_mask = protocol.eval_inputs(bundle, stage)

    def evaluate(scorer) -> dict[str, float]:
        with torch.no_grad():
            scores = scorer.scores(inputs)
        return {"val_H": max(sweep(scores, labels, seen_mask, c).best()[3] for c in calibrators.values())}

    context = zsbench.RunContext(
        seed=task.seed, device=device, cache_dir=cache_dir, stage=stage.name, show_progress=show_progress,
        evaluate=evaluate if stage.name == "validation" else None,
    )
    scorer = method.fit(protocol.fit_data(bundle, stage, task.method.side_information), context)
    with torch.no_grad():
        scores = scorer.scores(inputs)
    if scores.values.shape != (len(labels), len(seen_mask)):
        raise RuntimeError(
            f"method {task.method.plugin!r} returned scores of shape {tuple(scores.values.shape)}, "
            f"expected ({len(labels)}, {len(seen_mask)}) (instances x classes)"
        )
    return scores, labels, seen_mask


def execute(
    task: Task,
    registry: Registry,
    bundle: DatasetBundle,
    device: torch.device,
    cache_dir: Path | None = None,
    show_progress: bool = True,
) -> list[ResultRow]:
    """Run one task through the protocol: choose on validation, refit on trainval, test once."""
    start = time.perf_counter()
    cache_dir = cache_dir or cache_home() / "runs" / task.key
    calibrators = {
        c.name: None if c.name == NO_CALIBRATION else registry.build("calibrator", c.name, **c.options)
        for c in task.method.calibrators
    }
    # 1. Selection on the validation stage only.
    val_stage = protocol.validation_stage(bundle, task.seed)
    chosen: dict[str, tuple[float, int, Any]] = {}  # calibrator -> (val H, grid point index, sweep)
    points = task.method.grid_points()
    for i, point in enumerate(points):
        scores, labels, seen_mask = _fit_and_score(task, registry, bundle, val_stage, point, device, cache_dir, show_progress, calibrators)
        for name, calibrator in calibrators.items():
            result = sweep(scores, labels, seen_mask, calibrator)
            if name not in chosen or result.best()[3] > chosen[name][0]:
                chosen[name] = (result.best()[3], i, result)
    # 2. Refit on trainval once per chosen grid point; 3. evaluate on test once.
    test_stage = protocol.test_stage(bundle, task.seed)
    rows = []
    for i in sorted({index for _, index, _ in chosen.values()}):
        scores, labels, seen_mask = _fit_and_score(task, registry, bundle, test_stage, points[i], device, cache_dir, show_progress, calibrators)
        zsl = zsl_top1(scores.higher_is_better(), labels, ~seen_mask)
        for name, (_, index, val_sweep) in chosen.items():
            if index != i:
                continue
            calibrator = calibrators[name]
            param, val_u, val_s, val_h = val_sweep.best()
            test = sweep(scores, labels, seen_mask, calibrator, torch.tensor([param]) if calibrator else None)
            curves = {"validation": val_sweep.as_dict()}
            if calibrator is not None:  # the test curve is for plots only; nothing is chosen on it
                curves["test"] = sweep(scores, labels, seen_mask, calibrator, val_sweep.params).as_dict()
            rows.append(
                ResultRow(
                    run_key=task.key,
                    spec_name=task.spec_name,
                    spec_hash=task.spec_hash,
                    dataset=task.dataset.label,
                    dataset_plugin=task.dataset.plugin,
                    method=task.method.label,
                    method_plugin=task.method.plugin,
                    calibrator=name,
                    seed=task.seed,
                    u=float(test.u[0]),
                    s=float(test.s[0]),
                    H=float(test.H[0]),
                    zsl=zsl,
                    val_u=val_u,
                    val_s=val_s,
                    val_H=val_h,
                    calibration_param=param if calibrator is not None else None,
                    hyperparameters=points[i],
                    sweep=task.method.sweep,
                    side_information=protocol.side_information(bundle, task.method.side_information),
                    features=bundle.feature_name or "raw images",
                    wall_time=0.0,
                    provenance=_provenance(task, registry, device),
                    curves=curves,
                )
            )
    elapsed = time.perf_counter() - start
    return [attrs.evolve(r, wall_time=elapsed) for r in rows]


@attrs.define
class LocalBackend:
    """Runs tasks one after another in this process."""

    registry: Registry
    device: torch.device
    show_progress: bool = True
    threads: int | None = 1  # torch intra-op threads; None keeps torch's default
    _bundles: dict[str, DatasetBundle] = attrs.field(factory=dict)

    def bundle(self, spec: DatasetSpec) -> DatasetBundle:
        if spec.label not in self._bundles:
            self._bundles[spec.label] = load_dataset(spec, self.registry)
        return self._bundles[spec.label]

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, list[ResultRow] | Failure]]:
        if self.threads:
            # The models benchmarked here are small: on a busy CPU, torch's thread pool spends more
            # on synchronisation than it gains (measured 15x slower with 2 threads on 2 busy cores).
            torch.set_num_threads(self.threads)
        for task in tasks:
            bundle = self.bundle(task.dataset)  # data errors stop the whole run: every task would fail
            try:
                yield task, execute(task, self.registry, bundle, self.device, show_progress=self.show_progress)
            except UserError as exc:
                yield task, Failure(task, str(exc), True)
            except Exception as exc:  # noqa: BLE001 - one broken method must not lose the others
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                print(traceback.format_exc(), file=sys.stderr)
                yield task, Failure(task, detail, False)


def run_spec(
    spec: BenchmarkSpec,
    store: ResultStore,
    backend,
    force: bool = False,
    on_done: Callable[[Task, list[ResultRow] | Failure], None] | None = None,
) -> tuple[list[Task], list[Task], list[Failure]]:
    """Run the tasks not already in the store (all with ``force``); the caller's backend executes,
    this driver alone writes. Returns (done, skipped, failures)."""
    tasks = plan(spec)
    todo = tasks if force else [t for t in tasks if not store.finished(t.key)]
    skipped = [t for t in tasks if t not in todo]
    done, failures = [], []
    for task, outcome in backend.run(todo):
        if isinstance(outcome, Failure):
            failures.append(outcome)
        else:
            store.write_run(outcome, replace=force)
            done.append(task)
        if on_done:
            on_done(task, outcome)
    return done, skipped, failures
