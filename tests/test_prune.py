"""Tests of the pruning methods, their registry, mask bookkeeping, fine-tuning, sparsity
accounting and compaction (the package miakit.prune).

The registry test covers small_cnn, mlp, fc and resnet18; ``MIAKIT_FULL_TESTS=1`` adds
vgg16_bn, mobilenetv2 and densenet121 (about a minute more on one CPU thread).
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from miakit.data import Data
from miakit.defenses import finetune
from miakit.models import build_model, has_batchnorm, is_convnet
from miakit.prune import (
    PRUNERS,
    CompactionReport,
    PrunerSpec,
    apply_masks,
    check_sparsity,
    compact,
    compaction_report,
    is_pruned,
    l1_structured,
    l1_unstructured,
    l2_structured,
    make_permanent,
    prune_model,
    reapply_masks,
    refresh_masked_tensors,
    restore_masks,
    slimming,
    slimming_penalty,
    sparsity_report,
    strip_masks,
)
from miakit.train import TrainConfig, fit

FULL = os.environ.get("MIAKIT_FULL_TESTS") == "1"
HEAVY = ["vgg16_bn", "mobilenetv2", "densenet121"]


# ---------------------------------------------------------------------------
# Small models and data
# ---------------------------------------------------------------------------


class TinyConvNet(nn.Module):
    """conv(bias)-BN-ReLU, conv-BN-ReLU, global pool, Linear: every method applies."""

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 6, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(6)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def _randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """BN parameters and statistics as after training: distinct |gamma|, non-zero beta/mean."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.weight.copy_(
                    (torch.rand(c, generator=g) * 1.9 + 0.1)
                    * torch.sign(torch.randn(c, generator=g))
                )
                m.bias.copy_(torch.randn(c, generator=g) * 0.5)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
    return model


def _tiny(seed: int = 0) -> TinyConvNet:
    torch.manual_seed(seed)
    return _randomise_bn(TinyConvNet(), seed)


def _images(n: int, seed: int, k: int = 3) -> Data:
    """Learnable 1x8x8 images: a fixed pattern per class plus noise."""
    patterns = torch.randn(k, 1, 8, 8, generator=torch.Generator().manual_seed(99))
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    return Data(patterns[y] + 0.5 * torch.randn(n, 1, 8, 8, generator=g), y, k, "tiny")


def _zero_filters(conv: nn.Module) -> torch.Tensor:
    return (conv.weight.detach().flatten(1) == 0).all(dim=1)


def _zero_bn(bn: nn.Module) -> torch.Tensor:
    return (bn.weight.detach() == 0) & (bn.bias.detach() == 0)


# ---------------------------------------------------------------------------
# L1 unstructured
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("s", [0.0, 0.25, 0.3, 0.5, 0.7, 0.9, 0.999])
def test_l1_unstructured_linear_exact_count_of_smallest(s):
    torch.manual_seed(0)
    layer = nn.Linear(10, 20)
    w, b = layer.weight.detach().clone(), layer.bias.detach().clone()
    l1_unstructured(layer, s)
    zeros = layer.weight == 0
    # torch's rounding (Python round), capped so one weight survives: 0.999 -> 199 of 200
    assert int(zeros.sum()) == min(round(s * 200), 199)
    if 0 < zeros.sum() < 200:
        assert w.abs()[zeros].max() <= w.abs()[~zeros].min()  # the smallest magnitudes
    assert torch.equal(layer.bias, b)  # biases are never masked
    assert not hasattr(layer, "bias_mask") and is_pruned(layer)


def test_l1_unstructured_is_layerwise_and_global_is_one_threshold():
    model = _tiny()
    layers = [model.conv1, model.conv2, model.fc]
    l1_unstructured(model, 0.3)
    for m in layers:  # 72, 432, 18 weights -> 22, 130, 5
        assert int((m.weight == 0).sum()) == round(0.3 * m.weight.numel())

    model = _tiny()
    layers = [model.conv1, model.conv2, model.fc]
    before = torch.cat([m.weight.detach().abs().flatten() for m in layers])
    l1_unstructured(model, 0.3, scope="global")
    after = torch.cat([m.weight.detach().flatten() for m in layers])
    assert int((after == 0).sum()) == round(0.3 * after.numel())
    assert before[after == 0].max() <= before[after != 0].min()
    counts = [int((m.weight == 0).sum()) for m in layers]
    assert counts != [22, 130, 5]  # layers are pruned unequally under one threshold


