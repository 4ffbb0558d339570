"""CLAREL's components' options, declared once (defaults, ranges, docs) without importing torch.

The implementations in the other modules (torch, timm, transformers) subclass these classes
and are imported only when a run builds the component, so defaults live only here.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

import zsbench
from zsbench import between, each, ge, gt, integer, option, optional
from zsbench.schema import Check, component_option, options_schema

PAPER_STEPS = 150_001
COMPONENT_DOC = "a registered {kind} name, or `{{name: ..., <options>}}`"
probability = between(0, 1, high_open=True)
weight = between(0, 1)
positive_int = integer(1)
optional_positive_int = optional(integer(1))


def _odd(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value % 2 == 0:
        raise ValueError(value)


@zsbench.component("encoder", "feature-projection", build="zsbench_clarel.encoders:FeatureProjection")
@attrs.frozen
class FeatureProjectionOptions:
    """Image features (xlsa17 layout) -> dropout -> linear projection to the joint space."""

    dropout: float = option(0.25, probability, doc="dropout on the input features")
    hidden: list[int] | None = option(None, optional(each(positive_int)),
                                      doc="widths of hidden layers, e.g. `[2048]`; null: one linear layer")
    standardize: bool = option(False, doc="scale each feature by its mean and deviation over the training images")


@zsbench.component("encoder", "class-projection", build="zsbench_clarel.encoders:ClassProjection")
@attrs.frozen
class ClassProjectionOptions:
    """Class embeddings -> linear or MLP projection: the text side when a data set has no per-image text."""

    dropout: float = option(0.0, probability, doc="dropout on the class embedding")
    hidden: list[int] | None = option(None, optional(each(positive_int)), doc="widths of hidden layers")
    standardize: bool = option(True, doc="scale each dimension by its mean and deviation over the seen "
                                         "classes (class-averaged sentence embeddings share a large common "
                                         "component that a linear map trained by SGD barely separates otherwise)")


@zsbench.component("encoder", "cnn-lstm", build="zsbench_clarel.text_cnn_lstm:CnnLstm")
@attrs.frozen
class CnnLstmOptions:
    """Sentences -> word vectors (frozen word2vec/GloVe file, or learned) -> residual CNN -> BiLSTM."""

    word_vectors: str | None = option(None, doc="a word2vec (`.bin`) or GloVe (text) file of frozen word "
                                                "vectors; words not in it get zero vectors; null: learned")
    vocab_size: int = option(10_000, positive_int, doc="most frequent training words kept")
    min_count: int = option(1, positive_int, doc="minimum count of a kept word")
    word_dim: int = option(300, positive_int, doc="width of learned word vectors (a `word_vectors` file sets its own)")
    max_tokens: int = option(30, positive_int, doc="sentences padded / truncated to this length")
    filters: int = option(256, positive_int, doc="filters of the first block, doubled per block")
    blocks: int = option(2, positive_int, doc="residual blocks")
    units_per_block: int = option(3, positive_int, doc="convolution units per block")
    kernel_size: int = option(3, positive_int, Check(_odd, "odd"), doc="convolution width")
    lstm_hidden: int = option(512, positive_int, doc="LSTM width per direction")
    dropout: float = option(0.25, probability, doc="dropout before the projection")


@zsbench.component("encoder", "hf-text", build="zsbench_clarel.hf_text:HfText")
@attrs.frozen
class HfTextOptions:
    """Sentences -> local Hugging Face model folder (mean pooling, frozen by default) -> linear."""

    model_path: str = option(doc="a local model folder (with `config.json`; the hub is never contacted), or a packaged model's name (`all-MiniLM-L6-v2`)")
    max_length: int = option(64, positive_int, doc="tokens per sentence")
    finetune: bool = option(False, doc="train the transformer too")
    dropout: float = option(0.25, probability, doc="dropout before the projection")


@zsbench.component("encoder", "timm-backbone", build="zsbench_clarel.timm_image:TimmBackbone")
@attrs.frozen
class TimmBackboneOptions:
    """Raw images through a frozen timm backbone (cached pooled features) -> dropout -> linear."""

    model: str = option("resnet101", doc="a timm model name")
    pretrained: bool = option(False, doc="load timm's pretrained weights (needs them in the local cache)")
    pretrained_path: str | None = option(None, doc="a local weights file instead")
    image_size: int | None = option(None, optional_positive_int, doc="input resolution; null: the model's")
    batch_size: int = option(64, positive_int, doc="images per forward pass during extraction")
    num_workers: int | None = option(None, optional(integer(0)),
                                     doc="image-loading worker processes; null: 0 on the CPU (decoding "
                                         "competes with the backbone for cores), up to 8 on a GPU")
    dropout: float = option(0.25, probability, doc="dropout on the pooled features")
    feature_cache: str | None = option(None, doc="folder of the on-disk feature cache, shared by every run, "
                                                 "seed and method, keyed by model, weights, preprocessing, "
                                                 "precision and each image's path, size and time; "
                                                 "null: the zsbench cache home")
    amp: bool = option(True, doc="run the backbone under bf16 autocast on a GPU (fp16 where bf16 is "
                                 "missing); no effect on CPU")


AUTO_TEXT_CHOICES = (CnnLstmOptions, ClassProjectionOptions)


def _auto_text_fields() -> dict[str, Any]:
    """Every option of cnn-lstm and class-projection, unset (null) by default: a set one goes to
    whichever encoder is chosen, when that one takes it."""
    fields: dict[str, Any] = {}
    for choice in AUTO_TEXT_CHOICES:
        name = zsbench.schema.declared(choice).name
        for o, f in zip(options_schema(choice), attrs.fields(choice)):
            if o.name in fields:
                fields[o.name].metadata["doc"] += f"; {name}: default {o.default!r}"
                continue
            check = optional(f.validator) if f.validator is not None else None
            fields[o.name] = attrs.field(default=None, validator=check,
                                         metadata={"doc": f"{name}: {o.doc} (default {o.default!r})"},
                                         type=f"{o.type} | None" if "None" not in o.type else o.type)
    return fields


AutoTextOptions = zsbench.component("encoder", "auto-text", build="zsbench_clarel.auto_text:AutoText")(
    attrs.make_class("AutoTextOptions", _auto_text_fields(), frozen=True)
)
AutoTextOptions.__doc__ = "cnn-lstm on per-image sentences when the data has them, else class-projection."
AutoTextOptions.__module__ = __name__


@zsbench.component("loss", "retrieval", build="zsbench_clarel.losses:Retrieval")
@attrs.frozen
class RetrievalOptions:
    """Bidirectional batch retrieval cross-entropy on negative Euclidean distances, mixed by lam."""

    lam: float = option(0.5, weight, doc="text-retrieval weight (each image against the batch's texts) "
                                         "versus image retrieval (each text against the batch's images)")


@zsbench.component("loss", "classifier", build="zsbench_clarel.losses:Classifier")
@attrs.frozen
class ClassifierOptions:
    """Seen-class cross-entropy of a linear head on each modality's embedding (image + text)."""


