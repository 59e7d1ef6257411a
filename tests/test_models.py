"""Tests for miakit.models: the architecture registry (PAPER.md, "Models and training")."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from miakit.models import ARCHS, build_model, has_batchnorm, is_convnet, xavier_init_

PAPER_NETS = ("resnet18", "densenet121", "vgg16_bn", "mobilenetv2")
IMAGE_ARCHS = (*PAPER_NETS, "small_cnn")
VECTOR_ARCHS = ("fc", "mlp", "signal_cnn")
# a typical input shape per arch: CIFAR, Purchase100, mnist1d, digits
ARCH_SHAPES = {
    **dict.fromkeys(PAPER_NETS, (3, 32, 32)),
    "fc": (600,),
    "mlp": (40,),
    "signal_cnn": (40,),
    "small_cnn": (1, 8, 8),
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def get_or_build(cache: dict[str, nn.Module], arch: str) -> nn.Module:
    """The module-scoped CIFAR-10 model when there is one, else a fresh 10-class model."""
    return cache[arch] if arch in cache else build_model(arch, 10, ARCH_SHAPES[arch])


@pytest.fixture(scope="module", autouse=True)
def _single_thread() -> Iterator[None]:
    """Run this module on one intra-op thread, restoring the count afterwards.

    Batches of 2 gain nothing from threads, and on a busy 2-core box OpenMP
    oversubscription made this file several times slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cifar10_models() -> dict[str, nn.Module]:
    """The four paper image models for CIFAR-10, built once for the whole module."""
    torch.manual_seed(0)
    return {arch: build_model(arch, 10, (3, 32, 32)) for arch in PAPER_NETS}


# --- registry --------------------------------------------------------------------------


def test_registry_names_match_contract() -> None:
    assert set(ARCHS) == {*PAPER_NETS, "fc", "mlp", "signal_cnn", "small_cnn"}
    assert {a for a, s in ARCHS.items() if s.kind == "vector"} == set(VECTOR_ARCHS)


# --- exact parameter counts -------------------------------------------------------------

# Published figures for 10 classes and 3 input channels, as printed by kuangliu/pytorch-cifar
# (the CIFAR model zoo the authors built on) and widely quoted for those definitions:
#   ResNet18 11,173,962; DenseNet121 6,956,298; VGG16 (with BN) 14,728,266;
#   MobileNetV2 2,296,922.
PUBLISHED_COUNTS = {
    "resnet18": 11_173_962,
    "densenet121": 6_956_298,
    "vgg16_bn": 14_728_266,
    "mobilenetv2": 2_296_922,
}


@pytest.mark.parametrize("arch", PAPER_NETS)
def test_paper_nets_have_published_parameter_counts(
    cifar10_models: dict[str, nn.Module], arch: str
) -> None:
    assert n_params(cifar10_models[arch]) == PUBLISHED_COUNTS[arch]


def test_column_fc_layout_and_count() -> None:
    # PAPER.md: column FC in-256-128-K, ReLU, dropout 0.1. Purchase100: 600-256-128-100.
    model = build_model("fc", 100, (600,))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (600, 256),
        (256, 128),
        (128, 100),
    ]
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.1, 0.1]
    assert n_params(model) == (600 * 256 + 256) + (256 * 128 + 128) + (128 * 100 + 100)
    assert n_params(model) == 199_652


def test_mlp_layout_has_no_dropout() -> None:
    model = build_model("mlp", 10, (40,))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(40, 256), (256, 256), (256, 10)]
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    assert n_params(model) == 78_858


def test_small_cnn_layout() -> None:
    model = build_model("small_cnn", 10, (1, 8, 8))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 32), (32, 64), (64, 64)]
    assert [b.num_features for b in bns] == [32, 64, 64]
    # convs 288 + 18432 + 36864 (no bias: BN follows), BN 2 * 160, head 64 * 10 + 10
    assert n_params(model) == 288 + 18_432 + 36_864 + 2 * 160 + 650


def test_signal_cnn_layout() -> None:
    model = build_model("signal_cnn", 10, (40,))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 32, (1, 5)),
        (32, 64, (1, 5)),
        (64, 64, (1, 5)),
    ]
    # convs 160 + 10240 + 20480 (no bias), BN 2 * 160, head 64 * 10 + 10
    assert n_params(model) == 160 + 10_240 + 20_480 + 2 * 160 + 650
    assert model(torch.zeros(3, 40)).shape == (3, 10)


# --- forward passes ----------------------------------------------------------------------


