"""Pieces shared by the trained baselines: seeded module construction, minibatch orders and a
softmax classifier trainer (f-CLSWGAN and CADA-VAE both end with one)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

from zsbench.interfaces import RunContext

M = TypeVar("M", bound=torch.nn.Module)


def seeded(build: Callable[[], M], seed: int, device: torch.device) -> M:
    """Build a module with parameters drawn from ``seed`` (not from the global RNG state)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build()
    return module.to(device)


def minibatches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """One epoch of shuffled index batches (the last one may be smaller)."""
    order = torch.randperm(n, generator=generator, device=generator.device)
    yield from order.split(batch_size)


def train_softmax(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    context: RunContext,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 256,
    desc: str = "softmax",
) -> torch.nn.Linear:
    """A linear softmax classifier trained with Adam on (x, y); returns its logits layer."""
    classifier = seeded(lambda: torch.nn.Linear(x.shape[1], num_classes), context.seed, x.device)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr, betas=(0.5, 0.999))
    generator = context.generator()
    with context.bar(epochs, desc) as bar:
        for _ in range(epochs):
            for idx in minibatches(len(x), batch_size, generator):
                loss = torch.nn.functional.cross_entropy(classifier(x[idx]), y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    classifier.eval()
    return classifier.requires_grad_(False)