# ---------------------------------------------------------------------------
# L1 / L2 structured (filters)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("method,p", [("l1_structured", 1), ("l2_structured", 2)])
@pytest.mark.parametrize("s", [0.3, 0.5, 0.9])
def test_structured_prunes_exact_smallest_filters_and_their_bn(method, p, s):
    model = _tiny()
    norms = {c: c.weight.detach().flatten(1).norm(p=p, dim=1) for c in (model.conv1, model.conv2)}
    prune_model(model, method, s)
    for conv, bn in ((model.conv1, model.bn1), (model.conv2, model.bn2)):
        k = round(s * conv.out_channels)  # 0.3: 2, 2; 0.5: 4, 3; 0.9: 7, 5
        dead = _zero_filters(conv)
        assert int(dead.sum()) == k
        assert set(dead.nonzero().flatten().tolist()) == set(norms[conv].argsort()[:k].tolist())
        assert torch.equal(_zero_bn(bn), dead)  # mask_bn: the channel is zero after BN
        if conv.bias is not None:
            assert torch.all(conv.bias[dead] == 0) and torch.all(conv.bias[~dead] != 0)
    assert not hasattr(model.fc, "weight_mask")  # the classifier is not pruned


def test_l1_and_l2_rank_filters_differently():
    conv = nn.Conv2d(1, 2, (1, 4), bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, 1.0, 1.0, 1.0]]], [[[3.0, 0.0, 0.0, 0.0]]]]))
    net = nn.Sequential(conv)
    a, b = copy.deepcopy(net), copy.deepcopy(net)
    l1_structured(a, 0.5)  # L1 norms 4 vs 3: the second filter goes
    l2_structured(b, 0.5)  # L2 norms 2 vs 3: the first filter goes
    assert _zero_filters(a[0]).tolist() == [False, True]
    assert _zero_filters(b[0]).tolist() == [True, False]


def test_structured_mask_bn_false_keeps_the_bn_channel():
    model = l1_structured(_tiny(), 0.5, mask_bn=False)
    assert int(_zero_filters(model.conv1).sum()) == 4
    assert not hasattr(model.bn1, "weight_mask") and int(_zero_bn(model.bn1).sum()) == 0


# ---------------------------------------------------------------------------
# Network slimming
# ---------------------------------------------------------------------------


def _set_gammas(model: TinyConvNet, g1: list[float], g2: list[float]) -> None:
    with torch.no_grad():
        model.bn1.weight.copy_(torch.tensor(g1))
        model.bn2.weight.copy_(torch.tensor(g2))


def test_slimming_global_ranks_abs_gamma_and_masks_gamma_and_beta():
    model = _tiny()
    _set_gammas(model, [0.1, -0.2, 0.9, 1.0, 0.05, 0.7, -0.8, 0.6], [0.3, 0.15, -0.4, 0.5, 2, 1])
    slimming(model, 0.5)  # 7 of 14: |gamma| 0.05 0.1 0.15 0.2 0.3 0.4 0.5
    assert _zero_bn(model.bn1).nonzero().flatten().tolist() == [0, 1, 4]
    assert _zero_bn(model.bn2).nonzero().flatten().tolist() == [0, 1, 2, 3]
    assert int(_zero_filters(model.conv1).sum()) == 0  # convs untouched


def test_slimming_keeps_one_channel_per_layer_and_the_exact_count():
    model = _tiny()
    _set_gammas(model, [0.01 * (i + 1) for i in range(8)], [1, 2, 3, 4, 5, 6])
    slimming(model, 0.6)  # round(8.4) = 8 channels; bn1 may lose only 7 (keeps 0.08)
    assert _zero_bn(model.bn1).tolist() == [True] * 7 + [False]
    assert _zero_bn(model.bn2).tolist() == [True] + [False] * 5  # the next smallest instead
    model = _tiny()
    _set_gammas(model, [0.01 * (i + 1) for i in range(8)], [1, 2, 3, 4, 5, 6])
    slimming(model, 0.6, scope="layer")  # round(4.8) = 5 and round(3.6) = 4
    assert _zero_bn(model.bn1).tolist() == [True] * 5 + [False] * 3
    assert _zero_bn(model.bn2).tolist() == [True] * 4 + [False] * 2


