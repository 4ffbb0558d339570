"""The CLAREL method: composes an image encoder, a text encoder and a loss, all plugins by name.

Training pairs each sampled training image with text from the same instance:
- instance-text mode (per-image sentences, an encoder consuming ``texts``): the image's text
  embedding is the mean over its sentences (all of them, as the authors do, or
  ``texts_per_image`` sampled per step);
- class-level mode (only class embeddings, e.g. FLO's ``att``): the class embedding stands in for
  every image's text; a batch then draws distinct classes (one image each) so the batch's
  B x B retrieval problem has one true text per image.
Scoring: a class prototype is the mean text embedding over the class's texts (``ClassSide.texts``;
``texts_per_prototype`` sampled ones if set) or the projected class embedding; the scores are the
Euclidean distances from each image embedding to every prototype, seen and unseen, lower is better.
Seen/unseen calibration is the core's job on these scores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

import zsbench
from zsbench.encoders import CLASS_EMBEDDINGS, FEATURES, IMAGE_FILES, TEXTS, prepare_once
from zsbench.errors import UserError
from zsbench.interfaces import (
    EncoderContext,
    EvalInputs,
    FitData,
    LossContext,
    LossInputs,
    RunContext,
    Scores,
)
from zsbench_clarel.batches import chunks, group_sums, take, to_device
from zsbench_clarel.distances import euclidean_distances
from zsbench_clarel.options import PAPER_STEPS, ClarelOptions  # noqa: F401 - PAPER_STEPS re-exported
from zsbench_clarel.trainer import (
    Checkpoint,
    TrainConfig,
    TrainResult,
    config_key,
    default_decay_steps,
    train,
)

CHECKPOINT_FORMAT = 2  # bump when a change makes old checkpoints meaningless
# Options that do not change the trained weights, so changing them still resumes a checkpoint.
_NOT_TRAINING = frozenset(
    {
        "checkpoint_dir",
        "eval_batch_size",
        "texts_per_prototype",
        "eval_every",
        "progress_every",
        "bucket_prototypes",
    }
)


def _spec(spec: dict | str | None, default: str) -> dict:
    """``{"name": ..., **options}`` from a spec value that may be just a name, or absent."""
    spec = {"name": spec} if isinstance(spec, str) else dict(spec or {"name": default})
    if "name" not in spec:
        raise UserError(f"a component spec needs a 'name' key, got keys {sorted(spec)}")
    return spec


def _component(registry: Any, kind: str, spec: dict, *args: Any) -> Any:
    """Build the ``kind`` that ``spec`` = ``{"name": ..., **options}`` names, from the run's
    registry: components registered in-process are found there, and only there."""
    if registry is None:
        raise UserError(f"CLAREL builds its {kind} {spec.get('name')!r} from the run's registry, and this "
                        "RunContext has none: pass registry= (e.g. zsbench.get_registry()) to RunContext")
    options = dict(spec)
    return registry.build(kind, options.pop("name"), *args, **options)


def _input_kind(encoder: nn.Module, available: Sequence[str]) -> str:
    """What an encoder consumes: its ``input_kind``, or for a third-party encoder that does not
    say, the first of ``available`` that the data has."""
    kind = getattr(encoder, "input_kind", None)
    if kind is None:
        if not available:
            raise UserError(f"the data set offers no input for the {encoder.modality} encoder")
        return available[0]
    if kind not in available:
        raise UserError(
            f"the {encoder.modality} encoder {type(encoder).__name__} needs {kind}, which this "
            f"data set does not provide (it has: {', '.join(available) or 'nothing usable'})"
        )
    return kind


def _flatten(groups: Sequence[Sequence[str]]) -> tuple[list[str], np.ndarray]:
    """All strings of all groups, and the group index of each."""
    flat = [text for group in groups for text in group]
    owner = np.repeat(np.arange(len(groups)), [len(group) for group in groups])
    return flat, owner


def _row_table(owner: np.ndarray, num_rows: int) -> torch.Tensor:
    """(num_rows, max per row) item indices per row, -1 where a row has fewer items."""
    counts = np.bincount(owner, minlength=num_rows)
    table = np.full((num_rows, max(int(counts.max(initial=0)), 1)), -1, dtype=np.int64)
    order = np.argsort(owner, kind="stable")
    slot = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    table[owner[order], slot] = order
    return torch.from_numpy(table)


def _fingerprint(data: FitData) -> str:
    """A digest of everything a fit learns from, so a checkpoint is only resumed on the same data."""
    digest = hashlib.sha256()
    groups = [*(data.texts or ()), *(data.classes.texts or ())]
    for array in (
        data.labels,
        data.features,
        data.classes.ids,
        data.classes.embeddings,
        np.array([len(g) for g in groups]),
    ):
        if array is not None:
            digest.update(np.ascontiguousarray(array).tobytes())
    strings = [*map(str, data.image_files or ()), *(text for group in groups for text in group)]
    digest.update("\x1f".join(strings).encode())
    return digest.hexdigest()


@attrs.frozen
class ClarelScorer:
    """Distances from image embeddings to class prototypes (seen first, then unseen)."""

    image_encoder: nn.Module
    input_kind: str
    prototypes: torch.Tensor  # (K, D) on the device
    device: torch.device
    batch_size: int = 1024
    training: TrainResult | None = None  # steps done, resumed-from step, loss/evaluation history

    @torch.no_grad()
    def embed(self, inputs: EvalInputs) -> torch.Tensor:
        items = inputs.features if self.input_kind == FEATURES else inputs.image_files
        if items is None:
            raise UserError(
                f"the CLAREL image encoder scores {self.input_kind}, which these inputs lack"
            )
        self.image_encoder.eval()
        batch = to_device(prepare_once(self.image_encoder, items), self.device)
        parts = [self.image_encoder(part).float() for _, part in chunks(batch, self.batch_size)]
        return (
            torch.cat(parts)
            if parts
            else torch.empty(0, self.prototypes.shape[1], device=self.device)
        )

    def scores(self, inputs: EvalInputs) -> Scores:
        """(n, K) distances, left on the device: the runner's calibration sweep runs there."""
        return Scores(
            values=euclidean_distances(self.embed(inputs), self.prototypes), is_distance=True
        )


