"""``zsbench audit``: the no-peeking audit of every method of a spec, as a verb."""

from __future__ import annotations

import math
import sys

import click
from rich.markup import escape

from zsbench.runner.audit import POISONS, audit_spec


def _tolerance(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise click.BadParameter(f"{value!r}: expected a finite number >= 0 (the largest allowed change of a number)")
    return value


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--method", "methods", multiple=True, help="Only these method entries (by name; repeatable).")
@click.option("--seed", type=int, default=None, help="Seed to audit [default: the spec's first].")
@click.option("--poison", "poisons", multiple=True, type=click.Choice(POISONS),
              help="How the test split is replaced (repeatable) [default: random].")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--tolerance", type=float, default=1e-6, show_default=True, callback=_tolerance,
              help="Largest allowed change of a number (finite, >= 0).")
@click.option("--threads", type=click.IntRange(min=0), default=1, show_default=True, help="torch CPU threads (0: default).")
@click.pass_context
def audit(ctx: click.Context, spec: str, methods: tuple[str, ...], seed: int | None, poisons: tuple[str, ...],
          device: str, tolerance: float, threads: int) -> None:
    """Check that no method of SPEC peeks at the test split or scores transductively."""
    from zsbench.cli import _registry, console
    from zsbench.spec import load_spec

    registry = _registry(ctx)
    results = audit_spec(load_spec(spec, registry), registry, methods, seed, poisons or ("random",), device,
                         tolerance, threads,
                         on_start=lambda task: console.print(f"auditing {task.describe()} ...", highlight=False))
    passed = audited = 0
    for task, result in results:
        audited += 1
        where = escape(task.describe())
        if result.error:
            console.print(f"[red]FAILED[/]: {where}: the method failed, so it was not audited: {escape(result.error)}",
                          highlight=False)
        elif result.problems:
            for problem in result.problems:
                console.print(f"[red]PEEKS[/]: {where}: {escape(problem)}", highlight=False)
        else:
            passed += 1
            console.print(f"[green]ok[/]: {where}: {result.checked} choices and models unchanged, "
                          "scorer not transductive", highlight=False)
    console.print(f"{passed} of {audited} method run(s) passed the audit")
    if passed < audited:
        sys.exit(1)
