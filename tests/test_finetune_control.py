"""Issue 13 item 2: keeping the last weights, the fine-tune-only control, the epochs curve.
(One seed throughout: these tests check single runs; test_table_intervals covers seeds.)

``TrainConfig.restore_best=False`` in :func:`miakit.train.fit` and
:func:`miakit.train.fit_many` (and the cache keys it enters), :data:`miakit.variants.FINETUNED`
(nothing pruned, fine-tuned like a pruned variant) and
:func:`miakit.finetune_curve.finetune_curve` with its figure, on the smoke profile.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch

from miakit import defenses, plots, steps, tables
from miakit.data import load_dataset
from miakit.experiment import ORIGINAL, Experiment, profile
from miakit.finetune_curve import finetune_curve
from miakit.models import build_model
from miakit.prune import sparsity_report
from miakit.store import Store, config_key
from miakit.train import ModelData, TrainConfig, fit, fit_many, logits, random_draws
from miakit.train import loop as loop_mod
from miakit.variants import FINETUNED, FINETUNED_PRUNER, Variant

# -- restore_best in fit and fit_many ----------------------------------------------------


@pytest.fixture(scope="module")
def pool():
    return load_dataset("mnist1d", num_samples=1200)


def _sets(pool, count, n_train=160, n_dev=80):
    return random_draws(pool, count, n_train, n_dev, seed=0)


def _model(pool, seed=0):
    torch.manual_seed(seed)
    return build_model("mlp", pool.num_classes, tuple(pool.x.shape[1:]))


def _recorded_fit(monkeypatch, model, train, dev, cfg):
    """``fit``, with a copy of the weights after every trained epoch."""
    after: list[dict[str, torch.Tensor]] = []
    real = loop_mod.train_epoch

    def recording(m, *args, **kwargs):
        out = real(m, *args, **kwargs)
        after.append({k: v.detach().clone() for k, v in m.state_dict().items()})
        return out

    monkeypatch.setattr(loop_mod, "train_epoch", recording)
    result = fit(model, train, dev, cfg)
    monkeypatch.undo()
    return result, after


def _same(model, state):
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)


#: a large learning rate makes dev accuracy wander, so the best epoch is not the last
NOISY = dict(epochs=8, batch_size=32, lr=0.05)


def test_restore_best_false_keeps_the_last_epochs_weights(pool, monkeypatch):
    (train,), (dev,) = _sets(pool, 1)
    best, best_after = _recorded_fit(
        monkeypatch, _model(pool), train, dev, TrainConfig(**NOISY, patience=0)
    )
    last, last_after = _recorded_fit(
        monkeypatch, _model(pool), train, dev, TrainConfig(**NOISY, patience=0, restore_best=False)
    )
    # the same run either way; only which epoch is kept differs
    assert [h["dev_acc"] for h in best.history] == [h["dev_acc"] for h in last.history]
    assert best.best_epoch < best.epochs_run == NOISY["epochs"]  # the premise of the test
    assert (last.best_epoch, last.epochs_run) == (NOISY["epochs"], NOISY["epochs"])
    assert last.best_dev_acc == last.history[-1]["dev_acc"]
    assert best.best_dev_acc == max(h["dev_acc"] for h in best.history)


def test_kept_weights_are_the_last_epochs_and_the_best_ones(pool, monkeypatch):
    (train,), (dev,) = _sets(pool, 1)
    for restore_best in (True, False):
        model = _model(pool)
        cfg = TrainConfig(**NOISY, patience=0, restore_best=restore_best)
        result, after = _recorded_fit(monkeypatch, model, train, dev, cfg)
        _same(model, after[(result.best_epoch if restore_best else len(after)) - 1])
        assert not model.training


def test_restore_best_false_with_early_stopping_keeps_the_stopping_epoch(pool, monkeypatch):
    (train,), (dev,) = _sets(pool, 1)
    model = _model(pool)
    cfg = TrainConfig(epochs=40, batch_size=32, lr=0.05, patience=1, restore_best=False)
    result, after = _recorded_fit(monkeypatch, model, train, dev, cfg)
    assert result.stopped_early and result.epochs_run < cfg.epochs
    assert result.best_epoch == result.epochs_run == len(after)
    _same(model, after[-1])


def test_fit_many_keeps_each_models_last_weights_like_fit(pool):
    count = 3
    trains, devs = _sets(pool, count)
    models = [_model(pool, 100 + i) for i in range(count)]
    seq = [copy.deepcopy(m) for m in models]
    common = dict(epochs=8, batch_size=32, lr=0.05, patience=1, restore_best=False)
    one = [
        fit(m, t, d, TrainConfig(**common, seed=s))
        for s, (m, t, d) in enumerate(zip(seq, trains, devs, strict=True))
    ]
    many = fit_many(models, ModelData.from_sets(trains, devs), TrainConfig(**common), [0, 1, 2])
    # the models stopped at different epochs: the stack shrank before the end
    assert len({r.epochs_run for r in one}) > 1
    for a, b, m1, m2 in zip(one, many, seq, models, strict=True):
        assert (a.best_epoch, a.epochs_run, a.stopped_early) == (
            b.best_epoch,
            b.epochs_run,
            b.stopped_early,
        )
        assert a.best_epoch == a.epochs_run  # the last epoch kept
        assert b.best_dev_acc == pytest.approx(a.best_dev_acc, abs=1e-6)
        for k, v in m1.state_dict().items():  # rounding grows with lr 0.05, far below a step
            torch.testing.assert_close(m2.state_dict()[k], v, atol=1e-4, rtol=1e-4)


def test_dp_sgd_fine_tuning_keeps_the_last_epoch_too(pool):
    from miakit.defenses import DPSGDParams
    from miakit.prune import prune_model, refresh_masked_tensors
    from miakit.train import dev_accuracy

    (train,), (dev,) = _sets(pool, 1)
    start = _model(pool)
    prune_model(start, "l1_unstructured", 0.5)
    refresh_masked_tensors(start)  # deep-copyable
    runs = {}
    for restore_best in (True, False):
        model = copy.deepcopy(start)
        cfg = TrainConfig(epochs=5, batch_size=32, lr=0.05, patience=0, restore_best=restore_best)
        res = DPSGDParams(noise_multiplier=5.0).finetune(model, train, dev, cfg, device="cpu")
        runs[restore_best] = (res, float(dev_accuracy(model, dev.x, dev.y)))
    (best, best_acc), (last, last_acc) = runs[True], runs[False]
    accs = [h["dev_acc"] for h in best.history]
    assert accs == [h["dev_acc"] for h in last.history]  # one run, two choices
    assert accs.index(max(accs)) + 1 < len(accs)  # the premise: the best is not the last
    assert (best.best_epoch, best_acc) == (accs.index(max(accs)) + 1, pytest.approx(max(accs)))
    assert (last.best_epoch, last_acc) == (len(accs), pytest.approx(accs[-1]))


# -- cache keys --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _OldTrainConfig:
    """TrainConfig as it was before ``restore_best`` (renamed below to hash the same)."""

    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 5e-4
    patience: int = 5
    seed: int = 0


_OldTrainConfig.__name__ = "TrainConfig"


def test_restore_best_enters_keys_only_when_false():
    old = [f.name for f in dataclasses.fields(_OldTrainConfig)]
    assert [f.name for f in dataclasses.fields(TrainConfig)] == [*old, "restore_best"]
    for kwargs in ({}, {"epochs": 7, "patience": 0}):
        assert config_key("model", TrainConfig(**kwargs)) == config_key(
            "model", _OldTrainConfig(**kwargs)
        )
        assert config_key("model", TrainConfig(**kwargs, restore_best=False)) != config_key(
            "model", TrainConfig(**kwargs)
        )
    doc = {
        "kind": "model",
        "config": {"__type__": "TrainConfig", **dataclasses.asdict(_OldTrainConfig())},
    }
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
    assert config_key("model", TrainConfig()) == digest.hexdigest()


def test_a_finetune_override_keeps_the_base_keys_and_changes_the_pruned_ones(tmp_path):
    exp = Experiment(profile("smoke", seeds=1), store=Store(tmp_path), device="cpu")
    other = exp.with_overrides(**{"finetune.restore_best": False, "finetune.epochs": 3})
    assert other.config.finetune_config.restore_best is False
    assert other.store is exp.store
    for role in exp.roles():
        assert other._base_key(role) == exp._base_key(role)
        for variant in (FINETUNED, exp.variant()):
            assert other._model_key(role, variant) != exp._model_key(role, variant)
    assert exp._model_key("victim", FINETUNED) != exp._model_key(
        "victim", Variant("l1_unstructured", 0.0)
    )


# -- the fine-tune-only control ----------------------------------------------------------


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("cache"))
    return Experiment(profile("smoke", seeds=1), store=store, device="cpu")


def test_variant_finetuned_columns_label_and_checks(exp):
    assert FINETUNED.columns("victim") == {
        "victim_pruner": FINETUNED_PRUNER,
        "victim_sparsity": 0.0,
        "victim_defense": "none",
    }
    assert FINETUNED.label == "fine-tuned only"
    assert not FINETUNED.is_original and not FINETUNED.prunes
    assert exp.variant(FINETUNED_PRUNER) == FINETUNED
    assert plots.display_name(FINETUNED_PRUNER, "victim_pruner") == "fine-tuned only"
    with pytest.raises(ValueError, match="prunes nothing"):
        Variant(FINETUNED_PRUNER, 0.5)
    with pytest.raises(ValueError, match="fine-tune-only control"):
        Variant("l1_unstructured_typo", 0.5)


def test_the_control_is_unpruned_fine_tuned_and_equals_a_prune_at_zero(exp):
    original = exp.model("victim").model
    tuned = exp.model("victim", FINETUNED)
    zero = exp.model("victim", Variant(exp.config.pruner, 0.0)).model
    shape = tuple(exp.data.x.shape[1:])
    assert tuned.info["realised_sparsity"] == 0.0
    assert sparsity_report(tuned.model, shape).sparsity == 0.0
    assert not any(k.endswith("_mask") for k in tuned.model.state_dict())  # nothing pruned
    x = exp.data.x[:256]
    out = logits(tuned.model, x, device="cpu")
    moved = (out - logits(original, x, device="cpu")).abs().max()  # what fine-tuning changed
    apart = (out - logits(zero, x, device="cpu")).abs().max()
    assert moved > 1e-2
    # a mask of ones changes the convolutions' memory layout, so only rounding differs
    assert apart < 0.01 * moved
    assert torch.equal(out.argmax(1), logits(zero, x, device="cpu").argmax(1))
    ft = exp.config.finetune_config
    assert tuned.info["defense_epochs_run"] <= ft.epochs


def test_the_control_in_attack_tables_as_victim_and_shadows(exp):
    frame = tables.attack_table(exp, [ORIGINAL, FINETUNED, exp.variant()], attacks=["conf"])
    assert frame["victim_pruner"].tolist() == ["none", FINETUNED_PRUNER, exp.config.pruner]
    assert frame["shadow_pruner"].tolist() == frame["victim_pruner"].tolist()  # adaptive
    assert frame["victim_realised_sparsity"].tolist()[:2] == [0.0, 0.0]
    assert tables.labels(frame).tolist()[1] == "fine-tuned only"
    shadow = exp.model("shadow0", FINETUNED).model
    assert not torch.allclose(
        logits(shadow, exp.data.x[:64], device="cpu"),
        logits(exp.model("shadow0").model, exp.data.x[:64], device="cpu"),
        atol=1e-3,
    )


def test_the_control_trains_together_like_one_at_a_time(tmp_path, monkeypatch):
    cfg = profile(
        "smoke",
        seeds=1,
        dataset="mnist1d",
        arch="mlp",
        dataset_options={"num_samples": 600},
        **{"train.epochs": 3},
    )
    one = Experiment(cfg, store=Store(tmp_path / "one"), device="cpu", batch=False)
    together = Experiment(cfg, store=Store(tmp_path / "together"), device="cpu", batch=True)
    together.prefetch(together.roles())  # the originals first, then only the control

    def refuse(*args, **kwargs):
        raise AssertionError("a model was fine-tuned one at a time")

    monkeypatch.setattr(defenses, "finetune", refuse)
    together.prefetch(together.roles(), FINETUNED)
    batched = [together.model(r, FINETUNED) for r in together.roles()]
    monkeypatch.undo()
    for role, b in zip(one.roles(), batched, strict=True):
        a = one.model(role, FINETUNED)
        assert a.info["train_acc"] == pytest.approx(b.info["train_acc"], abs=1e-6)
        for k, v in a.model.state_dict().items():
            torch.testing.assert_close(b.model.state_dict()[k], v, atol=1e-5, rtol=1e-5)


# -- the curve and its figure ------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A smoke experiment (one shadow: faster) with an empty store (nothing trained yet)."""
    store = Store(tmp_path_factory.mktemp("curve"))
    return Experiment(profile("smoke", num_shadows=1, seeds=1), store=store, device="cpu")


