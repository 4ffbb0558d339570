"""A small synthetic problem for the GZSL baselines (class embeddings s_k, features
x = A s_y + noise, seen embeddings spanning the space) and the options that fit each fast."""

from __future__ import annotations

import attrs
import numpy as np

from zsbench.interfaces import ClassSide, EvalInputs, FitData


@attrs.frozen
class Problem:
    fit: FitData
    eval_inputs: EvalInputs
    eval_labels: np.ndarray  # into fit.classes
    num_seen: int


def make_problem(seed: int = 0, seen: int = 12, unseen: int = 4, embed_dim: int = 8, feature_dim: int = 24,
                 per_class: int = 40, noise: float = 0.5) -> Problem:
    rng = np.random.default_rng(seed)
    k = seen + unseen
    embeddings = rng.normal(size=(k, embed_dim)).astype(np.float32)
    mixing = rng.normal(size=(embed_dim, feature_dim)).astype(np.float32)

    def draw(classes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.repeat(classes, n)
        x = embeddings[labels] @ mixing + noise * rng.normal(size=(len(labels), feature_dim))
        return x.astype(np.float32), labels

    x_fit, y_fit = draw(np.arange(seen), per_class)
    x_eval, y_eval = draw(np.arange(k), per_class // 2)
    classes = ClassSide(ids=np.arange(k), names=tuple(f"c{i}" for i in range(k)), seen=np.arange(k) < seen,
                        embeddings=embeddings)
    return Problem(FitData(labels=y_fit, classes=classes, features=x_fit), EvalInputs(features=x_eval), y_eval, seen)


FAST = {  # tiny options: every fit takes a fraction of a second (for the mechanics, not accuracy)
    "eszsl": {"gamma": 1.0},
    "ale": {"epochs": 5, "batch_size": 64, "lr": 1.0},
    "sje": {"epochs": 5, "batch_size": 64, "lr": 1.0},
    "devise": {"epochs": 5, "batch_size": 64, "lr": 1.0},
    "f-clswgan": {"steps": 5, "critic_iters": 2, "hidden": 16, "noise_dim": 4, "synthetic_per_class": 10,
                  "pretrain_epochs": 2, "classifier_epochs": 2},
    "cada-vae": {"epochs": 2, "hidden": 16, "latent": 4, "seen_samples": 10, "unseen_samples": 10, "classifier_epochs": 2},
    "random": {},
}
