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
        num_references=4,
        train=TrainConfig(epochs=60, patience=0),
        sensitivity_m=2,
        attack_epochs=15,
        attack_lr=1e-2,
    )
    return Experiment(cfg, store=Store(tmp_path_factory.mktemp("cache")), device="cpu")


def _halves(sig: AttackInputs, seed: int) -> AttackInputs:
    """Signals restricted to non-members, split in two at random as fake "members"."""
    out = sig.subset(np.flatnonzero(sig.membership == 0))
    fake = np.random.default_rng(seed).permutation(out.num_samples) % 2
    return replace(out, membership=fake.astype(np.int64))


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_beats_chance_on_overfitted_model(overfit, name):
    info = overfit.victim().info
    assert info["train_acc"] - info["test_acc"] > 0.3  # the model really is overfitted
    result = overfit.attack(name)
    assert result.auc > 0.6, f"{name}: AUC {result.auc:.3f} on an overfitted victim"


@pytest.mark.parametrize("name", list(ATTACKS))
def test_experiment_scores_are_near_chance_between_two_halves_of_non_members(overfit, name):
    """The experiment's own wiring (exp.attack_scores): scores never read the truth, so
    they cannot tell two random halves of the victim's non-members apart."""
    scored = overfit.attack_scores(name)
    target = overfit.signals("victim")
    np.testing.assert_array_equal(scored.membership, target.membership)
    np.testing.assert_array_equal(scored.sample_ids, target.sample_ids)
    out = np.flatnonzero(scored.membership == 0)
    fake = np.random.default_rng(3).permutation(out.size) % 2
    auc = roc_auc(fake, scored.scores[out])
    assert abs(auc - 0.5) < 0.07, f"{name}: AUC {auc:.3f} on two halves of the test set"


@pytest.mark.parametrize("name", [n for n, c in ATTACKS.items() if c.uses == {"shadows"}])
def test_attack_fitted_without_members_is_near_chance(overfit, name):
    """Fitted (with the experiment's settings) on shadow non-members split in two at random."""
    target, shadow = _halves(overfit.signals("victim"), 1), _halves(overfit.shadow_signals(), 2)
    scored = ATTACKS[name].from_settings(overfit.attack_settings).run(target, shadow)
    auc = roc_auc(target.membership, scored.scores)
    assert abs(auc - 0.5) < 0.07, f"{name}: AUC {auc:.3f} on two halves of the test set"


def test_membership_is_always_the_producing_models_own(overfit):
    """A shadow's signals on the victim's samples are all OUT by the shadow's own split."""
    victim_ids = overfit.signals("victim").sample_ids
    for role in overfit.roles()[1:]:
        on_victim = overfit.signals(role, samples="victim")
        np.testing.assert_array_equal(on_victim.sample_ids, victim_ids)
        assert on_victim.membership.sum() == 0
        own = overfit.signals(role)
        np.testing.assert_array_equal(
            own.membership, np.isin(own.sample_ids, overfit.splits.shadows[int(role[6:])].train)
        )
        assert own.membership.sum() == len(overfit.splits.shadows[int(role[6:])].train)
    assert overfit.signals("victim", samples="population").membership.sum() == 0
    refs = overfit.references()
    np.testing.assert_array_equal(refs.sample_ids, victim_ids)
    assert refs.is_in.shape == (victim_ids.size, overfit.config.num_shadows)
    assert not refs.is_in.any()
