"""The (dataset x method x seed) grid, planned, identified, run on a backend, with resume.

The numbers of a task come from ``zsbench.evaluation.stages.execute``; this module plans the tasks of a
spec, gives each its run key (``identify``), stamps rows with where and with what they ran
(``run_task``) and drives a backend. Only the driver writes to the results database, so other
backends (Ray) reuse ``run_task`` unchanged.
"""

from __future__ import annotations

import platform
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

import zsbench
from zsbench.data.finite import finite_bundle
from zsbench.errors import UserError
from zsbench.evaluation import protocol
from zsbench.evaluation.environment import environment
from zsbench.evaluation.stages import PROTOCOL_VERSION, Task, execute
from zsbench.interfaces import DatasetBundle
from zsbench.paths import dataset_root
from zsbench.registry import Registry
from zsbench.runner.identity import RunIdentity, code_identity, data_identity, git_state
from zsbench.spec import BenchmarkSpec, DatasetSpec
from zsbench.store.sqlite import ResultRow, ResultStore


@attrs.frozen
class Failure:
    task: Task
    message: str
    user_error: bool
    provenance: dict[str, Any] | None = None  # where it failed, when the backend knows


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

    def __iter__(self):  # (done, skipped, failures)
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
        from zsbench.runner.backbones import attach_backbone

        bundle = attach_backbone(bundle, spec.backbone, registry, device or torch.device("cpu"), show_progress)
    return finite_bundle(bundle, drop=spec.drop_nonfinite)


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


def run_task(task: Task, registry: Registry, bundle: DatasetBundle, device: torch.device,
             show_progress: bool = True) -> list[ResultRow]:
    """The rows of ``task`` as stored: ``execute``'s, with the run's provenance and the size of
    its test stage (``counts``: seen and unseen classes, scored test images, for the pages'
    header). Recorded here, outside the evaluation path, because neither changes a number."""
    rows = execute(task, registry, bundle, device, show_progress=show_progress)
    stage = protocol.test_stage(bundle, task.seed)
    counts = {"seen_classes": len(stage.seen_classes), "unseen_classes": len(stage.unseen_classes),
              "test_seen_images": len(stage.eval_seen), "test_unseen_images": len(stage.eval_unseen)}
    return [attrs.evolve(r, provenance={**_provenance(task, registry, device), **r.provenance, "counts": counts})
            for r in rows]


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
            # A data set is loaded when its first task comes; its data errors stop the run (each
            # of its tasks would fail the same way), with the runs stored so far kept.
            bundle = self.bundle(task.dataset)
            try:
                outcome = run_task(task, self.registry, bundle, self.device, self.show_progress)
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
    from zsbench.store.rows import RowError, check_rows

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

    Run keys include the identity of the code and data each task uses, so a data set is loaded
    (its features extracted, or read from the cache) before any of its tasks is skipped. Data
    sets come in the spec's order, each loaded only when the backend asks for its first task,
    after every task of the ones before: ``LocalBackend`` stores a data set's rows before the
    next one is loaded, and a data set that fails to load stops the run with what was computed
    before it stored."""
    tasks = plan(spec)
    skipped, busy = [], []

    def claimed() -> Iterator[Task]:
        for dataset in spec.datasets:
            bundle = backend.bundle(dataset)
            ours = [t for t in tasks if t.dataset.label == dataset.label]
            for task in identify(ours, backend.registry, {dataset.label: bundle}):
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
