"""The CLAREL method end to end on small synthetic problems: learning, decisions, determinism,
checkpoints and resume, instance-text and class-level modes."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch
from host_reads import HostReads
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from support.clarel import FAST, SEEN, UNSEEN, top1_accuracy, word_problem
from zsbench_clarel.encoders import FeatureProjection
from zsbench_clarel.method import Clarel, ClarelScorer

import zsbench
from zsbench.evaluation.calibration import sweep
from zsbench.interfaces import EncoderContext, EvalInputs, RunContext


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: extra threads only add synchronisation, which a busy machine punishes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _context(tmp_path, seed: int = 0) -> RunContext:
    return RunContext(
        seed=seed, device=torch.device("cpu"), cache_dir=tmp_path, show_progress=False,
        registry=zsbench.get_registry(),
    )


def test_training_improves_retrieval_and_transfers_to_unseen_classes(tmp_path):
    fit, features, labels = word_problem()
    seen = labels < SEEN
    untrained = Clarel(steps=0, **FAST).fit(fit, _context(tmp_path))
    trained = Clarel(steps=300, **FAST).fit(fit, _context(tmp_path))
    seen_classes, unseen_classes = list(range(SEEN)), list(range(SEEN, SEEN + UNSEEN))
    before = top1_accuracy(untrained, features[seen], labels[seen], seen_classes)
    after = top1_accuracy(trained, features[seen], labels[seen], seen_classes)
    assert after > 0.9 and after > before + 0.3
    # Unseen classes were never trained on, yet their projected embeddings attract their images.
    assert top1_accuracy(trained, features[~seen], labels[~seen], unseen_classes) > 0.6  # chance 1/3
    history = trained.training.history
    assert history[-1]["step"] == 300 and history[-1]["loss"] < history[0]["loss"]


def test_instance_text_training_improves_retrieval(tmp_path):
    fit, features, labels = word_problem(texts=True)
    seen = labels < SEEN
    text_encoder = {
        "name": "cnn-lstm",
        "word_dim": 16,
        "filters": 8,
        "lstm_hidden": 16,
        "max_tokens": 8,
    }
    accuracies = [
        top1_accuracy(
            Clarel(steps=steps, text_encoder=text_encoder, **FAST).fit(
                fit, _context(tmp_path)
            ),
            features[seen],
            labels[seen],
            list(range(SEEN)),
        )
        for steps in (0, 150)
    ]
    assert accuracies[1] > 0.6 and accuracies[1] > accuracies[0] + 0.3  # chance 1/6


def test_scores_are_distances_to_every_prototype(tmp_path):
    fit, features, _ = word_problem()
    scorer = Clarel(steps=5, **FAST).fit(fit, _context(tmp_path))
    scores = scorer.scores(EvalInputs(features=features[:7]))
    assert scores.is_distance and scores.values.shape == (7, SEEN + UNSEEN)
    embedded = scorer.embed(EvalInputs(features=features[:7]))
    torch.testing.assert_close(scores.values, torch.cdist(embedded, scorer.prototypes.cpu()))


def test_calibrated_decision_rule_on_a_constructed_example():
    """Identity image encoder, hand-placed prototypes: (1 + alpha) on seen distances moves a
    borderline image to the unseen class exactly when (1 + alpha) * d_seen > d_unseen."""
    encoder = FeatureProjection(dropout=0.0).build(EncoderContext("image", 2, input_dim=2)).eval()
    with torch.no_grad():
        encoder.projection[-1].weight.copy_(torch.eye(2))
        encoder.projection[-1].bias.zero_()
    prototypes = torch.tensor([[0.0, 0.0], [10.0, 0.0], [4.0, 3.0]])  # seen, seen, unseen
    scorer = ClarelScorer(encoder, "features", prototypes, torch.device("cpu"))
    images = np.array([[0.0, 3.0], [4.0, 2.0], [9.0, 0.0]], dtype=np.float32)
    scores = scorer.scores(EvalInputs(features=images))
    expected = [
        [3.0, np.hypot(10, 3), 4.0],
        [np.hypot(4, 2), np.hypot(6, 2), 1.0],
        [9.0, 1.0, np.hypot(5, 3)],
    ]
    np.testing.assert_allclose(scores.values.numpy(), expected, rtol=1e-6)
    calibrator = zsbench.get_registry().build("calibrator", "metric-rescaling")
    labels = torch.tensor([2, 2, 1])
    seen_mask = torch.tensor([True, True, False])
    # Image 0: seen at 3 vs unseen at 4 -> unseen only once 3 (1 + alpha) > 4, i.e. alpha > 1/3.
    result = sweep(
        scores, labels, seen_mask, calibrator, params=torch.tensor([0.0, 0.3, 0.34, 1.0])
    )
    assert result.u.tolist() == pytest.approx(
        [0.5, 0.5, 1.0, 1.0]
    )  # image 1 is unseen from the start
    # Image 2 (seen, 1 vs 5.83) flips to unseen only past alpha = 4.83.
    assert result.s.tolist() == pytest.approx([1.0, 1.0, 1.0, 1.0])
    assert sweep(scores, labels, seen_mask, calibrator, params=torch.tensor([5.0])).s.item() == 0.0


def test_same_seed_same_model_other_seed_other_model(tmp_path):
    fit, features, _ = word_problem()
    inputs = EvalInputs(features=features[:5])
    runs = [
        Clarel(steps=20, **FAST).fit(fit, _context(tmp_path, seed)).scores(inputs).values
        for seed in (3, 3, 4)
    ]
    assert torch.equal(runs[0], runs[1])
    assert not torch.allclose(runs[0], runs[2])


def test_fit_leaves_the_global_random_state_alone(tmp_path):
    fit, _, _ = word_problem()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    Clarel(steps=3, **FAST).fit(fit, _context(tmp_path))
    assert torch.equal(torch.rand(3), expected)


class _Interrupt(Exception):
    pass


def test_checkpoint_resume_equals_an_uninterrupted_run(tmp_path):
    fit, features, _ = word_problem()
    options = dict(FAST, steps=20, checkpoint_every=5, eval_every=7)
    straight = Clarel(**options, checkpoint_dir=str(tmp_path / "straight")).fit(
        fit, _context(tmp_path)
    )

    evaluations = []

    def crash_at_14(scorer):
        evaluations.append(scorer)
        if len(evaluations) == 2:  # evaluations run at steps 7 and 14
            raise _Interrupt  # the run dies between checkpoints 10 and 15
        return {"probe": float(scorer.prototypes.sum())}

    interrupted = Clarel(**options, checkpoint_dir=str(tmp_path / "resumed"))
    crashing = _context(tmp_path)
    crashing.evaluate = crash_at_14
    with pytest.raises(_Interrupt):
        interrupted.fit(fit, crashing)
    (checkpoint,) = (tmp_path / "resumed").glob("*.safetensors")
    with safe_open(str(checkpoint), framework="pt") as handle:
        assert handle.metadata()["step"] == "10"
        assert {"rng.sampler", "rng.torch"} <= set(handle.keys())
        assert any(
            k.startswith("optimizer.") and k.endswith("momentum_buffer") for k in handle.keys()
        )
    resumed = Clarel(**options, checkpoint_dir=str(tmp_path / "resumed")).fit(
        fit, _context(tmp_path)
    )
    assert resumed.training.resumed_from == 10 and resumed.training.steps_done == 20
    for name, value in straight.image_encoder.state_dict().items():
        assert torch.equal(value, resumed.image_encoder.state_dict()[name]), name
    inputs = EvalInputs(features=features)
    assert torch.equal(straight.scores(inputs).values, resumed.scores(inputs).values)
    # A finished run is not retrained.
    again = Clarel(**options, checkpoint_dir=str(tmp_path / "resumed")).fit(
        fit, _context(tmp_path)
    )
    assert again.training.resumed_from == 20


def test_checkpoints_default_to_the_run_cache_and_other_settings_do_not_resume(tmp_path):
    fit, _, _ = word_problem()
    options = dict(FAST, steps=4, checkpoint_every=2)
    Clarel(**options).fit(fit, _context(tmp_path))
    assert len(list((tmp_path / "clarel-checkpoints").glob("*.safetensors"))) == 1
    other = Clarel(**dict(options, lr=0.01)).fit(fit, _context(tmp_path))
    assert other.training.resumed_from == 0
    assert Clarel(**options).fit(fit, _context(tmp_path, seed=1)).training.resumed_from == 0


def test_evaluator_runs_every_eval_every_steps(tmp_path):
    fit, _, _ = word_problem()
    method = Clarel(**dict(FAST, steps=10, eval_every=4))
    calls = []
    context = _context(tmp_path)
    context.evaluate = lambda scorer: calls.append(scorer) or {"H": 0.5}
    scorer = method.fit(fit, context)
    assert len(calls) == 3
    assert [h["step"] for h in scorer.training.history if "H" in h] == [4, 8, 10]


def test_class_level_mode_is_chosen_without_texts_and_draws_distinct_classes(tmp_path):
    from zsbench_clarel.method import _Fit

    fit, _, _ = word_problem()
    # The default auto-text drops cnn-lstm options that class-level data has no use for.
    method = Clarel(
        steps=1, text_encoder={"name": "auto-text", "word_vectors": "x.bin"}, **FAST
    )
    run = _Fit(method.settings(), fit, _context(tmp_path))
    assert (
        type(run.text_encoder).__name__ == "VectorProjection"
        and run.text_kind == "class_embeddings"
    )
    batch = run.sample(torch.Generator().manual_seed(0))
    assert len(set(fit.labels[batch.numpy()].tolist())) == len(batch) == 6


def test_instance_text_mode_with_the_cnn_lstm(tmp_path):
    from zsbench_clarel.method import _Fit

    fit, features, labels = word_problem(texts=True)
    text_encoder = {
        "name": "auto-text",
        "word_dim": 8,
        "filters": 4,
        "lstm_hidden": 6,
        "max_tokens": 8,
    }
    method = Clarel(
        steps=3, text_encoder=text_encoder, texts_per_image=2, texts_per_prototype=5, **FAST
    )
    # A word that only an unseen class's descriptions use.
    texts = list(fit.classes.texts)
    texts[-1] = (*texts[-1], "a zebra-striped flower")
    fit = attrs.evolve(fit, classes=attrs.evolve(fit.classes, texts=tuple(texts)))
    run = _Fit(method.settings(), fit, _context(tmp_path))
    assert type(run.text_encoder).__name__ == "CnnLstmEncoder"
    # The vocabulary comes from the training sentences only.
    assert "red" in run.text_encoder.vocabulary.words
    assert "zebra" not in run.text_encoder.vocabulary.words
    assert run.text_rows.shape == (len(fit.labels), 3)
    scorer = method.fit(fit, _context(tmp_path))
    assert (
        scorer.prototypes.shape == (SEEN + UNSEEN, 16) and torch.isfinite(scorer.prototypes).all()
    )
    assert scorer.scores(EvalInputs(features=features[:4])).values.shape == (4, SEEN + UNSEEN)


def test_images_without_sentences_are_never_sampled(tmp_path):
    from zsbench_clarel.method import _Fit

    fit, _, _ = word_problem(texts=True)
    texts = [() if i % 2 else t for i, t in enumerate(fit.texts)]
    method = Clarel(steps=1, text_encoder={"name": "cnn-lstm", "word_dim": 4}, **FAST)
    run = _Fit(method.settings(), attrs.evolve(fit, texts=texts), _context(tmp_path))
    drawn = torch.cat([run.sample(torch.Generator().manual_seed(s)) for s in range(20)])
    assert (drawn % 2 == 0).all()


def test_image_text_embedding_is_the_mean_over_its_sentences(tmp_path):
    from zsbench_clarel.method import _Fit

    fit, _, _ = word_problem(texts=True)
    method = Clarel(
        steps=1,
        text_encoder={"name": "cnn-lstm", "word_dim": 4, "filters": 2, "lstm_hidden": 3},
        **FAST,
    )
    run = _Fit(method.settings(), fit, _context(tmp_path))
    run.model.eval()
    with torch.no_grad():
        pooled = run.text_embeddings(run.text_rows[:2], generator=None)
        each = run.text_encoder(run.texts[run.text_rows[:2].flatten()]).view(2, 3, -1)
    torch.testing.assert_close(pooled, each.mean(1), rtol=1e-5, atol=1e-6)


def test_text_encoder_needing_sentences_on_class_level_data_is_a_user_error(tmp_path):
    fit, _, _ = word_problem()
    with pytest.raises(zsbench.UserError, match="class-projection"):
        Clarel(steps=1, text_encoder="cnn-lstm", **FAST).fit(fit, _context(tmp_path))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (
            {"image_encoder": "no-such-encoder"},
            "unknown encoder 'no-such-encoder'.*feature-projection",
        ),
        (
            {"loss": {"name": "clarel", "lamda": 0.3}},
            "loss 'clarel' has no option.*lamda.*lam, kappa",
        ),
        ({"text_encoder": {"dropout": 0.1}}, "needs a 'name'"),
    ],
)
def test_component_mistakes_name_the_component(tmp_path, options, match):
    fit, _, _ = word_problem()
    with pytest.raises(zsbench.UserError, match=match):
        Clarel(steps=1, **FAST, **options).fit(fit, _context(tmp_path))


def test_bad_training_options_are_user_errors():
    with pytest.raises(zsbench.UserError, match="batch_size"):
        Clarel(batch_size=1)
    with pytest.raises(zsbench.UserError, match="texts_per_prototype"):
        Clarel(texts_per_prototype=0)
    with pytest.raises(zsbench.UserError, match="option 'lr' must be a number > 0, got 0.0"):
        Clarel(lr=0.0)
    with pytest.raises(zsbench.UserError, match="option 'steps' must be an integer >= 0, got -5"):
        Clarel(steps=-5)


def test_factory_defaults_are_the_authors():
    method = Clarel().settings()
    config = method.train_config
    assert (config.steps, config.lr, config.momentum, config.grad_clip, config.weight_decay) == (
        150_001,
        0.1,
        0.9,
        1.0,
        1e-3,
    )
    assert method.batch_size == 32 and method.embed_dim == 1024 and config.eval_every == 2500
    assert config.lr_decay_steps == (75_001, 112_501, 131_251)  # 1/2, 3/4, 7/8 of 150,001
    assert [config.lr_at(s) for s in (0, 75_000, 75_001, 112_501, 131_251)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.001, 1e-4]
    )
    assert method.image_encoder == {"name": "feature-projection"} and method.loss == {
        "name": "clarel"
    }
    entry = zsbench.get_registry().get("method", "clarel")
    assert {"steps", "texts_per_prototype", "image_encoder", "amp"} <= set(entry.options())


@pytest.mark.parametrize(
    ("text", "mode"), [("auto", "CnnLstmEncoder"), ("none", "VectorProjection")]
)
def test_through_the_protocol_on_the_synthetic_data_set(tmp_path, text, mode):
    """The core's FitData/EvalInputs in both modes: per-image sentences, or class embeddings only."""
    from zsbench_clarel.method import _Fit

    from zsbench.evaluation import protocol

    registry = zsbench.get_registry()
    bundle = registry.build(
        "dataset", "synthetic", root=tmp_path, num_classes=8, per_class=8, text=text, images=False
    )
    stage = protocol.test_stage(bundle)
    fit = protocol.fit_data(bundle, stage)
    small_text = {
        "name": "auto-text",
        "word_dim": 8,
        "filters": 4,
        "lstm_hidden": 8,
        "max_tokens": 12,
    }
    method = Clarel(steps=20, text_encoder=small_text, **dict(FAST, batch_size=4))
    assert type(_Fit(method.settings(), fit, _context(tmp_path)).text_encoder).__name__ == mode
    inputs, labels, seen_mask = protocol.eval_inputs(bundle, stage)
    scores = method.fit(fit, _context(tmp_path)).scores(inputs)
    assert scores.values.shape == (len(labels), len(stage.classes)) and scores.is_distance
    result = sweep(
        scores, labels, seen_mask, registry.build("calibrator", "metric-rescaling", steps=11)
    )
    assert torch.isfinite(result.H).all()