@pytest.fixture(scope="module")
def curve(fresh):
    exp = fresh
    counts = {"fit": 0, "finetune": 0}
    real_fit, real_finetune = steps.fit, defenses.finetune

    def count(name, real):
        def wrapped(*args, **kwargs):
            counts[name] += 1
            return real(*args, **kwargs)

        return wrapped

    mp = pytest.MonkeyPatch()
    mp.setattr(steps, "fit", count("fit", real_fit))
    mp.setattr(defenses, "finetune", count("finetune", real_finetune))
    try:
        frame = finetune_curve(exp, exp.variant(), [1, 3], ["conf", "mentr"])
    finally:
        mp.undo()
    return frame, counts


def test_curve_rows_columns_and_settings(fresh, curve):
    exp = fresh
    frame, _ = curve
    assert len(frame) == 2 + 2 * 2 * 2  # original, then 2 counts x 2 variants x 2 attacks
    assert frame["finetune_epochs"].tolist() == [0, 0, 1, 1, 1, 1, 3, 3, 3, 3]
    pruner = exp.config.pruner
    assert (
        frame["victim_pruner"].tolist()
        == ["none"] * 2 + ([FINETUNED_PRUNER] * 2 + [pruner] * 2) * 2
    )
    assert frame["attack"].tolist() == ["conf", "mentr"] * 5
    assert frame["finetune_restore_best"].eq(False).all()
    assert frame["finetune_patience"].eq(0).all()
    expected = tables.attack_table(exp, ORIGINAL, attacks=["conf", "mentr"])
    for col in expected.columns:
        assert col in frame.columns
    assert frame["auc"].iloc[:2].tolist() == expected["auc"].tolist()
    tuned = frame[frame["victim_pruner"] != "none"]
    assert tuned["victim_realised_sparsity"].tolist() == [
        0.0 if p == FINETUNED_PRUNER else pytest.approx(exp.config.sparsity, abs=0.05)
        for p in tuned["victim_pruner"]
    ]


