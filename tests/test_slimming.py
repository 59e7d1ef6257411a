"""Network slimming as Liu et al. (2017) define it (issue 13, item 4).

The pipeline prunes a ``slimming`` variant from a separately cached model trained with the
L1 penalty on BatchNorm ``gamma`` (``ExperimentConfig.slimming_lambda``), victim and
shadows alike, while every plain model keeps its key; channel sparsity and MACs left
report what slimming removes (its weight sparsity reads 0).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import miakit.steps as S
from miakit.config import ExperimentConfig
from miakit.data import Data
from miakit.experiment import ORIGINAL, Experiment, Variant, profile
from miakit.keys import STEP_FIELDS, STEP_VERSIONS
from miakit.prune import (
    LiuSGD,
    SlimmingPenalty,
    channel_sparsity,
    l1_structured,
    macs,
    macs_left,
    slimming,
    sparsity_report,
    sparsity_training,
    structured_sparsity,
)
from miakit.prune._layers import BATCHNORM
from miakit.prune.slimming import LIU_LR_SUM
from miakit.store import Store, config_key
from miakit.train import TrainConfig, accuracy, fit

SLIM = Variant("slimming", 0.7)
L1 = Variant("l1_unstructured", 0.7)
#: The smoke profile, one epoch (the penalty is scaled to the schedule's length).
SMOKE = profile("smoke", **{"train.epochs": 1, "finetune.epochs": 1})


def _gammas(model: nn.Module) -> torch.Tensor:
    return torch.cat(
        [m.weight.detach().abs().flatten() for m in model.modules() if isinstance(m, BATCHNORM)]
    )


# -- config and keys -------------------------------------------------------------------------
def test_slimming_lambda_defaults_to_liu_et_al_and_rejects_bad_values():
    assert ExperimentConfig().slimming_lambda == 1e-4
    for bad in (-1e-4, math.inf, math.nan):
        with pytest.raises(ValueError, match="slimming_lambda must be a finite number >= 0"):
            ExperimentConfig(slimming_lambda=bad)
    assert "slimming_lambda" not in STEP_FIELDS["train"] + STEP_FIELDS["prune"]


def test_plain_model_keys_do_not_depend_on_slimming_lambda():
    """Existing caches stay valid: no plain model's key reads the new option."""
    configs = [SMOKE.with_overrides(slimming_lambda=lam) for lam in (0.0, 1e-4, 0.05)]
    exps = [Experiment(c, store=Store("unused"), device="cpu") for c in configs]
    for role in ("victim", "shadow1", "ref0"):
        for variant in (ORIGINAL, L1, Variant("l1_structured", 0.5)):
            keys = {config_key("model", e._model_key(role, variant)) for e in exps}
            assert len(keys) == 1, (role, variant)
        c = exps[1].config  # the plain key is the one it was before the option existed
        assert exps[1]._base_key(role) == {
            "step": "train",
            "config": {name: getattr(c, name) for name in STEP_FIELDS["train"]},
            "inputs": {},
            "params": {"role": role},
            "version": STEP_VERSIONS["train"],
        }


def test_a_slimming_variant_prunes_a_separately_keyed_sparsity_trained_model():
    def exp(lam: float) -> Experiment:
        return Experiment(SMOKE.with_overrides(slimming_lambda=lam), store=Store("u"), device="cpu")

    on, other, off = exp(1e-4), exp(1e-3), exp(0.0)
    for role in ("victim", "shadow0"):
        base = on._variant_key(role, SLIM)["inputs"]["model"]
        assert base != on._base_key(role) and base["params"] == {
            "role": role,
            "slimming_lambda": 1e-4,
            "optimizer": "liu_sgd",  # Liu et al.'s SGD, not the Adam of keys made before
        }
        assert base == on._base_key(role, sparsity_trained=True)
        assert other._variant_key(role, SLIM)["inputs"]["model"] != base  # lambda is in the key
        # lambda 0 is the paper's variant: the slimmed model prunes the plain model
        assert off._variant_key(role, SLIM)["inputs"]["model"] == off._base_key(role)
        assert on._variant_key(role, L1)["inputs"]["model"] == on._base_key(role)