@pytest.mark.parametrize("arch", PAPER_NETS)
def test_paper_nets_forward_cifar(cifar10_models: dict[str, nn.Module], arch: str) -> None:
    """Right output on a CIFAR batch, and a CIFAR variant of the architecture.

    3x3 stride-1 stem and no max-pool stem: a 32x32 input reaches the head pool as 4x4
    (VGG: 1x1 after its five max-pools), where kuangliu applies his fixed
    ``avg_pool2d(out, 4)``; so the adaptive pool computes his function exactly.
    """
    model = cifar10_models[arch].eval()
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.kernel_size == (3, 3) and first_conv.stride == (1, 1)
    pool = [m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)][-1]
    seen: list[tuple[int, ...]] = []
    handle = pool.register_forward_hook(lambda mod, inp, out: seen.append(tuple(inp[0].shape)))
    try:
        with torch.no_grad():
            out = model(torch.randn(2, 3, 32, 32))
    finally:
        handle.remove()
    assert out.shape == (2, 10)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    side = 1 if arch == "vgg16_bn" else 4
    assert seen == [(2, PRE_POOL_CHANNELS[arch], side, side)]


PRE_POOL_CHANNELS = {"resnet18": 512, "densenet121": 1024, "vgg16_bn": 512, "mobilenetv2": 1280}


@pytest.mark.parametrize("arch", IMAGE_ARCHS)
def test_image_nets_small_inputs_channels_last_bf16_train_step(arch: str) -> None:
    """One input channel at the smallest allowed, non-square size, in a CUDA-style step.

    As train.fit runs it on CUDA: channels_last, bf16 autocast, train mode, backward
    through every parameter (no in-place op breaks autograd).
    """
    torch.manual_seed(0)
    h = ARCHS[arch].min_spatial
    model = build_model(arch, 5, (1, h, h + 3)).to(memory_format=torch.channels_last).train()
    x = torch.randn(2, 1, h, h + 3).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.shape == (2, 5)
    assert out.dtype == torch.bfloat16
    F.cross_entropy(out.float(), torch.tensor([0, 4])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize(("arch", "shape"), [("vgg16_bn", (3, 28, 28)), ("small_cnn", (3, 9, 9))])
def test_odd_image_sizes(arch: str, shape: tuple[int, ...]) -> None:
    # VGG's ceil-mode pools: 28 -> 14 -> 7 -> 4 -> 2 -> 1 (floor mode would also work here,
    # but 7 -> 3 drops a row); small_cnn's floor-mode pool: 9 -> 4.
    model = build_model(arch, 7, shape).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *shape))
    assert out.shape == (2, 7)


@pytest.mark.parametrize(("arch", "shape"), [("fc", (446,)), ("mlp", (40,))])
def test_vector_nets_forward(arch: str, shape: tuple[int, ...]) -> None:
    model = build_model(arch, 30, shape).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *shape))
    assert out.shape == (2, 30)


# --- Xavier initialisation -----------------------------------------------------------------


def test_xavier_normal_std_on_large_conv(cifar10_models: dict[str, nn.Module]) -> None:
    # layer4's 512->512 3x3 conv: fan_in = fan_out = 4608, 2.36M weights.
    w = cifar10_models["resnet18"].layer4[1].conv2.weight.detach().double()
    fan_in = fan_out = 512 * 9
    expected = math.sqrt(2.0 / (fan_in + fan_out))
    assert w.std().item() == pytest.approx(expected, rel=0.01)
    assert abs(w.mean().item()) < 0.01 * expected
    # normal, not uniform (xavier_uniform has the same std): kurtosis 3 vs 1.8
    kurtosis = (((w - w.mean()) / w.std()) ** 4).mean().item()
    assert kurtosis == pytest.approx(3.0, abs=0.05)


def test_xavier_normal_std_on_linear() -> None:
    torch.manual_seed(0)
    w = build_model("mlp", 10, (40,)).fc2.weight.detach().double()  # 256x256
    assert w.std().item() == pytest.approx(math.sqrt(2.0 / 512), rel=0.03)


@pytest.mark.parametrize("arch", [*PAPER_NETS, *VECTOR_ARCHS, "small_cnn"])
def test_biases_zero_and_norm_layers_one_zero(
    cifar10_models: dict[str, nn.Module], arch: str
) -> None:
    model = get_or_build(cifar10_models, arch)
    n_biases = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            assert torch.count_nonzero(m.bias) == 0
            n_biases += 1
        if isinstance(m, nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight))
            assert torch.equal(m.bias, torch.zeros_like(m.bias))
    assert n_biases >= 1  # every arch ends in a Linear with a bias


def test_xavier_init_resets_every_layer_kind() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.BatchNorm2d(8),
        nn.GroupNorm(2, 8),
        nn.Flatten(),
        nn.LayerNorm(8 * 30 * 30),
        nn.Linear(8 * 30 * 30, 4),
    )
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)
    assert xavier_init_(model) is model
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert torch.count_nonzero(m.bias) == 0
            assert m.weight.std() > 0
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            assert torch.equal(m.weight, torch.ones_like(m.weight))
            assert torch.equal(m.bias, torch.zeros_like(m.bias))