def test_class_projection_standardises_with_seen_class_statistics_only():
    from zsbench_clarel.encoders import ClassProjection

    from zsbench.interfaces import EncoderContext

    seen = np.array([[1.0, 10.0], [3.0, 14.0]], dtype=np.float32)
    encoder = ClassProjection().build(EncoderContext("text", 4, 2, training_vectors=seen))
    torch.testing.assert_close(encoder.mean, torch.tensor([2.0, 12.0]))
    torch.testing.assert_close(encoder.scale, torch.tensor([1.0, 2.0]))
    # an unseen class embedding is transformed with those statistics, never contributing to them
    unseen = encoder.prepare([[2.0, 12.0]])
    expected = encoder.projection(torch.zeros(1, 2))
    torch.testing.assert_close(encoder(unseen), expected)
    plain = ClassProjection(standardize=False).build(EncoderContext("text", 4, 2))
    assert torch.equal(plain.mean, torch.zeros(2))
    with pytest.raises(zsbench.UserError, match="standardize needs the training inputs"):
        ClassProjection().build(EncoderContext("text", 4, 2))


@settings(max_examples=40, deadline=None)
@given(constant=st.floats(0.0, 100.0), offset=st.floats(-1.0, 1.0), seen=st.integers(2, 8))
def test_a_dimension_constant_on_the_seen_classes_is_centred_not_scaled(constant, offset, seen):
    """Few seen classes leave attributes constant (7 CUB classes: 58 of 312); an unseen class
    differing there must stay near, not be divided by a zero deviation."""
    from zsbench_clarel.encoders import ClassProjection

    from zsbench.interfaces import EncoderContext

    rows = np.column_stack([np.full(seen, constant), np.arange(seen)]).astype(np.float32)
    encoder = ClassProjection().build(EncoderContext("text", 4, 2, training_vectors=rows))
    assert encoder.scale[0] == 1.0 and encoder.scale[1] > 0.1
    unseen = torch.tensor([[constant + offset, 0.0]])
    standardized = (unseen - encoder.mean) / encoder.scale
    assert abs(float(standardized[0, 0]) - offset) < 1e-3 * max(1.0, constant)


