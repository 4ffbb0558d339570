"""Contract tests: every registered component of every kind passes the same interface checks.

The cases are drawn from the registry (installed plugins plus the tests' toy plugin), so a new
plugin is tested by being registered: its options are documented and valid, a method fits on a
tiny bundle and returns finite, seed-deterministic scores of shape (instances x classes), an
encoder embeds a batch to (batch, embed_dim), a loss gives a finite scalar with gradients, a
calibrator's ``adjust_seen`` is increasing in the score with ``neutral`` as the identity, and a
data set loads or names its missing folder. Budgets are shrunk through the component's own
options (``SMALL``) so the whole file stays fast on a laptop CPU.
"""

from __future__ import annotations

import importlib
import json
import math
import random
import re
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_data import SHARED_DATA
from toy_plugin import toy_bundle

import zsbench
from zsbench.errors import DataError, UserError
from zsbench.evaluation import protocol
from zsbench.registry import KINDS, Registry

REGISTRY = Registry.from_entry_points(extra=[("toy", importlib.import_module("toy_plugin"), None, None)])

# Options a component cannot do without, where it declares no default (kind, name) -> options.
REQUIRED = {("encoder", "hf-text"): {"model_path": "all-MiniLM-L6-v2"}}
# Smaller settings for components whose defaults are slow to build on a CPU.
FAST = {("encoder", "timm-backbone"): {"model": "resnet18"}, ("encoder", "hf-text"): {"max_length": 16}}

# Small values for budget and size options, used where a component declares the option and accepts
# the value; anything else keeps its default. A new method with another budget option is still
# tested, only at its default size.
SMALL: dict[str, Any] = {
    "epochs": 1, "steps": 3, "classifier_epochs": 1, "pretrain_epochs": 1, "critic_iters": 1,
    "seen_samples": 4, "unseen_samples": 4, "synthetic_per_class": 4, "hidden": 16, "latent": 8,
    "noise_dim": 8, "embed_dim": 16, "dim": 16, "batch_size": 16, "eval_every": None,
    "checkpoint_every": None, "resize": 40, "crop": 32, "image_size": 32,
}

# Real data for data set plugins: name -> (folder under SHARED_DATA, options).
REAL_DATA = {
    "flo": ("flo", {"features": "efficientnet_lite0.mat"}),
    "cub": ("cub-subset", {"features": "efficientnet_lite0.mat"}),
    "xlsa17": ("flo", {"features": "efficientnet_lite0.mat"}),
}

EMBED_DIM = 8


def entries(kind: str) -> list[Any]:
    return [pytest.param(entry, id=entry.name) for entry in REGISTRY.list(kind)]


def required(entry) -> dict[str, Any]:
    """The options ``entry`` needs beyond its defaults; a required option nobody supplied fails
    the contract by name."""
    given = REQUIRED.get((entry.kind, entry.name), {})
    missing = [o.name for o in entry.schema() if o.required and o.name not in given]
    assert not missing, f"{entry.kind} {entry.name!r}: required option(s) {missing}: add values to REQUIRED"
    return dict(given)


def problem(entry, name: str, value: Any) -> str | None:
    """Why ``name: value`` is refused by the one option check (``PluginEntry.validate``), or None."""
    try:
        entry.validate({**REQUIRED.get((entry.kind, entry.name), {}), name: value})
    except zsbench.UserError as exc:
        return str(exc)
    return None


