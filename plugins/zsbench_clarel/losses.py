"""CLAREL's losses as three plugins: ``retrieval``, ``classifier`` and their mix ``clarel``.

On a batch of B aligned pairs, ``logits[i, j] = -||image_i - text_j||``:
text retrieval J_TR is the cross-entropy of each image over the batch's texts (rows), image
retrieval J_IR that of each text over the images (columns); the true match is the diagonal.
The classifier loss puts a linear head over the seen classes on each modality's embedding.
``clarel`` = (1 - kappa) * retrieval(lam) + kappa * classifier, i.e. exactly
lam(1-kappa) J_TR + (1-lam)(1-kappa) J_IR + kappa (J_cls_img + J_cls_txt); weight decay is the
optimizer's.
"""

from __future__ import annotations

import attrs
import torch
from torch import nn
from torch.nn.functional import cross_entropy

from zsbench.interfaces import LossContext, LossInputs, LossOutput
from zsbench_clarel.distances import euclidean_distances
from zsbench_clarel.options import ClarelLossOptions, ClassifierOptions, RetrievalOptions


class RetrievalLoss(nn.Module):
    """lam * J_TR + (1 - lam) * J_IR over the batch's B x B negative distances."""

    def __init__(self, lam: float):
        super().__init__()
        self.lam = lam

    def forward(self, inputs: LossInputs) -> LossOutput:
        logits = -euclidean_distances(inputs.image, inputs.text)
        target = torch.arange(len(logits), device=logits.device)
        text_retrieval = cross_entropy(logits, target)
        image_retrieval = cross_entropy(logits.T, target)
        total = self.lam * text_retrieval + (1 - self.lam) * image_retrieval
        return LossOutput(
            total,
            {
                "text_retrieval": text_retrieval.detach(),
                "image_retrieval": image_retrieval.detach(),
            },
        )


class ClassifierLoss(nn.Module):
    """J_cls_img + J_cls_txt: a linear seen-class head on each modality's embedding."""

    def __init__(self, embed_dim: int, num_classes: int):
        super().__init__()
        self.image_head = nn.Linear(embed_dim, num_classes)
        self.text_head = nn.Linear(embed_dim, num_classes)

    def forward(self, inputs: LossInputs) -> LossOutput:
        image = cross_entropy(self.image_head(inputs.image.float()), inputs.labels)
        text = cross_entropy(self.text_head(inputs.text.float()), inputs.labels)
        return LossOutput(
            image + text, {"image_classifier": image.detach(), "text_classifier": text.detach()}
        )


class ClarelLoss(nn.Module):
    """(1 - kappa) * retrieval + kappa * classifier, both parts reported."""

    def __init__(self, retrieval: RetrievalLoss, classifier: ClassifierLoss, kappa: float):
        super().__init__()
        self.retrieval, self.classifier, self.kappa = retrieval, classifier, kappa

    def forward(self, inputs: LossInputs) -> LossOutput:
        retrieval, classifier = self.retrieval(inputs), self.classifier(inputs)
        total = (1 - self.kappa) * retrieval.total + self.kappa * classifier.total
        return LossOutput(total, {**retrieval.parts, **classifier.parts})


@attrs.frozen
class Retrieval(RetrievalOptions):
    def build(self, context: LossContext) -> RetrievalLoss:
        """Bidirectional batch retrieval cross-entropy on negative Euclidean distances, mixed by lam."""
        return RetrievalLoss(self.lam)


@attrs.frozen
class Classifier(ClassifierOptions):
    def build(self, context: LossContext) -> ClassifierLoss:
        """Seen-class cross-entropy of a linear head on each modality's embedding (image + text)."""
        return ClassifierLoss(context.embed_dim, context.num_seen_classes)


@attrs.frozen
class ClarelTotal(ClarelLossOptions):
    def build(self, context: LossContext) -> ClarelLoss:
        """CLAREL's total: (1-kappa) * retrieval(lam) + kappa * classifier (paper: lam = kappa = 0.5)."""
        return ClarelLoss(Retrieval(lam=self.lam).build(context), Classifier().build(context), self.kappa)