# --- reproducibility ---------------------------------------------------------------------


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("arch", ["resnet18", "fc", "small_cnn"])
def test_same_global_seed_same_weights(arch: str) -> None:
    shape = ARCH_SHAPES[arch]
    torch.manual_seed(123)
    a = build_model(arch, 10, shape)
    torch.manual_seed(123)
    b = build_model(arch, 10, shape)
    torch.manual_seed(124)
    c = build_model(arch, 10, shape)
    assert _same_weights(a, b)
    assert not _same_weights(a, c)


def test_seed_argument_is_independent_of_and_leaves_global_rng() -> None:
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a = build_model("small_cnn", 10, (1, 8, 8), seed=5)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    torch.manual_seed(999)
    b = build_model("small_cnn", 10, (1, 8, 8), seed=5)
    c = build_model("small_cnn", 10, (1, 8, 8), seed=6)
    assert _same_weights(a, b)
    assert not _same_weights(a, c)


# --- pruning helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "conv", "bn"),
    [
        ("resnet18", True, True),
        ("small_cnn", True, True),
        ("fc", False, False),
        ("mlp", False, False),
    ],
)
def test_is_convnet_and_has_batchnorm(
    cifar10_models: dict[str, nn.Module], arch: str, conv: bool, bn: bool
) -> None:
    model = get_or_build(cifar10_models, arch)
    assert is_convnet(model) is conv
    assert has_batchnorm(model) is bn


def test_helpers_tell_conv_and_bn_apart() -> None:
    assert is_convnet(nn.Sequential(nn.Conv2d(1, 2, 3))) is True
    assert has_batchnorm(nn.Sequential(nn.Conv2d(1, 2, 3))) is False
    assert is_convnet(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))) is False
    assert has_batchnorm(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))) is True


# --- errors --------------------------------------------------------------------------------


def test_unknown_arch_lists_known_names() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'resnet50'") as info:
        build_model("resnet50", 10, (3, 32, 32))
    for name in ARCHS:
        assert name in str(info.value)


def test_unknown_arch_suggests_close_name() -> None:
    with pytest.raises(ValueError, match="Did you mean 'vgg16_bn'"):
        build_model("vgg16", 10, (3, 32, 32))


@pytest.mark.parametrize("k", [1, 0, -3, 2.0, True, "10", None])
def test_bad_num_classes(k: object) -> None:
    with pytest.raises(ValueError, match=r"num_classes must be an integer >= 2.*got"):
        build_model("mlp", k, (40,))  # type: ignore[arg-type]


@pytest.mark.parametrize("arch", ["resnet18", "small_cnn"])
def test_image_arch_rejects_vector_shape(arch: str) -> None:
    with pytest.raises(ValueError, match=rf"'{arch}' expects input_shape \(C, H, W\)") as info:
        build_model(arch, 10, (40,))
    assert "1-D" in str(info.value) and "fc" in str(info.value) and "mlp" in str(info.value)


@pytest.mark.parametrize("arch", VECTOR_ARCHS)
def test_vector_arch_rejects_image_shape(arch: str) -> None:
    with pytest.raises(ValueError, match=rf"'{arch}' expects input_shape \(F,\)") as info:
        build_model(arch, 10, (3, 32, 32))
    assert "3-D" in str(info.value) and "resnet18" in str(info.value)


def test_wrong_rank_hints() -> None:
    with pytest.raises(ValueError, match=r"got \(1, 40\) \(2-D\)\. Flatten each sample"):
        build_model("mlp", 10, (1, 40))
    with pytest.raises(ValueError, match=r"got \(8, 8\) \(2-D\)\. Give each image as \(C, H, W\)"):
        build_model("small_cnn", 10, (8, 8))


def test_image_arch_rejects_too_small_images() -> None:
    with pytest.raises(ValueError, match=r"H, W >= 8.*spatial size 4x4.*too small"):
        build_model("densenet121", 10, (3, 4, 4))


def test_accepts_numpy_and_torch_sizes() -> None:
    model = build_model("small_cnn", np.int64(10), np.array([1, 8, 8]))
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert build_model("mlp", 3, torch.Size([40]))(torch.zeros(2, 40)).shape == (2, 3)


@pytest.mark.parametrize(
    "shape", [(0, 32, 32), (3, -1, 32), (3, 32.0, 32), (True, 32, 32), "abc", 40, None]
)
def test_malformed_shapes(shape: object) -> None:
    with pytest.raises(ValueError, match="expects input_shape"):
        build_model("resnet18", 10, shape)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_arch_flags_match_the_built_model(name: str) -> None:
    """``supports_all_pruners`` is true exactly for nets with conv filters and BatchNorm."""
    spec = ARCHS[name]
    shape = (1, 8, 8) if name == "small_cnn" else (3, 32, 32) if spec.kind == "image" else (40,)
    if not spec.tiny and not os.environ.get("MIAKIT_FULL_TESTS"):
        pytest.skip("heavy architecture; set MIAKIT_FULL_TESTS=1")
    model = build_model(name, 10, shape, seed=0)
    assert spec.supports_all_pruners == (is_convnet(model) and has_batchnorm(model))