def test_slimmed_channel_outputs_exactly_zero_after_bn():
    model = slimming(_tiny(), 0.5).eval()
    out = {}
    model.bn1.register_forward_hook(lambda m, i, o: out.setdefault("bn1", o))
    model(_images(4, 0).x)
    dead = _zero_bn(model.bn1)
    assert dead.any() and torch.all(out["bn1"][:, dead] == 0)
    assert torch.all(out["bn1"][:, ~dead].abs().sum((0, 2, 3)) > 0)


def test_slimming_penalty_is_ce_plus_lam_l1_of_gamma():
    model = _tiny().train()
    data = _images(8, 0)
    obj = slimming_penalty(0.01)
    loss = obj(model, data.x, data.y)
    expected = F.cross_entropy(model(data.x), data.y) + 0.01 * (
        model.bn1.weight.abs().sum() + model.bn2.weight.abs().sum()
    )
    assert torch.allclose(loss, expected)
    loss.backward()
    g_penalty_free = copy.deepcopy(model)
    g_penalty_free.zero_grad()
    F.cross_entropy(g_penalty_free(data.x), data.y).backward()
    diff = model.bn1.weight.grad - g_penalty_free.bn1.weight.grad
    assert torch.allclose(diff, 0.01 * model.bn1.weight.sign(), atol=1e-6)
    for bad in (-1.0, math.nan, "x"):
        with pytest.raises(ValueError, match="lam must be"):
            slimming_penalty(bad)
    with pytest.raises(ValueError, match="needs affine BatchNorm"):
        obj(nn.Linear(3, 2), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))


# ---------------------------------------------------------------------------
# Every registry architecture
# ---------------------------------------------------------------------------

# The smallest inputs each arch takes (DenseNet121's max-pool stem needs 15x15, PAPER.md).
SHAPES = {"fc": (20,), "mlp": (40,), "small_cnn": (1, 8, 8), "densenet121": (3, 16, 16)}
ARCH_CASES = [
    (arch, method)
    for arch in ["small_cnn", "mlp", "fc", "resnet18", *(HEAVY if FULL else [])]
    for method in PRUNERS
]


def _applies(model: nn.Module, method: str) -> bool:
    if method in ("l1_structured", "l2_structured"):
        return is_convnet(model)
    return method != "slimming" or has_batchnorm(model)


@pytest.mark.parametrize("arch,method", ARCH_CASES)
def test_every_registry_arch_realises_the_requested_sparsity(arch, method):
    s = 0.7
    model = build_model(arch, 10, SHAPES.get(arch, (3, 8, 8)), seed=0)
    if not _applies(model, method):
        with pytest.raises(ValueError, match="use l1_unstructured"):
            prune_model(model, method, s)
        return
    _randomise_bn(model)
    prune_model(model, method, s)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if method == "l1_unstructured":  # every layer exactly, so overall within 0.5 / layer
        layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        n = [m.weight.numel() for m in layers]
        zeros = [int((m.weight == 0).sum()) for m in layers]
        assert zeros == [round(s * k) for k in n]
        assert abs(sum(zeros) / sum(n) - s) <= 0.5 * len(n) / sum(n)
    elif method == "slimming":  # one global count over all BN channels
        total = sum(b.num_features for b in bns)
        dead = sum(int(_zero_bn(b).sum()) for b in bns)
        assert dead == round(s * total)
        assert all(int((~_zero_bn(b)).sum()) >= 1 for b in bns)
    else:  # every conv exactly, so the conv weights within 0.5 / C_min
        dead = [int(_zero_filters(c).sum()) for c in convs]
        assert dead == [round(s * c.out_channels) for c in convs]
        frac = sum(int((c.weight == 0).sum()) for c in convs) / sum(c.weight.numel() for c in convs)
        assert abs(frac - s) <= 0.5 / min(c.out_channels for c in convs)
        assert all(
            not hasattr(m, "weight_mask") for m in model.modules() if isinstance(m, nn.Linear)
        )


