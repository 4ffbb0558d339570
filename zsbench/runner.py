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
from zsbench.calibration import ausuc, oracle_h, sweep, with_references
from zsbench.data.finite import finite_bundle
from zsbench.environment import environment, pin_numerics
from zsbench.errors import UserError
from zsbench.identity import RunIdentity, code_identity, data_identity, git_state
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
    identity: RunIdentity | None = None  # code and data identity (``identify``), part of the key

    @property
    def key(self) -> str:
        return canonical_hash(
            {"dataset": self.dataset.as_dict(), "method": self.method.as_dict(), "seed": self.seed,
             "protocol": PROTOCOL_VERSION, "identity": self.identity.digest if self.identity else None}
        )

    def describe(self) -> str:
        return f"{self.dataset.label} / {self.method.label} / seed {self.seed}"


@attrs.frozen
class Failure:
    task: Task
    message: str
    user_error: bool
    provenance: dict[str, Any] | None = None  # where it failed, when the backend knows


class NonFiniteScores(UserError):
    """A method returned NaN or infinite scores: the run fails instead of storing a meaningless row."""


@attrs.frozen
class Outcome:
    """What ``run_spec`` did: runs computed, already stored, failed, left to another process, and
    the recovery file holding runs the database refused (None when every write succeeded)."""

    done: list[Task]
    skipped: list[Task]
    failures: list[Failure]
    busy: list[Task] = attrs.field(factory=list)
    recovered: list[Task] = attrs.field(factory=list)
    recovery_file: Path | None = None

    def __iter__(self):  # (done, skipped, failures), as before
        return iter((self.done, self.skipped, self.failures))


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; anything else must be a device torch knows."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"device {name!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"device {name!r}: zsbench runs on 'cpu' or 'cuda' ('cuda:N'), or 'auto' to choose")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} was asked for, but torch sees no CUDA device here; use 'auto' or 'cpu'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"device {name!r}: torch sees {torch.cuda.device_count()} CUDA device(s) here "
                        f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return device


def plan(spec: BenchmarkSpec) -> list[Task]:
    return [
        Task(spec.name, spec.hash, d, m, seed) for d in spec.datasets for m in spec.methods for seed in spec.seeds
    ]


def identify(tasks: list[Task], registry: Registry, bundles: dict[str, DatasetBundle]) -> list[Task]:
    """The tasks with their code and data identity (``bundles``: data set label -> bundle), so
    that a change to the code or data a task uses gives it a new run key."""
    data = {label: data_identity(bundle) for label, bundle in bundles.items()}
    return [
        attrs.evolve(t, identity=RunIdentity(
            code_identity(registry, t.method.as_dict(), t.dataset.as_dict()), data[t.dataset.label]))
        for t in tasks
    ]


def load_dataset(spec: DatasetSpec, registry: Registry, device: torch.device | None = None,
                 show_progress: bool = False) -> DatasetBundle:
    """The dataset's bundle, its numeric inputs checked finite (or, when asked, cleaned); with a
    ``backbone``, its features are extracted from the images (on ``device``, default the CPU) or
    read from the cache."""
    root = dataset_root(spec.plugin, spec.root)
    bundle = registry.build("dataset", spec.plugin, root=root, **spec.options)
    if spec.backbone is not None:
        from zsbench.backbones import attach_backbone

        bundle = attach_backbone(bundle, spec.backbone, registry, device or torch.device("cpu"), show_progress)
    return finite_bundle(bundle, drop=spec.drop_nonfinite)


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
        "environment": environment(),
        "spec_name": task.spec_name,
        "spec_hash": task.spec_hash,
        "run_key": task.key,
        "protocol": PROTOCOL_VERSION,
        "config": {"dataset": task.dataset.as_dict(), "method": task.method.as_dict(), "seed": task.seed},
        "git": git_state(),
        "code": task.identity.code if task.identity else None,
        "data": task.identity.data if task.identity else None,
    }


def _options(method: MethodSpec, point: dict[str, Any]) -> dict[str, Any]:
    options = method.options
    for path, value in point.items():
        options = set_path(options, path, value)
    return options


