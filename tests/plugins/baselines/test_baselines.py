"""The GZSL baselines (zsbench_baselines) on a small synthetic problem: class embeddings s_k,
features x = A s_y + noise, 12 seen and 4 unseen classes (the seen embeddings span the space)."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import pytest
import torch
from host_reads import HostReads
from support.baselines import FAST, Problem, make_problem

from zsbench.evaluation.metrics import per_class_accuracy, zsl_top1
from zsbench.interfaces import EvalInputs, RunContext


def context(seed: int = 0) -> RunContext:
    return RunContext(seed=seed, device=torch.device("cpu"), cache_dir=Path("/nonexistent"), show_progress=False)


def accuracies(problem: Problem, scores: torch.Tensor) -> tuple[float, float]:
    """(ZSL top-1 on unseen-class samples, seen-class top-1 among seen classes on seen samples)."""
    labels = torch.as_tensor(problem.eval_labels)
    seen_mask = torch.arange(scores.shape[1]) < problem.num_seen
    zsl = zsl_top1(scores, labels, ~seen_mask)
    on_seen = labels < problem.num_seen
    seen_pred = scores[on_seen][:, seen_mask].argmax(1)
    return zsl, per_class_accuracy(labels[on_seen], seen_pred)


TRAINED = {  # enough training to learn the synthetic problem
    **FAST,
    "f-clswgan": {"steps": 150, "hidden": 64, "noise_dim": 8, "lr": 2e-3, "batch_size": 64, "cls_weight": 1.0,
                  "synthetic_per_class": 50, "pretrain_epochs": 20, "classifier_epochs": 30, "classifier_lr": 1e-2},
    "cada-vae": {"epochs": 25, "batch_size": 64, "hidden": 64, "latent": 8, "seen_samples": 50, "unseen_samples": 50,
                 "classifier_epochs": 30, "classifier_lr": 1e-2},
}
GENERATIVE = {"f-clswgan", "cada-vae"}


@pytest.fixture(scope="module")
def problem() -> Problem:
    return make_problem()


@pytest.fixture(scope="module")
def methods():
    from zsbench_baselines import METHODS

    return {m.name: m for m in METHODS}


@pytest.fixture(scope="module")
def floor(problem, methods) -> tuple[float, float]:
    """The random floor's best accuracies over a few seeds."""
    runs = [accuracies(problem, methods["random"]().fit(problem.fit, context(s)).scores(problem.eval_inputs).values)
            for s in range(3)]
    return max(r[0] for r in runs), max(r[1] for r in runs)


def test_every_method_is_registered_under_its_name():
    import zsbench_baselines

    from zsbench.registry import Registry

    registry = Registry([("baselines", zsbench_baselines, None, None)])
    assert set(registry.names("method")) == set(FAST)
    for name in FAST:
        entry = registry.get("method", name)
        assert entry.description, f"{name} has no one-line description"
        grid = getattr(entry.factory, "default_grid", {})
        assert set(grid) <= set(entry.options()), f"{name}: grid names unknown options"
        assert all(len(v) >= 1 for v in grid.values())


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n in GENERATIVE else [])
                                  for n in sorted(set(FAST) - {"random"})])
def test_method_beats_the_random_floor(name, problem, methods, floor):
    scores = methods[name](**TRAINED[name]).fit(problem.fit, context()).scores(problem.eval_inputs)
    assert scores.values.shape == (len(problem.eval_labels), len(problem.fit.classes))
    assert not scores.is_distance and torch.isfinite(scores.values).all()
    zsl, seen = accuracies(problem, scores.values)
    assert zsl > floor[0] + 0.2, f"{name}: ZSL {zsl:.2f} vs floor {floor[0]:.2f}"
    assert seen > floor[1] + 0.3, f"{name}: seen accuracy {seen:.2f} vs floor {floor[1]:.2f}"


def test_random_floor_is_near_chance(floor):
    assert floor[0] < 0.6 and floor[1] < 0.45  # chance: 1/4 unseen, 1/12 seen


@pytest.mark.parametrize("name", sorted(FAST))
def test_same_seed_same_scores(name, problem, methods):
    first, second = (methods[name](**FAST[name]).fit(problem.fit, context(7)).scores(problem.eval_inputs).values
                     for _ in range(2))
    torch.testing.assert_close(first, second, rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(FAST))
def test_fit_and_scoring_have_no_data_dependent_shapes(name, problem, methods):
    """Nothing in a fit or in scoring waits for a GPU to learn a shape (nonzero, boolean-mask
    indexing): every batch is queued without a round trip (checked on the CPU)."""
    with HostReads() as reads:
        methods[name](**FAST[name]).fit(problem.fit, context()).scores(problem.eval_inputs)
    assert reads.waits == []


