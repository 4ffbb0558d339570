"""A small synthetic fine-grained data set written in the real on-disk formats.

Each class is a combination of flower attributes (colour, petal shape, pattern, ...). Its
images' features are a noisy function of those attributes (so knowledge transfers to unseen
classes, but not trivially), its class embedding (``att``) is a noisy projection of them, and
each image has about ten Reed-style sentences naming the attributes in words, plus the scene
the photo was taken in, which also shifts that image's features. Written as xlsa17 mats,
``text_c10/class_000NN/<image>.txt`` folders and Oxford-style ``jpg/`` images, so the demo and
the tests go through exactly the loaders real data uses.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import scipy.io

from zsbench.errors import UserError

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "color": ("red", "orange", "yellow", "white", "pink", "purple", "blue", "crimson"),
    "shape": ("round", "pointed", "ruffled", "narrow", "heart-shaped", "star-shaped"),
    "pattern": ("spotted", "striped", "plain", "veined", "speckled"),
    "center": ("yellow", "dark", "green", "white", "orange"),
    "size": ("tiny", "small", "medium-sized", "large"),
    "leaf": ("broad", "thin", "serrated", "waxy"),
}
SCENES = ("in a garden", "in the wild", "in a vase", "on a windowsill", "in the rain", "at dusk")
TEMPLATES = (
    "this flower has {color} petals that are {shape}.",
    "the petals are {pattern} and {color}.",
    "a {size} flower with a {center} center.",
    "this {size} plant has {leaf} leaves.",
    "{color} {pattern} petals surround a {center} center.",
    "the flower is {size} with {shape} petals.",
    "a {color} flower with {leaf} leaves, photographed {scene}.",
    "this is a {pattern} flower seen {scene}.",
    "its {shape} petals are {color} with a {center} middle.",
    "a {leaf}-leaved flower with {pattern} {color} petals.",
)
_COLORS_RGB = {"red": (200, 30, 30), "orange": (240, 140, 20), "yellow": (240, 220, 40),
               "white": (240, 240, 240), "pink": (240, 150, 190), "purple": (130, 40, 160),
               "blue": (40, 70, 200), "crimson": (150, 10, 40)}
MARKER = "synthetic.json"
# Class and image fractions of the splits, as in the real FLO/CUB files.
UNSEEN_FRACTION = 0.2  # test-unseen classes
VAL_UNSEEN_FRACTION = 0.2  # validation-unseen classes (val_loc)
TEST_SEEN_FRACTION = 0.2  # images of each seen class held out as test_seen


def variant_name(**params: object) -> str:
    """A folder name that differs whenever the generator's parameters do."""
    return "synthetic-" + "-".join(f"{k}{params[k]}" for k in sorted(params))


