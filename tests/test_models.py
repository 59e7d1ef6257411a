"""Tests for miakit.models: the architecture registry (PAPER.md, "Models and training")."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from miakit.models import (
    ARCHS,
    Bottleneck,
    build_model,
    has_batchnorm,
    is_convnet,
    xavier_init_,
)

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
# Derived here from the layer arithmetic of PAPER.md, "Models and training" (the authors'
# huyvnphan/PyTorch_CIFAR10 models; kuangliu's MobileNetV2), not read off the modules.


def conv_params(c_in: int, c_out: int, k: int, *, bias: bool = False, groups: int = 1) -> int:
    return c_in // groups * c_out * k * k + (c_out if bias else 0)


def bn_params(c: int) -> int:
    return 2 * c  # gamma and beta


def linear_params(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def resnet18_params(k: int) -> int:
    """Stem conv-BN (the max-pool has no parameters), [2, 2, 2, 2] basic blocks, fc."""
    n, c = conv_params(3, 64, 3) + bn_params(64), 64
    for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for s in (stride, 1):
            n += 2 * bn_params(planes) + conv_params(c, planes, 3) + conv_params(planes, planes, 3)
            if s != 1 or c != planes:  # projected shortcut: 1x1 conv + BN
                n += conv_params(c, planes, 1) + bn_params(planes)
            c = planes
    return n + linear_params(512, k)


def densenet121_params(k: int) -> int:
    """conv0-norm0 stem, blocks 6-12-24-16 of growth 32 (bottleneck 128), compression 0.5."""
    n, c = conv_params(3, 64, 3) + bn_params(64), 64
    for i, layers in enumerate((6, 12, 24, 16)):
        for _ in range(layers):
            n += bn_params(c) + conv_params(c, 128, 1) + bn_params(128) + conv_params(128, 32, 3)
            c += 32
        if i < 3:
            n += bn_params(c) + conv_params(c, c // 2, 1)
            c //= 2
    assert c == 1024
    return n + bn_params(c) + linear_params(c, k)  # norm5, classifier


def vgg16_bn_params(k: int) -> int:
    """13 conv3x3 (with bias) + BN layers, then 512-4096-4096-K."""
    widths = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
    n, c = 0, 3
    for w in widths:
        n += conv_params(c, w, 3, bias=True) + bn_params(w)
        c = w
    return n + linear_params(512, 4096) + linear_params(4096, 4096) + linear_params(4096, k)


def mobilenetv2_params(k: int) -> int:
    """kuangliu's CIFAR MobileNetV2: 3x3 stem, inverted residuals, 1x1 to 1280, linear."""
    cfg = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))
    cfg += ((6, 160, 3, 2), (6, 320, 1, 1))
    n, c = conv_params(3, 32, 3) + bn_params(32), 32
    for expansion, out, blocks, stride in cfg:
        for s in [stride] + [1] * (blocks - 1):
            mid = expansion * c
            n += conv_params(c, mid, 1) + conv_params(mid, mid, 3, groups=mid)
            n += conv_params(mid, out, 1) + 2 * bn_params(mid) + bn_params(out)
            if s == 1 and c != out:
                n += conv_params(c, out, 1) + bn_params(out)
            c = out
    return n + conv_params(320, 1280, 1) + bn_params(1280) + linear_params(1280, k)


EXPECTED_PARAMS = {
    "resnet18": resnet18_params,
    "densenet121": densenet121_params,
    "vgg16_bn": vgg16_bn_params,
    "mobilenetv2": mobilenetv2_params,
}
# PAPER.md's rounded figures at K = 10 (millions, as printed there); MobileNetV2 is
# kuangliu's published 2,296,922.
PAPER_MILLIONS = {"resnet18": "11.17", "densenet121": "6.96", "vgg16_bn": "33.6"}


@pytest.mark.parametrize("arch", PAPER_NETS)
def test_paper_nets_parameter_counts_at_10_classes(
    cifar10_models: dict[str, nn.Module], arch: str
) -> None:
    n = n_params(cifar10_models[arch])
    assert n == EXPECTED_PARAMS[arch](10)
    if arch in PAPER_MILLIONS:
        figure = PAPER_MILLIONS[arch]
        assert f"{n / 1e6:.{len(figure.split('.')[1])}f}" == figure
    else:
        assert n == 2_296_922


@pytest.mark.parametrize("arch", PAPER_NETS)
def test_paper_nets_parameter_counts_at_100_classes(arch: str) -> None:
    """CIFAR-100: only the last layer grows. Built on the meta device: no memory, no init."""
    with torch.device("meta"):
        model = ARCHS[arch].builder(100, (3, 32, 32))
    assert n_params(model) == EXPECTED_PARAMS[arch](100)
    assert EXPECTED_PARAMS[arch](100) - EXPECTED_PARAMS[arch](10) == 90 * (ARCH_HEAD_IN[arch] + 1)


ARCH_HEAD_IN = {"resnet18": 512, "densenet121": 1024, "vgg16_bn": 4096, "mobilenetv2": 1280}


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


def _halve(side: int, times: int) -> int:
    for _ in range(times):
        side //= 2
    return side