@pytest.mark.parametrize("arch", ["small_cnn", "mlp"])
def test_sparsity_report_matches_the_masks_on_registry_models(arch):
    shape = SHAPES[arch]
    model = l1_unstructured(build_model(arch, 10, shape, seed=0), 0.7)
    rep = sparsity_report(model, shape)
    assert rep.traced
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert rep.weights == sum(m.weight.numel() for m in layers)
    assert rep.zero_weights == sum(round(0.7 * m.weight.numel()) for m in layers)
    assert abs(rep.sparsity - 0.7) <= 0.5 * len(layers) / rep.weights
    assert 0.29 < rep.macs_fraction < 0.31  # 30% of each layer's weights remain


# ---------------------------------------------------------------------------
# Fine-tuning keeps the masks
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", list(PRUNERS))
def test_finetune_keeps_pruned_weights_exactly_zero(method):
    train, dev = _images(96, 0), _images(48, 1)
    model = prune_model(_tiny(), method, 0.5)
    masks = {k: v.clone() for k, v in model.state_dict().items() if k.endswith("_mask")}
    origs = {k: v.clone() for k, v in model.state_dict().items() if k.endswith("_orig")}
    result = finetune(model, train, dev, TrainConfig(epochs=2, patience=0, batch_size=16, lr=0.02))
    assert result.epochs_run == 2 and result.best_epoch >= 1
    state = model.state_dict()
    assert any(not torch.equal(state[k], v) for k, v in origs.items())  # it trained
    for key, mask in masks.items():
        assert torch.equal(state[key], mask)
        module = model.get_submodule(key.rsplit(".", 1)[0])
        tensor = getattr(module, key.rsplit(".", 1)[1][: -len("_mask")])
        assert torch.all(tensor[mask == 0] == 0) and torch.all(tensor[mask == 1] != 0)
    copy.deepcopy(model)  # finetune leaves the masked model deep-copyable


def test_without_masks_fine_tuning_revives_pruned_weights():
    """The control of the test above: plain zeros do not survive training."""
    train, dev = _images(96, 0), _images(48, 1)
    model = make_permanent(l1_unstructured(_tiny(), 0.5))
    zeros = int((model.conv2.weight == 0).sum())
    fit(model, train, dev, TrainConfig(epochs=2, patience=0, batch_size=16, lr=0.02))
    assert int((model.conv2.weight == 0).sum()) < zeros


def test_finetune_with_slimming_penalty_on_registry_small_cnn():
    train = _images(64, 0, k=10)
    dev = _images(32, 1, k=10)
    model = slimming(_randomise_bn(build_model("small_cnn", 10, (1, 8, 8), seed=0)), 0.5)
    fit(model, train, dev, TrainConfig(epochs=2, patience=0), objective=slimming_penalty())
    refresh_masked_tensors(model)
    assert sparsity_report(model, (1, 8, 8)).channel_sparsity == round(0.5 * 160) / 160


# ---------------------------------------------------------------------------
# make_permanent, restore_masks, is_pruned
# ---------------------------------------------------------------------------


def test_make_permanent_gives_plain_state_dict_with_the_zeros():
    model = l1_structured(_tiny(), 0.5).eval()
    x = _images(4, 0).x
    expected = model(x)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    assert "conv1.weight_orig" in saved and "bn1.bias_mask" in saved
    make_permanent(model)
    assert not is_pruned(model)
    keys = set(model.state_dict())
    assert "conv1.weight" in keys and not any(k.endswith(("_orig", "_mask")) for k in keys)
    assert int(_zero_filters(model.conv1).sum()) == 4
    assert torch.allclose(model(x), expected)

    fresh = _tiny(seed=5)
    with pytest.raises(RuntimeError):
        fresh.load_state_dict(saved)  # a dense model cannot load a pruned state_dict...
    restore_masks(fresh, saved).load_state_dict(saved)  # ...until it has the masks
    assert is_pruned(fresh) and torch.allclose(fresh.eval()(x), expected)
    with pytest.raises(ValueError, match="does not have"):
        restore_masks(nn.Linear(2, 2), {"conv9.weight_mask": torch.ones(1)})


