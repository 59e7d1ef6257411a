"""DP-SGD fine-tuning keeps a pruned model pruned, for every pruning method.

PAPER.md, "The defense": "keep pruning masks intact: a BatchNorm-to-GroupNorm swap must
not revive pruned channels". Small BatchNorm models (``small_cnn``, ``signal_cnn``) with
non-trivial BatchNorm statistics are pruned with each method of ``PRUNERS``, fine-tuned
with DP-SGD (tiny data, 2 epochs), then checked: every masked entry exactly zero, every
pruned BatchNorm channel exactly zero on real inputs, the sparsity report unchanged, and
the cached round trip (rebuild, restore_masks, load_state_dict) giving the same outputs.
Also: the first DP epoch is kept even when the pruned model was better (never epoch 0),
the frozen BatchNorm's per-sample gradients are exact, and DP points carry epsilon in
tables and figures.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch
from torch import nn

from miakit import plots
from miakit.data import Data
from miakit.defenses import DPSGDParams, convert_for_opacus
from miakit.models import build_model
from miakit.prune import (
    PRUNERS,
    effective_tensor,
    masked_tensors,
    prune_model,
    restore_masks,
    sparsity_report,
)
from miakit.tables import model_columns
from miakit.train import TrainConfig, dev_accuracy, fit
from miakit.variants import Variant

K = 3
SHAPES = {"small_cnn": (1, 8, 8), "signal_cnn": (24,)}
BATCHNORM = nn.modules.batchnorm._BatchNorm


def _data(shape: tuple[int, ...], n: int, seed: int) -> Data:
    """Inputs whose mean depends on the class (learnable), same centres for every seed."""
    centres = torch.randn(K, *shape, generator=torch.Generator().manual_seed(99))
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, K, (n,), generator=g)
    return Data(centres[y] + torch.randn(n, *shape, generator=g), y, num_classes=K)


def _model(arch: str, data: Data) -> nn.Module:
    """A model whose BatchNorm layers have non-trivial statistics and scales."""
    torch.manual_seed(0)
    model = build_model(arch, K, SHAPES[arch])
    for bn in (m for m in model.modules() if isinstance(m, BATCHNORM)):
        bn.momentum = None  # cumulative average: the statistics of the data below
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    with torch.no_grad():
        model.train()(data.x)
    return model.eval()


def _bn_outputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    outs: dict[str, torch.Tensor] = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, o, n=n: outs.__setitem__(n, o.detach()))
        for n, m in model.named_modules()
        if isinstance(m, BATCHNORM)
    ]
    with torch.no_grad():
        model.eval()(x)
    for h in hooks:
        h.remove()
    return outs


#: What pruning fixed: zero Conv/Linear weights, zero BN channels, the MACs left. (Zeros of
#: unmasked tensors, e.g. a zero-initialised bias, may move: they are not counted.)
_FIXED = ("weights", "zero_weights", "sparsity", "channel_sparsity", "macs_effective", "traced")


def _report(model: nn.Module, shape: tuple[int, ...]) -> tuple[list, list]:
    """The sparsity report's fixed numbers (NaN as None) and each layer's dead channels."""
    rep = sparsity_report(model, shape)
    summary = rep.summary()
    fixed = [
        None if isinstance(v, float) and math.isnan(v) else v for v in map(summary.get, _FIXED)
    ]
    return fixed, rep.layers[["name", "type", "channels", "dead_channels"]].values.tolist()


@pytest.mark.parametrize("arch", sorted(SHAPES))
@pytest.mark.parametrize("method", sorted(PRUNERS))
def test_dp_finetuning_keeps_every_mask_and_channel(arch: str, method: str) -> None:
    shape = SHAPES[arch]
    train, dev = _data(shape, 64, 1), _data(shape, 32, 2)
    model = prune_model(_model(arch, train), method, 0.5)
    masks = {(q, t): getattr(m, t + "_mask").clone() for q, m, t in masked_tensors(model)}
    before_tensors = {k: effective_tensor(model.get_submodule(k[0]), k[1]) for k in masks}
    report0 = _report(model, shape)
    # channels that pruning zeroed: BN channels with gamma and beta both masked
    dead = {
        q: (masks[q, "weight"] == 0) & (masks[q, "bias"] == 0)
        for q, t in masks
        if t == "weight" and isinstance(model.get_submodule(q), BATCHNORM)
    }
    if method != "l1_unstructured":
        assert dead and all(d.any() for d in dead.values()), "precondition: channels pruned"
        assert report0[0][_FIXED.index("channel_sparsity")] > 0
    cfg = TrainConfig(epochs=2, batch_size=32, lr=1e-2, patience=0, seed=0)
    res = DPSGDParams(noise_multiplier=2.0).finetune(model, train, dev, cfg, device="cpu")

    assert res.model is model and math.isfinite(res.epsilon) and res.epsilon > 0
    assert {(q, t) for q, _, t in masked_tensors(model)} == set(masks)
    changed = False
    for (q, t), mask in masks.items():
        module = model.get_submodule(q)
        assert torch.equal(getattr(module, t + "_mask"), mask)
        value = effective_tensor(module, t)
        assert torch.equal(value[mask == 0], torch.zeros_like(value[mask == 0]))
        assert (getattr(module, t + "_orig")[mask == 0] == 0).all()
        changed |= not torch.equal(value, before_tensors[q, t])
    assert changed, "precondition: DP-SGD changed the weights"
    # every pruned channel is exactly zero on real inputs, in every BatchNorm
    outs = _bn_outputs(model, dev.x)
    for q, d in dead.items():
        assert (outs[q][:, d] == 0).all(), f"{q}: a pruned channel came back"
        assert (outs[q][:, ~d] != 0).any()
    # the sparsity report is the one before DP (structured: the same dead channels)
    assert _report(model, shape) == report0
    norms = {type(m) for m in model.modules() if isinstance(m, BATCHNORM)}
    assert norms == {nn.BatchNorm2d}  # plain again, not left frozen

    # the cached round trip: rebuild a fresh model, restore its masks, load the state
    state = {k: v.clone() for k, v in model.state_dict().items()}
    fresh = DPSGDParams().rebuild(build_model(arch, K, shape))
    restore_masks(fresh, state)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.eval()(dev.x), model.eval()(dev.x))
    assert _report(fresh, shape) == report0


def test_dp_keeps_the_first_finetuned_epoch_never_the_pruned_model() -> None:
    """PAPER.md, "Pruning": the un-fine-tuned pruned model (epoch 0) is never kept."""
    shape = SHAPES["small_cnn"]
    train, dev = _data(shape, 96, 1), _data(shape, 48, 2)
    model = _model("small_cnn", train)
    fit(model, train, dev, TrainConfig(epochs=4, batch_size=32, lr=1e-2, seed=0), device="cpu")
    prune_model(model, "l1_structured", 0.3)
    initial = float(dev_accuracy(model, dev.x, dev.y))
    state0 = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(epochs=1, batch_size=32, lr=0.3, patience=0, seed=0)
    res = DPSGDParams(noise_multiplier=20.0).finetune(model, train, dev, cfg, device="cpu")
    assert res.history[0]["dev_acc"] < initial, "precondition: DP made it worse"
    assert res.best_epoch == 1 and res.best_dev_acc == res.history[0]["dev_acc"]
    assert any(not torch.equal(v, state0[k]) for k, v in model.state_dict().items())


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_frozen_batchnorm_per_sample_gradients_are_exact() -> None:
    from opacus import GradSampleModule

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3)
    )
    bn = model[1]
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    x, y = torch.randn(5, 2, 4, 4), torch.randint(0, 3, (5,))
    convert_for_opacus(model)
    assert type(bn) in GradSampleModule.GRAD_SAMPLERS  # its own sampler, not functorch's
    stats = (bn.running_mean.clone(), bn.running_var.clone())
    want = []
    for i in range(5):  # per-sample gradients, one sample at a time
        model.zero_grad()
        nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        want.append((bn.weight.grad.clone(), bn.bias.grad.clone()))
    gsm = GradSampleModule(model, loss_reduction="sum", strict=False)
    gsm.train()
    nn.functional.cross_entropy(gsm(x), y, reduction="sum").backward()
    torch.testing.assert_close(bn.weight.grad_sample, torch.stack([w for w, _ in want]))
    torch.testing.assert_close(bn.bias.grad_sample, torch.stack([b for _, b in want]))
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])
    gsm.to_standard_module()


def test_tables_carry_epsilon_and_delta_of_a_dp_model() -> None:
    info = {"train_acc": 0.9, "test_acc": 0.8, "defense_epsilon": 7.5, "defense_delta": 1e-5}
    trained = SimpleNamespace(info=info, model=build_model("mlp", 10, (40,)))
    exp = SimpleNamespace(
        model=lambda role, variant: trained, data=SimpleNamespace(x=torch.zeros(1, 40))
    )
    variant = Variant("l1_unstructured", 0.7, DPSGDParams(noise_multiplier=1.0))
    cols = model_columns(exp, variant)
    assert (cols["victim_epsilon"], cols["victim_delta"]) == (7.5, 1e-5)


def test_privacy_utility_labels_dp_points_with_epsilon() -> None:
    frame = pd.DataFrame(
        {
            "victim_defense": ["none", "ppb", "dpsgd", "dpsgd"],
            "parameter": ["none", "λ=4", "σ=0.1", "σ=1"],
            "victim_test_acc": [0.71, 0.70, 0.52, 0.49],
            "auc": [0.80, 0.70, 0.66, 0.60],
            "victim_epsilon": [None, None, 2861.571, 9.398],
            "victim_delta": [None, None, 1e-5, 1e-5],
        }
    )
    ax = plots.privacy_utility(frame, label="parameter").axes[0]
    assert [t.get_text() for t in ax.texts] == [
        "no defense",
        "λ=4",
        "σ=0.1, ε=2862",
        "σ=1, ε=9.4",
    ]
    assert "DP-SGD (ε at δ=1e-05)" in [line.get_label() for line in ax.lines]
    plt.close("all")
    ax = plots.privacy_utility(frame).axes[0]  # no label column: the epsilon alone
    assert [t.get_text() for t in ax.texts] == ["ε=2862", "ε=9.4"]
    plt.close("all")
    with pytest.raises(ValueError, match="epsilon"):
        plots.privacy_utility(frame.drop(columns="victim_epsilon"))


def test_dp_on_a_slimmed_model_resumes_exactly_and_a_kill_leaves_plain_batchnorm(
    tmp_path, monkeypatch
) -> None:
    """A kill after epoch 1 leaves the model with plain BatchNorm and its masks; the rerun
    from the checkpoint ends with the uninterrupted run's weights and epsilon."""
    shape = SHAPES["small_cnn"]
    train, dev = _data(shape, 64, 1), _data(shape, 32, 2)
    cfg = TrainConfig(epochs=2, batch_size=32, lr=1e-2, patience=0, seed=0)
    dp = DPSGDParams(noise_multiplier=2.0)

    def pruned() -> nn.Module:
        return prune_model(_model("small_cnn", train), "slimming", 0.5)

    ref = dp.finetune(pruned(), train, dev, cfg, device="cpu")
    ckpt = tmp_path / "dp.ckpt"
    killed = pruned()
    names = {(q, t) for q, _, t in masked_tensors(killed)}
    real_save, calls = torch.save, []

    def save(*args, **kwargs) -> None:
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        real_save(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(torch, "save", save)
        with pytest.raises(KeyboardInterrupt):
            dp.finetune(killed, train, dev, cfg, checkpoint=ckpt, device="cpu")
    assert ckpt.exists()
    bns = [type(m) for m in killed.modules() if isinstance(m, BATCHNORM)]
    assert bns and set(bns) == {nn.BatchNorm2d}
    assert {(q, t) for q, _, t in masked_tensors(killed)} == names
    res = dp.finetune(pruned(), train, dev, cfg, checkpoint=ckpt, device="cpu")
    assert not ckpt.exists() and res.epsilon == ref.epsilon and res.history == ref.history
    want = ref.model.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in res.model.state_dict().items())