@zsbench.component("loss", "clarel", build="zsbench_clarel.losses:ClarelTotal")
@attrs.frozen
class ClarelLossOptions:
    """CLAREL's total: (1-kappa) * retrieval(lam) + kappa * classifier (paper: lam = kappa = 0.5)."""

    lam: float = option(0.5, weight, doc="text-retrieval versus image-retrieval weight")
    kappa: float = option(0.5, weight, doc="weight of the classifier losses versus the retrieval losses")


@zsbench.component("method", "clarel", build="zsbench_clarel.method:Clarel")
@attrs.frozen
class ClarelOptions:
    """CLAREL (Oreshkin et al.): image/text encoders trained by retrieval + classifier losses."""

    image_encoder: dict | str | None = component_option("encoder", doc=COMPONENT_DOC.format(kind="encoder")
                                                        + "; null: `feature-projection`")
    text_encoder: dict | str | None = component_option("encoder", doc=COMPONENT_DOC.format(kind="encoder")
                                                       + "; null: `auto-text` (`cnn-lstm` when the data set "
                                                         "has per-image sentences, else `class-projection`)")
    loss: dict | str | None = component_option("loss", doc=COMPONENT_DOC.format(kind="loss")
                                               + ", e.g. `{name: clarel, kappa: 0.25}`; null: `clarel`")
    embed_dim: int = option(1024, positive_int, doc="width of the joint space")
    steps: int = option(PAPER_STEPS, integer(0), doc="SGD steps (the authors' value)")
    batch_size: int = option(32, integer(2), doc="image/text pairs per step (retrieval contrasts the batch)")
    lr: float = option(0.1, gt(0), doc="SGD learning rate")
    momentum: float = option(0.9, between(0, 1, high_open=True), doc="SGD momentum")
    lr_decay_steps: list[int] | None = option(None, optional(each(integer(0))),
                                              doc="steps at which the learning rate is multiplied by "
                                                  "`lr_decay_factor`; null: 1/2, 3/4 and 7/8 of `steps`")
    lr_decay_factor: float = option(0.1, gt(0), doc="learning-rate decay factor")
    grad_clip: float | None = option(1.0, optional(gt(0)), doc="gradient-norm clipping (null: none)")
    weight_decay: float = option(1e-3, ge(0), doc="L2 weight decay")
    texts_per_image: int | None = option(None, optional_positive_int,
                                         doc="sentences averaged per image and step (null: all of them, "
                                             "as the authors do)")
    texts_per_prototype: int | None = option(None, optional_positive_int,
                                             doc="sentences per class prototype (null: all)")
    eval_every: int | None = option(2500, optional_positive_int,
                                    doc="steps between evaluations of the model so far (shown on the progress bar)")
    checkpoint_every: int | None = option(2500, optional_positive_int,
                                          doc="steps between checkpoints; a resumed run continues exactly "
                                              "where it stopped")
    checkpoint_dir: str | None = option(None, doc="where checkpoints go; null: the run's cache folder")
    amp: bool = option(True, doc="mixed precision on CUDA")
    eval_batch_size: int = option(1024, positive_int, doc="images per batch when scoring")
    bucket_prototypes: bool = option(True, doc="embed prototype sentences sorted by length, so each chunk pads little")

    score_kind: ClassVar[str] = "distance"  # Euclidean distances to prototypes: for validate


ENCODERS = (FeatureProjectionOptions, ClassProjectionOptions, CnnLstmOptions, TimmBackboneOptions,
            HfTextOptions, AutoTextOptions)
LOSSES = (RetrievalOptions, ClassifierOptions, ClarelLossOptions)
