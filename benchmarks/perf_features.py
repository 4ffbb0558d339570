"""Feature extraction from raw images with the ``timm-backbone`` encoder: first run against cached.

Images are the 204 real FLO pictures in ../shared/data/flo/images_sample/jpg (generated JPEGs of
the same size stand in when that folder is absent, and the page says so). A first run decodes,
resizes and passes every image through the frozen backbone, writing one feature file per image
into the encoder's cache; a second run over the same files reads that cache. The backbone has
random weights (no model hub here): its speed does not depend on the weights' values.

    python benchmarks/perf_features.py [--device cpu|cuda] [--model resnet18] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import timm.data
import torch
from perfkit import SHARED_DATA, median_time, write_fragment

from zsbench import EncoderContext, get_registry

SAMPLE = SHARED_DATA / "flo" / "images_sample" / "jpg"


def images(tmp: Path) -> tuple[list[Path], str]:
    """The real sample images, or 204 smooth random JPEGs of their size (256 x 320)."""
    files = sorted(SAMPLE.glob("*.jpg"))
    if files:
        return files, f"the {len(files)} real FLO images in ../shared/data/flo/images_sample (short side 256)"
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = tmp / "generated"
    folder.mkdir()
    for i in range(204):
        coarse = rng.integers(0, 256, size=(8, 10, 3), dtype=np.uint8)
        path = folder / f"image_{i:05d}.jpg"
        Image.fromarray(coarse).resize((320, 256), Image.BILINEAR).save(path, quality=90)
        files.append(path)
    return files, "204 generated 256 x 320 JPEGs (../shared/data/flo/images_sample absent)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default="resnet18", help="a timm model name")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=3, help="first runs, each into a fresh cache")
    parser.add_argument("--batch-size", type=int, default=64, help="the encoder's extraction batch")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    context = EncoderContext("image", 1024, device=device)
    with tempfile.TemporaryDirectory(prefix="perf-features-") as tmp:
        files, source = images(Path(tmp))
        encoders = [  # one per first run, each with its own empty cache; only extraction is timed
            get_registry().build("encoder", "timm-backbone", context, model=args.model,
                                 batch_size=args.batch_size, feature_cache=str(Path(tmp) / f"cache{i}"))
            for i in range(args.repeats)
        ]
        pending = iter(encoders)
        t_first = median_time(lambda: next(pending).prepare(files), args.repeats, warmup=0, sync=True)
        encoder = encoders[0]
        first = encoder.prepare(files)
        assert encoder.extractor.last_hits == len(files), "the second run missed the cache"
        t_cached = median_time(lambda: encoder.prepare(files), repeats=5, sync=True)
        assert torch.equal(encoder.prepare(files), first)
        folder = encoder.extractor.folder
        cache_bytes = sum(f.stat().st_size for f in folder.iterdir())
    n = len(files)
    threads = f"torch.set_num_threads({args.threads})" if args.threads else "torch's default CPU threads"
    backbone = encoder.extractor.backbone
    params = sum(p.numel() for p in backbone.parameters())
    size = timm.data.resolve_data_config({}, model=backbone)["input_size"]
    body = f"""
`timm-backbone` with timm `{args.model}` ({params / 1e6:.1f} M parameters, random weights; speed
does not depend on their values), timm's own preprocessing for it (input {size[1]} x {size[2]}), extraction batch
{args.batch_size}, `num_workers` {encoder.extractor.num_workers} (0: decoding in the main process), {threads}. Images: {source}.
First run: an empty cache each time (median of {args.repeats}; the image files themselves are in
the OS page cache after the first). Cached run: the same encoder again, every feature read back
from its cache ({n} hits, identical features; median of 5). The cache holds
{cache_bytes / n / 1024:.1f} KiB per image ({encoder.extractor.num_features} floats).

| run | time for {n} images | images/s |
|---|---:|---:|
| first run (decode, resize, backbone, write cache) | {t_first:.2f} s | {n / t_first:,.1f} |
| cached run (read cache) | {t_cached * 1e3:.1f} ms | {n / t_cached:,.0f} |
| speed-up | {t_first / t_cached:,.0f}x | |
"""
    command = f"python benchmarks/perf_features.py --device {device.type}"
    if args.model != "resnet18":
        command += f" --model {args.model}"
    write_fragment("features", "Feature extraction from raw images", command, body, device)


if __name__ == "__main__":
    main()
