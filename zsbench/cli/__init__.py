"""The ``zsbench`` command: thin verbs over the library; user mistakes exit 2 without a traceback."""

from __future__ import annotations

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
      zsbench specs                           the benchmark specs shipped with zsbench
      zsbench validate demo                   check a spec (a shipped one, or a file) without running it
      zsbench run demo                        run every dataset x method x seed, resumable
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
    from zsbench.api import check_data_files, load_spec  # not the runner: validating needs no torch

    parsed = load_spec(spec, _registry(ctx))
    check_data_files(parsed)
    runs = len(parsed.datasets) * len(parsed.methods) * len(parsed.seeds)
    points = sum(m.grid_size() for m in parsed.methods)
    console.print(
        f"[green]ok[/]: {escape(parsed.file)}: {len(parsed.datasets)} dataset(s) x {len(parsed.methods)} method(s) "
        f"x {len(parsed.seeds)} seed(s) = {runs} run(s), {points} grid point(s)"
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
    """Run every (dataset x method x seed) of SPEC (a file, or a shipped spec's name: `zsbench
    specs`); finished runs are skipped unless --force."""
    from tqdm.auto import tqdm

    from zsbench import api

    def report(task, outcome):
        for line in api.describe_outcome(task, outcome):
            tqdm.write(line)

    def recovered(message: str) -> None:
        err_console.print(f"[red]error[/]: {escape(message)}", highlight=False, soft_wrap=True)

    results = api.run(spec, results_path, force=force, device=device, backend=backend,
                      threads=_capped_threads(threads), quiet=quiet, on_done=report, on_recovery=recovered,
                      plugins=_registry(ctx), address=address,
                      cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task, dashboard=dashboard)
    outcome = results.outcome
    console.print(
        f"{len(outcome.done)} run(s) done, {len(outcome.skipped)} already in {results_path} (skipped), "
        f"{len(outcome.failures)} failed"
        + (f", {len(outcome.busy)} being computed by another zsbench process (left to it)" if outcome.busy else ""),
        highlight=False, markup=False,
    )
    from zsbench.store.sqlite import ResultStore

    with ResultStore(results_path, readonly=True) as store:
        stored = store.rows(spec_name=results.spec_name)
    _print_summary(stored, title=f"{escape(results.spec_name)}: test accuracy (%), mean ± 95% CI over seeds")
    if stored:
        console.print(f"next: `zsbench results --results {results_path}` prints these rows again (--format csv "
                      f"for a table); `zsbench leaderboard --results {results_path} --out site` writes pages "
                      "and plots", highlight=False, markup=False)
    if outcome.failures:
        for f in outcome.failures:
            err_console.print(f"[red]failed[/]: {escape(f.task.describe())}: {escape(f.message)}", highlight=False)
    if outcome.failures or outcome.recovery_file:
        sys.exit(2 if all(f.user_error for f in outcome.failures) else 1)


def _capped_threads(threads: int) -> int:
    """More torch threads than cores only adds contention (measured 35x slower with 64 on 2)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if threads > cores:
        err_console.print(f"warning: --threads {threads} is more than the {cores} CPU core(s) available "
                          f"here; using {cores}", highlight=False, markup=False)
        return cores
    return threads


def _print_summary(rows: list[dict], title: str) -> None:
    from zsbench.store.results import in_spec_order
    from zsbench.store.summary import METRICS, summarize  # numpy, scipy: only once there are rows

    if not rows:
        console.print("no results yet")
        return
    table = Table(title=title)
    for col in ("dataset", "method", "seeds", *METRICS):
        table.add_column(col, justify="right" if col in METRICS else "left")
    for s in summarize(in_spec_order(rows)):
        # Labels such as flo[backbone=x] are text, not rich markup.
        table.add_row(escape(s.dataset), escape(s.label), str(len(s.seeds)), *(str(s.estimates[m]) for m in METRICS))
    console.print(table)


@cli.group(invoke_without_command=True)
@results_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document with every row.")
@click.option("--spec-name", default=None, help="Only rows of this spec.")
@click.option("--failed", is_flag=True, help="Failed runs with no result since (error and provenance).")
@click.option("--stale", is_flag=True, help="Only rows whose code or data differ from the current ones, with why.")
@click.option("--prune-stale", is_flag=True,
              help="Delete the rows a rerun superseded and the rows whose code or data differ from the current ones.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "parquet", "json"]), default="table",
              show_default=True, help="csv: one line per run and calibrator with choices and provenance; "
              "parquet (needs pyarrow) the same, to --out; json: every stored row.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write --format csv, parquet or json here.")
@click.pass_context
def results(ctx: click.Context, results_path: str, as_json: bool, spec_name: str | None, failed: bool,
            stale: bool, prune_stale: bool, fmt: str, out: str | None) -> None:
    """Print stored results (a summary table, every row with --json, or --format csv|parquet|json);
    `results import FILE` writes runs saved to a recovery file. A rerun of a task supersedes its
    older rows."""
    from zsbench.store.sqlite import ResultStore

    ctx.obj["results_path"] = results_path
    if ctx.invoked_subcommand is not None:
        return
    if not Path(results_path).exists():
        raise UserError(f"{results_path}: no results database here; run a spec first or pass --results PATH")
    if prune_stale:
        _prune_stale(ctx, results_path, spec_name)
        return
    with ResultStore(results_path, readonly=True) as store:
        rows = store.failures(spec_name) if failed else store.rows(spec_name=spec_name)
    if stale and not failed:
        from zsbench.runner.identity import mark_stale

        rows = [r for r in mark_stale(rows, registry=_registry(ctx)) if r["stale"]]
        if not as_json:
            _print_stale(rows, results_path)
            return
    fmt = "json" if as_json else fmt
    if fmt in ("csv", "parquet") and failed:
        raise UserError(f"--format {fmt} writes result rows; use --json for --failed")
    if fmt == "parquet" and out is None:
        raise UserError("--format parquet writes a binary file: add --out FILE")
    if fmt != "table":
        from zsbench.store.results import Results

        data = Results(tuple(rows))
        if out is not None:
            data.write(out, fmt)
            console.print(f"wrote {len(rows)} row(s) to {out}", markup=False, highlight=False)
        else:
            click.echo(data.text(fmt), nl=fmt == "json")
    elif out is not None:
        raise UserError("--out needs --format csv, parquet or json")
    elif failed:
        _print_failures(rows, results_path)
    else:
        _print_summary(rows, title=f"{escape(results_path)}: test accuracy (%), mean ± 95% CI over seeds")


def _prune_stale(ctx: click.Context, results_path: str, spec_name: str | None) -> None:
    from zsbench.runner.identity import mark_stale
    from zsbench.store.sqlite import ResultStore

    with ResultStore(results_path) as store:
        superseded = store.rows(spec_name=spec_name, superseded=True)
        stale = [r for r in mark_stale(store.rows(spec_name=spec_name), registry=_registry(ctx)) if r["stale"]]
        store.delete_rows([r["id"] for r in superseded + stale])
    console.print(f"{results_path}: deleted {len(superseded)} row(s) superseded by a rerun and {len(stale)} "
                  "stale row(s) (from other code or data than the current)")


def _print_failures(rows: list[dict], results_path: str) -> None:
    if not rows:
        console.print(f"no failed runs in {results_path}", markup=False)
        return
    table = Table(title=f"{escape(results_path)}: failed runs (no result stored since)")
    for col in ("spec", "dataset", "method", "seed", "when", "error"):
        table.add_column(col)
    for f in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(f["created_at"]))
        table.add_row(*map(escape, (f["spec_name"], f["dataset"], f["method"], str(f["seed"]), when, f["error"])))
    console.print(table)


@results.command("import")
@click.argument("recovery_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--results", "own_results", default=None, type=click.Path(dir_okay=False),
              help="SQLite results database to write into (default: the one given to `results`).")
@click.pass_context
def import_results(ctx: click.Context, recovery_file: str, own_results: str | None) -> None:
    """Write the runs of RECOVERY_FILE (saved when the database refused a write) into --results."""
    from zsbench.store.sqlite import ResultStore

    results_path = own_results or ctx.obj["results_path"]
    with ResultStore(results_path) as store:
        imported, stored = store.import_runs(recovery_file)
    done = Path(recovery_file).with_name(Path(recovery_file).name + ".imported")
    try:
        os.replace(recovery_file, done)
    except OSError as exc:
        done = f"{recovery_file} (it could not be renamed to {done.name}: {exc.strerror or exc}; importing it again skips its runs)"
    console.print(f"imported {imported} run(s) into {results_path} ({stored} already there); "
                  f"the recovery file is now {done}", markup=False)


def _print_stale(rows: list[dict], results_path: str) -> None:
    if not rows:
        console.print(f"{results_path}: every row came from the current code and data", markup=False)
        return
    table = Table(title=f"{escape(results_path)}: {len(rows)} row(s) from other code or data than the current")
    for col in ("dataset", "method", "calibrator", "seed", "why"):
        table.add_column(col)
    for r in rows:
        table.add_row(*map(escape, (r["dataset"], r["method"], r["calibrator"], str(r["seed"]), "; ".join(r["stale"]))))
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
        table.add_row(*map(escape, (e.kind, e.name, e.plugin, f"{e.distribution or '-'} {e.version or ''}".strip(),
                                    e.description)))
    console.print(table)


@cli.command()
def specs() -> None:
    """List the benchmark specs shipped with zsbench (`zsbench run NAME` runs one)."""
    import yaml

    from zsbench.specs import names, packaged

    table = Table(title="specs shipped with zsbench (zsbench run NAME, zsbench validate NAME)")
    for col in ("name", "description", "file"):
        table.add_column(col)
    for name in names():
        path = packaged(name)
        try:
            description = (yaml.safe_load(path.read_text()) or {}).get("description", "")
        except yaml.YAMLError:
            description = ""
        table.add_row(escape(name), escape(str(description)), escape(str(path)))
    console.print(table)


def _attach_optional_commands() -> None:
    """Verbs that live in their own modules, imported only when run."""
    cli.add_lazy("data", "zsbench.cli.data:data",
                 "Download and check data sets (xlsa17 features and splits, Reed et al. texts, images).")
    cli.add_lazy("leaderboard", "zsbench.cli.leaderboard:leaderboard",
                 "Write every Markdown leaderboard page and plot from the results database(s) or exported rows.")
    cli.add_lazy("export", "zsbench.cli.export:export",
                 "Write the stored rows, with provenance and curves, as JSON lines (one file per data set).")
    cli.add_lazy("audit", "zsbench.cli.audit:audit",
                 "Check that no method of SPEC peeks at the test split or scores transductively.")
    cli.add_lazy("features", "zsbench.cli.features:features",
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
        err_console.print(f"[red]error[/]: {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