def test_image_text_embedding_over_ragged_rows_uses_only_each_images_own_sentences(tmp_path):
    from zsbench_clarel.method import _Fit

    fit, _, _ = word_problem(texts=True)
    texts = [t[: 1 + i % 3] for i, t in enumerate(fit.texts)]  # 1, 2 or 3 sentences per image
    method = Clarel(
        steps=1,
        text_encoder={"name": "cnn-lstm", "word_dim": 4, "filters": 2, "lstm_hidden": 3},
        **FAST,
    )
    run = _Fit(method.settings(), attrs.evolve(fit, texts=texts), _context(tmp_path))
    assert run.ragged
    run.model.eval()
    with torch.no_grad():
        pooled = run.text_embeddings(run.text_rows[:3], generator=None)
        for i in range(3):
            own = run.text_encoder(run.texts[run.text_rows[i, : 1 + i]]).mean(0)
            torch.testing.assert_close(pooled[i], own, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("texts", [False, True], ids=["class-level", "instance-text"])
@pytest.mark.parametrize("steps", [1, 6])
def test_training_steps_never_wait_for_the_device(tmp_path, texts, steps, monkeypatch):
    """Between progress reports a step only queues work: the one host read of the run is the
    final report of the loss and its parts, however many steps there are (checked here on the
    CPU by the operators a step dispatches; on a GPU each would be a synchronisation)."""
    from zsbench_clarel.method import _Fit
    from zsbench_clarel.text_cnn_lstm import CnnLstmEncoder, MaskedBiLSTM
    from zsbench_clarel.trainer import train

    monkeypatch.setattr(MaskedBiLSTM, "pack_on_cpu", False)  # the GPU's way, here on the CPU
    monkeypatch.setattr(CnnLstmEncoder, "pack_on_cpu", False)
    fit, _, _ = word_problem(texts=texts)
    text_encoder = (
        {"name": "cnn-lstm", "word_dim": 4, "filters": 2, "lstm_hidden": 3}
        if texts
        else "auto-text"
    )
    method = Clarel(steps=steps, text_encoder=text_encoder, texts_per_image=2, **FAST).settings()
    context = _context(tmp_path)
    run = _Fit(method, fit, context)
    assert not run.ragged
    with HostReads() as reads:
        result = train(
            run.model,
            run.step_loss,
            method.train_config,
            device=context.device,
            generator=context.generator(),
        )
    assert result.steps_done == steps and reads.waits == []
    assert reads.reads == len(result.history[-1]) - 1  # the reported values, nothing else


class _RunOnly:
    """A plugin whose encoder and loss exist only in the registry a test builds: the global
    registry has neither, so CLAREL finds them only if it looks in the run's."""

    built: list[str] = []

    @staticmethod
    @zsbench.hookimpl
    def register_encoders(register):
        def run_only_projection(context):
            _RunOnly.built.append("encoder")
            return FeatureProjection().build(context)

        register("run-only-projection", run_only_projection)

    @staticmethod
    @zsbench.hookimpl
    def register_losses(register):
        def run_only_retrieval(context):
            from zsbench_clarel.losses import Retrieval

            _RunOnly.built.append("loss")
            return Retrieval().build(context)

        register("run-only-retrieval", run_only_retrieval)


def test_clarel_builds_its_encoder_and_loss_from_the_runs_registry_only(tmp_path):
    import toy_plugin
    import zsbench_clarel

    from zsbench.evaluation.stages import execute
    from zsbench.registry import Registry
    from zsbench.runner.grid import plan
    from zsbench.spec import parse_spec

    registry = Registry([("clarel", zsbench_clarel, None, None), ("toy", toy_plugin, None, None),
                         ("run-only", _RunOnly, None, None)])
    assert "run-only-projection" not in zsbench.get_registry().names("encoder")
    spec = parse_spec({"name": "own", "seeds": 1, "datasets": [{"name": "toy"}],
                       "methods": [{"name": "clarel", "method": "clarel", "image_encoder": {"name": "run-only-projection"},
                                    "text_encoder": "class-projection", "loss": {"name": "run-only-retrieval"},
                                    "embed_dim": 8, "steps": 5, "batch_size": 6, "eval_every": None,
                                    "checkpoint_every": None}]}, "own.yaml", registry)
    _RunOnly.built.clear()
    [task] = plan(spec)
    [row] = execute(task, registry, toy_plugin.toy_bundle(), torch.device("cpu"), tmp_path, show_progress=False)
    assert _RunOnly.built == ["encoder", "loss"] * 2  # validation and test stage fits
    assert 0 <= row.H <= 1


def test_clarel_without_a_registry_in_its_context_says_so(tmp_path):
    fit, _, _ = word_problem()
    context = attrs.evolve(_context(tmp_path), registry=None)
    with pytest.raises(zsbench.UserError, match="RunContext has none: pass registry="):
        Clarel(steps=1, **FAST).fit(fit, context)