@pytest.mark.parametrize("name", sorted(set(FAST) - {"eszsl"}))
def test_seed_matters_for_stochastic_methods(name, problem, methods):
    a, b = (methods[name](**FAST[name]).fit(problem.fit, context(s)).scores(problem.eval_inputs).values for s in (1, 2))
    assert not torch.equal(a, b)


@pytest.mark.parametrize("name", sorted(FAST))
def test_scores_use_no_evaluation_statistics(name, problem, methods):
    """The scorer exists before any evaluation data does, and a row's scores do not depend on
    the other rows scored with it (no scaling fitted on evaluation features)."""
    scorer = methods[name](**FAST[name]).fit(problem.fit, context())
    x = problem.eval_inputs.features
    whole = scorer.scores(EvalInputs(features=x)).values
    shifted = np.concatenate([x[:5], x[5:] * 100 + 3])  # other rows far away change nothing for the first 5
    torch.testing.assert_close(scorer.scores(EvalInputs(features=shifted)).values[:5], whole[:5])
    torch.testing.assert_close(scorer.scores(EvalInputs(features=x[:1])).values, whole[:1], rtol=1e-5, atol=1e-5)


def test_feature_statistics_come_from_the_fit_features_only(problem):
    from zsbench_baselines.preprocess import FeatureNorm

    x = torch.as_tensor(problem.fit.features)
    norm = FeatureNorm.fit("standard", x)
    torch.testing.assert_close(norm.shift, x.mean(0))
    torch.testing.assert_close(norm(x).mean(0), torch.zeros(x.shape[1]), atol=1e-5, rtol=0)
    minmax = FeatureNorm.fit("minmax", x)(x)
    assert minmax.min() >= 0 and minmax.max() <= 1 + 1e-6


@pytest.mark.parametrize("name", sorted(FAST))
def test_missing_inputs_are_user_errors(name, problem, methods):
    from zsbench.errors import UserError

    no_features = attrs.evolve(problem.fit, features=None)
    with pytest.raises(UserError, match="needs precomputed image features"):
        methods[name](**FAST[name]).fit(no_features, context())
    no_embeddings = attrs.evolve(problem.fit, classes=attrs.evolve(problem.fit.classes, embeddings=None))
    with pytest.raises(UserError, match="needs class embeddings"):
        methods[name](**FAST[name]).fit(no_embeddings, context())


@pytest.mark.parametrize(("name", "option", "value"), [
    ("eszsl", "gamma", -1.0), ("ale", "epochs", 0), ("sje", "feature_norm", "zscore"),
    ("f-clswgan", "critic_iters", 1.5), ("cada-vae", "lr", 0), ("random", "dim", -3),
])
def test_bad_option_values_are_user_errors(name, option, value, methods):
    from zsbench.errors import UserError

    with pytest.raises(UserError, match=option):
        methods[name](**{option: value})


def test_eszsl_matches_the_papers_closed_form():
    """V = (X X^T + gamma I)^-1 X Y S^T (S S^T + lambda I)^-1 with X: D x n, S: E x Z, Y in {-1, 1}."""
    from zsbench_baselines.eszsl import ESZSL

    problem = make_problem(seed=3, seen=6, unseen=2, embed_dim=5, feature_dim=7, per_class=4)
    gamma, lam = 0.3, 2.0
    x = problem.fit.features.astype(np.float64).T
    s_all = problem.fit.classes.embeddings.astype(np.float64).T
    s = s_all[:, :problem.num_seen]
    y = -np.ones((x.shape[1], problem.num_seen))
    y[np.arange(x.shape[1]), problem.fit.labels] = 1
    v = np.linalg.inv(x @ x.T + gamma * np.eye(len(x))) @ x @ y @ s.T @ np.linalg.inv(s @ s.T + lam * np.eye(len(s)))
    expected = problem.eval_inputs.features.astype(np.float64) @ v @ s_all
    method = ESZSL(gamma=gamma, lam=lam, feature_norm="none", embedding_norm="none")
    scores = method.fit(problem.fit, context()).scores(problem.eval_inputs).values
    np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-4, atol=1e-4)


BATCH = torch.tensor([[1.0, 0.5, -0.2], [0.1, 0.3, 0.2], [3.0, 0.0, 0.0]])
BATCH_LABELS = torch.tensor([0, 2, 0])
# Violations max(0, 1 + F_k - F_y) for k != y: row 0 -> [0, 0.5, 0]; row 1 -> [0.9, 1.1, 0]; row 2 -> none.


def test_devise_loss_by_hand():
    from zsbench_baselines.ranking_losses import devise_loss

    torch.testing.assert_close(devise_loss(BATCH, BATCH_LABELS, 1.0), torch.tensor([0.5, 2.0, 0.0]))