# -- the pipeline ------------------------------------------------------------------------------
@pytest.fixture
def fits(monkeypatch):
    """Record each ``fit`` of the model steps: (seed, objective); a sparsity-trained one
    must come with Liu et al.'s optimizer, the others with the default (Adam)."""
    calls: list[tuple[int, object]] = []
    real = S.fit

    def recording(model, train, dev, cfg, **kwargs):
        objective, factory = kwargs.get("objective"), kwargs.get("optimizer_factory")
        if isinstance(objective, SlimmingPenalty):
            assert isinstance(factory(model, cfg), LiuSGD)
        else:
            assert factory is None
        calls.append((cfg.seed, objective))
        return real(model, train, dev, cfg, **kwargs)

    monkeypatch.setattr(S, "fit", recording)
    return calls


def _penalty(exp: Experiment, role: str) -> SlimmingPenalty:
    """The penalty of ``role``'s sparsity training: lambda scaled to its schedule."""
    steps = -(-len(exp.role_data(role)[0]) // exp.config.train.batch_size)
    return sparsity_training(exp.config.slimming_lambda, exp.config.train.epochs, steps)[0]


def test_victim_and_shadows_of_a_slimming_variant_are_sparsity_trained(tmp_path, fits):
    exp = Experiment(SMOKE, store=Store(tmp_path), device="cpu", batch=False)
    slimmed = exp.model("shadow0", SLIM)
    assert fits == [(exp.role_seed("shadow0"), _penalty(exp, "shadow0"))]  # the base, penalised
    assert exp.store.has("model", exp._base_key("shadow0", sparsity_trained=True))
    assert not exp.store.has("model", exp._base_key("shadow0"))  # no plain model needed
    exp.model("victim", SLIM)
    assert fits[-1] == (exp.role_seed("victim"), _penalty(exp, "victim"))
    fits.clear()
    exp.model("victim", L1)  # other pruners prune the plain model
    assert fits == [(exp.role_seed("victim"), None)]
    # same seed, data and schedule: the penalty alone shrinks the gammas
    plain, penalised = exp.trained("victim"), exp.base("victim", SLIM)
    assert _gammas(penalised.model).sum() < _gammas(plain.model).sum()
    assert exp.base("victim", L1).info == plain.info
    # slimming removes channels, not weights
    shape = tuple(exp.data.x.shape[1:])
    assert slimmed.info["realised_sparsity"] == 0.0
    assert structured_sparsity(slimmed.model, shape)["channel_sparsity"] == pytest.approx(
        0.7, abs=0.01
    )
    assert structured_sparsity(slimmed.model, shape)["macs_left"] == slimmed.info["macs_fraction"]


def test_batched_prefetch_trains_the_penalised_bases_one_at_a_time(tmp_path, fits):
    exp = Experiment(SMOKE, store=Store(tmp_path), device="cpu", batch=True)
    roles = exp.roles()[1:]  # the shadows: one split size, so they batch
    exp.prefetch(roles, SLIM)
    assert sorted(s for s, _ in fits) == sorted(exp.role_seed(r) for r in roles)
    assert {o for _, o in fits} == {_penalty(exp, r) for r in roles}
    for role in roles:
        assert exp.store.has("model", exp._variant_key(role, SLIM))
        assert not exp.store.has("model", exp._base_key(role))


# -- sparsity training on a toy network ------------------------------------------------------
def _toy_data(k: int = 4) -> tuple[Data, Data, Data]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3000, 16, generator=g)
    y = (x[:, :8] @ torch.randn(8, k, generator=g)).argmax(1)  # 8 of 16 inputs matter
    return tuple(Data(x[a:b], y[a:b], k) for a, b in ((0, 2000), (2000, 2500), (2500, 3000)))


