"""The cached pipeline beyond training: pruning, signals, attacks, defenses (smoke profile)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import miakit.experiment as E
import miakit.steps as S
from miakit import tables
from miakit.attacks import ATTACKS
from miakit.attacks.threshold import Conf
from miakit.defenses import DPSGDParams, NoDefense, PPBParams
from miakit.experiment import ORIGINAL, Experiment, Variant, profile
from miakit.prune import sparsity_report
from miakit.store import Store


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("cache"))
    return Experiment(profile("smoke", seeds=1), store=store, device="cpu")  # one run


def test_variant_labels_and_validation(exp):
    assert ORIGINAL.label == "original" and ORIGINAL.defense == NoDefense()
    v = Variant("l1_structured", 0.5, PPBParams(lam=2.0))
    assert v.label == "l1_structured@0.5+ppb(lam=2.0)"
    dp = Variant("l1_unstructured", 0.7, DPSGDParams(noise_multiplier=0.1))
    assert dp.label == "l1_unstructured@0.7+dpsgd(max_grad_norm=1.0,noise_multiplier=0.1)"
    with pytest.raises(ValueError, match="unknown pruning method 'magic'"):
        Variant("magic", 0.5)
    with pytest.raises(ValueError, match="give a pruner"):
        Variant(None, 0.0, PPBParams())
    with pytest.raises(TypeError, match="make_defense"):
        Variant("l1_unstructured", 0.5, "ppb")
    with pytest.raises(ValueError, match="unknown defense"):
        exp.variant(defense="prayer")
    with pytest.raises(ValueError, match="lam=-1"):
        exp.variant(defense="ppb", lam=-1)
    assert exp.variant(defense=PPBParams(lam=2.0)) == exp.variant(defense="ppb", lam=2)


def test_variant_cache_keys_hold_the_defense_and_the_base_model(exp):
    """A pruned model's key: the defense with all its options, and the base model's key."""
    key = exp._variant_key("victim", exp.variant(defense="dpsgd", noise_multiplier=0.1))
    assert key["step"] == "prune"
    assert key["params"]["defense"] == "dpsgd"
    assert key["params"]["defense_params"] == {
        "noise_multiplier": 0.1,
        "max_grad_norm": 1.0,
        "delta": None,
    }
    assert key["inputs"]["model"] == exp._base_key("victim")
    assert exp._variant_key("victim", exp.variant())["params"]["defense_params"] == {}


def test_pruned_models_are_cached_and_sparse(exp, monkeypatch):
    pruned = exp.variant()
    first = exp.model("victim", pruned)
    report = sparsity_report(first.model, tuple(exp.data.x.shape[1:]))
    assert abs(report.sparsity - 0.7) < 0.01
    assert first.info["realised_sparsity"] == pytest.approx(report.sparsity)

    def boom(*a, **k):
        raise AssertionError("a cached pruned model was recomputed")

    monkeypatch.setattr(S, "prune_model", boom)
    again = Experiment(exp.config, store=exp.store, device="cpu").model("victim", pruned)
    for k, v in first.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k


def test_signals_are_balanced_and_complete(exp):
    sig = exp.signals("victim")
    _, _, test = exp.role_data("victim")
    assert sig.membership.sum() == len(exp.splits.victim.train)
    assert (sig.membership == 0).sum() == len(test)
    assert sig.sensitivity.shape == sig.posteriors.shape
    np.testing.assert_allclose(sig.posteriors.sum(1), 1.0, atol=1e-9)
    pooled = exp.shadow_signals()
    assert pooled.num_samples == sum(len(s.train) + len(s.test) for s in exp.splits.shadows)


def test_attack_table_covers_every_attack_and_is_cached(exp, monkeypatch):
    table = tables.attack_table(exp, exp.variant())
    assert list(table["attack"]) == list(ATTACKS)
    assert table["auc"].between(0, 1).all()
    assert (table["victim_pruner"] == "l1_unstructured").all()
    assert (table["victim_sparsity"] == 0.7).all() and table["adaptive"].all()
    assert (table["victim_realised_sparsity"] - 0.7).abs().max() < 0.01

    def boom(*a, **k):
        raise AssertionError("a cached attack was re-run")

    monkeypatch.setattr(E, "make_attack", boom)
    again = tables.attack_table(exp, exp.variant())
    assert again.equals(table)


def test_nonadaptive_and_adaptive_defense(exp):
    """``shadows`` decides the attack's fit: exactly Conf fitted by hand on that shadow pool."""
    pruned, defended = exp.variant(), exp.variant(defense="ppb")
    assert defended.defense == PPBParams(lam=4.0)  # PAPER.md's default, from the dataclass
    target = exp.signals("victim", defended)
    pool_pruned, pool_defended = exp.shadow_signals(pruned), exp.shadow_signals(defended)
    np.testing.assert_array_equal(pool_pruned.sample_ids, pool_defended.sample_ids)
    assert not np.array_equal(pool_pruned.posteriors, pool_defended.posteriors)

    nonadaptive = exp.attack_scores("conf", defended, shadows=pruned)
    by_hand = Conf().fit(pool_pruned).score(target)
    np.testing.assert_array_equal(nonadaptive.scores, by_hand.scores)
    assert nonadaptive.threshold == by_hand.threshold
    np.testing.assert_array_equal(nonadaptive.membership, target.membership)

    adaptive = exp.attack_scores("conf", defended)
    np.testing.assert_array_equal(adaptive.scores, Conf().fit(pool_defended).score(target).scores)
    assert not np.array_equal(adaptive.scores, nonadaptive.scores)
    assert nonadaptive.columns == {
        **exp.columns(),
        **defended.columns("victim"),
        **pruned.columns("shadow"),
        "adaptive": False,
    }
    assert adaptive.columns["shadow_defense"] == "ppb" and adaptive.columns["adaptive"]


def test_dpsgd_variant_reloads_with_its_frozen_norms(exp):
    dp = exp.variant(defense="dpsgd", noise_multiplier=1.0)
    first = exp.model("victim", dp)
    assert np.isfinite(first.info["defense_epsilon"]) and first.info["defense_converted"]
    again = Experiment(exp.config, store=exp.store, device="cpu").model("victim", dp)
    names = {type(m).__name__ for m in again.model.modules()}
    assert "BatchNorm2d" in names and "GroupNorm" not in names
    x = exp.data.x[:5]
    assert torch.allclose(first.model(x), again.model(x))


def test_unknown_attack_is_a_clear_error(exp):
    with pytest.raises(ValueError, match="unknown attack 'oracle'"):
        exp.attack("oracle")


def test_fitted_neural_attacks_are_reused_across_victims(exp, monkeypatch):
    """A second victim attacked with the same shadows reuses the stored attack network."""
    pruned = exp.variant()
    exp.attack("samia", pruned)
    fresh = Experiment(exp.config, store=exp.store, device="cpu")
    calls = []
    from miakit.attacks.neural import NeuralAttack

    real_fit = NeuralAttack.fit

    def counting_fit(self, shadow):
        calls.append(self.name)
        return real_fit(self, shadow)

    monkeypatch.setattr(NeuralAttack, "fit", counting_fit)
    result = fresh.attack("samia", exp.variant(defense="ppb"), shadows=pruned)
    assert calls == [] and 0.0 <= result.auc <= 1.0