# ---------------------------------------------------------------------------
# The registry and its override point
# ---------------------------------------------------------------------------


def test_every_pruner_has_its_name_and_display_title():
    from miakit.plots import display_name

    assert list(PRUNERS) == ["l1_unstructured", "l1_structured", "l2_structured", "slimming"]
    for name, spec in PRUNERS.items():
        assert isinstance(spec, PrunerSpec) and spec.name == name
        assert isinstance(spec.title, str) and spec.title.strip() and spec.title != name
        assert display_name(name) == spec.title  # figures show it (texts pinned in test_plots)
    assert "l1_unstructured" in PRUNERS and "l3_magic" not in PRUNERS
    assert ", ".join(PRUNERS) == "l1_unstructured, l1_structured, l2_structured, slimming"
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRUNERS["slimming"].title = "other"


@pytest.mark.parametrize(
    "method,fn",
    [("l1_unstructured", l1_unstructured), ("l1_structured", l1_structured),
     ("l2_structured", l2_structured), ("slimming", slimming)],
)  # fmt: skip
def test_masks_functions_leave_the_model_alone_and_match_the_in_place_method(method, fn):
    model = _tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    masks = PRUNERS[method].masks(model, 0.5)
    assert not is_pruned(model) and model.state_dict().keys() == before.keys()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    names = {m: n for n, m in model.named_modules()}
    expected = {f"{names[m]}.{t}_mask": mask for (m, t), mask in masks.items()}
    pruned = fn(_tiny(), 0.5)
    state = pruned.state_dict()
    assert sorted(k for k in state if k.endswith("_mask")) == sorted(expected)
    assert all(torch.equal(state[k], v) for k, v in expected.items())
    called = PRUNERS[method](_tiny(), 0.5).state_dict()  # a spec prunes like its function
    assert list(called) == list(state) and all(torch.equal(called[k], state[k]) for k in state)


def test_a_new_method_is_one_masks_function_and_one_registry_line(monkeypatch):
    def first_filter_masks(model: nn.Module, sparsity: float) -> dict:
        check_sparsity(sparsity)
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        masks = {}
        for conv in convs:
            mask = torch.ones_like(conv.weight)
            mask[0] = 0
            masks[conv, "weight"] = mask
        return masks

    monkeypatch.setitem(PRUNERS, "first", PrunerSpec("first", "first filter", first_filter_masks))
    model = _tiny().to(memory_format=torch.channels_last)
    prune_model(model, "first", 0.5)
    assert is_pruned(model) and model.conv1.weight.is_contiguous()
    assert _zero_filters(model.conv1).tolist() == [True] + [False] * 7
    assert _zero_filters(model.conv2).tolist() == [True] + [False] * 5
    with pytest.raises(ValueError, match="first: TinyConvNet is already pruned"):
        prune_model(model, "first", 0.5)
    with pytest.raises(ValueError, match="apply_masks: Linear is already pruned"):
        layer = l1_unstructured(nn.Linear(2, 2), 0.5)
        apply_masks(layer, {(layer, "bias"): torch.ones(2)})


def test_strip_and_reapply_masks_round_trip():
    model = l1_structured(_tiny(), 0.5).eval()
    x = _images(4, 0).x
    expected = model(x)
    masks = strip_masks(model)
    assert not is_pruned(model)
    assert set(masks) == {
        ("conv1", "weight"), ("conv1", "bias"), ("bn1", "weight"), ("bn1", "bias"),
        ("conv2", "weight"), ("bn2", "weight"), ("bn2", "bias"),
    }  # fmt: skip
    assert torch.equal(masks["conv1", "bias"], (~_zero_filters(model.conv1)).float())
    assert torch.allclose(model(x), expected)  # the zeros stay, now plain
    assert strip_masks(model) == {}
    reapply_masks(model, masks)
    assert is_pruned(model) and torch.equal(model.conv1.weight_mask, masks["conv1", "weight"])
    with torch.no_grad():
        model.conv1.weight_orig.add_(1.0)  # training w_orig cannot revive a pruned filter
    model(x)  # the pre-hook recomputes weight = weight_orig * weight_mask
    assert int(_zero_filters(model.conv1).sum()) == 4


