"""f-CLSWGAN (Xian, Lorenz, Schiele & Akata, CVPR 2018): a conditional WGAN-GP learns to generate
image features from class embeddings, helped by a pretrained seen-class softmax; features
synthesised for the unseen classes then train a softmax over all classes with the real seen ones.

Faithful to the paper's model: one-hidden-layer MLPs with LeakyReLU 0.2, the authors' N(0, 0.02)
initialisation, WGAN-GP with lambda = 10 and 5 critic steps per generator step, Adam with
beta1 = 0.5, the classification loss of a softmax pretrained on real seen features (weight
``cls_weight``), a ReLU generator output when the training features are non-negative, and the
final softmax on real seen + synthetic unseen features over all classes, trained for a fixed
number of epochs (never picked on test data). The defaults are reduced so that a fit on FLO takes
seconds on a 2-core CPU: 128 hidden units (paper 4,096), noise of 64 dimensions (paper: as wide as
the side information), 200 generator steps (paper: tens of epochs, thousands of steps), and to
make up for so few steps a larger learning rate (2e-3; paper 1e-4) and classification weight (1;
paper 0.01 on CUB); the two softmax classifiers use Adam at 1e-2 (paper 1e-3) so that a few
epochs fit them on small data sets too. On a GPU raise ``hidden``, ``noise_dim`` and ``steps`` and lower ``lr``.

Class embeddings enter through their coordinates in an orthonormal basis of the span of the
stage's class embeddings (at most K dimensions instead of E): a linear layer on those
coordinates expresses exactly what one on the raw embeddings can, at a fraction of the cost.
"""

from __future__ import annotations

import attrs
import torch
from torch import nn

from zsbench.interfaces import FitData, RunContext
from zsbench_baselines import inputs
from zsbench_baselines.options import FCLSWGANOptions
from zsbench_baselines.scorer import HeadScorer
from zsbench_baselines.side_info import span_basis
from zsbench_baselines.training import seeded, train_softmax


def _mlp(inputs: int, hidden: int, outputs: int, out: nn.Module) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(inputs, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, outputs), out)
    for layer in net:
        if isinstance(layer, nn.Linear):  # the authors' initialisation
            nn.init.normal_(layer.weight, 0.0, 0.02)
            nn.init.zeros_(layer.bias)
    return net


class Conditional(nn.Module):
    """An MLP on [input, class condition]."""

    def __init__(self, net: nn.Sequential):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, condition], dim=1))


def gradient_penalty(critic: Conditional, real: torch.Tensor, fake: torch.Tensor, condition: torch.Tensor,
                     generator: torch.Generator) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): (||grad_x D(x_mix)|| - 1)^2 on random interpolates."""
    alpha = torch.rand(len(real), 1, generator=generator, device=real.device)
    mix = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mix, condition).sum(), mix, create_graph=True)
    return ((grad.norm(dim=1) - 1) ** 2).mean()


@attrs.frozen
class FCLSWGAN(FCLSWGANOptions):
    """f-CLSWGAN (Xian et al. 2018): WGAN-GP feature generator, softmax on real seen + synthetic unseen."""

    def fit(self, data: FitData, context: RunContext) -> HeadScorer:
        norm, x, y, classes = inputs.training_set(
            self.name, data, context.device, self.feature_norm, self.embedding_norm
        )
        conditions = classes @ span_basis(classes)  # (K, r) coordinates, seen classes first
        num_seen, num_classes = data.classes.num_seen, len(classes)
        seen_classifier = train_softmax(x, y, num_seen, context, self.pretrain_epochs, self.classifier_lr,
                                        desc=f"{self.name} seen softmax")
        gen = self.train_gan(x, y, conditions, seen_classifier, context)
        unseen = torch.arange(num_seen, num_classes, device=x.device).repeat_interleave(self.synthetic_per_class)
        noise = torch.randn(len(unseen), self.noise_dim, generator=context.generator(), device=x.device)
        with torch.no_grad():
            synthetic = gen(noise, conditions[unseen])
        final = train_softmax(torch.cat([x, synthetic]), torch.cat([y, unseen]), num_classes, context,
                              self.classifier_epochs, self.classifier_lr, desc=f"{self.name} final softmax")
        return HeadScorer(self.name, norm, final, context.device)

    def train_gan(self, x: torch.Tensor, y: torch.Tensor, conditions: torch.Tensor, seen_classifier: nn.Module,
                  context: RunContext) -> Conditional:
        dim, cond_dim = x.shape[1], conditions.shape[1]
        nonneg = bool((x >= 0).all())  # features after ReLU: the generator ends with one too
        gen = seeded(lambda: Conditional(_mlp(self.noise_dim + cond_dim, self.hidden, dim,
                                              nn.ReLU() if nonneg else nn.Identity())), context.seed, x.device)
        critic = seeded(lambda: Conditional(_mlp(dim + cond_dim, self.hidden, 1, nn.Identity())),
                        context.seed + 1, x.device)
        opt_g = torch.optim.Adam(gen.parameters(), lr=self.lr, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(critic.parameters(), lr=self.lr, betas=(0.5, 0.999))
        rng = context.generator()

        def batch():
            idx = torch.randint(len(x), (self.batch_size,), generator=rng, device=x.device)
            noise = torch.randn(self.batch_size, self.noise_dim, generator=rng, device=x.device)
            return x[idx], y[idx], conditions[y[idx]], noise

        with context.bar(self.steps, f"{self.name} generator steps") as bar:
            for step in range(1, self.steps + 1):
                for _ in range(self.critic_iters):
                    real, _, cond, noise = batch()
                    with torch.no_grad():
                        fake = gen(noise, cond)
                    wasserstein = critic(real, cond).mean() - critic(fake, cond).mean()
                    penalty = gradient_penalty(critic, real, fake, cond, rng)
                    opt_d.zero_grad(set_to_none=True)
                    (self.gp_weight * penalty - wasserstein).backward()
                    opt_d.step()
                _, labels, cond, noise = batch()
                fake = gen(noise, cond)
                classification = nn.functional.cross_entropy(seen_classifier(fake), labels)
                critic.requires_grad_(False)  # the generator step needs no critic gradients
                loss_g = -critic(fake, cond).mean() + self.cls_weight * classification
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                critic.requires_grad_(True)
                bar.update()
                if step % 50 == 0 or step == self.steps:  # each report waits for the device
                    bar.set_postfix(w=f"{wasserstein.item():.3f}", cls=f"{classification.item():.3f}")
        gen.eval()
        return gen.requires_grad_(False)