@attrs.frozen
class FitSettings:
    """CLAREL's options with their defaults resolved (component specs, the training schedule):
    what a fit reads and, less the options that do not change the weights, its checkpoint key."""

    image_encoder: dict
    text_encoder: dict
    loss: dict
    embed_dim: int
    train_config: TrainConfig
    batch_size: int
    texts_per_image: int | None
    texts_per_prototype: int | None
    checkpoint_dir: str | None
    eval_batch_size: int = 1024
    bucket_prototypes: bool = True


class _Fit:
    """One fit: the encoders, their prepared inputs on the device, the sampler and the loss."""

    def __init__(self, method: FitSettings, data: FitData, context: RunContext):
        self.method, self.data, self.context, self.device = method, data, context, context.device
        classes = data.classes
        if len(data.labels) == 0:
            raise UserError("CLAREL got no training instances")
        training_texts, sentence_owner = (
            _flatten(data.texts) if data.texts is not None else ([], np.zeros(0, int))
        )
        image_context = EncoderContext(
            "image",
            method.embed_dim,
            None if data.features is None else data.features.shape[1],
            training_vectors=data.features,
            cache_dir=context.cache_dir,
            device=self.device,
        )
        text_context = EncoderContext(
            "text",
            method.embed_dim,
            None if classes.embeddings is None else classes.embeddings.shape[1],
            training_texts=tuple(training_texts),
            training_vectors=None
            if classes.embeddings is None
            else classes.embeddings[classes.seen],
            cache_dir=context.cache_dir,
            device=self.device,
        )
        self.image_encoder = _component(context.registry, "encoder", method.image_encoder, image_context)
        self.text_encoder = _component(context.registry, "encoder", method.text_encoder, text_context)
        self.loss = _component(context.registry, "loss", method.loss, LossContext(method.embed_dim, classes.num_seen))
        self.model = nn.ModuleDict(
            {"image": self.image_encoder, "text": self.text_encoder, "loss": self.loss}
        )
        self.model.to(self.device)

        self.image_kind = _input_kind(
            self.image_encoder,
            [
                k
                for k, v in ((FEATURES, data.features), (IMAGE_FILES, data.image_files))
                if v is not None
            ],
        )
        self.text_kind = _input_kind(
            self.text_encoder,
            [
                k
                for k, v in ((TEXTS, data.texts), (CLASS_EMBEDDINGS, classes.embeddings))
                if v is not None
            ],
        )
        image_items = data.features if self.image_kind == FEATURES else data.image_files
        self.images = to_device(prepare_once(self.image_encoder, image_items), self.device)
        self.labels = torch.as_tensor(data.labels, dtype=torch.int64, device=self.device)
        if self.text_kind == TEXTS:
            self.texts = to_device(prepare_once(self.text_encoder, training_texts), self.device)
            self.text_rows = _row_table(sentence_owner, len(data.labels))
        else:
            self.texts = to_device(
                prepare_once(self.text_encoder, classes.embeddings[: classes.num_seen]), self.device
            )
            self.text_rows = torch.as_tensor(data.labels, dtype=torch.int64).unsqueeze(1)
        # Images without any text (possible in instance-text mode) have nothing to pair with.
        pool = torch.nonzero((self.text_rows >= 0).any(1)).flatten()
        if len(pool) == 0:
            raise UserError("CLAREL: no training image has any text to pair with")
        by_class = _row_table(np.asarray(data.labels)[pool.numpy()], classes.num_seen)
        by_class = torch.where(by_class >= 0, pool[by_class.clamp_min(0)], -1)
        class_sizes = (by_class >= 0).sum(1)
        classes_present = torch.nonzero(class_sizes).flatten()
        self.distinct_classes = self.text_kind == CLASS_EMBEDDINGS and method.batch_size <= len(
            classes_present
        )
        # Whether some sampled image has fewer texts than a step pools (then a step needs the
        # variable-shape path, which waits for the device once).
        slots = self.text_rows.shape[1]
        if method.texts_per_image is not None:
            slots = min(slots, method.texts_per_image)
        self.ragged = bool(((self.text_rows[pool] >= 0).sum(1) < slots).any())
        # The sampler's tables live on the device with the sampling generator, so a training
        # step draws, gathers and computes there without a host-device transfer.
        self.pool, self.by_class, self.class_sizes, self.classes_present, self.text_rows = (
            t.to(self.device)
            for t in (pool, by_class, class_sizes, classes_present, self.text_rows)
        )

    def sample(self, generator: torch.Generator) -> torch.Tensor:
        """B training image indices: uniform, or one image from each of B distinct classes."""
        size, device = self.method.batch_size, self.device
        if not self.distinct_classes:
            drawn = torch.randint(len(self.pool), (size,), generator=generator, device=device)
            return self.pool[drawn]
        order = torch.randperm(len(self.classes_present), generator=generator, device=device)
        classes = self.classes_present[order[:size]]
        slot = (
            torch.rand(size, generator=generator, device=device) * self.class_sizes[classes]
        ).long()
        return self.by_class[classes, slot]

    def text_embeddings(
        self, rows: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Per row of text-item indices (-1 = none), the mean embedding of (a sample of) its items."""
        k = self.method.texts_per_image
        if generator is not None and k is not None and k < rows.shape[1]:
            keys = torch.rand(rows.shape, generator=generator, device=rows.device)
            rows = rows.gather(1, keys.masked_fill(rows < 0, 2.0).argsort(1)[:, :k])
        if not self.ragged:  # every row full: fixed shapes, nothing waits for the device
            embedded = self.text_encoder(take(self.texts, rows.flatten()))
            return embedded.float().view(*rows.shape, -1).mean(1)
        valid = rows >= 0
        owner = torch.arange(len(rows), device=rows.device).unsqueeze(1).expand_as(rows)[valid]
        sums, counts = group_sums(
            self.text_encoder(take(self.texts, rows[valid])), owner, len(rows)
        )
        return sums / counts.clamp_min(1).unsqueeze(1)

    def step_loss(self, generator: torch.Generator):
        index = self.sample(generator)
        text = self.text_embeddings(self.text_rows[index], generator)
        image = self.image_encoder(take(self.images, index))
        return self.loss(LossInputs(image=image, text=text, labels=self.labels[index]))

    @torch.no_grad()
    def prototypes(self) -> torch.Tensor:
        classes = self.data.classes
        self.model.eval()
        if self.text_kind == CLASS_EMBEDDINGS:
            if classes.embeddings is None:
                raise UserError(
                    "CLAREL's class-level text encoder needs class embeddings for every class"
                )
            return self.text_encoder(
                to_device(prepare_once(self.text_encoder, classes.embeddings), self.device)
            ).float()
        if classes.texts is None or any(len(t) == 0 for t in classes.texts):
            raise UserError(
                "CLAREL in per-image text mode needs texts for every class (seen and unseen)"
            )
        per_class = classes.texts
        if self.method.texts_per_prototype is not None:
            rng = self.context.numpy_rng()
            n = self.method.texts_per_prototype
            per_class = [
                t if len(t) <= n else [t[i] for i in np.sort(rng.choice(len(t), n, replace=False))]
                for t in per_class
            ]
        flat, owner = _flatten(per_class)
        if self.method.bucket_prototypes:  # similar lengths share a chunk: little padding
            order = np.argsort([len(t) for t in flat], kind="stable")
            flat, owner = [flat[i] for i in order], owner[order]
        prepared = prepare_once(self.text_encoder, flat)
        owner = torch.as_tensor(owner, device=self.device)
        sums = torch.zeros(len(classes), self.method.embed_dim, device=self.device)
        counts = torch.zeros(len(classes), device=self.device)
        for rows, part in chunks(prepared, self.method.eval_batch_size):
            part_sums, part_counts = group_sums(
                self.text_encoder(to_device(part, self.device)), owner[rows], len(classes)
            )
            sums, counts = sums + part_sums, counts + part_counts
        return sums / counts.unsqueeze(1)

    def scorer(self, training: TrainResult | None = None) -> ClarelScorer:
        return ClarelScorer(
            self.image_encoder,
            self.image_kind,
            self.prototypes(),
            self.device,
            self.method.eval_batch_size,
            training,
        )

    def checkpoint(self) -> Checkpoint | None:
        if self.method.train_config.checkpoint_every is None:
            return None
        options = attrs.asdict(self.method, filter=lambda a, _: a.name not in _NOT_TRAINING)
        key = config_key(
            {
                "format": CHECKPOINT_FORMAT,
                "version": zsbench.__version__,
                "options": options,
                "seed": self.context.seed,
                # Random streams differ by device (a CUDA generator's state is not a CPU one's).
                "device": self.device.type,
                "data": _fingerprint(self.data),
            }
        )
        digest = hashlib.sha256(key.encode()).hexdigest()
        folder = (
            Path(self.method.checkpoint_dir).expanduser()
            if self.method.checkpoint_dir
            else self.context.cache_dir / "clarel-checkpoints"
        )
        return Checkpoint(folder / f"clarel-{digest[:24]}.safetensors", digest)

    def run(self) -> ClarelScorer:
        evaluate = None
        if self.context.evaluate is not None:

            def evaluate(step: int) -> dict[str, float]:
                return self.context.evaluate(self.scorer())

        config = self.method.train_config
        with self.context.bar(total=config.steps, desc=f"CLAREL {self.context.stage}") as bar:
            result = train(
                self.model,
                self.step_loss,
                config,
                device=self.device,
                generator=self.context.generator(),
                checkpoint=self.checkpoint(),
                evaluate=evaluate,
                bar=bar,
            )
        return self.scorer(result)


@attrs.frozen
class Clarel(ClarelOptions):
    """CLAREL (Oreshkin et al.): image/text encoders trained by retrieval + classifier losses.

    ``image_encoder`` / ``text_encoder`` / ``loss`` name registered plugins with their options,
    e.g. ``{"name": "cnn-lstm", "word_vectors": "GoogleNews-vectors-negative300.bin"}``; the text
    encoder ``auto-text`` (default) is ``cnn-lstm`` when the data set has per-image sentences,
    else ``class-projection``. Defaults (``ClarelOptions``) are the authors' (150,001 steps); ``lr_decay_steps`` defaults
    to three 10x decays at 1/2, 3/4 and 7/8 of training. ``texts_per_image``: sentences of an
    image averaged per step (null: all, the paper's). ``bucket_prototypes``: embed the prototype
    sentences sorted by length, so each chunk pads little (the encoder trims to its longest).
    Every ``eval_every`` steps the runner's ``context.evaluate`` (validation stage only) scores
    the model so far, and its numbers join the progress bar.
    """

    def settings(self) -> FitSettings:
        config = TrainConfig(
            steps=self.steps,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            grad_clip=self.grad_clip,
            lr_decay_steps=tuple(self.lr_decay_steps)
            if self.lr_decay_steps is not None
            else default_decay_steps(self.steps),
            lr_decay_factor=self.lr_decay_factor,
            amp=self.amp,
            eval_every=self.eval_every,
            checkpoint_every=self.checkpoint_every,
        )
        return FitSettings(
            image_encoder=_spec(self.image_encoder, "feature-projection"),
            text_encoder=_spec(self.text_encoder, "auto-text"),
            loss=_spec(self.loss, "clarel"),
            embed_dim=self.embed_dim,
            train_config=config,
            batch_size=self.batch_size,
            texts_per_image=self.texts_per_image,
            texts_per_prototype=self.texts_per_prototype,
            checkpoint_dir=self.checkpoint_dir,
            eval_batch_size=self.eval_batch_size,
            bucket_prototypes=self.bucket_prototypes,
        )

    def fit(self, data: FitData, context: RunContext) -> ClarelScorer:
        settings = self.settings()
        devices = [context.device] if context.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(context.seed)
            return _Fit(settings, data, context).run()