# ---------------------------------------------------------------------------
# Layer rule: the package sits below train and data
# ---------------------------------------------------------------------------

PRUNE_DIR = Path(__file__).resolve().parents[1] / "miakit" / "prune"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_prune_package_imports_neither_train_nor_data():
    files = sorted(PRUNE_DIR.glob("*.py"))
    assert {f.name for f in files} >= {"methods.py", "masks.py", "sparsity.py", "compact.py"}
    for path in files:
        miakit = {m for m in _imports(path) if m == "miakit" or m.startswith("miakit.")}
        outside = {m for m in miakit if not m.startswith(("miakit.prune", "miakit._util"))}
        assert not outside, f"{path.name} imports {sorted(outside)} (prune/ is layer L1)"
    code = (
        "import sys, miakit.prune; "
        "bad = [m for m in ('miakit.train', 'miakit.data') if m in sys.modules]; "
        "assert not bad, bad; assert not hasattr(miakit.prune, 'finetune')"
    )
    root = PRUNE_DIR.parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
    import miakit.prune

    with pytest.raises(AttributeError, match="has no attribute 'nonexistent'"):
        miakit.prune.nonexistent  # noqa: B018


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


BAD_SPARSITIES = [1.0, 1.5, -0.1, math.nan, "0.5", None, True]
SPARSITY_ERROR = r"sparsity must be a number in \[0, 1\) \(the fraction of weights removed\)"


@pytest.mark.parametrize("bad", BAD_SPARSITIES)
@pytest.mark.parametrize("method", list(PRUNERS))
def test_bad_sparsity_is_one_clear_error(method, bad):
    with pytest.raises(ValueError, match=SPARSITY_ERROR) as err:
        prune_model(_tiny(), method, bad)
    assert f"got {bad!r}" in str(err.value) and "such as 0.7" in str(err.value)


def test_check_sparsity_accepts_fractions_and_rejects_the_rest():
    assert check_sparsity(0) == 0.0 and isinstance(check_sparsity(0), float)
    assert check_sparsity(0.7) == 0.7 and check_sparsity(np.float64(0.5)) == 0.5
    assert check_sparsity(np.float32(0.7)) == float(np.float32(0.7))
    for bad in (1.0, -0.1, True, "0.5"):
        with pytest.raises(ValueError, match=SPARSITY_ERROR) as err:
            check_sparsity(bad)
        assert f"got {bad!r}" in str(err.value)


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown pruning method 'l3_magic'") as err:
        prune_model(_tiny(), "l3_magic", 0.5)
    assert all(name in str(err.value) for name in PRUNERS)


def test_methods_refuse_models_they_do_not_apply_to():
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    for method in ("l1_structured", "l2_structured"):
        with pytest.raises(ValueError, match="Sequential has no Conv2d.*use l1_unstructured"):
            prune_model(mlp, method, 0.5)
    with pytest.raises(ValueError, match="Sequential has no affine BatchNorm.*use l1_unstructured"):
        slimming(mlp, 0.5)
    with pytest.raises(ValueError, match="has none"):
        l1_unstructured(nn.Sequential(nn.ReLU()), 0.5)
    with pytest.raises(ValueError, match="scope must be"):
        l1_unstructured(mlp, 0.5, scope="model")
    with pytest.raises(ValueError, match="scope must be"):
        slimming(_tiny(), 0.5, scope="net")
    with pytest.raises(ValueError, match="already pruned.*make_permanent"):
        l1_unstructured(l1_unstructured(mlp, 0.5), 0.5)


def test_pruning_again_after_make_permanent_counts_existing_zeros():
    layer = make_permanent(l1_unstructured(nn.Linear(10, 20), 0.5))
    l1_unstructured(layer, 0.7)
    assert int((layer.weight == 0).sum()) == 140


# ---------------------------------------------------------------------------
# Sparsity report on hand-checkable models
# ---------------------------------------------------------------------------


