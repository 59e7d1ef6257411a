"""Paired contrasts over a cached smoke experiment (two seeds, a temporary store)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from miakit import contrasts, sweep, tables
from miakit.defenses import NoDefense, PPBParams
from miakit.experiment import ORIGINAL, Experiment, profile
from miakit.store import Store
from miakit.variants import FINETUNED


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("cache"))
    # One shadow: the contrasts pair victims, which the shadows' number does not change.
    return Experiment(replace(profile("smoke"), num_shadows=1), store=store, device="cpu")


def test_pruning_grid_has_the_control_and_its_differences_pair_by_seed(exp):
    grid = sweep.pruning_grid(exp, ["l1_unstructured"], [0.7], ["conf"])
    assert grid["victim_pruner"].tolist() == ["none", "finetuned", "l1_unstructured"] * 2
    victims = sweep.grid_variants(exp, ["l1_unstructured"], [0.7])
    assert victims[:2] == [ORIGINAL, FINETUNED]
    diffs = contrasts.pruning_differences(exp, victims, ["conf"])
    # vs the original: the control and the pruned model; vs the control: the pruned only.
    pairs = list(zip(diffs["baseline_pruner"], diffs["victim_pruner"], strict=True))
    assert (
        pairs
        == [("none", "finetuned"), ("none", "l1_unstructured")] * 2
        + [("finetuned", "l1_unstructured")] * 2
    )
    by = grid.set_index(["seed", "victim_pruner"])["auc"]
    for _, r in diffs.iterrows():
        expected = by[(r["seed"], r["victim_pruner"])] - by[(r["seed"], r["baseline_pruner"])]
        assert r["auc"] == pytest.approx(expected)
    summary = tables.summarise(diffs)
    assert len(summary) == 3 and (summary["seeds"] == 2).all()
    with pytest.raises(ValueError, match="no victim to compare"):
        contrasts.pruning_differences(exp, [ORIGINAL], ["conf"])


def test_per_class_change_is_pruned_minus_original_per_class(exp):
    pruned = exp.variant()
    change = contrasts.per_class_change(exp, ["conf"], pruned)
    per = tables.per_class(exp, ["conf"], [ORIGINAL, pruned]).set_index(
        ["seed", "victim_pruner", "class"]
    )["auc"]
    for _, r in change.iterrows():
        expected = (
            per[(r["seed"], pruned.pruner, r["class"])] - per[(r["seed"], "none", r["class"])]
        )
        assert r["auc"] == pytest.approx(expected)
    summary = tables.summarise(change)
    assert set(summary["class"]) == set(change["class"]) and (summary["seeds"] == 2).all()
    assert np.isfinite(summary["auc_low"]).all()
    with pytest.raises(ValueError, match="two different variants"):
        contrasts.per_class_change(exp, ["conf"], pruned, pruned)


def test_defense_differences_are_the_three_contrasts(exp):
    ppb = PPBParams(lam=4.0)
    diffs = contrasts.defense_differences(exp, [NoDefense(), ppb], ["conf"])
    assert list(dict.fromkeys(diffs["contrast"])) == list(contrasts.DEFENSE_CONTRASTS)
    assert set(diffs["setting"]) == {"ppb λ=4"} and set(diffs["parameter"]) == {"λ=4"}
    grid = sweep.defense_grid(exp, [NoDefense(), ppb], ["conf"])
    auc = grid.set_index(["seed", "victim_defense", "adaptive"])["auc"]
    for _, r in diffs.iterrows():
        non, ada = auc[(r["seed"], "ppb", False)], auc[(r["seed"], "ppb", True)]
        base = auc[(r["seed"], "none", True)]
        expected = {
            "non-adaptive - undefended": non - base,
            "adaptive - undefended": ada - base,
            "adaptive - non-adaptive": ada - non,
        }[r["contrast"]]
        assert r["auc"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="besides NoDefense"):
        contrasts.defense_differences(exp, [NoDefense()], ["conf"])
