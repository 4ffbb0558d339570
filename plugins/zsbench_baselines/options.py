"""The baselines' options, declared once (defaults, ranges, docs) without importing torch.

Each class is the component ``zsbench validate`` and the docs read; the model class in its own
module subclasses it and is imported only when a run builds it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import attrs

import zsbench
from zsbench import gt, integer, one_of, option

Norm = Literal["none", "l2", "standard", "minmax"]
NORMS = ("none", "l2", "standard", "minmax")
EmbeddingNorm = Literal["none", "l2"]
EMBEDDING_NORMS = ("none", "l2")

FEATURE_NORM_DOC = ("`none`, `l2` (rows), `standard` or `minmax` (per dimension, statistics from "
                    "the training features only)")
EMBEDDING_NORM_DOC = "`none` or `l2`: per-class normalisation of the class embeddings"
non_negative = zsbench.ge(0)
positive = gt(0)
positive_int = integer(1)


@zsbench.component("method", "eszsl", build="zsbench_baselines.eszsl:ESZSL")
@attrs.frozen
class ESZSLOptions:
    """ESZSL (Romera-Paredes & Torr 2015): closed-form bilinear compatibility, ridge on both sides."""

    gamma: float = option(1e4, positive, doc="feature-side ridge strength")
    lam: float = option(0.1, positive, doc="class-side ridge strength")
    feature_norm: Norm = option("standard", one_of(*NORMS), doc=FEATURE_NORM_DOC)
    embedding_norm: EmbeddingNorm = option("l2", one_of(*EMBEDDING_NORMS), doc=EMBEDDING_NORM_DOC)

    name: ClassVar[str] = "eszsl"
    score_kind: ClassVar[str] = "similarity"  # compatibilities (scorer.py): for validate
    default_grid: ClassVar[dict[str, list]] = {"gamma": [3e3, 3e4], "lam": [0.1, 1.0]}


@attrs.frozen
class BilinearOptions:
    """A bilinear compatibility trained by minibatch SGD on a ranking loss."""

    lr: float = option(3.0, positive, doc="SGD learning rate")
    epochs: int = option(10, positive_int, doc="passes over the training images")
    batch_size: int = option(256, positive_int, doc="images per step")
    margin: float = option(1.0, positive, doc="hinge margin")
    momentum: float = option(0.9, non_negative, doc="SGD momentum")
    weight_decay: float = option(0.0, non_negative, doc="L2 penalty on the compatibility matrix")
    feature_norm: Norm = option("l2", one_of(*NORMS), doc=FEATURE_NORM_DOC)
    embedding_norm: EmbeddingNorm = option("l2", one_of(*EMBEDDING_NORMS), doc=EMBEDDING_NORM_DOC)

    name: ClassVar[str] = "bilinear"
    score_kind: ClassVar[str] = "similarity"  # compatibilities (scorer.py): for validate
    default_grid: ClassVar[dict[str, list]] = {"lr": [1.0, 3.0, 10.0]}


@zsbench.component("method", "ale", build="zsbench_baselines.bilinear:ALE")
@attrs.frozen
class ALEOptions(BilinearOptions):
    """ALE (Akata et al. 2016): bilinear compatibility, rank-weighted (WARP) hinge, SGD."""

    name: ClassVar[str] = "ale"
    score_kind: ClassVar[str] = "similarity"  # compatibilities (scorer.py): for validate


@zsbench.component("method", "sje", build="zsbench_baselines.bilinear:SJE")
@attrs.frozen
class SJEOptions(BilinearOptions):
    """SJE (Akata et al. 2015): bilinear compatibility, structured max-margin loss, SGD."""

    name: ClassVar[str] = "sje"
    score_kind: ClassVar[str] = "similarity"  # compatibilities (scorer.py): for validate


@zsbench.component("method", "devise", build="zsbench_baselines.bilinear:DeViSE")
@attrs.frozen
class DeViSEOptions(BilinearOptions):
    """DeViSE (Frome et al. 2013): bilinear compatibility, pairwise hinge over all classes, SGD."""

    name: ClassVar[str] = "devise"
    score_kind: ClassVar[str] = "similarity"  # compatibilities (scorer.py): for validate


@zsbench.component("method", "f-clswgan", build="zsbench_baselines.clswgan:FCLSWGAN")
@attrs.frozen
class FCLSWGANOptions:
    """f-CLSWGAN (Xian et al. 2018): WGAN-GP feature generator, softmax on real seen + synthetic unseen."""

    steps: int = option(200, positive_int, doc="generator updates")
    critic_iters: int = option(5, positive_int, doc="critic updates per generator update")
    batch_size: int = option(64, positive_int, doc="features per batch")
    hidden: int = option(128, positive_int, doc="hidden units of generator and critic")
    noise_dim: int = option(64, positive_int, doc="noise dimensions fed to the generator")
    lr: float = option(2e-3, positive, doc="Adam learning rate of the GAN")
    gp_weight: float = option(10.0, non_negative, doc="gradient-penalty weight")
    cls_weight: float = option(1.0, non_negative, doc="weight of the classification loss on generated features")
    synthetic_per_class: int = option(200, positive_int, doc="generated features per unseen class")
    pretrain_epochs: int = option(5, positive_int, doc="epochs of the seen-class classifier that guides the generator")
    classifier_epochs: int = option(10, positive_int, doc="epochs of the final softmax classifier")
    classifier_lr: float = option(1e-2, positive, doc="its learning rate")
    feature_norm: Norm = option("minmax", one_of(*NORMS), doc=FEATURE_NORM_DOC)
    embedding_norm: EmbeddingNorm = option("l2", one_of(*EMBEDDING_NORMS), doc=EMBEDDING_NORM_DOC)

    name: ClassVar[str] = "f-clswgan"
    score_kind: ClassVar[str] = "similarity"  # compatibilities (scorer.py): for validate
    default_grid: ClassVar[dict[str, list]] = {"cls_weight": [1.0, 3.0]}


@zsbench.component("method", "cada-vae", build="zsbench_baselines.cada_vae:CADAVAE")
@attrs.frozen
class CADAVAEOptions:
    """CADA-VAE (Schönfeld et al. 2019): cross-aligned VAEs on features and class embeddings + latent softmax."""

    epochs: int = option(10, positive_int, doc="VAE epochs")
    batch_size: int = option(128, positive_int, doc="features per batch")
    lr: float = option(1e-3, positive, doc="Adam learning rate")
    hidden: int = option(128, positive_int, doc="hidden units of encoders and decoders")
    latent: int = option(64, positive_int, doc="latent dimensions")
    beta: float = option(0.25, non_negative, doc="KL weight after warm-up")
    cross_weight: float = option(2.37, non_negative, doc="cross-reconstruction weight after warm-up")
    align_weight: float = option(8.13, non_negative, doc="distribution-alignment weight after warm-up")
    seen_samples: int = option(200, positive_int, doc="latent codes per seen class for the classifier")
    unseen_samples: int = option(400, positive_int, doc="latent codes per unseen class")
    classifier_epochs: int = option(20, positive_int, doc="epochs of the latent softmax classifier")
    classifier_lr: float = option(1e-3, positive, doc="its learning rate")
    feature_norm: Norm = option("standard", one_of(*NORMS), doc=FEATURE_NORM_DOC)
    embedding_norm: EmbeddingNorm = option("l2", one_of(*EMBEDDING_NORMS), doc=EMBEDDING_NORM_DOC)

    name: ClassVar[str] = "cada-vae"
    score_kind: ClassVar[str] = "similarity"  # compatibilities (scorer.py): for validate
    default_grid: ClassVar[dict[str, list]] = {"epochs": [10, 20]}


@zsbench.component("method", "random", build="zsbench_baselines.random_floor:RandomProjection")
@attrs.frozen
class RandomOptions:
    """Random floor: cosine similarity after independent random projections (nothing learned)."""

    dim: int = option(256, positive_int, doc="width of the common space")
    feature_norm: Norm = option("standard", one_of(*NORMS), doc=FEATURE_NORM_DOC)

    name: ClassVar[str] = "random"
    score_kind: ClassVar[str] = "similarity"  # compatibilities (scorer.py): for validate


METHODS = (ESZSLOptions, ALEOptions, SJEOptions, DeViSEOptions, FCLSWGANOptions, CADAVAEOptions, RandomOptions)
