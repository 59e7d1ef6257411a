"""Tests of miakit.defenses: PPB, adversarial regularisation, DP-SGD, the registry.

PAPER.md, "The defense". Tiny seeded data and models; the whole file runs in seconds.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from miakit.attacks.attack_net import FastDropout
from miakit.data import Data
from miakit.defenses import (
    DEFENSES,
    LAMBDAS,
    NOISE_MULTIPLIERS,
    PPB,
    THETAS,
    AdversarialRegularization,
    AdvRegParams,
    DefenseParams,
    DefenseResult,
    DPSGDParams,
    InferenceModel,
    NoDefense,
    PPBParams,
    default_delta,
    dp_finetune,
    finetune,
    make_defense,
    ppb_divergence,
    ppb_loss,
)
from miakit.prune import prune_model
from miakit.train import TrainConfig, fit

K = 3
F_IN = 8


def blobs(n: int, seed: int) -> Data:
    """Three well-separated Gaussian blobs in 8 dimensions (the same centres always)."""
    centres = torch.randn(K, F_IN, generator=torch.Generator().manual_seed(123)) * 3.0
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, K, (n,), generator=g)
    x = centres[y] + torch.randn(n, F_IN, generator=g)
    return Data(x.float(), y.long(), num_classes=K, name="blobs")


def mlp(seed: int = 0, batchnorm: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    norm: list[nn.Module] = [nn.BatchNorm1d(16)] if batchnorm else []
    return nn.Sequential(nn.Linear(F_IN, 16), *norm, nn.ReLU(), nn.Linear(16, K))


@pytest.fixture(scope="module")
def train() -> Data:
    return blobs(128, seed=1)


@pytest.fixture(scope="module")
def dev() -> Data:
    return blobs(64, seed=2)


# ---------------------------------------------------------------------------------------
# PPB
# ---------------------------------------------------------------------------------------


def _log_softmax(row: list[float]) -> list[float]:
    m = max(row)
    lse = m + math.log(sum(math.exp(v - m) for v in row))
    return [v - lse for v in row]


@pytest.mark.parametrize(
    ("sweep", "params", "option"),
    [
        (LAMBDAS, PPBParams, "lam"),
        (THETAS, AdvRegParams, "theta"),
        (NOISE_MULTIPLIERS, DPSGDParams, "noise_multiplier"),
    ],
)
def test_sweeps_are_sorted_valid_and_contain_the_default(sweep, params, option) -> None:
    assert len(sweep) >= 3 and list(sweep) == sorted(set(sweep))
    assert all(isinstance(v, float) and v > 0 for v in sweep)
    assert getattr(params(), option) in sweep  # the paper default is one of the points
    for v in sweep:  # every sweep point is a valid setting
        assert getattr(params(**{option: v}), option) == v


def test_ppb_default_is_the_papers_everywhere() -> None:
    assert PPBParams().lam == 4.0 and PPB().lam == 4.0 and make_defense("ppb").lam == 4.0


def test_ppb_loss_matches_hand_computation() -> None:
    z = [[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 3.0], [0.0, 0.5, 0.0]]
    y = [0, 1, 2, 1]
    lam = 4.0
    ce = -sum(_log_softmax(row)[label] for row, label in zip(z, y, strict=True)) / 4
    # halves: A = rows 0, 1; B = rows 2, 3; each row sorted descending
    sorted_a = [sorted(r, reverse=True) for r in z[:2]]
    sorted_b = [sorted(r, reverse=True) for r in z[2:]]
    kl_pq, kl_qp = 0.0, 0.0
    for ra, rb in zip(sorted_a, sorted_b, strict=True):
        log_q, log_p = _log_softmax(ra), _log_softmax(rb)
        kl_pq += sum(math.exp(lp) * (lp - lq) for lp, lq in zip(log_p, log_q, strict=True))
        kl_qp += sum(math.exp(lq) * (lq - lp) for lp, lq in zip(log_p, log_q, strict=True))
    kl_pq /= 2  # batch-mean over the 2 pairs
    kl_qp /= 2
    assert abs(kl_pq - kl_qp) > 1e-3  # the direction is distinguishable on this batch

    logits = torch.tensor(z, dtype=torch.float64)
    got = ppb_loss(logits, torch.tensor(y), lam)
    assert got.item() == pytest.approx(ce + lam * kl_pq, rel=1e-12)
    assert ppb_divergence(logits).item() == pytest.approx(kl_pq, rel=1e-12)
    assert ppb_loss(logits, torch.tensor(y), 0.0).item() == pytest.approx(ce, rel=1e-12)
    as_f32 = ppb_loss(logits.float(), torch.tensor(y), lam).item()
    assert as_f32 == pytest.approx(ce + lam * kl_pq, abs=1e-5)
    as_bf16 = ppb_loss(logits.bfloat16(), torch.tensor(y), lam)  # autocast output dtype
    assert as_bf16.dtype == torch.float32


def test_ppb_gradient_reaches_both_halves() -> None:
    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(0)).requires_grad_()
    ppb_divergence(logits).backward()
    grad_rows = logits.grad.abs().sum(1)
    assert (grad_rows[:3] > 0).all(), "half A gets no gradient from the KL term"
    assert (grad_rows[3:] > 0).all(), "half B (the KL target) gets no gradient"


def test_ppb_odd_batch_leaves_last_sample_out_of_kl_only() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(5, K, generator=g).requires_grad_()
    y = torch.randint(0, K, (5,), generator=g)
    loss = ppb_loss(logits, y, 2.0)
    expected = F.cross_entropy(logits, y) + 2.0 * ppb_divergence(logits[:4])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    kl_only = logits.detach().clone().requires_grad_()
    ppb_divergence(kl_only).backward()
    assert kl_only.grad[4].abs().sum().item() == 0.0
    assert (kl_only.grad[:4].abs().sum(1) > 0).all()
    one = torch.randn(1, K).requires_grad_()
    assert ppb_divergence(one).item() == 0.0  # a single sample has no pair
    assert ppb_loss(one, torch.tensor([0]), 4.0).item() == pytest.approx(
        F.cross_entropy(one, torch.tensor([0])).item()
    )


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_lambda_theta_noise_rejected(bad: float, train: Data, dev: Data) -> None:
    z, y = torch.zeros(2, K), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="lam="):
        ppb_loss(z, y, bad)
    with pytest.raises(ValueError, match="lam="):
        PPB(lam=bad)
    with pytest.raises(ValueError, match="theta="):
        AdversarialRegularization(train, dev, theta=bad)
    with pytest.raises(ValueError, match="lam="):
        make_defense("ppb", lam=bad)
    with pytest.raises(ValueError, match="theta="):
        make_defense("advreg", theta=bad)
    with pytest.raises(ValueError, match="noise_multiplier="):
        make_defense("dpsgd", noise_multiplier=bad)


@pytest.mark.parametrize(
    ("cls", "options", "match"),
    [
        (PPBParams, {"lam": -1}, "lam=-1"),
        (PPBParams, {"lam": True}, "lam=True"),
        (AdvRegParams, {"theta": -1}, "theta=-1"),
        (AdvRegParams, {"k": 0}, "k=0"),
        (AdvRegParams, {"lr": 0.0}, "lr=0.0"),
        (AdvRegParams, {"seed": -1}, "seed=-1"),
        (DPSGDParams, {"noise_multiplier": 0.0}, "noise_multiplier=0.0"),
        (DPSGDParams, {"max_grad_norm": -1.0}, "max_grad_norm=-1.0"),
        (DPSGDParams, {"delta": 1.0}, "delta=1.0"),
    ],
)
def test_params_reject_invalid_values_at_construction(cls, options, match) -> None:
    with pytest.raises(ValueError, match=match):
        cls(**options)


def test_params_are_frozen_floats_and_hashable() -> None:
    p = PPBParams(lam=2)
    assert p.lam == 2.0 and isinstance(p.lam, float)  # ints become floats (stable keys)
    assert p == PPBParams(lam=2.0) and hash(p) == hash(PPBParams(lam=2.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.lam = 8.0  # type: ignore[misc]
    assert AdvRegParams(theta=8).params() == {"theta": 8.0, "k": 7, "lr": 1e-3, "seed": 0}
    assert NoDefense().params() == {}
    assert [cls.title for cls in DEFENSES.values()] == ["no defense", "PPB", "AdvReg", "DP-SGD"]


def test_ppb_objective_does_not_revalidate_lambda_per_minibatch(monkeypatch) -> None:
    """Lambda is checked once, when the parameters are built, not on every minibatch."""
    import miakit.defenses.base as base
    import miakit.defenses.ppb as ppb_module

    objective = PPBParams(lam=4.0).objective(blobs(8, 0), K)
    calls = []

    def counting(*args, **kwargs):
        calls.append(args)
        return base.check_weight(*args, **kwargs)

    monkeypatch.setattr(ppb_module, "check_weight", counting)
    model = mlp()
    x, y = blobs(8, 0).x, blobs(8, 0).y
    loss = objective(model, x, y)
    assert calls == []
    assert loss.item() == pytest.approx(ppb_loss(model(x), y, 4.0).item(), rel=1e-6)


def test_zero_noise_and_bad_k_rejected(train: Data, dev: Data) -> None:
    with pytest.raises(ValueError, match="noise_multiplier=0"):
        dp_finetune(mlp(), train, dev, TrainConfig(epochs=1), noise_multiplier=0.0)
    with pytest.raises(ValueError, match="k=0"):
        AdversarialRegularization(train, dev, k=0)


# ---------------------------------------------------------------------------------------
# Adversarial regularisation
# ---------------------------------------------------------------------------------------


def test_advreg_default_k_is_the_authors_7() -> None:
    assert AdvRegParams().k == 7 and make_defense("advreg").k == 7
    assert AdversarialRegularization(blobs(8, 0), blobs(8, 1)).k == 7


def test_advreg_takes_k_inference_steps_before_every_classifier_step(train, dev) -> None:
    """The optimizer steps interleave as (h * k, f) once per minibatch of every epoch."""
    k, batch, epochs = 3, 32, 2
    reg = AdversarialRegularization(train, dev, theta=1.0, k=k, seed=0)
    events: list[str] = []
    reg.optimizer.register_step_post_hook(lambda *_: events.append("h"))

    def classifier_adam(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        opt.register_step_post_hook(lambda *_: events.append("f"))
        return opt

    cfg = TrainConfig(epochs=epochs, batch_size=batch, patience=0)
    fit(mlp(), train, dev, cfg, objective=reg, device="cpu", optimizer_factory=classifier_adam)
    steps = epochs * math.ceil(len(train) / batch)  # every minibatch of every epoch
    assert events == (["h"] * k + ["f"]) * steps
    assert reg.classifier_steps == steps and reg.inference_steps == k * steps


def test_advreg_each_inference_step_has_its_own_member_and_dev_minibatch(train, dev) -> None:
    """Members are drawn from train, non-members from dev, walking each without repeats."""
    k, b = 2, 16
    reg = AdversarialRegularization(train, dev, k=k, seed=1)
    model = mlp()
    seen: list[torch.Tensor] = []
    hook = model.register_forward_pre_hook(
        lambda m, args: None if m.training else seen.append(args[0].detach().clone())
    )
    calls = len(train) // (k * b)  # exactly one pass over the members
    for _ in range(calls):
        reg(model.train(), train.x[:b], train.y[:b])
    hook.remove()
    assert len(seen) == calls  # one eval forward per call, for all 2k minibatches
    rows = torch.cat([s[: k * b] for s in seen])
    dev_rows = torch.cat([s[k * b :] for s in seen])
    assert all(s.shape[0] == 2 * k * b for s in seen)

    def index_in(data: Data, x: torch.Tensor) -> list[int]:
        match = (x[:, None, :] == data.x[None, :, :]).all(-1)
        assert (match.sum(1) == 1).all(), "a drawn row is not in this split"
        return match.float().argmax(1).tolist()

    assert sorted(index_in(train, rows)) == list(range(len(train)))  # a shuffled pass
    assert index_in(train, rows) != list(range(len(train)))
    dev_idx = index_in(dev, dev_rows)  # 128 draws from 64 dev rows: two passes
    assert sorted(dev_idx[: len(dev)]) == sorted(dev_idx[len(dev) :]) == list(range(len(dev)))


def test_inference_model_is_the_authors_miafc() -> None:
    for k in (3, 10, 100):
        h = InferenceModel(k)
        linears = [m for m in h.modules() if isinstance(m, nn.Linear)]
        shapes = [(m.in_features, m.out_features) for m in linears]
        assert shapes == [(2 * k, 512), (512, 256), (256, 128), (128, 2)]
        want = sum((i + 1) * o for i, o in shapes)
        assert sum(p.numel() for p in h.parameters()) == want
        assert [m.p for m in h.modules() if isinstance(m, FastDropout)] == [0.2, 0.2]
        assert sum(isinstance(m, nn.ReLU) for m in h.modules()) == 3
        assert all((m.bias == 0).all() for m in linears)  # Xavier-normal, zero bias
        w = linears[0].weight
        assert w.std().item() == pytest.approx(math.sqrt(2 / (2 * k + 512)), rel=0.1)
        assert h(torch.zeros(4, 2 * k)).shape == (4, 2)
    assert torch.equal(InferenceModel(5, seed=2)[0].weight, InferenceModel(5, seed=2)[0].weight)
    assert not torch.equal(InferenceModel(5, seed=2)[0].weight, InferenceModel(5)[0].weight)


def test_advreg_losses_are_the_authors_weighting(train: Data, dev: Data) -> None:
    """h minimises theta * CE2; the classifier gets CE - theta * CE2(h(members), 1)."""
    theta = 2.0
    reg = AdversarialRegularization(train, dev, theta=theta, k=1)
    model = mlp()
    x, y = train.x[:16], train.y[:16]
    loss = reg(model, x, y)
    assert reg.inference_steps == 1 and not reg.inference_model.training
    grads_h = [p.grad.clone() for p in reg.inference_model.parameters()]
    with torch.no_grad():
        out = model(x)
        feats = torch.cat([out.softmax(1), F.one_hot(y, K).float()], dim=1)
        h_loss = F.cross_entropy(reg.inference_model(feats), torch.ones_like(y))
        expected = F.cross_entropy(out, y) - theta * h_loss
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()  # the classifier's loss must not train the inference model
    for g, p in zip(grads_h, reg.inference_model.parameters(), strict=True):
        assert torch.equal(g, p.grad)
    assert all(p.grad is not None for p in model.parameters())
    # the inference step's loss: theta times the two-class CE on the step's features
    reg2 = AdversarialRegularization(train, dev, theta=theta, k=1)
    reg3 = AdversarialRegularization(train, dev, theta=1.0, k=1)
    torch.manual_seed(0)
    reg2(mlp(), x, y)
    torch.manual_seed(0)
    reg3(mlp(), x, y)
    assert reg2.last_inference_loss.item() == pytest.approx(
        theta * reg3.last_inference_loss.item(), rel=1e-6
    )
    assert reg3.optimizer.defaults["weight_decay"] == 5e-4


def test_advreg_objective_needs_the_training_data(train: Data, dev: Data) -> None:
    with pytest.raises(ValueError, match="training_objective"):
        AdvRegParams().objective(dev, K)
    reg = AdvRegParams(theta=4.0, k=2, seed=3).training_objective(train, dev)
    assert (reg.theta, reg.k, reg.seed) == (4.0, 2, 3) and reg.data["member"] is train
    with pytest.raises(ValueError, match="num_classes"):
        AdversarialRegularization(train, Data(dev.x, dev.y, K + 1))


def test_advreg_is_deterministic_and_its_state_resumes(train: Data, dev: Data) -> None:
    """Same seed, same game; a copy loaded from state_dict mid-run continues identically."""
    cfg = TrainConfig(epochs=1, batch_size=32, patience=0, seed=0)

    def start() -> tuple[nn.Module, AdversarialRegularization]:
        model, reg = mlp(seed=1), AdversarialRegularization(train, dev, k=2, seed=4)
        fit(model, train, dev, cfg, objective=reg, device="cpu")
        return model, reg

    (m1, r1), (m2, r2) = start(), start()
    resumed = AdversarialRegularization(train, dev, k=2, seed=4)
    resumed.load_state_dict(copy.deepcopy(r2.state_dict()))
    assert resumed.classifier_steps == r2.classifier_steps == math.ceil(len(train) / 32)
    x, y = train.x[:32], train.y[:32]
    torch.manual_seed(5)
    a = r1(m1.train(), x, y)
    torch.manual_seed(5)
    b = resumed(m2.train(), x, y)
    assert torch.equal(a, b)
    pairs = zip(r1.inference_model.parameters(), resumed.inference_model.parameters(), strict=True)
    for p, q in pairs:
        assert torch.equal(p, q)


def test_finetune_keeps_a_fine_tuned_epoch_even_if_every_one_is_worse(train, dev) -> None:
    """PAPER.md, "Pruning": the authors start from best_acc = 0, never keeping the pruned model."""
    model = mlp(seed=11)
    fit(model, train, dev, TrainConfig(epochs=20, batch_size=32, lr=1e-2, patience=0))
    pruned = prune_model(model, "l1_unstructured", 0.3)
    x, y = dev.x, dev.y
    pruned_acc = (pruned(x).argmax(1) == y).float().mean().item()

    class Ascent(DefenseParams):  # gradient ascent: every epoch is worse on dev
        def objective(self, dev: Data, num_classes: int):
            return lambda model, x, y: -F.cross_entropy(model(x), y)

    cfg = TrainConfig(epochs=6, batch_size=32, lr=0.05, patience=2)
    res = finetune(pruned, train, dev, cfg, Ascent(), device="cpu")
    assert all(h["dev_acc"] < pruned_acc for h in res.history), "precondition: all worse"
    assert res.best_epoch >= 1
    assert res.best_dev_acc == max(h["dev_acc"] for h in res.history)
    assert res.epochs_run == 4  # epoch 1 kept, then 3 (> patience 2) epochs without a new best
    kept = (pruned(x).argmax(1) == y).float().mean().item()
    assert kept == pytest.approx(res.best_dev_acc) and kept < pruned_acc


# ---------------------------------------------------------------------------------------
# DP-SGD
# ---------------------------------------------------------------------------------------


def test_default_delta() -> None:
    assert default_delta(100) == 1e-5
    assert default_delta(13500) == 1e-5
    assert default_delta(100_000) == 1e-5
    assert default_delta(200_000) == 1e-6


def test_dp_epsilon_finite_and_grows_as_noise_falls(train: Data, dev: Data) -> None:
    cfg = TrainConfig(epochs=1, batch_size=32, patience=0, seed=0)
    eps = {}
    for sigma in (1.0, 0.1):
        res = dp_finetune(mlp(), train, dev, cfg, noise_multiplier=sigma, device="cpu")
        assert res.delta == 1e-5 and res.epochs_run == 1 and res.converted == []
        assert res.steps == math.ceil(len(train) / 32)
        assert res.sample_rate == pytest.approx(1 / 4)
        assert math.isfinite(res.epsilon) and res.epsilon > 0
        assert res.history[-1]["epsilon"] == pytest.approx(res.epsilon)
        assert not res.model.training
        eps[sigma] = res.epsilon
    assert eps[0.1] > eps[1.0]


def _prune_all(model: nn.Module) -> dict[str, torch.Tensor]:
    masks = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            prune.l1_unstructured(m, "weight", amount=0.5)
            masks[name] = m.weight_mask.clone()
    return masks


def test_dp_pruned_weights_stay_exactly_zero(train: Data, dev: Data) -> None:
    model = mlp(seed=3)
    masks = _prune_all(model)
    before = {n: m.weight.detach().clone() for n, m in model.named_modules() if n in masks}
    cfg = TrainConfig(epochs=3, batch_size=32, lr=1e-2, patience=0, seed=0)
    res = dp_finetune(model, train, dev, cfg, noise_multiplier=0.1, device="cpu")
    assert res.model is model  # no conversion needed: trained in place
    assert res.best_epoch >= 1, "precondition: DP training improved on the pruned weights"
    for name, module in model.named_modules():
        if name not in masks:
            continue
        assert prune.is_pruned(module) and torch.equal(module.weight_mask, masks[name])
        off = masks[name] == 0
        assert (module.weight[off] == 0).all() and (module.weight_orig[off] == 0).all()
        assert not torch.equal(module.weight[~off], before[name][~off])  # it did train


def test_dp_freezes_batchnorm_and_reports_it(train: Data, dev: Data) -> None:
    """DP-SGD trains the model in place with BatchNorm frozen, then plain BatchNorm again."""
    model = mlp(seed=4, batchnorm=True)
    masks = _prune_all(model)
    cfg = TrainConfig(epochs=1, batch_size=32, patience=0)
    res = dp_finetune(model, train, dev, cfg, noise_multiplier=1.0, device="cpu")
    assert res.converted == ["1: BatchNorm1d(16) frozen"]
    assert res.model is model and type(model[1]) is nn.BatchNorm1d
    for name in masks:
        trained = res.model.get_submodule(name)
        assert prune.is_pruned(trained)
        assert (trained.weight[masks[name] == 0] == 0).all()
    record = finetune(mlp(batchnorm=True), train, dev, cfg, DPSGDParams()).record()
    assert record["converted"] == ["1: BatchNorm1d(16) frozen"]


def test_dpsgd_rebuild_makes_a_model_that_loads_a_dp_state_dict(train: Data, dev: Data) -> None:
    """A cached DP model (BatchNorm, pruned) reloads into rebuild() of a fresh model."""
    cfg = TrainConfig(epochs=1, batch_size=32, patience=0)
    model = mlp(seed=6, batchnorm=True)
    _prune_all(model)
    res = finetune(model, train, dev, cfg, DPSGDParams(noise_multiplier=1.0), device="cpu")
    state = res.model.state_dict()
    fresh = DPSGDParams().rebuild(mlp(seed=7, batchnorm=True))  # the structure is unchanged
    prune_restore(fresh, state).load_state_dict(state)
    x = train.x[:10]
    assert torch.equal(fresh.eval()(x), res.model.eval()(x))
    plain = mlp(seed=8)
    assert PPBParams().rebuild(plain) is plain and DPSGDParams().rebuild(plain) is plain


def prune_restore(model: nn.Module, state: dict) -> nn.Module:
    from miakit.prune import restore_masks

    return restore_masks(model, state)


# ---------------------------------------------------------------------------------------
# Registry and dispatcher
# ---------------------------------------------------------------------------------------


def test_make_defense_names_and_options() -> None:
    with pytest.raises(ValueError, match=r"unknown defense 'mixup'.*'advreg'.*'ppb'"):
        make_defense("mixup")
    with pytest.raises(ValueError, match=r"does not take option\(s\) \['theta'\]"):
        make_defense("ppb", theta=1.0)
    with pytest.raises(ValueError, match="it accepts: no options"):
        make_defense("none", lam=1.0)
    assert make_defense(None) == NoDefense()
    assert make_defense("PPB") == PPBParams(lam=4.0)
    assert make_defense("advreg", theta=8) == AdvRegParams(theta=8.0, k=7, lr=1e-3, seed=0)
    spec = make_defense("dpsgd", noise_multiplier=0.1)
    assert spec.params() == {"noise_multiplier": 0.1, "max_grad_norm": 1.0, "delta": None}
    assert set(DEFENSES) == {"none", "ppb", "advreg", "dpsgd"}
    assert all(cls.name == name for name, cls in DEFENSES.items())
    with pytest.raises(ValueError, match="no objective"):
        spec.objective(Data(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), 2), 2)
    with pytest.raises(TypeError, match="make_defense"):
        finetune(mlp(), blobs(8, 0), blobs(8, 1), TrainConfig(epochs=1), "ppb")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "opts"),
    [("none", {}), ("ppb", {"lam": 8.0}), ("advreg", {"theta": 2.0}), ("dpsgd", {})],
)
def test_finetune_uniform_result(name: str, opts: dict, train: Data, dev: Data) -> None:
    model = mlp(seed=5)
    cfg = TrainConfig(epochs=2, batch_size=32, patience=0)
    res = finetune(model, train, dev, cfg, make_defense(name, **opts), device="cpu")
    assert isinstance(res, DefenseResult) and res.name == name
    assert res.model is model and res.epochs_run == 2 and len(res.history) == 2
    assert 0.0 <= res.best_dev_acc <= 1.0
    assert res.params == make_defense(name, **opts).params()
    row = res.record()
    assert row["defense"] == name and "model" not in row
    if name == "dpsgd":
        assert math.isfinite(res.epsilon) and res.delta == 1e-5
    else:
        assert res.epsilon is None and res.delta is None and res.converted == []


def test_dp_finetune_accepts_an_eval_mode_model_without_batchnorm():
    """The pipeline hands DP-SGD an eval-mode copy; models without BatchNorm are not copied."""
    import torch
    from torch import nn

    from miakit.data import Data
    from miakit.defenses import dp_finetune
    from miakit.train import TrainConfig

    g = torch.Generator().manual_seed(0)
    data = Data(torch.randn(64, 5, generator=g), torch.randint(0, 3, (64,), generator=g), 3)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    res = dp_finetune(model, data, data, TrainConfig(epochs=1), noise_multiplier=1.0)
    assert res.converted == [] and res.epsilon > 0


@pytest.mark.parametrize(
    "defense", [NoDefense(), PPBParams(lam=2.0), AdvRegParams(), DPSGDParams()], ids=str
)
def test_finetune_keeps_pruned_weights_exactly_zero(defense: DefenseParams, train, dev) -> None:
    model = prune_model(mlp(seed=9), "l1_unstructured", 0.5)
    masks = {n: m.weight_mask.clone() for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.02, patience=0)
    res = finetune(model, train, dev, cfg, defense, device="cpu")
    assert res.model is model
    for name, mask in masks.items():
        layer = model.get_submodule(name)
        assert torch.equal(layer.weight_mask, mask)
        assert (layer.weight[mask == 0] == 0).all()
    copy.deepcopy(model)  # the masked tensors were refreshed: deep-copyable again


def test_finetune_reports_a_lost_mask(train: Data, dev: Data, monkeypatch) -> None:
    """The mask check can fail: a fit that drops the masks is caught."""
    import miakit.defenses.base as base
    from miakit.prune import make_permanent

    real_fit = base.fit

    def fit_then_unmask(model, *args, **kwargs):
        out = real_fit(model, *args, **kwargs)
        make_permanent(model)
        return out

    monkeypatch.setattr(base, "fit", fit_then_unmask)
    model = prune_model(mlp(seed=10), "l1_unstructured", 0.5)
    with pytest.raises(RuntimeError, match="lost pruning masks"):
        finetune(model, train, dev, TrainConfig(epochs=1, patience=0), device="cpu")


def test_cached_rdp_epsilon_is_the_accountants() -> None:
    """The per-epoch epsilon from the cached one-step RDP equals Opacus's accountant's."""
    import warnings

    from opacus.accountants import RDPAccountant

    from miakit.defenses._dp_loop import _RDP_ORDERS, rdp_epsilon

    accountant = RDPAccountant()
    assert rdp_epsilon(accountant.history, 1e-5) == 0.0
    for sigma, q, steps in ((1.0, 0.07, 30), (0.1, 0.07, 8), (1.0, 0.07, 12), (0.5, 0.2, 3)):
        for _ in range(steps):
            accountant.step(noise_multiplier=sigma, sample_rate=q)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = accountant.get_epsilon(delta=1e-5, alphas=_RDP_ORDERS)
        assert rdp_epsilon(accountant.history, 1e-5) == pytest.approx(expected, rel=1e-12)