def test_curve_trains_the_originals_once_and_each_fine_tune_once(fresh, curve):
    exp = fresh
    _, counts = curve
    roles = len(exp.roles())  # the victim and its shadows (the attacks use shadows)
    assert counts["fit"] == roles  # not once per epoch count
    assert counts["finetune"] == 2 * 2 * roles  # 2 counts x (control, pruned) x roles


def test_longer_fine_tunes_keeping_the_last_weights_fit_the_members_more(curve):
    frame, _ = curve
    rows = frame[frame["attack"] == "conf"]
    for pruner in (FINETUNED_PRUNER, "l1_unstructured"):
        acc = rows[rows["victim_pruner"] == pruner].set_index("finetune_epochs")
        assert acc.loc[3, "victim_train_acc"] > acc.loc[1, "victim_train_acc"]


def test_paper_rule_point_is_the_experiments_own_fine_tune(fresh):
    exp = fresh
    frame = finetune_curve(
        exp, exp.variant(), [1], ["conf"], include_original=False, paper_rule=True
    )
    cfg = exp.config.finetune_config
    paper = frame[frame["finetune_restore_best"] == cfg.restore_best]
    assert cfg.restore_best and frame["finetune_restore_best"].tolist() == [False] * 2 + [True] * 2
    assert paper["finetune_epochs"].eq(cfg.epochs).all()
    assert paper["finetune_patience"].eq(cfg.patience).all()
    expected = tables.attack_table(exp, [FINETUNED, exp.variant()], attacks=["conf"])
    assert paper["victim_pruner"].tolist() == expected["victim_pruner"].tolist()
    assert paper["auc"].tolist() == expected["auc"].tolist()