def seed_everything(seed: int) -> None:
    """The global seeding the runner does before a method is built and fitted."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------- every kind: options


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_a_registered_component(kind):
    assert REGISTRY.names(kind), f"no {kind} is registered"


@pytest.mark.parametrize("entry", [p for kind in KINDS for p in entries(kind)])
def test_options_are_documented_and_defaults_valid(entry):
    assert entry.description, f"{entry.kind} {entry.name!r} has no docstring to describe it"
    schema = entry.schema()
    for option in schema:
        json.dumps(option.as_json())  # ``zsbench plugins --json`` shows every option
        if entry.component is not None:
            assert option.doc, f"{entry.kind} {entry.name!r}: option {option.name!r} has no doc"
            assert option.type, f"{entry.kind} {entry.name!r}: option {option.name!r} has no type"
        if not option.required:
            assert problem(entry, option.name, option.default) is None, (
                f"{entry.kind} {entry.name!r}: the default of {option.name!r} breaks its own constraint")
    names = {option.name for option in schema}
    for option, values in entry.default_grid.items():
        assert option in names, f"{entry.kind} {entry.name!r}: default_grid names unknown option {option!r}"
        for value in values:
            assert problem(entry, option, value) is None, (
                f"{entry.kind} {entry.name!r}: default_grid value {option}={value!r} is out of range")
    if entry.component is not None:  # the options object builds from the defaults alone
        assert isinstance(entry.validate(required(entry)), entry.component.options)


# ---------------------------------------------------------------- methods


def small_options(entry) -> dict[str, Any]:
    """``SMALL`` where the component takes it, then ``FAST``, then ``REQUIRED``."""
    known = entry.options()
    options = {name: value for name, value in SMALL.items()
               if name in known and problem(entry, name, value) is None}
    return {**options, **FAST.get((entry.kind, entry.name), {}), **required(entry)}


@pytest.fixture(scope="module")
def bundle():
    return toy_bundle(per_class=10)


def fit_and_score(entry, bundle, seed: int, cache_dir: Path) -> tuple[Any, zsbench.Scores, int]:
    stage = protocol.validation_stage(bundle, seed)
    data = protocol.fit_data(bundle, stage)
    inputs, _, _ = protocol.eval_inputs(bundle, stage)
    seed_everything(seed)
    method = REGISTRY.build("method", entry.name, **small_options(entry))
    assert isinstance(method, zsbench.Method), f"method {entry.name!r} has no fit(data, context)"
    context = zsbench.RunContext(seed=seed, device=torch.device("cpu"), cache_dir=cache_dir,
                                 show_progress=False, registry=REGISTRY)
    scorer = method.fit(data, context)
    assert isinstance(scorer, zsbench.Scorer), f"method {entry.name!r}: fit returned no Scorer"
    with torch.no_grad():
        scores = scorer.scores(inputs)
    return data, scores, len(inputs)


@pytest.mark.parametrize("entry", entries("method"))
def test_method_fits_and_scores_every_instance_against_every_class_deterministically(entry, bundle, tmp_path):
    data, scores, instances = fit_and_score(entry, bundle, 0, tmp_path / "first")
    assert isinstance(scores, zsbench.Scores)
    assert tuple(scores.values.shape) == (instances, len(data.classes))
    assert scores.values.is_floating_point()
    assert torch.isfinite(scores.values).all(), f"method {entry.name!r} returned non-finite scores"
    kind = entry.declared("score_kind")
    if kind is not None:
        assert scores.is_distance == (kind == "distance"), f"method {entry.name!r} declares {kind} scores"
    _, again, _ = fit_and_score(entry, bundle, 0, tmp_path / "second")
    assert torch.equal(scores.values, again.values), f"method {entry.name!r} is not deterministic for a seed"


# ---------------------------------------------------------------- encoders


SENTENCES = ("a red flower with round petals", "the petals are yellow and striped",
             "a small white flower", "this plant has thin leaves")


def encoder_items(kind: str, folder: Path) -> Any:
    """Four items of ``kind`` (one of ``zsbench.encoders.INPUT_KINDS``)."""
    rng = np.random.default_rng(0)
    if kind in ("features", "class_embeddings"):
        return rng.normal(size=(4, 16)).astype(np.float32)
    if kind == "texts":
        return list(SENTENCES)
    if kind == "image_files":
        from PIL import Image

        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, size in enumerate(((64, 48), (40, 72), (56, 56), (80, 60))):
            path = folder / f"image_{i}.jpg"
            Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(path)
            paths.append(path)
        return paths
    raise AssertionError(f"unknown input kind {kind!r}")


@pytest.mark.parametrize("entry", entries("encoder"))
def test_encoder_embeds_a_batch_into_the_joint_space(entry, tmp_path):
    from zsbench.encoders import INPUT_KINDS

    context = zsbench.EncoderContext(
        "image", EMBED_DIM, input_dim=16, training_texts=SENTENCES,
        training_vectors=np.random.default_rng(1).normal(size=(6, 16)).astype(np.float32),
        cache_dir=tmp_path, device=torch.device("cpu"), show_progress=False,
        feature_cache_root=tmp_path / "features",
    )
    try:
        encoder = REGISTRY.build("encoder", entry.name, context, **small_options(entry))
    except UserError as exc:  # a model or weights package this machine does not have
        pytest.skip(f"encoder {entry.name!r} cannot be built here: {exc}")
    assert isinstance(encoder, torch.nn.Module) and isinstance(encoder, zsbench.Encoder)
    assert encoder.modality in ("image", "text") and encoder.embed_dim == EMBED_DIM
    assert encoder.input_kind in INPUT_KINDS
    assert isinstance(getattr(encoder, "identity", ""), str)
    items = encoder_items(encoder.input_kind, tmp_path / "images")
    encoder.eval()
    with torch.no_grad():
        out = encoder(encoder.prepare(items))
    assert tuple(out.shape) == (len(items), EMBED_DIM) and out.is_floating_point()
    assert torch.isfinite(out).all(), f"encoder {entry.name!r} produced non-finite embeddings"


# ---------------------------------------------------------------- losses


@pytest.mark.parametrize("entry", entries("loss"))
def test_loss_is_a_finite_scalar_with_gradients(entry):
    torch.manual_seed(0)
    loss = REGISTRY.build("loss", entry.name, zsbench.LossContext(EMBED_DIM, 3), **required(entry))
    assert isinstance(loss, torch.nn.Module) and isinstance(loss, zsbench.Loss)
    image = torch.randn(6, EMBED_DIM, requires_grad=True)
    text = torch.randn(6, EMBED_DIM, requires_grad=True)
    out = loss(zsbench.LossInputs(image, text, torch.tensor([0, 1, 2, 0, 1, 2])))
    assert isinstance(out, zsbench.LossOutput)
    assert out.total.dim() == 0 and torch.isfinite(out.total), f"loss {entry.name!r}: total {out.total}"
    for name, part in out.parts.items():
        assert math.isfinite(float(part)), f"loss {entry.name!r}: part {name!r} is {part}"
    out.total.backward()
    grads = [g for g in (image.grad, text.grad) if g is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads), f"loss {entry.name!r} passes no gradient to its inputs"


# ---------------------------------------------------------------- calibrators


def calibrator(entry):
    return REGISTRY.build("calibrator", entry.name, **required(entry))


def bound(cal: Any) -> Any:
    """A calibrator that declares ``needs_reference`` bound to a stage model's training-image
    best seen and unseen scores (negated distances), as the evaluation binds it; others as given."""
    if not getattr(cal, "needs_reference", False):
        return cal
    generator = torch.Generator().manual_seed(0)
    seen, unseen = -torch.rand(50, generator=generator, dtype=torch.float64) * 3 - 0.1, -torch.rand(50, generator=generator, dtype=torch.float64) * 3 - 0.1
    return cal.with_reference(seen, unseen)


@pytest.mark.parametrize("entry", entries("calibrator"))
def test_calibrator_declares_itself_and_neutral_leaves_scores_unchanged(entry):
    cal = bound(calibrator(entry))
    assert isinstance(cal, zsbench.Calibrator)
    assert cal.name == entry.name and isinstance(cal.requires_distance, bool)
    if math.isnan(cal.neutral):  # a parameter in model-relative units has no model-free neutral value
        assert getattr(cal, "needs_reference", False) or getattr(calibrator(entry), "needs_reference", False)
        return
    scores = -torch.rand(5, 4, dtype=torch.float64) * 3
    neutral = cal.adjust_seen(scores, torch.tensor([cal.neutral], dtype=torch.float64))
    assert neutral.shape == (1, 5, 4) and torch.equal(neutral[0], scores)


scores_strategy = st.lists(st.integers(-10_000, 10_000), min_size=2, max_size=12, unique=True)
margins_strategy = st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=8)


@pytest.mark.parametrize("entry", entries("calibrator"))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=scores_strategy, margins=margins_strategy)
def test_calibrator_adjust_seen_is_strictly_increasing_for_every_parameter(entry, values, margins):
    """Over the calibrator's own grid: higher-is-better scores (negated distances, so <= 0, for a
    calibrator that requires distances), pairwise distinct on a 0.01 lattice."""
    cal = bound(calibrator(entry))
    params = cal.grid(torch.tensor(margins, dtype=torch.float64))
    assert params.dim() == 1 and len(params) > 0 and torch.isfinite(params).all()
    scores = torch.tensor(sorted(values), dtype=torch.float64) / 100
    if cal.requires_distance:
        scores = scores - scores.max() - 0.01
    adjusted = cal.adjust_seen(scores, params)
    assert adjusted.shape == (len(params), len(scores))
    steps = adjusted[:, 1:] - adjusted[:, :-1]
    worst = int(steps.min(dim=1).values.argmin())
    assert (steps > 0).all(), f"calibrator {entry.name!r} is not increasing at parameter {float(params[worst])}"


# ---------------------------------------------------------------- data sets


def check_bundle(bundle: zsbench.DatasetBundle, name: str) -> None:
    """The invariants ``zsbench.interfaces.DatasetBundle`` documents."""
    assert isinstance(bundle, zsbench.DatasetBundle), f"dataset {name!r} returned {type(bundle).__name__}"
    n = len(bundle.labels)
    assert n > 0 and bundle.labels.min() >= 0 and bundle.labels.max() < bundle.num_classes
    for split, idx in bundle.splits.as_dict().items():
        assert len(idx) and idx.min() >= 0 and idx.max() < n, f"dataset {name!r}: split {split} out of range"
    assert bundle.features is not None or bundle.image_files is not None
    assert bundle.class_embeddings is not None or bundle.texts is not None
    if bundle.features is not None:
        assert bundle.features.shape[0] == n and np.isfinite(bundle.features).all()
    if bundle.image_files is not None:
        assert len(bundle.image_files) == n
    if bundle.class_embeddings is not None:
        assert bundle.class_embeddings.shape[0] == bundle.num_classes
    if bundle.texts is not None:
        assert len(bundle.texts) == n


@pytest.mark.parametrize("entry", entries("dataset"))
def test_dataset_loads_or_names_its_missing_folder(entry, tmp_path):
    """A missing folder is a ``DataError`` naming it; a command it suggests must exist."""
    from zsbench.data.download import REGISTRY as DOWNLOADABLE

    missing = tmp_path / "absent"
    try:
        bundle = REGISTRY.build("dataset", entry.name, root=missing, **required(entry))
    except DataError as exc:
        assert str(missing) in str(exc), f"dataset {entry.name!r}: the error does not name the folder: {exc}"
        for name in re.findall(r"zsbench data download (\S+)", str(exc)):
            assert name in DOWNLOADABLE, f"dataset {entry.name!r} suggests `zsbench data download {name}`, " \
                                         f"which downloads only {', '.join(sorted(DOWNLOADABLE))}"
        return
    check_bundle(bundle, entry.name)


@pytest.mark.parametrize("entry", entries("dataset"))
def test_dataset_loads_the_shared_real_data(entry):
    if entry.name not in REAL_DATA:
        pytest.skip(f"no real data is known for dataset {entry.name!r}")
    folder, options = REAL_DATA[entry.name]
    if not (SHARED_DATA / folder).is_dir():
        pytest.skip(f"{SHARED_DATA / folder} is not present")
    bundle = REGISTRY.build("dataset", entry.name, root=SHARED_DATA / folder, **options)
    check_bundle(bundle, entry.name)
    assert attrs.has(type(bundle))
