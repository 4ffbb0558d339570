"""The ``zsbench`` command: thin verbs over the library; user mistakes exit 2 without a traceback."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from zsbench.errors import UserError
from zsbench.registry import KINDS, PluginWarning, get_registry

DEFAULT_RESULTS = "results.sqlite"
# Piped output (CI logs, files) gets wide tables instead of 80-column wrapping.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

results_option = click.option(
    "--results",
    "results_path",
    default=DEFAULT_RESULTS,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="SQLite results database.",
)


def _registry(ctx: click.Context):
    return get_registry(strict=ctx.obj.get("strict") or None)


class LazyGroup(click.Group):
    """A group whose verbs in ``lazy`` (name -> ("module:attr", short help)) are imported only
    when invoked, so ``--help`` and the light verbs never pay for the leaderboard's plotting."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, tuple[str, str]] = {}

    def add_lazy(self, name: str, target: str, short_help: str) -> None:
        self.lazy[name] = (target, short_help)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy and name not in self.commands:
            import importlib

            module, _, attr = self.lazy[name][0].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy and name not in self.commands:
                rows.append((name, self.lazy[name][1]))
            elif (command := self.get_command(ctx, name)) is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zsbench")
@click.option("--strict", is_flag=True, help="Fail on a broken plugin instead of warning (or ZSBENCH_STRICT_PLUGINS=1).")
@click.pass_context
def cli(ctx: click.Context, strict: bool) -> None:
    """Benchmark zero-shot and generalized zero-shot learning methods.

    \b
    Typical use:
      zsbench validate benchmarks/demo.yaml   check a spec without running it
      zsbench run benchmarks/demo.yaml        run every dataset x method x seed, resumable
      zsbench results                         print the stored rows
      zsbench leaderboard --out docs/leaderboard   write Markdown pages and plots
      zsbench plugins                         list encoders, losses, calibrators, datasets, methods
    """
    ctx.ensure_object(dict)
    ctx.obj["strict"] = strict


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.pass_context
def validate(ctx: click.Context, spec: str) -> None:
    """Check SPEC (names, options, types, grids) without running anything."""
    from zsbench.spec import load_spec  # not the runner: validating needs no torch

    parsed = load_spec(spec, _registry(ctx))
    runs = len(parsed.datasets) * len(parsed.methods) * len(parsed.seeds)
    console.print(
        f"[green]ok[/]: {spec}: {len(parsed.datasets)} dataset(s) x {len(parsed.methods)} method(s) "
        f"x {len(parsed.seeds)} seed(s) = {runs} run(s)"
    )


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@results_option
@click.option("--force", is_flag=True, help="Rerun runs already in the results database.")
@click.option("--device", default=None, help="auto, cpu, cuda or cuda:N (overrides the spec).")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True, help="Where tasks run (ray: pip install 'zsbench[ray]').")
@click.option("--address", default=None, help="Ray cluster to run on (auto, ray://host:10001); default: a local instance.")
@click.option("--cpus-per-task", type=float, default=None, help="Ray: CPUs each task declares (default 1).")
@click.option("--gpus-per-task", type=float, default=None,
              help="Ray: GPUs each task declares, a fraction allowed (default: 1 when the device is CUDA, else 0).")
@click.option("--threads", type=click.IntRange(min=0), default=1, show_default=True,
              help="torch CPU threads per task (0: torch's default). Small models run faster on one.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def run(ctx: click.Context, spec: str, results_path: str, force: bool, device: str | None, backend: str,
        address: str | None, cpus_per_task: float | None, gpus_per_task: float | None, threads: int,
        quiet: bool) -> None:
    """Run every (dataset x method x seed) of SPEC; finished runs are skipped unless --force."""
    from tqdm.auto import tqdm

    from zsbench.runner import Failure, LocalBackend, plan, resolve_device, run_spec
    from zsbench.spec import load_spec
    from zsbench.store import ResultStore

    registry = _registry(ctx)
    parsed = load_spec(spec, registry)
    if backend == "ray":  # the device is resolved on the workers, which may have GPUs the driver lacks
        from zsbench.backends.ray import RayBackend

        chosen = RayBackend(registry, address=address, device=device or parsed.device,
                            num_cpus_per_task=1 if cpus_per_task is None else cpus_per_task,
                            num_gpus_per_task=gpus_per_task)
    elif address or cpus_per_task is not None or gpus_per_task is not None:
        raise UserError("--address, --cpus-per-task and --gpus-per-task are for the Ray backend; add --backend ray")
    else:
        chosen = LocalBackend(registry, resolve_device(device or parsed.device), show_progress=not quiet,
                              threads=threads or None)
    with ResultStore(results_path) as store:
        total = len(plan(parsed))
        bar = tqdm(total=total, desc=parsed.name, unit="run", disable=quiet, dynamic_ncols=True)

        def report(task, outcome):
            bar.update(1)
            if isinstance(outcome, Failure):
                bar.write(f"FAILED {task.describe()}: {outcome.message}")
            else:
                best = max(outcome, key=lambda r: r.val_H)
                bar.write(
                    f"{task.describe()}: " + ", ".join(f"{r.calibrator}: H={100 * r.H:.1f}" for r in outcome)
                    + f" ({best.wall_time:.1f}s)"
                )

        done, skipped, failures = run_spec(parsed, store, chosen, force=force, on_done=report)
        bar.update(len(skipped))
        bar.close()
        console.print(
            f"{len(done)} run(s) done, {len(skipped)} already in {results_path} (skipped), {len(failures)} failed"
        )
        _print_summary(store.rows(spec_name=parsed.name), title=f"{parsed.name}: test accuracy (%), mean ± 95% CI over seeds")
    if failures:
        for f in failures:
            err_console.print(f"[red]failed[/]: {f.task.describe()}: {f.message}", highlight=False)
        sys.exit(2 if all(f.user_error for f in failures) else 1)


