"""ALE, SJE and DeViSE: one SGD trainer of a bilinear compatibility F(x, k) = x W s_k that differs
only in its ranking loss (see ``ranking_losses``).

W starts at zero (a random start, as in some public code, only adds noise along directions of the
embedding space that no seen class constrains, which unseen classes then pick up). Every SGD step
adds a multiple of x^T G S_seen, so W stays of the form V Q^T with Q an orthonormal basis of the
seen class embeddings' span: training V (D x r, r <= number of seen classes) with SGD (momentum,
weight decay) is exactly the same optimisation as training W (D x E), at O(D r) instead of O(D E)
per sample.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from zsbench.interfaces import FitData, RunContext
from zsbench_baselines import inputs
from zsbench_baselines.options import ALEOptions, BilinearOptions, DeViSEOptions, SJEOptions
from zsbench_baselines.ranking_losses import RankingLoss, ale_loss, devise_loss, sje_loss
from zsbench_baselines.scorer import Compatibility, HeadScorer
from zsbench_baselines.side_info import span_basis
from zsbench_baselines.training import minibatches


@attrs.frozen
class BilinearRanking(BilinearOptions):
    """A bilinear compatibility trained by minibatch SGD on a ranking loss."""

    ranking_loss: ClassVar[RankingLoss]

    def fit(self, data: FitData, context: RunContext) -> HeadScorer:
        norm, x, y, classes = inputs.training_set(
            self.name, data, context.device, self.feature_norm, self.embedding_norm
        )
        basis = span_basis(classes[: data.classes.num_seen])  # (E, r)
        seen_coords = classes[: data.classes.num_seen] @ basis  # (Z, r)
        v = self.train(x, y, seen_coords, context)
        return HeadScorer(self.name, norm, Compatibility(v @ (classes @ basis).T), context.device)

    def train(self, x: torch.Tensor, y: torch.Tensor, seen: torch.Tensor, context: RunContext) -> torch.Tensor:
        """V (D, r) minimising the mean ranking loss of x V seen^T."""
        v = torch.zeros(x.shape[1], seen.shape[1], device=x.device, requires_grad=True)
        optimizer = torch.optim.SGD([v], lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        generator = context.generator()
        with context.bar(self.epochs, f"{self.name} epochs") as bar:
            for _ in range(self.epochs):
                total = x.new_zeros(())
                for idx in minibatches(len(x), self.batch_size, generator):
                    loss = self.ranking_loss(x[idx] @ v @ seen.T, y[idx], self.margin).mean()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += loss.detach() * len(idx)
                bar.update()
                bar.set_postfix(loss=f"{total.item() / len(x):.4f}")
        return v.detach()


@attrs.frozen
class ALE(BilinearRanking, ALEOptions):
    """ALE (Akata et al. 2016): bilinear compatibility, rank-weighted (WARP) hinge, SGD."""

    ranking_loss: ClassVar[RankingLoss] = staticmethod(ale_loss)


@attrs.frozen
class SJE(BilinearRanking, SJEOptions):
    """SJE (Akata et al. 2015): bilinear compatibility, structured max-margin loss, SGD."""

    ranking_loss: ClassVar[RankingLoss] = staticmethod(sje_loss)


@attrs.frozen
class DeViSE(BilinearRanking, DeViSEOptions):
    """DeViSE (Frome et al. 2013): bilinear compatibility, pairwise hinge over all classes, SGD."""

    ranking_loss: ClassVar[RankingLoss] = staticmethod(devise_loss)
