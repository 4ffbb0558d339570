"""Image backbones: extraction speed per backbone, and the cached read of a full-size data set.

Extraction: the 204 real FLO images of ../shared/data/flo/images_sample/jpg (generated JPEGs of
the same size stand in when absent, and the page says so) through each built-in backbone with
its own preprocessing, into an empty cache (``zsbench.runner.backbones.attach_backbone``, the path
``zsbench run`` and ``zsbench features`` take). Cached read: 8,189 image files (FLO's size; links
to the sample images, since the full set is not on this machine) whose feature matrix is already
in the Arrow cache; timed is everything a second run does before methods start: building the
backbone object, keying the 8,189 files, memory-mapping the matrix.

    python benchmarks/perf_backbones.py [--device cpu|cuda] [--threads 1] [--backbones efficientnet-lite0,...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from perf_features import images
from perfkit import median_time, write_fragment

from zsbench import get_registry
from zsbench.data import cache
from zsbench.interfaces import DatasetBundle, Splits
from zsbench.runner.backbones import attach_backbone, build_backbone, identity

FLO_IMAGES = 8189


def bundle_of(files: list[Path]) -> DatasetBundle:
    n = len(files)
    index = np.arange(n)
    splits = Splits(index, index[:1], index[:1], index, index[:1])
    return DatasetBundle("bench", np.zeros(n, np.int64), ("a",), splits, image_files=tuple(files),
                         class_embeddings=np.zeros((1, 2), np.float32), source="benchmark")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--backbones", default="efficientnet-lite0,efficientnet-lite1,efficientnet-lite2")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    registry = get_registry()
    rows = []
    with tempfile.TemporaryDirectory(prefix="perf-backbones-") as tmp:
        tmp = Path(tmp)
        os.environ["ZSBENCH_CACHE"] = str(tmp / "cache")
        files, source = images(tmp)
        sample = bundle_of(files)
        for name in args.backbones.split(","):
            start = time.perf_counter()
            out = attach_backbone(sample, {"name": name}, registry, device, show_progress=False)
            if device.type == "cuda":
                torch.cuda.synchronize()
            first = time.perf_counter() - start
            encoder = build_backbone({"name": name}, registry, device, show_progress=False)
            rows.append((name, out.features.shape[1], encoder.transform, first, encoder.identity.split("|")[-1]))

        links = tmp / "full" / "jpg"
        links.mkdir(parents=True)
        full = []
        for i in range(FLO_IMAGES):
            link = links / f"image_{i + 1:05d}.jpg"
            link.symlink_to(files[i % len(files)])
            full.append(link)
        big = bundle_of(full)
        backbone = {"name": args.backbones.split(",")[0]}
        encoder = build_backbone(backbone, registry, device, show_progress=False)
        key = cache.source_key(big.image_files, backbone=identity(encoder, backbone, registry, device))
        rng = np.random.default_rng(0)
        cache.cached_table(key, lambda: {"features": cache.matrix_column(
            rng.standard_normal((FLO_IMAGES, 1280), dtype=np.float32))})  # pre-filled: the read is timed

        def second_run():
            return attach_backbone(big, backbone, registry, device, show_progress=False).features.sum()

        t_cached = median_time(second_run, repeats=5, warmup=1)
        read = attach_backbone(big, backbone, registry, device, show_progress=False)
        assert read.features.shape == (FLO_IMAGES, 1280)
    threads = f"torch.set_num_threads({args.threads})" if args.threads else "torch's default CPU threads"
    table = "\n".join(
        f"| `{name}` | {t.resize} -> {t.crop} | {width} | {precision} | {first:.1f} s | {len(files) / first:.1f} |"
        for name, width, t, first, precision in rows
    )
    body = f"""
Extraction, first run (empty cache; decode, resize, crop, backbone, write caches) of {source},
batch 32, decoding in the main process (`num_workers` default on a CPU), {threads}. One run each,
on a shared machine with other jobs running: approximate figures.

| backbone | resize -> crop | features | precision | time for {len(files)} images | images/s |
|---|---|---:|---|---:|---:|
{table}

Cached second run of a data set of FLO's size ({FLO_IMAGES:,} image files, features already in
the Arrow cache; links to the sample images, as the full image set is not on this machine):
everything before the methods start (build the backbone object, key every file by path, size
and time, memory-map the {FLO_IMAGES:,} x 1280 matrix and touch every value), median of 5:
**{t_cached * 1000:.0f} ms**.
"""
    write_fragment("backbones", "Image backbones", "python benchmarks/perf_backbones.py --device cpu",
                   body, device)


if __name__ == "__main__":
    main()
