"""Every attack separates members on an overfitted model and is near chance without members.

Issue "Attacks", done-when: each attack scores well above chance on a deliberately
overfitted model, and near chance when "members" and "non-members" are two halves of
the model's own test set.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from miakit.attacks import ATTACKS, AttackInputs
from miakit.experiment import Experiment, ExperimentConfig
from miakit.metrics import roc_auc
from miakit.store import Store
from miakit.train import TrainConfig


@pytest.fixture(scope="module")
def overfit(tmp_path_factory):
    # a small mnist1d pool and a wide MLP trained without early stopping: it memorises
    cfg = ExperimentConfig(
        dataset="mnist1d",
        arch="mlp",
        dataset_options=(("num_samples", 3000),),
        num_shadows=2,
        train=TrainConfig(epochs=60, patience=0),
        sensitivity_m=2,
        attack_epochs=15,
        attack_lr=1e-2,
    )
    return Experiment(cfg, store=Store(tmp_path_factory.mktemp("cache")), device="cpu")


def _halves_of_test_set(exp: Experiment) -> tuple[AttackInputs, AttackInputs]:
    """Victim and pooled-shadow signals restricted to non-members, split in two at random."""

    def relabel(sig: AttackInputs, seed: int) -> AttackInputs:
        out = sig.subset(np.flatnonzero(sig.membership == 0))
        fake = np.random.default_rng(seed).permutation(out.num_samples) % 2
        return replace(out, membership=fake.astype(np.int64))

    return relabel(exp.signals("victim"), 1), relabel(exp.shadow_signals(), 2)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_beats_chance_on_overfitted_model(overfit, name):
    info = overfit.victim().info
    assert info["train_acc"] - info["test_acc"] > 0.3  # the model really is overfitted
    result = overfit.attack(name)
    assert result.auc > 0.6, f"{name}: AUC {result.auc:.3f} on an overfitted victim"


@pytest.mark.parametrize("name", [n for n in ATTACKS if n not in ("lira", "rmia")])
def test_attack_is_near_chance_without_members(overfit, name):
    target, shadow = _halves_of_test_set(overfit)
    opts = overfit._attack_options(name)
    attack = ATTACKS[name](**opts).fit(shadow)
    auc = roc_auc(target.membership, attack.score(target))
    assert abs(auc - 0.5) < 0.07, f"{name}: AUC {auc:.3f} on two halves of the test set"


@pytest.mark.parametrize("name", ["lira", "rmia"])
def test_reference_attacks_are_near_chance_without_members(overfit, name):
    """LiRA/RMIA score each victim sample against the shadows' signals on the same sample."""
    target = overfit.signals("victim")
    keep = np.flatnonzero(target.membership == 0)
    fake = (np.random.default_rng(3).permutation(keep.size) % 2).astype(np.int64)
    refs = [overfit.signals(r, samples="victim").subset(keep) for r in overfit.roles()[1:]]
    refs = [replace(r, membership=np.zeros(r.num_samples, dtype=np.int64)) for r in refs]
    victim = replace(target.subset(keep), membership=fake)
    if name == "lira":
        attack = ATTACKS[name](reference=refs)
    else:
        pop = [overfit.signals(r, samples="population") for r in overfit.roles()[1:]]
        attack = ATTACKS[name](
            reference=refs,
            population=overfit.signals("victim", samples="population"),
            population_reference=pop,
        )
    auc = roc_auc(fake, attack.score(victim))
    assert abs(auc - 0.5) < 0.07, f"{name}: AUC {auc:.3f} on two halves of the test set"
