"""The ``zsbench`` command: thin verbs over the library; user mistakes exit 2 without a traceback."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from zsbench.errors import SpecError, UserError
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
              help="torch CPU threads per task (0: torch's default), at most the cores here. Small models run faster on one.")
@click.option("--dashboard", is_flag=True,
              help="Ray: start the local instance's dashboard (on 127.0.0.1; off by default).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def run(ctx: click.Context, spec: str, results_path: str, force: bool, device: str | None, backend: str,
        address: str | None, cpus_per_task: float | None, gpus_per_task: float | None, threads: int,
        dashboard: bool, quiet: bool) -> None:
    """Run every (dataset x method x seed) of SPEC; finished runs are skipped unless --force."""
    from tqdm.auto import tqdm

    from zsbench.runner import Failure, LocalBackend, plan, resolve_device, run_spec
    from zsbench.spec import load_spec
    from zsbench.store import ResultStore

    registry = _registry(ctx)
    parsed = load_spec(spec, registry)
    threads = _capped_threads(threads)
    device_name, device_key = (device, None) if device else (parsed.device, "device")
    if backend == "ray":  # the device is resolved on the workers, which may have GPUs the driver lacks
        from zsbench.backends.ray import RayBackend, SettingError

        flags = {"num_cpus_per_task": "--cpus-per-task", "num_gpus_per_task": "--gpus-per-task"}
        try:
            chosen = RayBackend(registry, address=address, device=device_name,
                                num_cpus_per_task=1 if cpus_per_task is None else cpus_per_task,
                                num_gpus_per_task=gpus_per_task, dashboard=dashboard,
                                device_origin=f"{parsed.file}: device" if device_key else "--device")
        except SettingError as exc:
            if exc.setting in flags:
                raise UserError(f"{flags[exc.setting]} {exc.detail}") from None
            with _device_context(parsed.file, device_key):
                raise
    elif address or cpus_per_task is not None or gpus_per_task is not None or dashboard:
        raise UserError("--address, --cpus-per-task, --gpus-per-task and --dashboard are for the Ray "
                        "backend; add --backend ray")
    else:
        with _device_context(parsed.file, device_key):
            resolved = resolve_device(device_name)
        chosen = LocalBackend(registry, resolved, show_progress=not quiet, threads=threads or None)
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

        outcome = run_spec(parsed, store, chosen, force=force, on_done=report)
        done, skipped, failures = outcome
        bar.update(len(skipped) + len(outcome.busy))
        bar.close()
        console.print(
            f"{len(done)} run(s) done, {len(skipped)} already in {results_path} (skipped), {len(failures)} failed"
            + (f", {len(outcome.busy)} being computed by another zsbench process (left to it)" if outcome.busy else "")
        )
        _print_summary(store.rows(spec_name=parsed.name), title=f"{parsed.name}: test accuracy (%), mean ± 95% CI over seeds")
    if outcome.recovery_file:
        err_console.print(
            f"[red]error[/]: {results_path}: {len(outcome.recovered)} computed run(s) could not be written to "
            f"the database and were saved to {outcome.recovery_file}; once the database is writable, run "
            f"`zsbench results import {outcome.recovery_file} --results {results_path}`", highlight=False, soft_wrap=True)
    if failures:
        for f in failures:
            err_console.print(f"[red]failed[/]: {escape(f.task.describe())}: {escape(f.message)}", highlight=False)
    if failures or outcome.recovery_file:
        sys.exit(2 if all(f.user_error for f in failures) else 1)


def _capped_threads(threads: int) -> int:
    """More torch threads than cores only adds contention (measured 35x slower with 64 on 2)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if threads > cores:
        err_console.print(f"warning: --threads {threads} is more than the {cores} CPU core(s) available "
                          f"here; using {cores}", highlight=False)
        return cores
    return threads


@contextlib.contextmanager
def _device_context(spec_file: str, key: str | None):
    """Device errors name where the device came from: the spec's key, or --device."""
    try:
        yield
    except UserError as exc:
        if key is None:
            raise UserError(f"--device: {exc}") from None
        raise SpecError(spec_file, key, str(exc)) from None


