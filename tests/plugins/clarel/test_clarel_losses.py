"""CLAREL's losses against hand computations on a 3-pair batch, and their composition."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from zsbench_clarel.encoders import ClassProjection, FeatureProjection
from zsbench_clarel.losses import ClarelTotal, Classifier, Retrieval

import zsbench
from zsbench.interfaces import LossContext, LossInputs

# Three pairs in 2-D; a text coincides with its image (pair 0) and with another image (text 1).
IMAGE = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
TEXT = torch.tensor([[0.0, 0.0], [0.0, 4.0], [6.0, 8.0]])
LABELS = torch.tensor([0, 1, 0])
# ||image_i - text_j||: row i image, column j text (plain Python, independent of torch).
DIST = [[math.dist(v, t) for t in TEXT.tolist()] for v in IMAGE.tolist()]
CONTEXT = LossContext(embed_dim=2, num_seen_classes=2)


def _xent(row: list[float], target: int) -> float:
    """-log softmax(-row)[target], written out."""
    return row[target] + math.log(sum(math.exp(-d) for d in row))


def _text_retrieval() -> float:  # each image picks among the texts (rows of DIST)
    return sum(_xent(DIST[i], i) for i in range(3)) / 3


def _image_retrieval() -> float:  # each text picks among the images (columns of DIST)
    return sum(_xent([DIST[i][j] for i in range(3)], j) for j in range(3)) / 3


def _inputs() -> LossInputs:
    return LossInputs(image=IMAGE.clone(), text=TEXT.clone(), labels=LABELS)


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 1.0])
def test_retrieval_matches_hand_computation(lam):
    out = Retrieval(lam=lam).build(CONTEXT)(_inputs())
    expected = lam * _text_retrieval() + (1 - lam) * _image_retrieval()
    assert out.total.item() == pytest.approx(expected, rel=1e-5)
    assert float(out.parts["text_retrieval"]) == pytest.approx(_text_retrieval(), rel=1e-5)
    assert float(out.parts["image_retrieval"]) == pytest.approx(_image_retrieval(), rel=1e-5)
    assert _text_retrieval() != pytest.approx(_image_retrieval())  # the two directions differ here


def _set_heads(loss) -> None:
    with torch.no_grad():
        loss.image_head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        loss.image_head.bias.zero_()
        loss.text_head.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        loss.text_head.bias.copy_(torch.tensor([0.5, 0.0]))


def _classifier_by_hand() -> float:
    image_logits = IMAGE.tolist()  # identity head
    text_logits = [[y + 0.5, x] for x, y in TEXT.tolist()]  # swapped head, bias on class 0
    xent = lambda logits, t: -logits[t] + math.log(sum(math.exp(v) for v in logits))  # noqa: E731
    image = sum(xent(image_logits[i], int(LABELS[i])) for i in range(3)) / 3
    text = sum(xent(text_logits[i], int(LABELS[i])) for i in range(3)) / 3
    return image + text


def test_classifier_matches_hand_computation():
    loss = Classifier().build(CONTEXT)
    _set_heads(loss)
    out = loss(_inputs())
    assert out.total.item() == pytest.approx(_classifier_by_hand(), rel=1e-5)
    assert float(out.parts["image_classifier"] + out.parts["text_classifier"]) == pytest.approx(
        out.total.item(), rel=1e-5
    )


@pytest.mark.parametrize(("lam", "kappa"), [(0.5, 0.5), (0.2, 0.7), (1.0, 0.0), (0.0, 1.0)])
def test_clarel_total_is_the_facts_formula(lam, kappa):
    loss = ClarelTotal(lam=lam, kappa=kappa).build(CONTEXT)
    _set_heads(loss.classifier)
    expected = (
        lam * (1 - kappa) * _text_retrieval()
        + (1 - lam) * (1 - kappa) * _image_retrieval()
        + kappa * _classifier_by_hand()
    )
    assert loss(_inputs()).total.item() == pytest.approx(expected, rel=1e-5)


def test_clarel_is_composed_of_the_two_plugins():
    from zsbench_clarel.losses import ClassifierLoss, RetrievalLoss

    loss = ClarelTotal().build(CONTEXT)
    assert isinstance(loss.retrieval, RetrievalLoss) and isinstance(loss.classifier, ClassifierLoss)
    registry = zsbench.get_registry()
    assert {"retrieval", "classifier", "clarel"} <= set(registry.names("loss"))


def test_gradient_flows_to_both_encoders_and_heads():
    torch.manual_seed(0)
    image_encoder = FeatureProjection(dropout=0.0).build(zsbench.EncoderContext("image", 4, input_dim=6))
    text_encoder = ClassProjection(hidden=[7], standardize=False).build(zsbench.EncoderContext("text", 4, input_dim=5))
    loss = ClarelTotal().build(LossContext(embed_dim=4, num_seen_classes=3))
    inputs = LossInputs(
        image=image_encoder(torch.randn(5, 6)),
        text=text_encoder(torch.randn(5, 5)),
        labels=torch.tensor([0, 1, 2, 0, 1]),
    )
    loss(inputs).total.backward()
    for module in (image_encoder, text_encoder, loss):
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_coincident_embeddings_give_finite_gradients():
    image = torch.zeros(3, 2, requires_grad=True)
    Retrieval().build(CONTEXT)(
        LossInputs(image=image, text=torch.zeros(3, 2), labels=LABELS)
    ).total.backward()
    assert torch.isfinite(image.grad).all()


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.floats(0, 1), st.integers(0, 10_000))
def test_retrieval_is_symmetric_under_swapping_modalities(batch, lam, seed):
    """Swapping images and texts swaps J_TR and J_IR, i.e. lam <-> 1 - lam."""
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(batch, 3, generator=g), torch.randn(batch, 3, generator=g)
    labels = torch.zeros(batch, dtype=torch.int64)
    forward = Retrieval(lam=lam).build(CONTEXT)(LossInputs(a, b, labels)).total
    swapped = Retrieval(lam=1 - lam).build(CONTEXT)(LossInputs(b, a, labels)).total
    assert forward.item() == pytest.approx(swapped.item(), rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("bad", [{"lam": -0.1}, {"lam": 1.5}, {"kappa": 2.0}])
def test_weights_outside_unit_interval_are_user_errors(bad):
    with pytest.raises(zsbench.UserError, match="must be in"):
        ClarelTotal(**bad).build(CONTEXT)