def fit_and_score(task, registry, bundle, stage, point, device, cache_dir, show_progress, calibrators) -> tuple[Any, Scores, Any, Any]:
    """Fit the task's method at grid ``point`` on ``stage`` and score the stage's evaluation
    instances: (scorer, scores, labels, seen mask)."""
    seed_everything(task.seed)
    method = registry.build("method", task.method.plugin, **_options(task.method, point))
    inputs, labels, seen_mask = protocol.eval_inputs(bundle, stage)

    def evaluate(scorer) -> dict[str, float]:
        with torch.no_grad():
            scores = scorer.scores(inputs)
        stage_calibrators = with_references(calibrators, scorer, bundle, stage)
        return {"val_H": max(sweep(scores, labels, seen_mask, c).best()[3] for c in stage_calibrators.values())}

    context = zsbench.RunContext(
        seed=task.seed, device=device, cache_dir=cache_dir, stage=stage.name, show_progress=show_progress,
        evaluate=evaluate if stage.name == "validation" else None, registry=registry,
    )
    scorer = method.fit(protocol.fit_data(bundle, stage, task.method.side_information), context)
    with torch.no_grad():
        scores = scorer.scores(inputs)
    if scores.values.shape != (len(labels), len(seen_mask)):
        raise RuntimeError(
            f"method {task.method.plugin!r} returned scores of shape {tuple(scores.values.shape)}, "
            f"expected ({len(labels)}, {len(seen_mask)}) (instances x classes)"
        )
    bad = ~torch.isfinite(scores.values).all(dim=1)
    if bad.any():
        point_text = f" with {point}" if point else ""
        raise NonFiniteScores(
            f"method {task.method.label!r} ({task.method.plugin}){point_text} returned non-finite "
            f"scores (NaN or infinite) for {int(bad.sum())} of {len(bad)} {stage.name} instance(s); "
            "the run is failed and no row is stored (diverged training? try a smaller learning rate)"
        )
    return scorer, scores, labels, seen_mask


def build_calibrators(task: Task, registry: Registry) -> dict[str, Any]:
    """The task's calibrators by name (None for no calibration)."""
    return {
        c.name: None if c.name == NO_CALIBRATION else registry.build("calibrator", c.name, **c.options)
        for c in task.method.calibrators
    }


@attrs.frozen
class Selection:
    """What the validation stage chose: per calibrator (val H, grid point index, sweep), and the
    sweep of every grid point (``sweeps[i][calibrator]``)."""

    points: list[dict[str, Any]]
    chosen: dict[str, tuple[float, int, Any]]
    sweeps: list[dict[str, Any]]


def select_on_validation(task, registry, bundle, device, cache_dir, show_progress, calibrators,
                         on_fit: Callable[[int, Any], None] | None = None) -> Selection:
    """Every choice of a run, made on the validation stage only: grid point and calibration.
    ``on_fit(i, scorer)`` sees each grid point's fitted scorer (the audit checks them)."""
    val_stage = protocol.validation_stage(bundle, task.seed)
    chosen: dict[str, tuple[float, int, Any]] = {}
    sweeps = []
    points = task.method.grid_points()
    from tqdm.auto import tqdm  # points done of the grid: a long search shows it is moving

    bar = tqdm(total=len(points), desc=f"{task.describe()}: grid", unit="point", leave=False,
               disable=not show_progress or len(points) < 2, dynamic_ncols=True)
    for i, point in enumerate(points):
        scorer, scores, labels, seen_mask = fit_and_score(task, registry, bundle, val_stage, point, device, cache_dir, show_progress, calibrators)
        if on_fit:
            on_fit(i, scorer)
        sweeps.append({})
        for name, calibrator in with_references(calibrators, scorer, bundle, val_stage).items():
            result = sweeps[i][name] = sweep(scores, labels, seen_mask, calibrator)
            if name not in chosen or result.best()[3] > chosen[name][0]:
                chosen[name] = (result.best()[3], i, result)
        bar.update(1)
    bar.close()
    return Selection(points, chosen, sweeps)


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
    pin_numerics()
    cache_dir = cache_dir or cache_home() / "runs" / task.key
    calibrators = build_calibrators(task, registry)
    # 1. Selection on the validation stage only.
    selection = select_on_validation(task, registry, bundle, device, cache_dir, show_progress, calibrators)
    points, chosen = selection.points, selection.chosen
    # 2. Refit on trainval once per chosen grid point; 3. evaluate on test once.
    test_stage = protocol.test_stage(bundle, task.seed)
    rows = []
    for i in sorted({index for _, index, _ in chosen.values()}):
        scorer, scores, labels, seen_mask = fit_and_score(task, registry, bundle, test_stage, points[i], device, cache_dir, show_progress, calibrators)
        stage_calibrators = with_references(calibrators, scorer, bundle, test_stage)
        zsl = zsl_top1(scores.higher_is_better(), labels, ~seen_mask)
        area = ausuc(scores, labels, seen_mask)  # test-only, reported: computed after every choice
        for name, (_, index, val_sweep) in chosen.items():
            if index != i:
                continue
            calibrator = stage_calibrators[name]
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
                    provenance={**_provenance(task, registry, device),
                                "grid_edges": task.method.grid_edges(points[i])},
                    curves=curves,
                    ausuc=area,
                    oracle_H=oracle_h(scores, labels, seen_mask, calibrator),
                )
            )
    elapsed = time.perf_counter() - start
    return [attrs.evolve(r, wall_time=elapsed) for r in rows]


