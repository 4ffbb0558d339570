"""The audit's child process: a data set's tasks through the runner's own stages, in a clean process.

The audit (``zsbench.runner.audit``) runs this once on the data set and once per poisoned copy, each in a
fresh interpreter with its own cache and temporary folders, so that nothing a method kept in
memory or in those folders during one run can reach the other. For each task it records every
validation choice (``evaluation.select_on_validation``, one fit per grid point shared by all
calibrators) and then, once every validation stage is done, for each chosen grid point the
test-stage model's scores of a probe set (the validation evaluation set, which no poisoning
touches), scored after the test evaluation set as the runner does. A method that raises, or calls ``sys.exit()``, is recorded as failed and the next
task goes on; one that kills the process is recorded by the parent, which starts a new one.

Run as ``python -m zsbench.runner.audit_worker JOB OUT``: JOB is a pickle written by the parent, OUT a
folder receiving one pickle per task and stage (``validation-<i>.pkl``, ``test-<i>.pkl``) and
``current`` (the one in progress).
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback
from pathlib import Path
from typing import Any

import attrs
import torch

from zsbench.evaluation import protocol


@attrs.frozen
class Job:
    """What a child process audits: ``tasks`` of one data set, their validation stages on
    ``bundle``, then (once every validation stage is done) their test stages on ``test_bundle``
    (None: no test stage)."""

    bundle: Any
    test_bundle: Any
    tasks: tuple[Any, ...]
    plugins: tuple[tuple[str, str, str | None, str | None], ...]
    strict: bool
    device: str
    threads: int
    transduction: bool  # check the scorers for transduction (once, on the unpoisoned data)

    def units(self) -> list[tuple[str, int]]:
        stages = ("validation", "test") if self.test_bundle is not None else ("validation",)
        return [(stage, i) for stage in stages for i in range(len(self.tasks))]


def choices(selection) -> dict[str, Any]:
    """Every choice of a validation stage, flat and named for messages."""
    from zsbench.spec import NO_CALIBRATION

    out: dict[str, Any] = {}
    for name, choice in selection.chosen.items():
        param, u, s, h = choice.sweep.best()
        out[f"{name}: grid point"] = selection.points[choice.index]
        if name != NO_CALIBRATION:
            out[f"{name}: calibration parameter"] = param
        out[f"{name}: validation u"], out[f"{name}: validation s"], out[f"{name}: validation H"] = u, s, h
    for i, per_calibrator in enumerate(selection.sweeps):
        for name, result in per_calibrator.items():
            out[f"{name}: validation H at grid point {selection.points[i] or 'defaults'}"] = result.best()[3]
    return out


def validation(task, registry, bundle, device: torch.device, cache_dir: Path, transduction: bool) -> dict[str, Any]:
    """One task's validation choices and transduction problems."""
    from zsbench.evaluation.stages import RunSetup, select_on_validation
    from zsbench.runner.audit import transduction_problems

    probe, _, _ = protocol.eval_inputs(bundle, protocol.validation_stage(bundle, task.seed))
    problems: list[str] = []

    def check_scorer(i: int, scorer) -> None:
        point = task.method.grid_points()[i] or "defaults"
        problems.extend(f"grid point {point}: {p}" for p in transduction_problems(scorer, probe, task.seed))

    setup = RunSetup.of(task, registry, bundle, device, cache_dir, show_progress=False)
    selection = select_on_validation(setup, check_scorer if transduction else None)
    return {"choices": choices(selection), "points": [selection.points[i] for i in selection.chosen_indices()],
            "transduction": problems}


def test_stage(task, registry, bundle, device: torch.device, cache_dir: Path, points) -> dict[str, Any]:
    """The probe scores of the task's test-stage model at each of ``points``."""
    from zsbench.evaluation.stages import RunSetup, fit_and_score

    probe, _, _ = protocol.eval_inputs(bundle, protocol.validation_stage(bundle, task.seed))
    stage = protocol.test_stage(bundle, task.seed)
    probes = {}
    for k, point in enumerate(points):
        setup = RunSetup.of(task, registry, bundle, device, cache_dir / str(k), show_progress=False)
        scorer = fit_and_score(setup, stage, point).scorer
        with torch.no_grad():
            probes[repr(point)] = scorer.scores(probe).values.detach().double().cpu().numpy()
    return {"probes": probes}


def _write(path: Path, result: dict[str, Any]) -> None:
    part = path.with_suffix(".part")
    part.write_bytes(pickle.dumps(result))
    os.replace(part, path)


def main(job_path: str, out: str) -> None:
    from zsbench.errors import UserError
    from zsbench.runner.backends.ray import worker_registry
    from zsbench.runner.grid import resolve_device

    job: Job = pickle.loads(Path(job_path).read_bytes())
    folder = Path(out)
    if job.threads:
        torch.set_num_threads(job.threads)
    registry = worker_registry(job.plugins, job.strict)
    device = resolve_device(job.device)
    for stage, i in job.units():
        result_path = folder / f"{stage}-{i}.pkl"
        if result_path.exists():  # a restart after a method killed the previous process
            continue
        task = job.tasks[i]
        if stage == "test":
            chosen = pickle.loads((folder / f"validation-{i}.pkl").read_bytes())
            if chosen.get("error"):
                continue
        (folder / "current").write_text(f"{stage}-{i}")
        cache_dir = folder / f"cache-{stage}-{i}"
        try:
            if stage == "validation":
                result = validation(task, registry, job.bundle, device, cache_dir, job.transduction)
            else:
                result = test_stage(task, registry, job.test_bundle, device, cache_dir, chosen["points"])
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit too: a method's exit is its failure
            if not isinstance(exc, UserError | SystemExit):
                traceback.print_exc(file=sys.stderr)
            result = {"error": "".join(traceback.format_exception_only(type(exc), exc)).strip()}
        _write(result_path, result)


if __name__ == "__main__":
    main(*sys.argv[1:3])
