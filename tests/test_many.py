"""Many models at once (issue 12, item 1): ``fit_many`` equals one ``fit`` per model.

Each test trains the same freshly initialised models twice, one after another with
:func:`miakit.train.fit` and together with :func:`miakit.train.fit_many`, and compares
best epochs, epochs run, dev accuracies and weights, for a model without BatchNorm
(``mlp``), one with it (``signal_cnn``), and pruned models with masks.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from miakit.data import Data, load_dataset
from miakit.defenses import make_defense
from miakit.models import build_model
from miakit.prune import prune_model, refresh_masked_tensors
from miakit.train import (
    ModelData,
    TrainConfig,
    batch_groups,
    batching_pays,
    fit,
    fit_many,
    random_draws,
)
from miakit.train import many as many_mod

#: float tolerance of the weights: fully connected models match to rounding; with
#: BatchNorm the grouped kernels' rounding grows over epochs, still far below a step.
TOL = {"mlp": 1e-5, "signal_cnn": 2e-3}


@pytest.fixture(scope="module")
def pool() -> Data:
    return load_dataset("mnist1d", num_samples=1200)


def _sets(pool, count, n_train=160, n_dev=80):
    return random_draws(pool, count, n_train, n_dev, seed=0)


def _models(pool: Data, arch: str, count: int, prune: float | None = None):
    out = []
    for i in range(count):
        torch.manual_seed(100 + i)
        model = build_model(arch, pool.num_classes, tuple(pool.x.shape[1:]))
        if prune is not None:
            prune_model(model, "l1_unstructured", prune)
            refresh_masked_tensors(model)
        out.append(model)
    return out


def _compare(one, many, seq_models, models, tol):
    for a, b, m1, m2 in zip(one, many, seq_models, models, strict=True):
        assert (a.best_epoch, a.epochs_run, a.stopped_early) == (
            b.best_epoch,
            b.epochs_run,
            b.stopped_early,
        )
        assert a.best_dev_acc == pytest.approx(b.best_dev_acc, abs=1e-6)
        assert [h["dev_acc"] for h in a.history] == pytest.approx(
            [h["dev_acc"] for h in b.history], abs=1e-6
        )
        s1, s2 = m1.state_dict(), m2.state_dict()
        assert s1.keys() == s2.keys()
        for k in s1:
            torch.testing.assert_close(s2[k].float(), s1[k].float(), atol=tol, rtol=tol)


@pytest.mark.parametrize("arch", ["mlp", "signal_cnn"])
def test_fit_many_equals_fit_one_at_a_time(pool, arch):
    count = 3
    trains, devs = _sets(pool, count)
    models = _models(pool, arch, count)
    seq = [copy.deepcopy(m) for m in models]
    epochs = 6 if arch == "mlp" else 3
    cfg = TrainConfig(epochs=epochs, patience=1, batch_size=32)
    one = [
        fit(m, t, d, TrainConfig(epochs=epochs, patience=1, batch_size=32, seed=s))
        for s, (m, t, d) in enumerate(zip(seq, trains, devs, strict=True))
    ]
    many = fit_many(models, ModelData.from_sets(trains, devs), cfg, [0, 1, 2])
    _compare(one, many, seq, models, TOL[arch])
    if arch == "mlp":  # patience 1 over 6 epochs: some model stopped before the others
        assert len({r.epochs_run for r in many}) > 1 or any(r.stopped_early for r in many)


@pytest.mark.parametrize("arch", ["mlp", "signal_cnn"])
def test_pruned_fine_tuning_together_keeps_each_models_masks(pool, arch):
    count = 2
    trains, devs = _sets(pool, count)
    models = _models(pool, arch, count, prune=0.6)
    seq = [copy.deepcopy(m) for m in models]
    cfg = TrainConfig(epochs=3, patience=0, batch_size=32)
    defense = make_defense("none")
    one = [
        defense.finetune(m, t, d, TrainConfig(epochs=3, patience=0, batch_size=32, seed=s))
        for s, (m, t, d) in enumerate(zip(seq, trains, devs, strict=True))
    ]
    many = defense.finetune_many(models, ModelData.from_sets(trains, devs), cfg, [0, 1])
    for a, b, m1, m2 in zip(one, many, seq, models, strict=True):
        assert (a.best_epoch, a.epochs_run) == (b.best_epoch, b.epochs_run)
        assert a.best_dev_acc == pytest.approx(b.best_dev_acc, abs=1e-6)
        for k, v in m1.state_dict().items():
            torch.testing.assert_close(m2.state_dict()[k], v, atol=TOL[arch], rtol=TOL[arch])
    masks = [
        m.state_dict()["fc1.weight_mask" if arch == "mlp" else "classifier.weight_mask"]
        for m in models
    ]
    assert not torch.equal(masks[0], masks[1])  # each model kept its own mask
    for m in models:  # pruned entries are still exactly zero
        for name, t in m.state_dict().items():
            if name.endswith("_mask"):
                weight = m.get_submodule(name.rsplit(".", 1)[0]).weight
                assert bool((weight[t == 0] == 0).all())


def test_ppb_fine_tunes_together_like_one_at_a_time(pool):
    trains, devs = _sets(pool, 2)
    models = _models(pool, "mlp", 2, prune=0.5)
    seq = [copy.deepcopy(m) for m in models]
    ppb = make_defense("ppb", lam=4.0)
    assert ppb.can_batch(trains[0], devs[0])
    cfg = TrainConfig(epochs=3, patience=0, batch_size=32)
    for s, (m, t, d) in enumerate(zip(seq, trains, devs, strict=True)):
        ppb.finetune(m, t, d, TrainConfig(epochs=3, patience=0, batch_size=32, seed=s))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ppb.finetune_many(models, ModelData.from_sets(trains, devs), cfg, [0, 1])
    slow = [w for w in caught if "batching rule" in str(w.message)]
    assert not slow, f"vmap fell back to a per-model loop: {slow[0].message}"
    for m1, m2 in zip(seq, models, strict=True):
        for k, v in m1.state_dict().items():
            torch.testing.assert_close(m2.state_dict()[k], v, atol=1e-5, rtol=1e-5)


def test_defenses_that_cannot_batch_say_so(pool):
    trains, devs = _sets(pool, 2)
    advreg, dp = make_defense("advreg", theta=1.0), make_defense("dpsgd", noise_multiplier=1.0)
    assert not advreg.can_batch(trains[0], devs[0])
    assert not dp.can_batch(trains[0], devs[0])
    with pytest.raises(ValueError, match="cannot fine-tune models together"):
        dp.finetune_many(
            _models(pool, "mlp", 2),
            ModelData.from_sets(trains, devs),
            TrainConfig(epochs=1),
            [0, 1],
        )


def test_fit_many_resumes_a_killed_run_identically(pool, tmp_path, monkeypatch):
    trains, devs = _sets(pool, 3)
    cfg = TrainConfig(epochs=6, patience=1, batch_size=32)
    reference = _models(pool, "mlp", 3)
    sets = ModelData.from_sets(trains, devs)
    expected = fit_many(reference, sets, cfg, [4, 5, 6])

    real, saves = many_mod._save_checkpoint, []

    def dying(path, state):
        real(path, state)
        saves.append(state["epoch"])
        if len(saves) == 3:
            raise KeyboardInterrupt

    ckpt = tmp_path / "group.ckpt"
    models = _models(pool, "mlp", 3)
    monkeypatch.setattr(many_mod, "_save_checkpoint", dying)
    with pytest.raises(KeyboardInterrupt):
        fit_many(models, sets, cfg, [4, 5, 6], checkpoint=ckpt)
    monkeypatch.setattr(many_mod, "_save_checkpoint", real)
    assert ckpt.exists()
    resumed_models = _models(pool, "mlp", 3)  # fresh weights: everything comes from the file
    resumed = fit_many(resumed_models, sets, cfg, [4, 5, 6], checkpoint=ckpt)
    assert not ckpt.exists()
    for a, b, m1, m2 in zip(expected, resumed, reference, resumed_models, strict=True):
        assert (a.best_epoch, a.epochs_run, a.history) == (b.best_epoch, b.epochs_run, b.history)
        for k, v in m1.state_dict().items():
            assert torch.equal(m2.state_dict()[k], v)
    other = TrainConfig(epochs=7, patience=1, batch_size=32)
    monkeypatch.setattr(many_mod, "_save_checkpoint", dying)
    saves.clear()
    with pytest.raises(KeyboardInterrupt):
        fit_many(_models(pool, "mlp", 3), sets, cfg, [4, 5, 6], checkpoint=ckpt)
    with pytest.raises(RuntimeError, match="delete it"):
        fit_many(_models(pool, "mlp", 3), sets, other, [4, 5, 6], checkpoint=ckpt)


def test_fit_many_refuses_what_it_cannot_batch(pool):
    trains, devs = _sets(pool, 2)
    sets = ModelData.from_sets(trains, devs)
    cfg = TrainConfig(epochs=1)
    with pytest.raises(ValueError, match="one train set, dev set and seed per model"):
        fit_many(_models(pool, "mlp", 2), sets, cfg, [0])
    with pytest.raises(ValueError, match="one architecture"):
        mixed = [_models(pool, "mlp", 1)[0], _models(pool, "signal_cnn", 1)[0]]
        fit_many(mixed, sets, cfg, [0, 1])
    short, _ = _sets(pool, 1, n_train=100)
    with pytest.raises(ValueError, match="train sets of one size"):
        ModelData.from_sets([trains[0], short[0]], devs)
    with pytest.raises(ValueError, match="index matrix"):
        ModelData(pool, torch.arange(10), torch.arange(10).view(1, 10))
    with pytest.raises(ValueError, match="outside the pool"):
        ModelData(pool, torch.full((1, 4), len(pool)), torch.zeros(1, 4, dtype=torch.int64))
    advreg = make_defense("advreg", theta=1.0).training_objective(trains[0], devs[0])
    with pytest.raises(ValueError, match="stateful objective"):
        fit_many(_models(pool, "mlp", 2), sets, cfg, [0, 1], objective=advreg)


def test_model_data_shares_one_pool(pool):
    """Index matrices into one pool train exactly like separate copies of the sets."""
    trains, devs = _sets(pool, 2)
    gen = torch.Generator().manual_seed(0)
    rows = [torch.randperm(len(pool), generator=gen) for _ in range(2)]
    indexed = ModelData(
        pool, torch.stack([r[:160] for r in rows]), torch.stack([r[160:240] for r in rows])
    )
    a, b = _models(pool, "mlp", 2), _models(pool, "mlp", 2)
    cfg = TrainConfig(epochs=2, patience=0, batch_size=32)
    fit_many(a, ModelData.from_sets(trains, devs), cfg, [0, 1])
    fit_many(b, indexed, cfg, [0, 1])
    for m1, m2 in zip(a, b, strict=True):
        for k, v in m1.state_dict().items():
            assert torch.equal(m2.state_dict()[k], v)


def test_batching_rules():
    mlp, cnn = build_model("mlp", 10, (40,)), build_model("signal_cnn", 10, (40,))
    assert not batching_pays(mlp, "cpu", 1)
    assert not batching_pays(cnn, "cpu", 16)  # grouped convolutions lose on the CPU
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert not batching_pays(mlp, "cpu", 16)  # 1.35x at best, and not bit-exact
    finally:
        torch.set_num_threads(before)
    if torch.cuda.is_available():
        assert batching_pays(mlp, "cuda", 2) and not batching_pays(mlp, "cuda", 1)
    assert batch_groups([(3, 1), (2, 1), (3, 1)]) == [[0, 2], [1]]


def test_pipeline_trains_victim_and_references_together(tmp_path, monkeypatch):
    """The pipeline's batched path caches the same models and scores as the sequential one."""
    from miakit import defenses, steps
    from miakit.experiment import ORIGINAL, Experiment, profile
    from miakit.store import Store

    cfg = profile(
        "smoke",
        dataset="mnist1d",
        arch="mlp",
        dataset_options={"num_samples": 600},
        num_references=4,
        **{"train.epochs": 3},
    )
    one = Experiment(cfg, store=Store(tmp_path / "one"), batch=False)
    pruned = one.variant()
    expected = one.attack_scores("lira_online", pruned).scores

    together = Experiment(cfg, store=Store(tmp_path / "together"), batch=True)

    def refuse(*args, **kwargs):
        raise AssertionError("a model was trained one at a time")

    monkeypatch.setattr(steps, "fit", refuse)
    monkeypatch.setattr(defenses, "finetune", refuse)
    scores = together.attack_scores("lira_online", pruned).scores
    monkeypatch.undo()
    assert scores == pytest.approx(expected, abs=1e-4)
    for role in ["victim", *together.attack_roles("lira_online")]:
        for variant in (ORIGINAL, pruned):
            a, b = one.model(role, variant), together.model(role, variant)
            assert a.info["train_acc"] == pytest.approx(b.info["train_acc"], abs=1e-6)
            # the stacked GEMMs round differently from one model's; after a few epochs
            # of float32 SGD single weights drift by ~2e-5 on some CPUs (1e-5 failed here)
            for k, v in a.model.state_dict().items():
                torch.testing.assert_close(b.model.state_dict()[k], v, atol=1e-4, rtol=1e-4)


def test_each_models_best_weights_hold_one_model_not_the_stack(pool, monkeypatch):
    """The kept best-dev weights (and so the checkpoint) grow with N, not with N squared."""
    trains, devs = _sets(pool, 4)
    saved = []
    monkeypatch.setattr(many_mod, "_save_checkpoint", lambda path, state: saved.append(state))
    fit_many(
        _models(pool, "mlp", 4),
        ModelData.from_sets(trains, devs),
        TrainConfig(epochs=1, patience=0, batch_size=32),
        [0, 1, 2, 3],
        checkpoint="unused.ckpt",
    )
    for stopper in saved[-1]["stoppers"]:
        for name, t in stopper["best_model"].items():
            assert t.untyped_storage().nbytes() == t.numel() * t.element_size(), name