def test_sparsity_report_hand_checked_conv_linear():
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    fc = nn.Linear(2 * 4 * 4, 3)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), fc)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        fc.weight.fill_(1.0)
        fc.bias.fill_(0.5)
        fc.weight[0, 0] = 0.0  # one zero weight that reads a live input
    mask = torch.tensor([1.0, 0.0]).view(2, 1, 1, 1).repeat(1, 1, 3, 3)
    prune.custom_from_mask(conv, "weight", mask)
    rep = sparsity_report(model, (1, 4, 4))
    assert rep.traced
    assert (rep.weights, rep.zero_weights) == (18 + 96, 9 + 1)
    assert rep.sparsity == pytest.approx(10 / 114)
    assert (rep.params_dense, rep.params_effective) == (117, 107)
    # conv: 16 positions x 18 weights; linear: 96. Effective: 16 x 9, and the linear
    # reads only the 16 features of the live channel, one of them with a zero weight.
    assert (rep.macs_dense, rep.macs_effective) == (288 + 96, 144 + 47)
    rows = rep.layers.set_index("name")
    assert rows.loc["0", "dead_channels"] == 1 and rows.loc["0", "zeros"] == 9
    assert rows.loc["3", "params"] == 99 and rows.loc["3", "effective_macs"] == 47
    assert list(rep.layers.columns) == [
        "name", "type", "params", "zeros", "fraction_zero", "channels", "dead_channels",
        "macs", "effective_macs",
    ]  # fmt: skip
    summary = rep.summary()
    assert summary["macs_fraction"] == pytest.approx(191 / 384) and "layers" not in summary
    assert math.isnan(rep.channel_sparsity)


def test_sparsity_report_traces_bn_add_and_cat():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(1, 2, 1, bias=False)
            self.bn = nn.BatchNorm2d(2)
            self.b = nn.Conv2d(1, 2, 1, bias=False)
            self.c = nn.Conv2d(1, 2, 1, bias=False)
            self.head = nn.Conv2d(4, 1, 1, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            u = F.relu(self.bn(self.a(x)))  # channel 0 zeroed by BN -> a's filter 0 wasted
            v = self.b(x) + self.c(x)  # channel 1 dead only where both b and c are zero
            return self.head(torch.cat([u, v], 1))

    net = Net()
    with torch.no_grad():
        for m in (net.a, net.b, net.c, net.head):
            m.weight.fill_(1.0)
        net.b.weight[1] = 0.0
        net.c.weight[1] = 0.0
        net.b.weight[0] = 0.0  # v channel 0 stays live through c
    prune.custom_from_mask(net.bn, "weight", torch.tensor([0.0, 1.0]))
    prune.custom_from_mask(net.bn, "bias", torch.tensor([0.0, 1.0]))
    rep = sparsity_report(net, (1, 1, 1))
    macs = rep.layers.set_index("name")["effective_macs"].to_dict()
    # a: filter 0 feeds a zeroed BN channel (wasted) -> 1; b: no non-zero weight -> 0;
    # c: 1; head: reads cat([u, v]) = 4 channels of which u0 (BN) and v1 (b1 + c1) are dead
    assert macs == {"a": 1, "bn": 0, "b": 0, "c": 1, "head": 2}
    assert rep.macs_dense == 2 + 2 + 2 + 4
    assert rep.channel_sparsity == 0.5


def test_sparsity_report_falls_back_without_fx():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) if x.sum() >= 0 else -self.fc(x)  # data-dependent: no fx

    net = l1_unstructured(Branchy(), 0.5)
    rep = sparsity_report(net, (4,))
    assert not rep.traced and (rep.macs_dense, rep.macs_effective) == (16, 8)
    with pytest.raises(ValueError, match="without the batch dimension"):
        sparsity_report(net, (0, 4))