def test_curve_checks_its_arguments(exp):
    with pytest.raises(ValueError, match="pruned variant"):
        finetune_curve(exp, FINETUNED, [1], ["conf"])
    with pytest.raises(ValueError, match="integers >= 1"):
        finetune_curve(exp, exp.variant(), [0, 2], ["conf"])
    with pytest.raises(ValueError, match="integers >= 1"):
        finetune_curve(exp, exp.variant(), [], ["conf"])


def test_finetune_lines_draws_one_line_per_variant_and_bands_when_given(curve):
    frame, _ = curve
    fig = plots.finetune_lines(frame, attacks=["conf"])
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert "fine-tuned only" in labels and "L1 unstructured@0.7" in labels
    assert "original" in labels
    assert not ax.collections  # no interval columns: no band
    plt.close(fig)
    banded = frame.assign(auc_low=frame["auc"] - 0.01, auc_high=frame["auc"] + 0.01)
    fig = plots.finetune_lines(banded)
    assert len(fig.axes) == 2  # one panel per attack
    assert len(fig.axes[0].collections) == 2  # a band per fine-tuned variant
    plt.close(fig)
    with pytest.raises(KeyError, match="not in the table"):
        plots.finetune_lines(frame, attacks=["samia"])


def test_finetune_lines_legend_is_below_and_no_style_means_two_things(curve):
    frame, _ = curve
    fig = plots.finetune_lines(frame.assign(auc_low=frame["auc"], auc_high=frame["auc"]))
    fig.canvas.draw()
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    legend = fig.legends[0].get_window_extent()
    for ax in fig.axes:  # below every panel, so no title is covered
        assert legend.y1 <= ax.get_window_extent().y0 + 1
        assert not legend.overlaps(ax.title.get_window_extent())
    ax = fig.axes[0]
    original = next(ln for ln in ax.get_lines() if ln.get_label() == "original")
    variants = [ln for ln in ax.get_lines() if ln.get_label() not in ("original", "_nolegend_")]
    variants = [ln for ln in variants if ln.get_marker() not in (None, "None", "")]
    assert len(variants) >= 2 and len({ln.get_marker() for ln in variants}) == len(variants)
    for ln in variants:  # coloured, so never read as the grey original
        assert ln.get_color() != original.get_color()
    plt.close(fig)


@pytest.mark.parametrize("last_first", [True, False])
def test_finetune_lines_dash_means_last_epoch_kept_whatever_the_row_order(curve, last_first):
    frame, _ = curve
    both = pd.concat(
        [frame.assign(finetune_restore_best=False), frame.assign(finetune_restore_best=True)]
    )
    both = both if last_first else both.iloc[::-1]
    fig = plots.finetune_lines(both, attacks=["conf"])
    styles = {h.get_label(): h.get_linestyle() for h in fig.legends[0].legend_handles}
    assert styles["best-dev epoch kept"] == "-" and styles["last epoch kept"] == "--"
    plt.close(fig)
