"""How one task's numbers are made: fit on a stage, score, choose on validation, refit, test once.

``execute`` is the whole protocol for one (dataset, method, seed) task: every grid point is fitted
on the validation stage and each calibrator keeps the point and parameter with the best
validation H (``select_on_validation``); each chosen point is refitted on trainval and scored once
on test. Nothing else decides a number: the run key hashes this module and every zsbench module
it imports (``zsbench.runner.identity``), so it imports neither the runner (planning, backends,
resume) nor the identity code, which change no number.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import torch

from zsbench.errors import UserError
from zsbench.evaluation import protocol
from zsbench.evaluation.calibration import BestScores, SweepResult, ausuc, check_scores, oracle_h, per_image, sweep
from zsbench.evaluation.environment import pin_numerics
from zsbench.evaluation.metrics import zsl_top1
from zsbench.interfaces import Calibrator, DatasetBundle, RunContext, Scorer, Scores
from zsbench.paths import cache_home
from zsbench.registry import Registry
from zsbench.spec import NO_CALIBRATION, DatasetSpec, MethodSpec, canonical_hash, set_path
from zsbench.store.sqlite import ResultRow

if TYPE_CHECKING:  # the identity code computes run keys; importing it would put it on this path
    from zsbench.runner.identity import RunIdentity

PROTOCOL_VERSION = 1  # bump when the protocol changes, so old rows are not reused


def with_references(calibrators: dict[str, Calibrator | None], scorer: Any, bundle: Any, stage: Any) -> dict[str, Calibrator | None]:
    """``calibrators`` for the model ``scorer`` of ``stage``: each that declares
    ``needs_reference`` bound to that model's scores of the stage's own training images (the
    validation stage's fit images, or trainval), never an evaluation image; the others as given.
    Scores nothing when no calibrator needs a reference."""
    if not any(getattr(c, "needs_reference", False) for c in calibrators.values()):
        return calibrators
    with torch.no_grad():
        scores = scorer.scores(protocol.fit_inputs(bundle, stage))
    seen_mask = torch.arange(len(stage.classes)) < len(stage.seen_classes)
    bound: dict[str, Calibrator | None] = {}
    for name, calibrator in calibrators.items():
        if getattr(calibrator, "needs_reference", False):
            best = BestScores.from_scores(check_scores(scores, calibrator), seen_mask)
            calibrator = calibrator.with_reference(best.seen_value, best.unseen_value)
        bound[name] = calibrator
    return bound


@attrs.frozen
class Task:
    """One (dataset, method, seed) run of a spec."""

    spec_name: str
    spec_hash: str
    dataset: DatasetSpec
    method: MethodSpec
    seed: int
    identity: RunIdentity | None = None  # code and data identity (``runner.identify``), part of the key

    @property
    def key(self) -> str:
        return canonical_hash(
            {"dataset": self.dataset.as_dict(), "method": self.method.as_dict(), "seed": self.seed,
             "protocol": PROTOCOL_VERSION, "identity": self.identity.digest if self.identity else None}
        )

    def describe(self) -> str:
        return f"{self.dataset.label} / {self.method.label} / seed {self.seed}"


class NonFiniteScores(UserError):
    """A method returned NaN or infinite scores: the run fails instead of storing a meaningless row."""


@attrs.frozen
class RunSetup:
    """What every fit of one task shares: the task, where its components and data come from,
    where it runs, and its calibrators by name (None for no calibration)."""

    task: Task
    registry: Registry
    bundle: DatasetBundle
    device: torch.device
    cache_dir: Path
    show_progress: bool
    calibrators: dict[str, Calibrator | None]

    @classmethod
    def of(cls, task: Task, registry: Registry, bundle: DatasetBundle, device: torch.device,
           cache_dir: Path | None = None, show_progress: bool = True) -> RunSetup:
        """The setup of ``task``, its calibrators built (``cache_dir`` default: the run key's folder)."""
        cache_dir = cache_dir or cache_home() / "runs" / task.key
        return cls(task, registry, bundle, device, cache_dir, show_progress, build_calibrators(task, registry))


@attrs.frozen
class Fit:
    """A method fitted on one stage and its scores of that stage's evaluation instances, with
    their labels (class columns) and which columns are seen classes."""

    scorer: Scorer
    scores: Scores
    labels: torch.Tensor
    seen_mask: torch.Tensor


@attrs.frozen
class Choice:
    """One calibrator's choice on validation: the best validation H, the grid point it came
    from (an index into ``Selection.points``) and that point's sweep."""

    val_H: float
    index: int
    sweep: SweepResult


@attrs.frozen
class Selection:
    """What the validation stage chose: the grid points, each calibrator's ``Choice``, and the
    sweep of every grid point (``sweeps[i][calibrator]``)."""

    points: list[dict[str, Any]]
    chosen: dict[str, Choice]
    sweeps: list[dict[str, SweepResult]]

    def chosen_indices(self) -> list[int]:
        """The grid points some calibrator chose, each once, in grid order."""
        return sorted({c.index for c in self.chosen.values()})


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_calibrators(task: Task, registry: Registry) -> dict[str, Calibrator | None]:
    """The task's calibrators by name (None for no calibration)."""
    return {
        c.name: None if c.name == NO_CALIBRATION else registry.build("calibrator", c.name, **c.options)
        for c in task.method.calibrators
    }


def _options(method: MethodSpec, point: dict[str, Any]) -> dict[str, Any]:
    options = method.options
    for path, value in point.items():
        options = set_path(options, path, value)
    return options


def fit_and_score(setup: RunSetup, stage: protocol.Stage, point: dict[str, Any]) -> Fit:
    """Fit the task's method at grid ``point`` on ``stage`` and score the stage's evaluation
    instances, seeded afresh so every fit starts from the same random state."""
    task, bundle = setup.task, setup.bundle
    seed_everything(task.seed)
    method = setup.registry.build("method", task.method.plugin, **_options(task.method, point))
    inputs, labels, seen_mask = protocol.eval_inputs(bundle, stage)

    def evaluate(scorer: Scorer) -> dict[str, float]:
        with torch.no_grad():
            scores = scorer.scores(inputs)
        calibrators = with_references(setup.calibrators, scorer, bundle, stage)
        return {"val_H": max(sweep(scores, labels, seen_mask, c).best()[3] for c in calibrators.values())}

    context = RunContext(
        seed=task.seed, device=setup.device, cache_dir=setup.cache_dir, stage=stage.name,
        show_progress=setup.show_progress, evaluate=evaluate if stage.name == "validation" else None,
        registry=setup.registry,
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
    return Fit(scorer, scores, labels, seen_mask)


def select_on_validation(setup: RunSetup, on_fit: Callable[[int, Scorer], None] | None = None) -> Selection:
    """Every choice of a run, made on the validation stage only: grid point and calibration.
    ``on_fit(i, scorer)`` sees each grid point's fitted scorer (the audit checks them)."""
    task = setup.task
    val_stage = protocol.validation_stage(setup.bundle, task.seed)
    chosen: dict[str, Choice] = {}
    sweeps: list[dict[str, SweepResult]] = []
    points = task.method.grid_points()
    from tqdm.auto import tqdm  # points done of the grid: a long search shows it is moving

    bar = tqdm(total=len(points), desc=f"{task.describe()}: grid", unit="point", leave=False,
               disable=not setup.show_progress or len(points) < 2, dynamic_ncols=True)
    for i, point in enumerate(points):
        fit = fit_and_score(setup, val_stage, point)
        if on_fit:
            on_fit(i, fit.scorer)
        sweeps.append({})
        for name, calibrator in with_references(setup.calibrators, fit.scorer, setup.bundle, val_stage).items():
            result = sweeps[i][name] = sweep(fit.scores, fit.labels, fit.seen_mask, calibrator)
            if name not in chosen or result.best()[3] > chosen[name].val_H:
                chosen[name] = Choice(result.best()[3], i, result)
        bar.update(1)
    bar.close()
    return Selection(points, chosen, sweeps)


def execute(task: Task, registry: Registry, bundle: DatasetBundle, device: torch.device,
            cache_dir: Path | None = None, show_progress: bool = True) -> list[ResultRow]:
    """Run one task through the protocol: choose on validation, refit on trainval, test once.
    The rows' provenance holds only what the run chose (``grid_edges``); the runner adds where
    and with what it ran."""
    start = time.perf_counter()
    pin_numerics()
    setup = RunSetup.of(task, registry, bundle, device, cache_dir, show_progress)
    selection = select_on_validation(setup)
    test_stage = protocol.test_stage(bundle, task.seed)
    rows = []
    for i in selection.chosen_indices():
        point = selection.points[i]
        fit = fit_and_score(setup, test_stage, point)
        zsl = zsl_top1(fit.scores.higher_is_better(), fit.labels, ~fit.seen_mask)
        area = ausuc(fit.scores, fit.labels, fit.seen_mask)  # test-only, reported: computed after every choice
        calibrators = with_references(setup.calibrators, fit.scorer, bundle, test_stage)
        rows += [_row(setup, name, calibrators[name], choice, point, fit, zsl, area)
                 for name, choice in selection.chosen.items() if choice.index == i]
    elapsed = time.perf_counter() - start
    return [attrs.evolve(r, wall_time=elapsed) for r in rows]


def _row(setup: RunSetup, name: str, calibrator: Calibrator | None, choice: Choice, point: dict[str, Any],
         fit: Fit, zsl: float, area: float) -> ResultRow:
    """The row of calibrator ``name``: its test numbers at the parameter validation chose (the
    test curve is for plots only; nothing is chosen on it)."""
    task = setup.task
    param, val_u, val_s, val_h = choice.sweep.best()
    test = sweep(fit.scores, fit.labels, fit.seen_mask, calibrator, torch.tensor([param]) if calibrator else None)
    curves = {"validation": choice.sweep.as_dict()}
    if calibrator is not None:
        curves["test"] = sweep(fit.scores, fit.labels, fit.seen_mask, calibrator, choice.sweep.params).as_dict()
    return ResultRow(
        run_key=task.key, spec_name=task.spec_name, spec_hash=task.spec_hash,
        dataset=task.dataset.label, dataset_plugin=task.dataset.plugin,
        method=task.method.label, method_plugin=task.method.plugin, calibrator=name, seed=task.seed,
        u=float(test.u[0]), s=float(test.s[0]), H=float(test.H[0]), zsl=zsl,
        val_u=val_u, val_s=val_s, val_H=val_h, calibration_param=param if calibrator is not None else None,
        hyperparameters=point, sweep=task.method.sweep,
        side_information=protocol.side_information(setup.bundle, task.method.side_information),
        features=setup.bundle.feature_name or "raw images", wall_time=0.0,
        provenance={"grid_edges": task.method.grid_edges(point)}, curves=curves, ausuc=area,
        oracle_H=oracle_h(fit.scores, fit.labels, fit.seen_mask, calibrator),
        per_image=per_image(fit.scores, fit.labels, fit.seen_mask, calibrator, param if calibrator is not None else None),
    )