def write_synthetic(
    root: Path,
    num_classes: int = 30,
    per_class: int = 40,
    feature_dim: int = 64,
    embedding_dim: int = 32,
    noise: float = 1.5,
    seed: int = 0,
    images: bool = True,
) -> Path:
    """Write the data set into ``root`` (created atomically) and return it.

    The same parameters always write the same files. An existing ``root`` written by this
    generator is kept as it is; any other non-empty ``root`` is an error.
    """
    root = Path(root)
    if num_classes < 5 or per_class < 5:
        raise UserError(f"synthetic data needs at least 5 classes and 5 images per class, "
                        f"got num_classes={num_classes}, per_class={per_class}")
    if (root / MARKER).is_file():
        return root
    if root.exists() and any(root.iterdir()):
        raise UserError(f"{root} exists and holds other files; choose an empty folder for "
                        "synthetic data")
    params = dict(num_classes=num_classes, per_class=per_class, feature_dim=feature_dim,
                  embedding_dim=embedding_dim, noise=noise, seed=seed, images=images)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{root.name}-", dir=root.parent))
    try:
        _write(tmp, np.random.default_rng(seed), num_classes=num_classes, per_class=per_class,
               feature_dim=feature_dim, embedding_dim=embedding_dim, noise=noise, images=images)
        (tmp / MARKER).write_text(json.dumps(params, indent=1))
        try:
            os.replace(tmp, root)  # replaces an empty root; fails if another writer finished first
        except OSError:
            if not (root / MARKER).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _write(out: Path, rng: np.random.Generator, *, num_classes: int, per_class: int,
           feature_dim: int, embedding_dim: int, noise: float, images: bool) -> None:
    groups = list(ATTRIBUTES)
    choice = _class_attributes(rng, num_classes)  # (C, groups) value index per group
    offsets = np.cumsum([0] + [len(ATTRIBUTES[g]) for g in groups[:-1]])
    onehot = np.zeros((num_classes, sum(len(v) for v in ATTRIBUTES.values())))
    onehot[np.arange(num_classes)[:, None], choice + offsets] = 1.0

    n = num_classes * per_class
    labels = np.repeat(np.arange(num_classes), per_class)
    scene = rng.integers(len(SCENES), size=n)
    to_visual = rng.normal(size=(onehot.shape[1], feature_dim)) / np.sqrt(len(groups))
    scene_visual = rng.normal(size=(len(SCENES), feature_dim)) * 0.5
    class_quirk = rng.normal(size=(num_classes, feature_dim)) * 0.5  # not predictable from attributes
    prototypes = onehot @ to_visual + class_quirk
    raw = prototypes[labels] + scene_visual[scene] + noise * rng.normal(size=(n, feature_dim))
    features = np.logaddexp(0.0, raw).astype(np.float32)  # softplus: non-negative like CNN features

    to_embedding = rng.normal(size=(onehot.shape[1], embedding_dim))
    att = (onehot + 0.1 * rng.normal(size=onehot.shape)) @ to_embedding
    att /= np.linalg.norm(att, axis=1, keepdims=True)

    files = [f"jpg/image_{i:05d}.jpg" for i in range(1, n + 1)]
    names = [f"{c + 1:03d}.{'_'.join(ATTRIBUTES[g][choice[c, k]] for k, g in enumerate(groups[:3]))}"
             for c in range(num_classes)]
    scipy.io.savemat(out / "res101.mat", {
        "features": features.T,
        "labels": (labels + 1.0)[:, None],
        "image_files": np.array([[f] for f in files], dtype=object),
    })
    splits = _splits(rng, labels, num_classes)
    scipy.io.savemat(out / "att_splits.mat", {
        **{f"{k}_loc": (v + 1)[:, None].astype(np.int32) for k, v in splits.items()},
        "att": att.T,
        "allclasses_names": np.array([[c] for c in names], dtype=object),
    })
    _write_texts(out / "text_c10", rng, files, labels, choice, scene)
    if images:
        _write_images(out, rng, labels, choice, scene)


def _class_attributes(rng: np.random.Generator, num_classes: int) -> np.ndarray:
    sizes = np.array([len(v) for v in ATTRIBUTES.values()])
    if num_classes > np.prod(sizes):
        raise UserError(f"synthetic data has at most {int(np.prod(sizes))} classes")
    chosen: dict[tuple[int, ...], None] = {}
    while len(chosen) < num_classes:
        chosen.setdefault(tuple(int(rng.integers(s)) for s in sizes))
    return np.array(list(chosen))


