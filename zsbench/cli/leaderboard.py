"""``zsbench leaderboard``: every page and figure of the site, from stored or exported rows."""

from __future__ import annotations

import click

from zsbench.errors import UserError
from zsbench.site.leaderboard import (
    DEFAULT_REPORTED,
    ENTRIES,
    RUN_TIMES,
    TOP_ROWS,
    load_reported,
    repeated_seeds,
    write_leaderboard,
)
from zsbench.store.load import load_failure_counts, load_rows, unknown_spec_name


@click.command()
@click.option("--results", "results_paths", multiple=True, default=["results.sqlite"], show_default=True,
              type=click.Path(), help="SQLite results database, or exported rows (a .jsonl file or a folder "
              "of them); repeat to combine several.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for the Markdown pages and PNG plots (e.g. docs/leaderboard).")
@click.option("--reported", "reported_path", default=None, type=click.Path(dir_okay=False),
              help=f"YAML of published numbers [default: {DEFAULT_REPORTED} when it exists].")
@click.option("--spec-name", default=None, help="Only rows of this spec.")
@click.option("--no-plots", is_flag=True, help="Write the tables only, no PNG figures.")
@click.option("--stale", "stale_policy", type=click.Choice(["flag", "refuse"]), default="flag", show_default=True,
              help="Rows from other code or data than the current: mark them on the page, or refuse to write.")
def leaderboard(results_paths: tuple[str, ...], out_dir: str, reported_path: str | None, spec_name: str | None,
                no_plots: bool, stale_policy: str) -> None:
    """Write every Markdown leaderboard page and plot from the results database(s) or exported rows."""
    from zsbench.runner.identity import mark_stale

    rows = mark_stale([row for path in results_paths for row in load_rows(path, spec_name)],
                      refuse=stale_policy == "refuse")
    if spec_name and not rows:
        raise unknown_spec_name(results_paths, spec_name)
    if reported_path is None and DEFAULT_REPORTED.is_file():
        reported_path = str(DEFAULT_REPORTED)
    reported = load_reported(reported_path) if reported_path else []
    for entry in repeated_seeds(rows):
        click.echo(f"warning: {entry}: rows of different runs are averaged together; "
                   "pass --spec-name to keep one spec", err=True)
    failures = load_failure_counts(results_paths, spec_name)
    try:
        written = write_leaderboard(rows, out_dir, reported, with_plots=not no_plots, failures=failures)
    except OSError as exc:
        raise UserError(f"{exc.filename or out_dir}: cannot write the leaderboard there ({exc.strerror or exc}); "
                        "pass --out a folder you can write") from None
    for (dataset, method), count in sorted(failures.items()):
        click.echo(f"{dataset} / {method}: {count} failed run(s), not scored (zsbench results --failed)", err=True)
    pages = sum(p.suffix == ".md" and not p.name.startswith("_") for p in written)
    snippets = sum(p.name.startswith("_") for p in written)
    click.echo(
        f"wrote {pages} page(s), {len(written) - pages - snippets} plot(s) and the home page's top rows ({TOP_ROWS}), "
        f"run times ({RUN_TIMES}) and each data set's entries ({ENTRIES.format(slug='<data set>')}) to "
        f"{out_dir} from {len(rows)} row(s)"
        + (f" and {len(reported)} reported result(s) ({reported_path})" if reported else "")
    )