def _toy_net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Linear(16, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU(),
        nn.Linear(32, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU(),
        nn.Linear(32, 4),
    )  # fmt: skip


def test_sparsity_training_makes_gamma_sparse_so_slimming_at_0_7_keeps_a_working_network():
    """Liu et al.'s claim on a toy BN net: after their sparsity training (SGD, the L1
    penalty at lambda 1e-4 scaled to this schedule) most ``|gamma|`` are near 0 and
    slimming 70% of the channels (no fine-tuning) keeps the accuracy; trained with the
    paper's Adam and no penalty, the same slimming collapses the network."""
    train, dev, test = _toy_data()
    cfg = TrainConfig(epochs=60, patience=0)
    chance = 1 / train.num_classes
    steps = -(-len(train) // cfg.batch_size)
    out = {}
    for lam in (0.0, 1e-4):
        model = _toy_net()
        objective, optimizer = sparsity_training(lam, cfg.epochs, steps) if lam else (None, None)
        fit(model, train, dev, cfg, objective=objective, optimizer_factory=optimizer, device="cpu")
        near_zero = float((_gammas(model) < 0.01).float().mean())
        dense = accuracy(model, test, device="cpu")
        slimming(model, 0.7)
        out[lam] = (near_zero, dense, accuracy(model, test, device="cpu"))
    assert out[1e-4][0] > out[0.0][0] + 0.5, out  # sparser gammas with the penalty
    assert out[1e-4][1] > 3 * chance and out[0.0][1] > 3 * chance, out  # both trained well
    assert out[1e-4][2] > 3 * chance and out[1e-4][2] > out[1e-4][1] - 0.1, out  # slimmed, working
    assert out[0.0][2] < out[1e-4][2] - 0.2, out  # without it the same slimming collapses


def test_sparsity_training_pulls_as_hard_in_total_as_liu_et_al():
    """lambda x the summed learning rate is Liu et al.'s, whatever the schedule's length."""
    assert LIU_LR_SUM == pytest.approx(782 * 8.44)
    for epochs, steps in ((30, 9), (160, 782), (1, 1)):
        penalty, factory = sparsity_training(1e-4, epochs, steps)
        opt = factory(nn.Linear(2, 2), TrainConfig())
        lrs = []
        for _ in range(epochs * steps):
            opt.step()
            lrs.append(opt.param_groups[0]["lr"])
        assert penalty.lam * sum(lrs) == pytest.approx(1e-4 * LIU_LR_SUM, rel=1e-9)
    with pytest.raises(ValueError, match="needs >= 1 step"):
        sparsity_training(1e-4, 0, 5)


def test_liu_sgd_follows_the_step_schedule_and_resumes_it():
    """SGD, momentum 0.9, weight decay 1e-4, lr 0.1 x0.1 at 1/2 and 3/4 of the steps; the
    step count travels in ``state_dict``, so a resumed run continues the schedule."""
    opt = LiuSGD(nn.Linear(2, 2).parameters(), total_steps=8)
    group = opt.param_groups[0]
    assert (group["momentum"], group["weight_decay"]) == (0.9, 1e-4)
    lrs = []
    for _ in range(5):
        opt.step()
        lrs.append(group["lr"])
    resumed = LiuSGD(nn.Linear(2, 2).parameters(), total_steps=8)
    resumed.load_state_dict(opt.state_dict())
    for _ in range(3):
        resumed.step()
        lrs.append(resumed.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)
    with pytest.raises(ValueError, match="total_steps"):
        LiuSGD(nn.Linear(2, 2).parameters(), total_steps=0)


# -- channel sparsity and MACs ---------------------------------------------------------------
def _toy_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3),
    )  # fmt: skip


def test_macs_and_channel_sparsity_of_a_slimmed_toy_cnn_by_hand():
    model = _toy_cnn()
    with torch.no_grad():  # slimming at 0.3 of 10 channels takes these three
        model[1].weight.copy_(torch.tensor([0.01, 0.02, 1.0, 1.0]))
        model[4].weight.copy_(torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 0.03]))
    pos = 5 * 5  # output positions of both convs on a 1 x 5 x 5 input (padding 1)
    dense = pos * 4 * 1 * 9 + pos * 6 * 4 * 9 + 6 * 3
    assert macs(model, (1, 5, 5), effective=False) == macs(model, (1, 5, 5)) == dense
    assert channel_sparsity(model) == 0.0 and macs_left(model, (1, 5, 5)) == 1.0
    slimming(model, 0.3)
    # conv1: filters 0 and 1 feed dead BN channels; conv2: input channels 0, 1 are dead
    # and filter 5 feeds a dead BN channel; the linear reads 5 live features
    left = pos * 2 * 1 * 9 + pos * 5 * 2 * 9 + 5 * 3
    assert macs(model, (1, 5, 5)) == left
    assert macs(model, (1, 5, 5), effective=False) == dense
    assert macs_left(model, (1, 5, 5)) == left / dense
    assert channel_sparsity(model) == 3 / 10
    assert structured_sparsity(model, (1, 5, 5)) == {
        "channel_sparsity": 0.3,
        "macs_left": left / dense,
    }
    assert sparsity_report(model, (1, 5, 5)).sparsity == 0.0  # no weight is zero


def test_channel_sparsity_without_batchnorm_counts_conv_filters_and_is_nan_for_an_mlp():
    convs = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
    l1_structured(convs, 0.5)  # 4 of 8 and 2 of 4 filters (bias masked too)
    assert channel_sparsity(convs) == (4 + 2) / 12
    assert math.isnan(channel_sparsity(nn.Sequential(nn.Linear(4, 4), nn.ReLU())))