def _print_summary(rows: list[dict], title: str) -> None:
    from zsbench.summary import METRICS, summarize  # numpy, scipy: only once there are rows

    if not rows:
        console.print("no results yet")
        return
    table = Table(title=title)
    for col in ("dataset", "method", "seeds", *METRICS):
        table.add_column(col, justify="right" if col in METRICS else "left")
    for s in summarize(rows):
        table.add_row(s.dataset, s.label, str(len(s.seeds)), *(str(s.estimates[m]) for m in METRICS))
    console.print(table)


@cli.command()
@results_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document with every row.")
@click.option("--spec-name", default=None, help="Only rows of this spec.")
def results(results_path: str, as_json: bool, spec_name: str | None) -> None:
    """Print stored results (a summary table, or every row with --json)."""
    from zsbench.store import ResultStore

    if not Path(results_path).exists():
        raise UserError(f"{results_path}: no results database here; run a spec first or pass --results PATH")
    with ResultStore(results_path) as store:
        rows = store.rows(spec_name=spec_name)
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
    else:
        _print_summary(rows, title=f"{results_path}: test accuracy (%), mean ± 95% CI over seeds")


@cli.command()
@click.argument("kind", required=False, type=click.Choice(KINDS))
@click.option("--filter", "pattern", default="*", show_default=True, help="Wildcard on names, e.g. 'cal*'.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list.")
@click.pass_context
def plugins(ctx: click.Context, kind: str | None, pattern: str, as_json: bool) -> None:
    """List registered components (optionally of one KIND), with the plugin that provides each."""
    registry = _registry(ctx)
    entries = registry.list(kind, pattern)
    if as_json:
        payload = {
            "components": [
                {
                    "kind": e.kind,
                    "name": e.name,
                    "plugin": e.plugin,
                    "distribution": e.distribution,
                    "version": e.version,
                    "description": e.description,
                    "options": sorted(e.options()),
                    "schema": [o.as_json() for o in e.schema()],
                    "default_grid": e.default_grid,
                }
                for e in entries
            ],
            "problems": registry.problems,
        }
        click.echo(json.dumps(payload, indent=2))
        return
    table = Table(title="zsbench plugins")
    for col in ("kind", "name", "plugin", "distribution", "description"):
        table.add_column(col)
    for e in entries:
        table.add_row(e.kind, e.name, e.plugin, f"{e.distribution or '-'} {e.version or ''}".strip(), e.description)
    console.print(table)


def _attach_optional_commands() -> None:
    """Verbs that live in their own modules (data management, leaderboard), imported when run."""
    cli.add_lazy("data", "zsbench.data.commands:data",
                 "Download and check data sets (xlsa17 features and splits, Reed et al. texts, images).")
    cli.add_lazy("leaderboard", "zsbench.leaderboard:leaderboard", "Write Markdown leaderboard pages and plots from the results database.")


def main(argv: list[str] | None = None) -> None:
    """Entry point: warnings about broken plugins go to stderr; UserError -> message, exit 2."""
    warnings.simplefilter("default", PluginWarning)
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    _attach_optional_commands()
    try:
        cli.main(args=argv, prog_name="zsbench", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        err_console.print("interrupted: finished runs are saved; rerun the same command to resume")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UserError as exc:
        err_console.print(f"[red]error[/]: {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