def with_counts(rows: list[ResultRow], bundle: DatasetBundle, seed: int) -> list[ResultRow]:
    """``rows`` with the size of their test stage in their provenance (``counts``: seen and
    unseen classes, scored test images), for the pages' header. Recorded here, outside the run
    identity, because counting changes no number."""
    stage = protocol.test_stage(bundle, seed)
    counts = {"seen_classes": len(stage.seen_classes), "unseen_classes": len(stage.unseen_classes),
              "test_seen_images": len(stage.eval_seen), "test_unseen_images": len(stage.eval_unseen)}
    return [attrs.evolve(r, provenance={**r.provenance, "counts": counts}) for r in rows]


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
            self._bundles[spec.label] = load_dataset(spec, self.registry, self.device, self.show_progress)
        return self._bundles[spec.label]

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, list[ResultRow] | Failure]]:
        if self.threads:
            # The models benchmarked here are small: on a busy CPU, torch's thread pool spends more
            # on synchronisation than it gains (measured 15x slower with 2 threads on 2 busy cores).
            torch.set_num_threads(self.threads)
        for task in tasks:
            bundle = self.bundle(task.dataset)  # data errors stop the whole run: every task would fail
            try:
                outcome = with_counts(execute(task, self.registry, bundle, self.device,
                                              show_progress=self.show_progress), bundle, task.seed)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - one broken method (even sys.exit) must not lose the others
                outcome = method_failure(task, exc, _provenance(task, self.registry, self.device))
            yield task, outcome


def method_failure(task: Task, exc: BaseException, provenance: dict[str, Any]) -> Failure:
    """The failure of ``task`` from what its method raised: a user error's message, or the
    exception with its traceback on stderr (a ``SystemExit`` a plugin raised is named as such)."""
    if isinstance(exc, UserError):
        return Failure(task, str(exc), True, provenance)
    if isinstance(exc, SystemExit):
        detail = (f"method {task.method.label!r} ({task.method.plugin}) called sys.exit({exc.code!r}); "
                  "a plugin must raise an exception instead")
    else:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    print("".join(traceback.format_exception(exc)), file=sys.stderr)
    return Failure(task, detail, False, provenance)


def _invalid_rows(task: Task, rows: list[ResultRow]) -> Failure | None:
    """A failure when the rows a run computed break the row schema (never stored)."""
    from zsbench.rows import RowError, check_rows

    try:
        check_rows((f"{task.describe()}: calibrator {r.calibrator}", attrs.asdict(r)) for r in rows)
    except RowError as exc:
        return Failure(task, str(exc), False, rows[0].provenance if rows else None)
    return None


def run_spec(
    spec: BenchmarkSpec,
    store: ResultStore,
    backend,
    force: bool = False,
    on_done: Callable[[Task, list[ResultRow] | Failure], None] | None = None,
) -> Outcome:
    """Run the tasks not already in the store (all with ``force``); the caller's backend executes,
    this driver alone writes. Each task is claimed in the store just before it is handed to the
    backend, so concurrent ``run_spec`` on one database compute every task once; a task another
    live process holds is left to it (``busy``).

    Run keys include the identity of the code and data each task uses, so the data sets are
    loaded (from the cache, on reruns) before anything is skipped."""
    bundles = {d.label: backend.bundle(d) for d in spec.datasets}
    tasks = identify(plan(spec), backend.registry, bundles)
    skipped, busy = [], []

    def claimed() -> Iterator[Task]:
        for task in tasks:
            state = store.claim(task.key, force=force)
            if state == "claimed":
                yield task
            else:
                (skipped if state == "finished" else busy).append(task)

    done, failures, recovered, recovery_file = [], [], [], None
    for task, outcome in backend.run(claimed()):
        if not isinstance(outcome, Failure) and (invalid := _invalid_rows(task, outcome)):
            outcome = invalid
        if isinstance(outcome, Failure):
            failures.append(outcome)
            store.record_failure(task.key, task.spec_name, task.dataset.label, task.method.label, task.seed,
                                 outcome.message, outcome.user_error,
                                 outcome.provenance or {"run_key": task.key, "spec_hash": task.spec_hash,
                                                        "zsbench": zsbench.__version__})
        else:
            kept = store.keep_run(outcome, replace=force)
            (recovered if kept else done).append(task)
            recovery_file = kept or recovery_file
        if on_done:
            on_done(task, outcome)
    return Outcome(done, skipped, failures, busy, recovered, recovery_file)
