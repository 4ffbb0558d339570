"""Small synthetic problems for CLAREL: classes made of attribute words, with or without
sentences, and the options that train on them fast."""

from __future__ import annotations

import itertools

import numpy as np

from zsbench.interfaces import ClassSide, EvalInputs, FitData

SEEN, UNSEEN, PER_CLASS = 6, 3, 12

WORDS = ("red", "blue", "round", "spotted", "tiny", "tall", "waxy", "striped")


def word_problem(seed: int = 0, texts: bool = False):
    """Each class is a distinct combination of 3 of 8 attribute words; its class embedding is the
    noisy indicator of those words, an image's feature a fixed random map of it plus noise, and an
    image's sentences name the words in random order (plus a random distractor word). Unseen
    classes recombine seen words, so knowledge can transfer."""
    rng = np.random.default_rng(seed)
    k = SEEN + UNSEEN
    combos = list(itertools.combinations(range(len(WORDS)), 3))
    class_words = [[WORDS[w] for w in combos[c]] for c in rng.choice(len(combos), k, replace=False)]
    indicator = np.array([[w in words for w in WORDS] for words in class_words], dtype=np.float32)
    attributes = indicator + 0.1 * rng.normal(size=indicator.shape).astype(np.float32)
    mixing = rng.normal(size=(len(WORDS), 20)).astype(np.float32)
    labels = np.repeat(np.arange(k), PER_CLASS)
    features = attributes[labels] @ mixing + 0.3 * rng.normal(size=(len(labels), 20)).astype(
        np.float32
    )
    sentences = [
        tuple(" ".join(rng.permutation(class_words[c])) + f" {rng.choice(WORDS)}" for _ in range(3))
        for c in labels
    ]
    class_texts = tuple(
        tuple(s for i in np.flatnonzero(labels == c) for s in sentences[i]) for c in range(k)
    )
    seen = labels < SEEN
    classes = ClassSide(
        ids=np.arange(k),
        names=tuple(f"c{c}" for c in range(k)),
        seen=np.arange(k) < SEEN,
        embeddings=attributes,
        texts=class_texts if texts else None,
    )
    fit = FitData(
        labels=labels[seen],
        classes=classes,
        features=features[seen],
        texts=[sentences[i] for i in np.flatnonzero(seen)] if texts else None,
    )
    return fit, features, labels


FAST = dict(embed_dim=16, batch_size=6, lr=0.05, checkpoint_every=None, eval_every=None)


def top1_accuracy(scorer, features, labels, classes) -> float:
    pred = scorer.scores(EvalInputs(features=features)).values[:, classes].argmin(1).numpy()
    return float(np.mean(np.asarray(classes)[pred] == labels))