def _splits(rng: np.random.Generator, labels: np.ndarray, num_classes: int) -> dict[str, np.ndarray]:
    """xlsa17-style: unseen and validation-unseen classes; train = all images of train classes,
    val = all of validation classes; trainval/test_seen cut every seen class 80/20."""
    order = rng.permutation(num_classes)
    n_unseen = max(1, round(UNSEEN_FRACTION * num_classes))
    n_val = max(1, round(VAL_UNSEEN_FRACTION * num_classes))
    unseen, val, train = order[:n_unseen], order[n_unseen:n_unseen + n_val], order[n_unseen + n_val:]
    test_seen = []
    for c in np.sort(np.concatenate([train, val])):
        members = np.flatnonzero(labels == c)
        test_seen.append(rng.choice(members, size=max(1, round(TEST_SEEN_FRACTION * len(members))),
                                    replace=False))
    test_seen = np.sort(np.concatenate(test_seen))
    seen_idx = np.flatnonzero(~np.isin(labels, unseen))
    return {
        "trainval": np.setdiff1d(seen_idx, test_seen),
        "test_seen": test_seen,
        "test_unseen": np.flatnonzero(np.isin(labels, unseen)),
        "train": np.flatnonzero(np.isin(labels, train)),
        "val": np.flatnonzero(np.isin(labels, val)),
    }


def _write_texts(folder: Path, rng: np.random.Generator, files: list[str], labels: np.ndarray,
                 choice: np.ndarray, scene: np.ndarray) -> None:
    groups = list(ATTRIBUTES)
    for i, (file, label) in enumerate(zip(files, labels, strict=True)):
        values = {g: ATTRIBUTES[g][choice[label, k]] for k, g in enumerate(groups)}
        lines = []
        for template in rng.permutation(TEMPLATES):
            words = dict(values, scene=SCENES[scene[i]])
            if rng.random() < 0.1:  # annotators err: one attribute word is wrong
                g = groups[rng.integers(len(groups))]
                words[g] = ATTRIBUTES[g][rng.integers(len(ATTRIBUTES[g]))]
            lines.append(template.format(**words))
        class_dir = folder / f"class_{label + 1:05d}"
        class_dir.mkdir(parents=True, exist_ok=True)
        (class_dir / f"{Path(file).stem}.txt").write_text("\n".join(lines) + "\n")


def _write_images(out: Path, rng: np.random.Generator, labels: np.ndarray, choice: np.ndarray,
                  scene: np.ndarray) -> None:
    """32 x 32 JPEGs: a disc of the class colour (striped or spotted by pattern) on a
    background that depends on the scene; Oxford layout (jpg/, imagelabels.mat, setid.mat)."""
    from PIL import Image

    (out / "jpg").mkdir()
    yy, xx = np.mgrid[:32, :32]
    disc = (yy - 16) ** 2 + (xx - 16) ** 2 < 11 ** 2
    marks = {"striped": (yy // 3) % 2 == 0, "spotted": ((yy % 6 < 2) & (xx % 6 < 2)),
             "speckled": rng.random((32, 32)) < 0.15, "veined": (xx == 16) | (yy == 16)}
    backgrounds = rng.integers(40, 200, size=(len(SCENES), 3)).astype(float)
    colors = np.array([_COLORS_RGB[c] for c in ATTRIBUTES["color"]], dtype=float)
    pattern_marks = np.stack([marks.get(p, np.zeros((32, 32), bool)) for p in ATTRIBUTES["pattern"]])
    in_disc = np.broadcast_to(disc, (len(labels), 32, 32))
    pixels = np.where(in_disc[..., None], colors[choice[labels, 0]][:, None, None],
                      backgrounds[scene][:, None, None])
    pixels *= np.where((in_disc & pattern_marks[choice[labels, 2]])[..., None], 0.5, 1.0)
    pixels += rng.normal(scale=12.0, size=pixels.shape)
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(out / "jpg" / f"image_{i + 1:05d}.jpg", quality=90)
    n, third = len(labels), len(labels) // 3
    scipy.io.savemat(out / "imagelabels.mat", {"labels": (labels + 1)[None, :].astype(np.uint16)})
    ids = np.arange(1, n + 1)[None, :].astype(np.uint16)
    scipy.io.savemat(out / "setid.mat", {"trnid": ids[:, :third], "valid": ids[:, third:2 * third],
                                         "tstid": ids[:, 2 * third:]})