# ---------------------------------------------------------------------------
# Compaction
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["l1_structured", "l2_structured", "slimming"])
def test_compact_matches_the_masked_model_and_is_smaller(method):
    model = prune_model(_randomise_bn(build_model("small_cnn", 10, (1, 8, 8), seed=0)), method, 0.5)
    x = _images(16, 0).x
    small = compact(model, x[:2])
    model.eval()
    assert torch.allclose(small(x), model(x), atol=1e-5)
    assert is_pruned(model) and not is_pruned(small)  # the masked model is left as it was
    convs = [m for m in small.modules() if isinstance(m, nn.Conv2d)]
    if method == "slimming":  # the global count, per layer as slimming chose it
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        expected = [int((~_zero_bn(b)).sum()) for b in bns]
    else:
        expected = [32 - 16, 64 - 32, 64 - 32]
    assert [c.out_channels for c in convs] == expected
    # The MACs the report calls effective are exactly those the compacted model runs.
    masked_rep, small_rep = sparsity_report(model, (1, 8, 8)), sparsity_report(small, (1, 8, 8))
    assert small_rep.macs_dense == small_rep.macs_effective == masked_rep.macs_effective
    if method != "slimming":  # hand count: conv 16x9 x 64 + 32x16x9 x 64 + 32x32x9 x 16 + 320
        assert masked_rep.macs_effective == 9216 + 294912 + 147456 + 320
    model.train()
    rep = compaction_report(model, small, x, repeats=3, warmup=1)
    assert isinstance(rep, CompactionReport)
    assert rep.params_after < rep.params_before == sum(p.numel() for p in model.parameters())
    assert rep.params_after == sum(p.numel() for p in small.parameters())
    assert rep.latency_before_ms > 0 and rep.speedup == pytest.approx(
        rep.latency_before_ms / rep.latency_after_ms
    )
    assert model.training and not small.training  # modes restored


def test_compact_keeps_coupled_residual_channels_and_matches_resnet18():
    model = l1_structured(_randomise_bn(build_model("resnet18", 10, (3, 8, 8), seed=0)), 0.5)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    small = compact(model, x)
    assert torch.allclose(small(x), model.eval()(x), atol=1e-5)
    assert small.layer1[0].conv1.out_channels == 32  # inside a block: all removed
    # The stem's channels are coupled (residual additions) with layer1's conv2 outputs: a
    # channel goes only where all three convs (and BNs) pruned it.
    coupled = [model.conv1, model.layer1[0].conv2, model.layer1[1].conv2]
    dead = torch.stack([_zero_filters(c) for c in coupled]).all(dim=0)
    assert 0 < int(dead.sum()) < 32
    assert small.conv1.out_channels == small.layer1[1].conv2.out_channels == 64 - int(dead.sum())
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())


@pytest.mark.skipif(not FULL, reason="heavy architectures: set MIAKIT_FULL_TESTS=1")
@pytest.mark.parametrize("arch", HEAVY)
@pytest.mark.parametrize("method", ["l1_structured", "slimming"])
def test_compact_heavy_archs(arch, method):
    shape = SHAPES.get(arch, (3, 8, 8))
    model = prune_model(_randomise_bn(build_model(arch, 10, shape, seed=0)), method, 0.5)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    small = compact(model, x)
    assert torch.allclose(small(x), model.eval()(x), atol=1e-5)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())


def test_compact_refuses_to_change_the_outputs():
    """A channel zeroed before a sigmoid is not dead (sigmoid(0) = 0.5): the guard fires."""
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Sigmoid(),
        nn.Conv2d(4, 2, 1), nn.Flatten(), nn.Linear(32, 3),
    )  # fmt: skip
    _randomise_bn(model)
    slimming(model, 0.5)
    with pytest.raises(RuntimeError, match="compaction changed the outputs"):
        compact(model, torch.randn(2, 1, 4, 4))


def test_compact_of_dense_model_is_identity_and_needs_torch_pruning(monkeypatch):
    model = _tiny().eval()
    x = _images(4, 0).x
    small = compact(model, x)
    assert sum(p.numel() for p in small.parameters()) == sum(p.numel() for p in model.parameters())
    monkeypatch.setitem(sys.modules, "torch_pruning", None)
    with pytest.raises(ImportError, match="pip install torch-pruning"):
        compact(model, x)


@pytest.mark.parametrize("method", ["l1_unstructured", "l1_structured", "slimming"])
def test_channels_last_models_can_be_pruned(method):
    """fit leaves convnets channels_last; torch's prune flattens with view, which needs care."""
    model = build_model("small_cnn", 10, (1, 8, 8)).to(memory_format=torch.channels_last)
    prune_model(model, method, 0.5)
    assert is_pruned(model)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
