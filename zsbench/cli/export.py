"""``zsbench export``: stored rows as the JSON lines the published leaderboard is made from."""

from __future__ import annotations

import click

from zsbench.errors import UserError
from zsbench.store.export import export_rows


@click.command("export")
@click.option("--results", "results_path", default="results.sqlite", show_default=True,
              type=click.Path(dir_okay=False), help="SQLite results database.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for one <dataset>.jsonl per data set (e.g. docs/leaderboard/results).")
@click.option("--spec-name", default=None, help="Only rows of this spec.")
def export(results_path: str, out_dir: str, spec_name: str | None) -> None:
    """Write the stored rows, with provenance and curves, as JSON lines (one file per data set)."""
    from zsbench.outputs import writable_folder
    from zsbench.store.load import load_rows

    writable_folder(out_dir, "--out")
    rows = load_rows(results_path, spec_name)
    if not rows:
        raise UserError(f"{results_path}: no result rows" + (f" of spec {spec_name!r}" if spec_name else ""))
    try:
        written = export_rows(rows, out_dir)
    except OSError as exc:
        raise UserError(f"--out {out_dir}: cannot write the rows there ({exc.strerror or exc}); pass --out "
                        "a folder you can write") from None
    click.echo(f"wrote {len(rows)} row(s) to {', '.join(map(str, written))}")
