"""Issue 15, item 4 in part: a checkpoint of the kit's own victim, audited, gives the
pipeline's own attack scores, sample for sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from miakit.audit import load_weights, membership
from miakit.audit.target import target_signals
from miakit.config import profile
from miakit.experiment import Experiment
from miakit.models import build_model
from miakit.store import Store
from miakit.variants import ORIGINAL


@pytest.mark.parametrize("attack", ["conf", "samia"])
def test_auditing_the_pipelines_victim_reproduces_its_scores(tmp_path, attack) -> None:
    exp = Experiment(profile("smoke"), store=Store(tmp_path / "cache"), device="cpu")
    victim = exp.model("victim", ORIGINAL).model
    path = tmp_path / "victim.pt"
    torch.save(victim.state_dict(), path)
    shape = tuple(exp.data.x.shape[1:])
    model = build_model(exp.config.arch, num_classes=exp.data.num_classes, input_shape=shape)
    loaded = load_weights(path, model, exp.config.arch)

    targets = membership(exp.splits, len(exp.data), seed=exp.config.split_seed)
    inputs = target_signals(loaded.model, exp, targets)
    ours = exp.fitted_attack(attack, ORIGINAL).score(inputs)
    theirs = exp.attack_scores(attack, ORIGINAL)

    by_id = dict(zip(theirs.sample_ids.tolist(), theirs.scores.tolist(), strict=True))
    assert set(inputs.sample_ids.tolist()) == set(by_id)
    np.testing.assert_allclose(ours.scores, [by_id[i] for i in inputs.sample_ids.tolist()])
    assert ours.threshold == pytest.approx(theirs.threshold)
    assert inputs.membership.sum() == len(exp.splits.victim.train)


def test_an_unknown_attack_is_named(tmp_path) -> None:
    exp = Experiment(profile("smoke"), store=Store(tmp_path / "cache"), device="cpu")
    with pytest.raises(ValueError, match=r"unknown attack 'nope'; known attacks: gap"):
        exp.fitted_attack("nope")