# Expected (C, H, W) after each stage on a 32x32 input, from the layer arithmetic: the
# 3x3 stride-2 padding-1 max-pool stem takes 32 to (32 + 2 - 3) // 2 + 1 = 16; every
# later stride-2 stage (ResNet) or transition pool (DenseNet) halves.
STEM_POOLED = (32 + 2 * 1 - 3) // 2 + 1
DENSE_CHANNELS = [64 + 6 * 32, 128 + 12 * 32, 256 + 24 * 32, 512 + 16 * 32]
STAGE_SHAPES: dict[str, dict[str, tuple[int, ...]]] = {
    "resnet18": {
        "conv1": (64, 32, 32),
        "maxpool": (64, STEM_POOLED, STEM_POOLED),
        **{
            f"layer{i + 1}": (64 * 2**i, _halve(STEM_POOLED, i), _halve(STEM_POOLED, i))
            for i in range(4)
        },
        "avgpool": (512, 1, 1),
    },
    "densenet121": {
        "features.conv0": (64, 32, 32),
        "features.pool0": (64, STEM_POOLED, STEM_POOLED),
        **{
            f"features.denseblock{i + 1}": (c, _halve(STEM_POOLED, i), _halve(STEM_POOLED, i))
            for i, c in enumerate(DENSE_CHANNELS)
        },
        **{
            f"features.transition{i + 1}": (
                DENSE_CHANNELS[i] // 2,
                _halve(STEM_POOLED, i + 1),
                _halve(STEM_POOLED, i + 1),
            )
            for i in range(3)
        },
        "features.norm5": (1024, 2, 2),
        "avgpool": (1024, 1, 1),
    },
    "vgg16_bn": {  # conv-BN-ReLU triples; the i-th pool follows 2, 4, 7, 10, 13 convs
        "features.0": (64, 32, 32),
        **{
            f"features.{3 * convs + i}": (c, 32 >> (i + 1), 32 >> (i + 1))
            for i, (convs, c) in enumerate(
                zip((2, 4, 7, 10, 13), (64, 128, 256, 512, 512), strict=True)
            )
        },
        "avgpool": (512, 1, 1),
        "classifier.0": (4096,),
        "classifier.3": (4096,),
        "classifier.6": (10,),
    },
    "mobilenetv2": {"conv1": (32, 32, 32), "layers": (320, 4, 4), "pool": (1280, 1, 1)},
}


@pytest.mark.parametrize("arch", PAPER_NETS)
def test_paper_nets_stage_feature_maps_on_cifar(
    cifar10_models: dict[str, nn.Module], arch: str
) -> None:
    """Each stage's output size on one 32x32 image (forward hooks), and the stem's order.

    PAPER.md, "Models and training": a 3x3 stride-1 first conv; ResNet18 and DenseNet121
    apply BN, ReLU and a 3x3 stride-2 max-pool before the first stage (ResNet's layer1
    at 16x16); VGG16-BN's classifier is 512-4096-4096-K.
    """
    model = cifar10_models[arch].eval()
    modules = dict(model.named_modules())
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.kernel_size == (3, 3) and first_conv.stride == (1, 1)
    seen: dict[str, tuple[int, ...]] = {}
    io: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def record(name: str) -> Callable[..., None]:
        def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            seen[name] = tuple(out.shape[1:])
            io[name] = (inp[0], out)

        return hook

    watched = [*STAGE_SHAPES[arch], "bn1", "features.norm0"]
    handles = [modules[n].register_forward_hook(record(n)) for n in watched if n in modules]
    try:
        with torch.no_grad():
            out = model(torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    finally:
        for h in handles:
            h.remove()
    assert out.shape == (1, 10) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert {n: seen[n] for n in STAGE_SHAPES[arch]} == STAGE_SHAPES[arch]
    stems = {"resnet18": ("bn1", "maxpool"), "densenet121": ("features.norm0", "features.pool0")}
    if arch in stems:  # the max-pool takes ReLU(BN(conv)) of the stem
        norm, pool = stems[arch]
        assert isinstance(modules[pool], nn.MaxPool2d)
        assert torch.equal(io[pool][0], F.relu(io[norm][1]))


def test_vgg16_bn_classifier_layout(cifar10_models: dict[str, nn.Module]) -> None:
    head = cifar10_models["vgg16_bn"].classifier
    kinds = [type(m) for m in head]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout] * 2 + [nn.Linear]
    assert [(m.in_features, m.out_features) for m in head if isinstance(m, nn.Linear)] == [
        (512, 4096),
        (4096, 4096),
        (4096, 10),
    ]
    assert [m.p for m in head if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    convs = [m for m in cifar10_models["vgg16_bn"].features if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and all(c.bias is not None for c in convs)


# A few of the authors' (torchvision's) state-dict keys, so their checkpoints load.
AUTHORS_KEYS = {
    "resnet18": ["conv1.weight", "bn1.running_mean", "layer2.0.downsample.0.weight", "fc.bias"],
    "densenet121": [
        "features.norm0.weight",
        "features.denseblock1.denselayer6.conv2.weight",
        "features.transition3.norm.running_var",
        "features.denseblock4.denselayer16.norm1.bias",
        "features.norm5.weight",
        "classifier.weight",
    ],
    "vgg16_bn": ["features.0.bias", "features.41.running_var", "classifier.6.weight"],
}


@pytest.mark.parametrize("arch", sorted(AUTHORS_KEYS))
def test_authors_parameter_names(cifar10_models: dict[str, nn.Module], arch: str) -> None:
    keys = cifar10_models[arch].state_dict().keys()
    assert set(AUTHORS_KEYS[arch]) <= keys


def test_dense_layer_concatenates_input_first() -> None:
    """As the authors' ``_DenseLayer``: ``cat([x, new])``, so their weights compute the same."""
    layer = Bottleneck(5, 3).eval()
    x = torch.randn(2, 5, 4, 4)
    with torch.no_grad():
        out = layer(x)
    assert out.shape == (2, 8, 4, 4)
    assert torch.equal(out[:, :5], x)


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
        build_model("resnet18", 10, (3, 4, 4))
    # DenseNet121's max-pool stem and three transition pools: 15 -> 8 -> 4 -> 2 -> 1.
    with pytest.raises(ValueError, match=r"H, W >= 15.*spatial size 14x14.*too small"):
        build_model("densenet121", 10, (3, 14, 14))


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
