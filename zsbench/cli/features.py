"""``zsbench features SPEC --out FILE.mat``: a dataset's backbone features, in the xlsa17 layout.

The file has exactly the ``res101.mat`` layout (``features`` D x N float32, ``labels`` N x 1,
1-based, ``image_files`` N x 1, relative to the data folder), rows in the dataset's own order,
so other tools (and zsbench's ``features:`` option) read it like any xlsa17 feature file.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import numpy as np

from zsbench.errors import UserError


def _choose(datasets, label: str | None, spec: str):
    with_backbone = [d for d in datasets if d.backbone is not None]
    if label is not None:
        chosen = [d for d in datasets if d.label == label]
        if not chosen:
            raise UserError(f"{spec}: no dataset labelled {label!r}; labels: "
                            f"{', '.join(d.label for d in datasets)}")
        if chosen[0].backbone is None:
            raise UserError(f"{spec}: dataset {label!r} names no backbone, so there are no features to extract")
        return chosen[0]
    if not with_backbone:
        raise UserError(f"{spec}: no dataset entry names a backbone (backbone: {{name: ...}})")
    if len(with_backbone) > 1:
        raise UserError(f"{spec}: {len(with_backbone)} datasets have a backbone; choose one with "
                        f"--dataset, one of: {', '.join(d.label for d in with_backbone)}")
    return with_backbone[0]


def write_feature_file(out: Path, features: np.ndarray, labels: np.ndarray, image_files, root: Path) -> None:
    """The xlsa17 ``res101.mat`` layout: features D x N, labels N x 1 (1-based), image_files N x 1."""
    import scipy.io

    names = np.empty((len(image_files), 1), dtype=object)
    for i, path in enumerate(image_files):
        relative = os.path.relpath(path, root)
        names[i, 0] = str(path) if relative.startswith("..") else Path(relative).as_posix()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with open(partial, "wb") as stream:
        scipy.io.savemat(stream, {
            "features": np.ascontiguousarray(features.T, dtype=np.float32),
            "labels": (np.asarray(labels, dtype=np.float64) + 1).reshape(-1, 1),
            "image_files": names,
        })
    partial.replace(out)


@click.command("features")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--dataset", "label", default=None, help="Label of the dataset entry (when several have a backbone).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The .mat file to write.")
@click.option("--device", default=None, help="auto, cpu, cuda or cuda:N (overrides the spec).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def features(ctx: click.Context, spec: str, label: str | None, out: str, device: str | None, quiet: bool) -> None:
    """Extract the backbone features of SPEC's dataset into OUT in the xlsa17 res101.mat layout."""
    import attrs

    from zsbench.outputs import writable_file
    from zsbench.paths import dataset_root
    from zsbench.registry import get_registry
    from zsbench.runner.backbones import attach_backbone
    from zsbench.runner.grid import load_dataset, resolve_device
    from zsbench.spec import load_spec

    writable_file(out, "--out")  # before minutes of extraction, not after
    registry = get_registry(strict=(ctx.obj or {}).get("strict") or None)
    parsed = load_spec(spec, registry)
    chosen = _choose(parsed.datasets, label, spec)
    bundle = load_dataset(attrs.evolve(chosen, backbone=None), registry)
    computed: list[tuple[int, float]] = []
    bundle = attach_backbone(bundle, chosen.backbone, registry, resolve_device(device or parsed.device),
                             show_progress=not quiet, on_extracted=lambda n, s: computed.append((n, s)))
    root = dataset_root(chosen.plugin, chosen.root)
    try:
        write_feature_file(Path(out), bundle.features, bundle.labels, bundle.image_files, root)
    except OSError as exc:  # e.g. the disk filled up since the check; the features stay cached
        raise UserError(f"--out {out}: cannot write the feature file ({exc.strerror or exc}); the extracted "
                        "features are cached, so rerunning with another --out reads them back") from None
    n, width = bundle.features.shape
    click.echo(f"{chosen.label}: {n} images x {width} features ({bundle.feature_name}) -> {out}; {_rate(computed)}")


def _rate(computed: list[tuple[int, float]]) -> str:
    """The extraction rate of the images encoded now; cached features are no work, so no rate."""
    if not computed:
        return "read from the cache, no image encoded"
    images, seconds = computed[0]
    return f"{images} images encoded in {seconds:.1f} s, {images / max(seconds, 1e-9):.0f} images/s"
