"""The contracts between the core and plugins, and the records they pass.

Data flows: a Dataset plugin builds a ``DatasetBundle``; the protocol cuts it into a
``FitData`` (what a method may learn from) and ``EvalInputs`` (what it is scored on); a
Method returns a ``Scorer``; calibrators and metrics work on the ``Scores`` it produces.
Indices are 0-based everywhere inside zsbench; 1-based file formats are converted on load.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import attrs
import numpy as np
import torch

from zsbench.side_information import PROTOTYPE_CAPTIONS, SIDE_INFORMATION  # noqa: F401 - re-exported

SPLIT_NAMES = ("trainval", "test_seen", "test_unseen", "train", "val")


@attrs.frozen
class Splits:
    """0-based instance indices of the xlsa17 GZSL splits."""

    trainval: np.ndarray
    test_seen: np.ndarray
    test_unseen: np.ndarray
    train: np.ndarray
    val: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in SPLIT_NAMES}


@attrs.frozen
class DatasetBundle:
    """Everything a data set offers; built by a Dataset plugin.

    At least one instance-level input (``features`` or ``image_files``) and at least one kind
    of class side information (``class_embeddings`` or ``texts``) must be present.
    """

    name: str
    labels: np.ndarray  # (N,) int64 class index into class_names
    class_names: tuple[str, ...]
    splits: Splits
    features: np.ndarray | None = None  # (N, D) float32, precomputed image features
    feature_name: str | None = None  # e.g. "res101", "efficientnet_lite0"
    image_files: tuple[Path, ...] | None = None  # absolute paths of raw images
    texts: Sequence[Sequence[str]] | None = None  # per instance: its sentences
    class_embeddings: np.ndarray | None = None  # (C, E) float32 class-level side information
    side_information: str = "class embeddings"  # said in the leaderboard
    source: str = ""  # where it was read from, for provenance
    origins: dict[str, str] = attrs.field(factory=dict)  # field -> file it was read from, for errors
    files: tuple[Path, ...] = ()  # every file read, for the data identity of results (zsbench.runner.identity)
    # (N, E) per image: the mean embedding of its captions by a frozen sentence encoder, from
    # which the protocol builds class-mean caption embeddings out of the images a stage allows.
    caption_embeddings: np.ndarray | None = None
    caption_encoder: str | None = None  # the sentence encoder's name, said in the leaderboard
    prototype_captions: str = "stage"  # one of PROTOTYPE_CAPTIONS
    embeddings_info: str = ""  # what class_embeddings are, e.g. "class embeddings (att, 312-d)"
    # (C, E) Reed et al.'s class-level sentence embeddings (CUB's sent_splits.mat), a second kind
    # of class-level side information beside class_embeddings (e.g. attributes).
    class_sentences: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@attrs.frozen
class ClassSide:
    """Side information of the classes in a decision space (seen first, then unseen).

    ``texts[k]`` holds every sentence describing class k that the protocol allows the method
    to see (per-instance texts are side information, never images).
    """

    ids: np.ndarray  # (K,) global class ids into DatasetBundle.class_names
    names: tuple[str, ...]
    seen: np.ndarray  # (K,) bool
    embeddings: np.ndarray | None = None  # (K, E)
    texts: tuple[tuple[str, ...], ...] | None = None

    @property
    def num_seen(self) -> int:
        return int(self.seen.sum())

    def __len__(self) -> int:
        return len(self.ids)


@attrs.frozen
class FitData:
    """What a method may learn from: seen-class training instances and class side information.

    ``labels`` index into ``classes`` (so they are < classes.num_seen).
    """

    labels: np.ndarray
    classes: ClassSide
    features: np.ndarray | None = None
    image_files: tuple[Path, ...] | None = None
    texts: Sequence[Sequence[str]] | None = None
    feature_name: str | None = None


@attrs.frozen
class EvalInputs:
    """Instances to score. No labels: a scorer never sees them."""

    features: np.ndarray | None = None
    image_files: tuple[Path, ...] | None = None

    def __len__(self) -> int:
        if self.features is not None:
            return len(self.features)
        return len(self.image_files or ())


@attrs.frozen
class Scores:
    """An (n, K) matrix over the classes of a ClassSide.

    ``is_distance`` True: lower is better (CLAREL's Euclidean distances); otherwise higher is
    better (compatibility scores, logits).
    """

    values: torch.Tensor
    is_distance: bool = False

    def higher_is_better(self) -> torch.Tensor:
        return -self.values if self.is_distance else self.values


@attrs.define
class RunContext:
    """Per-run facilities handed to methods: seed, device, cache folder, progress reporting."""

    seed: int
    device: torch.device
    cache_dir: Path
    stage: Literal["validation", "test"] = "validation"
    show_progress: bool = True
    # Validation metrics of a partly trained scorer, for progress display (e.g. {"val_H": 0.41});
    # set by the runner in the validation stage only, so no test number is ever shown mid-fit.
    evaluate: Callable[[Scorer], dict[str, float]] | None = None
    # The registry the run was planned with: a method that builds components by name (CLAREL's
    # encoders and losses) takes them from here, so in-process components are found too.
    registry: Any = None

    def bar(self, total: int, desc: str, **kwargs: Any):
        """A tqdm progress bar for long loops (training steps, epochs, batches)."""
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False, disable=not self.show_progress,
                    dynamic_ncols=True, **kwargs)

    def generator(self, device: torch.device | str | None = None) -> torch.Generator:
        """A torch generator seeded for this run, on ``device`` (default: the run's device), so
        random draws happen where they are used and never cross between host and GPU."""
        return torch.Generator(device=self.device if device is None else device).manual_seed(self.seed)

    def numpy_rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


@runtime_checkable
class Scorer(Protocol):
    """A fitted model: scores instances against every class of the FitData's ClassSide."""

    def scores(self, inputs: EvalInputs) -> Scores: ...


@runtime_checkable
class Method(Protocol):
    """Built by a method factory from spec options; ``fit`` must use only ``data``."""

    def fit(self, data: FitData, context: RunContext) -> Scorer: ...


@attrs.frozen
class EncoderContext:
    """What an encoder factory may need to size itself and build vocabularies."""

    modality: Literal["image", "text"]
    embed_dim: int  # the joint space
    input_dim: int | None = None  # feature or class-embedding width, when inputs are vectors
    training_texts: Sequence[str] = ()  # for vocabularies: training sentences only
    training_vectors: np.ndarray | None = None  # training-side input rows, for statistics only
    cache_dir: Path | None = None
    device: torch.device = torch.device("cpu")
    show_progress: bool = True  # False under --quiet
    feature_cache_root: Path | None = None  # persistent caches; default: the zsbench cache home

    def bar(self, total: int, desc: str, **kwargs: Any):
        """A tqdm progress bar (e.g. over images) that stays silent under ``--quiet``."""
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False, disable=not self.show_progress,
                    dynamic_ncols=True, **kwargs)

    def feature_cache(self, identity: str):
        """A persistent per-item feature cache (``zsbench.encoders.ItemFeatureCache``) for an
        encoder whose outputs ``identity`` determines; shared by every run, seed and method."""
        from zsbench.encoders import ItemFeatureCache

        return ItemFeatureCache(identity, self.feature_cache_root)


@runtime_checkable
class Encoder(Protocol):
    """A ``torch.nn.Module``: ``prepare`` turns raw items (feature rows, lists of sentences,
    class embeddings or image paths) into a batch on CPU; ``forward`` embeds a batch to an
    (n, embed_dim) tensor. ``input_kind`` (one of ``zsbench.encoders.INPUT_KINDS``) says which
    items it takes; an optional ``identity`` string names what determines ``prepare``'s output
    (see ``zsbench.encoders``). Callers run ``prepare`` once per set of items
    (``zsbench.encoders.prepare_once``)."""

    modality: str
    embed_dim: int
    input_kind: str

    def prepare(self, items: Sequence[Any]) -> Any: ...

    def forward(self, batch: Any) -> torch.Tensor: ...


@attrs.frozen
class LossContext:
    embed_dim: int
    num_seen_classes: int


@attrs.frozen
class LossInputs:
    """A batch of B aligned image/text pairs in the joint space, with seen-class labels."""

    image: torch.Tensor  # (B, D)
    text: torch.Tensor  # (B, D)
    labels: torch.Tensor  # (B,) int64 < num_seen_classes


@attrs.frozen
class LossOutput:
    """The scalar to minimise, and named parts for progress bars and logs.

    Parts are detached scalar tensors (or floats): a trainer reads them only when it reports, so
    a loss never forces a host-device synchronisation on every step.
    """

    total: torch.Tensor
    parts: dict[str, torch.Tensor | float] = attrs.field(factory=dict)


@runtime_checkable
class Loss(Protocol):
    """A ``torch.nn.Module`` (it may own parameters, e.g. classifier heads)."""

    def forward(self, inputs: LossInputs) -> LossOutput: ...


@runtime_checkable
class Calibrator(Protocol):
    """Seen/unseen balancing of a score matrix, one scalar parameter swept on validation.

    ``adjust_seen`` maps higher-is-better seen-class scores (any shape S) to (P, *S) for P
    parameters; it must be strictly increasing in the score for every parameter, so the best
    seen class stays the best and the sweep needs only the best seen and unseen scores.
    ``neutral`` is the parameter that leaves scores unchanged.
    """

    name: str
    neutral: float
    requires_distance: bool

    def grid(self, margins: torch.Tensor) -> torch.Tensor:
        """Parameters to sweep; ``margins`` = best seen minus best unseen validation score per
        sample (higher-is-better), for calibrators whose natural range depends on the data."""
        ...

    def adjust_seen(self, seen_scores: torch.Tensor, params: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class ReferenceCalibrator(Calibrator, Protocol):
    """A Calibrator whose parameter is in a unit of the stage model's own training images, so that
    a value chosen on the validation model means the same for the model refit on trainval.

    It declares ``needs_reference = True``; after each fit the runner scores the stage's training
    (fit) instances and passes their best seen and best unseen scores (higher-is-better) to
    ``with_reference``, which returns the calibrator to sweep and apply for that stage's model.
    """

    needs_reference: bool

    def with_reference(self, seen_value: torch.Tensor, unseen_value: torch.Tensor) -> Calibrator: ...