def test_sje_loss_by_hand():
    from zsbench_baselines.ranking_losses import sje_loss

    torch.testing.assert_close(sje_loss(BATCH, BATCH_LABELS, 1.0), torch.tensor([0.5, 1.1, 0.0]))


def test_ale_loss_by_hand():
    """Rank weights beta(r)/r: one violator -> 1/1, two -> (1 + 1/2)/2, none -> 0."""
    from zsbench_baselines.ranking_losses import ale_loss

    torch.testing.assert_close(ale_loss(BATCH, BATCH_LABELS, 1.0), torch.tensor([0.5, 0.75 * 2.0, 0.0]))


def test_ranking_losses_use_the_margin():
    from zsbench_baselines.ranking_losses import sje_loss

    torch.testing.assert_close(sje_loss(BATCH, BATCH_LABELS, 0.5), torch.tensor([0.0, 0.6, 0.0]))


def test_bilinear_trainer_equals_training_the_full_matrix(problem):
    """Training V on the seen-embedding span is plain SGD on W = V Q^T from zero: compare with a
    direct full-W loop of the same steps."""
    from zsbench_baselines.bilinear import ALE
    from zsbench_baselines.ranking_losses import ale_loss
    from zsbench_baselines.training import minibatches

    method = ALE(epochs=2, batch_size=16, lr=0.5, momentum=0.9, weight_decay=0.01, feature_norm="none",
                 embedding_norm="none")
    scores = method.fit(problem.fit, context()).scores(problem.eval_inputs).values
    x, y = torch.as_tensor(problem.fit.features), torch.as_tensor(problem.fit.labels)
    s_all = torch.as_tensor(problem.fit.classes.embeddings)
    w = torch.zeros(x.shape[1], s_all.shape[1], requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.5, momentum=0.9, weight_decay=0.01)
    generator = torch.Generator().manual_seed(0)
    for _ in range(2):
        for idx in minibatches(len(x), 16, generator):
            loss = ale_loss(x[idx] @ w @ s_all[: problem.num_seen].T, y[idx], 1.0).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    expected = torch.as_tensor(problem.eval_inputs.features) @ w.detach() @ s_all.T
    torch.testing.assert_close(scores, expected, rtol=1e-3, atol=1e-3)


def test_gradient_penalty_of_a_linear_critic():
    """A linear critic's input gradient is its weight: penalty (||w_x|| - 1)^2 whatever the inputs."""
    from torch import nn
    from zsbench_baselines.clswgan import Conditional, gradient_penalty

    critic = Conditional(nn.Sequential(nn.Linear(3 + 2, 1)))
    with torch.no_grad():
        critic.net[0].weight.copy_(torch.tensor([[0.0, 1.2, 1.6, 5.0, -7.0]]))  # ||w_x|| = 2
    real, fake, condition = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 2)
    penalty = gradient_penalty(critic, real, fake, condition, torch.Generator().manual_seed(0))
    torch.testing.assert_close(penalty, torch.tensor(1.0))


def test_cada_vae_divergences_by_hand():
    from zsbench_baselines.cada_vae import kl_divergence, wasserstein

    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.log(torch.tensor([[1.0, 4.0]]))
    # KL(N(mu, s^2) || N(0, 1)) = 0.5 * sum(mu^2 + s^2 - 1 - log s^2) = 0.5 * (1 + 0 + 3 - log 4)
    torch.testing.assert_close(kl_divergence(mu, logvar), torch.tensor([0.5 * (4 - float(np.log(4.0)))]))
    # W2 between N([1, 0], diag(1, 4)) and N(0, I): sqrt(|mu|^2 + |s - 1|^2) = sqrt(1 + 1)
    zeros = torch.zeros(1, 2)
    torch.testing.assert_close(wasserstein(mu, logvar, zeros, zeros), torch.tensor([2.0**0.5]))


def test_cada_vae_draws_seen_codes_from_each_class():
    from zsbench_baselines.cada_vae import _draw_members

    y = torch.tensor([2, 0, 1, 0, 2, 2, 1])
    drawn = _draw_members(y, 3, 50, torch.Generator().manual_seed(0))
    assert torch.equal(y[drawn], torch.arange(3).repeat_interleave(50))
    assert set(drawn[y[drawn] == 2].tolist()) == {0, 4, 5}


def test_warmup_ramps_linearly_inside_its_window():
    from zsbench_baselines.cada_vae import warmup

    assert [warmup(p, (0.2, 0.6)) for p in (0.0, 0.2, 0.4, 0.6, 1.0)] == pytest.approx([0, 0, 0.5, 1, 1])


