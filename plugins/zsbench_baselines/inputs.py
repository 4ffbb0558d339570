"""Turning FitData / EvalInputs into tensors, with a clear error when a method's inputs are missing.

Every baseline here works on precomputed image features and class-level side information; a
data set offering only raw images or only per-image texts is the user's mismatch to fix.
"""

from __future__ import annotations

import numpy as np
import torch

from zsbench.errors import UserError
from zsbench.interfaces import EvalInputs, FitData
from zsbench_baselines.preprocess import FeatureNorm
from zsbench_baselines.side_info import prepare_embeddings


def features(method: str, inputs: FitData | EvalInputs, device: torch.device) -> torch.Tensor:
    """(n, D) float32 features on ``device``."""
    if inputs.features is None:
        raise UserError(
            f"method {method!r} needs precomputed image features, but this data set gives none "
            "(only raw images); use a dataset option that loads a features file"
        )
    return torch.as_tensor(np.asarray(inputs.features, dtype=np.float32), device=device)


def class_embeddings(method: str, data: FitData, device: torch.device) -> torch.Tensor:
    """(K, E) float32 class embeddings (seen classes first) on ``device``."""
    if data.classes.embeddings is None:
        raise UserError(
            f"method {method!r} needs class embeddings (attributes or class text embeddings), "
            "but this data set has none"
        )
    return torch.as_tensor(np.asarray(data.classes.embeddings, dtype=np.float32), device=device)


def labels(data: FitData, device: torch.device) -> torch.Tensor:
    """(n,) int64 labels into ``data.classes`` (all < num_seen)."""
    return torch.as_tensor(np.asarray(data.labels, dtype=np.int64), device=device)


def training_set(
    method: str, data: FitData, device: torch.device, feature_norm: str, embedding_norm: str
) -> tuple[FeatureNorm, torch.Tensor, torch.Tensor, torch.Tensor]:
    """What every trained baseline starts from: the feature normalisation fitted on ``data`` (its
    scorer applies it at test time), the normalised features, the labels and the prepared class
    embeddings (seen classes first), all on ``device``."""
    raw = features(method, data, device)
    norm = FeatureNorm.fit(feature_norm, raw)
    classes = prepare_embeddings(class_embeddings(method, data, device), embedding_norm)
    return norm, norm(raw), labels(data, device), classes