def _print_summary(rows: list[dict], title: str) -> None:
    from zsbench.summary import METRICS, summarize  # numpy, scipy: only once there are rows

    if not rows:
        console.print("no results yet")
        return
    table = Table(title=title)
    for col in ("dataset", "method", "seeds", *METRICS):
        table.add_column(col, justify="right" if col in METRICS else "left")
    for s in summarize(rows):
        # Labels such as flo[backbone=x] are text, not rich markup.
        table.add_row(escape(s.dataset), escape(s.label), str(len(s.seeds)), *(str(s.estimates[m]) for m in METRICS))
    console.print(table)


@cli.group(invoke_without_command=True)
@results_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document with every row.")
@click.option("--spec-name", default=None, help="Only rows of this spec.")
@click.option("--failed", is_flag=True, help="Failed runs with no result since (error and provenance).")
@click.option("--stale", is_flag=True, help="Only rows whose code or data differ from the current ones, with why.")
@click.pass_context
def results(ctx: click.Context, results_path: str, as_json: bool, spec_name: str | None, failed: bool,
            stale: bool) -> None:
    """Print stored results (a summary table, or every row with --json); `results import FILE`
    writes runs saved to a recovery file."""
    from zsbench.store import ResultStore

    ctx.obj["results_path"] = results_path
    if ctx.invoked_subcommand is not None:
        return
    if not Path(results_path).exists():
        raise UserError(f"{results_path}: no results database here; run a spec first or pass --results PATH")
    with ResultStore(results_path, readonly=True) as store:
        rows = store.failures(spec_name) if failed else store.rows(spec_name=spec_name)
    if stale and not failed:
        from zsbench.identity import mark_stale

        rows = [r for r in mark_stale(rows, registry=_registry(ctx)) if r["stale"]]
        if not as_json:
            _print_stale(rows, results_path)
            return
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
    elif failed:
        _print_failures(rows, results_path)
    else:
        _print_summary(rows, title=f"{results_path}: test accuracy (%), mean ± 95% CI over seeds")


def _print_failures(rows: list[dict], results_path: str) -> None:
    if not rows:
        console.print(f"no failed runs in {results_path}")
        return
    table = Table(title=f"{results_path}: failed runs (no result stored since)")
    for col in ("spec", "dataset", "method", "seed", "when", "error"):
        table.add_column(col)
    for f in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(f["created_at"]))
        table.add_row(f["spec_name"], f["dataset"], f["method"], str(f["seed"]), when, f["error"])
    console.print(table)


@results.command("import")
@click.argument("recovery_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--results", "own_results", default=None, type=click.Path(dir_okay=False),
              help="SQLite results database to write into (default: the one given to `results`).")
@click.pass_context
def import_results(ctx: click.Context, recovery_file: str, own_results: str | None) -> None:
    """Write the runs of RECOVERY_FILE (saved when the database refused a write) into --results."""
    from zsbench.store import ResultStore

    results_path = own_results or ctx.obj["results_path"]
    with ResultStore(results_path) as store:
        imported, stored = store.import_runs(recovery_file)
    done = Path(recovery_file).with_name(Path(recovery_file).name + ".imported")
    os.replace(recovery_file, done)
    console.print(f"imported {imported} run(s) into {results_path} ({stored} already there); "
                  f"the recovery file is now {done}")


def _print_stale(rows: list[dict], results_path: str) -> None:
    if not rows:
        console.print(f"{results_path}: every row came from the current code and data")
        return
    table = Table(title=f"{results_path}: {len(rows)} row(s) from other code or data than the current")
    for col in ("dataset", "method", "calibrator", "seed", "why"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["dataset"], r["method"], r["calibrator"], str(r["seed"]), "; ".join(r["stale"]))
    console.print(table)


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
    """Verbs that live in their own modules, imported only when run."""
    cli.add_lazy("data", "zsbench.data.commands:data",
                 "Download and check data sets (xlsa17 features and splits, Reed et al. texts, images).")
    cli.add_lazy("leaderboard", "zsbench.leaderboard:leaderboard",
                 "Write every Markdown leaderboard page and plot from the results database(s) or exported rows.")
    cli.add_lazy("export", "zsbench.export:export",
                 "Write the stored rows, with provenance and curves, as JSON lines (one file per data set).")
    cli.add_lazy("audit", "zsbench.audit:audit",
                 "Check that no method of SPEC peeks at the test split or scores transductively.")
    cli.add_lazy("features", "zsbench.features_command:features",
                 "Extract the backbone features of SPEC's dataset into OUT in the xlsa17 res101.mat layout.")


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
