"""``zsbench data ...``: download and verify data folders."""

from __future__ import annotations

import click

from zsbench.data import download as dl
from zsbench.errors import UserError
from zsbench.paths import dataset_root

NAMES = click.Choice(sorted(dl.REGISTRY))


@click.group("data")
def data() -> None:
    """Download and check data sets (xlsa17 features and splits, Reed et al. texts, images)."""


@data.command("download")
@click.argument("name", type=NAMES)
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Folder to fill (default: the data set's folder under $ZSBENCH_DATA).")
@click.option("--images", is_flag=True, help="Also fetch the original images (large).")
@click.option("--mirror", default=None, help="Fetch <mirror>/<file name> instead of the official "
                                              "URLs (also $ZSBENCH_MIRROR).")
@click.option("--keep-archives", is_flag=True, help="Keep the downloaded archives in .downloads/.")
def download_command(name: str, root: str | None, images: bool, mirror: str | None,
                     keep_archives: bool) -> None:
    """Fetch NAME's official archives, check and extract them into its folder."""
    folder = dl.download(name, root, images=images, mirror=mirror, keep_archives=keep_archives)
    click.echo(f"{name}: installed in {folder}")
    problems = dl.verify(name, folder)
    if problems:
        raise UserError(f"{name} was downloaded but does not check out:\n  " + "\n  ".join(problems))


@data.command("verify")
@click.argument("name", type=NAMES)
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Folder to check (default: the data set's folder under $ZSBENCH_DATA).")
@click.option("--features", default=None,
              help="Feature file to check instead of res101.mat (same layout).")
def verify_command(name: str, root: str | None, features: str | None) -> None:
    """Check NAME's folder: files present, checksums as recorded, files consistent."""
    problems = dl.verify(name, root, features)
    if problems:
        raise UserError(f"{name}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    click.echo(f"{name}: OK ({dataset_root(name, root)})")
