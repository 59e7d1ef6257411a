"""Architecture registry: the victim and shadow models of the paper.

PAPER.md, "Models and training": the image models are the CIFAR variants (3x3 stride-1
first convolution, no max-pool stem) of ResNet18, DenseNet121, VGG16-BN and MobileNetV2,
written after kuangliu/pytorch-cifar, whose parameter names they keep; the tabular model
is the column FC in-256-128-K with ReLU and dropout 0.1. Two small nets serve the
embedded data of the ``quick`` and ``smoke`` profiles (DESIGN.md): ``mlp`` for the
``mnist1d`` signals and ``small_cnn`` (conv + BatchNorm, so that every pruning method
applies) for the 8x8 ``digits`` images. Every model is Xavier-initialised.

Example:
    >>> model = build_model("resnet18", num_classes=10, input_shape=(3, 32, 32))
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])

The image models end in adaptive average pooling, so one definition serves 32x32 CIFAR
images and the 8x8 ``digits``; at 32x32 they compute exactly kuangliu's functions
(his fixed ``avg_pool2d(out, 4)`` sees a 4x4 map there). They work under
``channels_last`` and ``torch.autocast`` (no in-place operations on autograd tensors).
"""

from __future__ import annotations

import difflib
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ARCHS",
    "ArchSpec",
    "build_model",
    "has_batchnorm",
    "is_convnet",
    "xavier_init_",
]


# ---------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------

_NORM_TYPES = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
)


def xavier_init_(model: nn.Module, *, seed: int | None = None) -> nn.Module:
    """Apply the paper's initialisation to ``model`` in place.

    PAPER.md, "Models and training": Xavier-normal weights for every convolution and
    linear layer (biases zero); normalisation layers get weight 1 and bias 0. This is
    the authors' ``weight_init`` applied with ``model.apply``.

    Args:
        model: Any module; its conv (``nn.Conv1d/2d/3d`` and transposed), ``nn.Linear``
            and normalisation submodules are re-initialised, other parameters untouched.
        seed: When given, weights are drawn from a private generator seeded with it (one
            per device), so the result does not depend on, and does not advance, the
            global torch RNG. Results are reproducible on the same device type. When
            ``None``, the global RNG is used (seed it with ``torch.manual_seed``).

    Returns:
        The same ``model``, for chaining.
    """
    generators: dict[torch.device, torch.Generator] = {}

    def generator_for(t: torch.Tensor) -> torch.Generator | None:
        if seed is None:
            return None
        if t.device not in generators:
            generators[t.device] = torch.Generator(device=t.device).manual_seed(seed)
        return generators[t.device]

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
                nn.init.xavier_normal_(module.weight, generator=generator_for(module.weight))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, _NORM_TYPES):
                if getattr(module, "weight", None) is not None:
                    nn.init.ones_(module.weight)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
    return model


# ---------------------------------------------------------------------------
# ResNet18 (kuangliu/pytorch-cifar models/resnet.py)
# ---------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv-BN layers and a (projected) shortcut."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet: 3x3 stride-1 stem, four stages (64-128-256-512), linear head.

    PAPER.md, "Models and training" (ResNet18 = ``BasicBlock``, ``[2, 2, 2, 2]``).
    """

    def __init__(self, num_blocks: Sequence[int], num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(512, num_blocks[3], stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(512 * BasicBlock.expansion, num_classes)

    def _make_layer(self, planes: int, num_blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes * BasicBlock.expansion
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(torch.flatten(self.pool(out), 1))


# ---------------------------------------------------------------------------
# DenseNet121 (kuangliu/pytorch-cifar models/densenet.py)
# ---------------------------------------------------------------------------


class Bottleneck(nn.Module):
    """DenseNet-BC layer: BN-ReLU-1x1 conv (4k) then BN-ReLU-3x3 conv (k), concatenated."""

    def __init__(self, in_planes: int, growth_rate: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4 * growth_rate, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth_rate)
        self.conv2 = nn.Conv2d(4 * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    """DenseNet transition: BN-ReLU-1x1 conv (compression), then 2x2 average pooling."""

    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet(nn.Module):
    """CIFAR DenseNet-BC: 3x3 stem of 2k channels, four dense blocks, three transitions.

    PAPER.md, "Models and training" (DenseNet121: growth k = 32, blocks 6-12-24-16,
    compression 0.5, bottleneck layers).
    """

    def __init__(
        self,
        num_blocks: Sequence[int],
        num_classes: int,
        in_channels: int = 3,
        growth_rate: int = 32,
        reduction: float = 0.5,
    ) -> None:
        super().__init__()
        self.growth_rate = growth_rate
        planes = 2 * growth_rate
        self.conv1 = nn.Conv2d(in_channels, planes, 3, padding=1, bias=False)

        self.dense1 = self._make_dense(planes, num_blocks[0])
        planes += num_blocks[0] * growth_rate
        out_planes = math.floor(planes * reduction)
        self.trans1 = Transition(planes, out_planes)
        planes = out_planes

        self.dense2 = self._make_dense(planes, num_blocks[1])
        planes += num_blocks[1] * growth_rate
        out_planes = math.floor(planes * reduction)
        self.trans2 = Transition(planes, out_planes)
        planes = out_planes

        self.dense3 = self._make_dense(planes, num_blocks[2])
        planes += num_blocks[2] * growth_rate
        out_planes = math.floor(planes * reduction)
        self.trans3 = Transition(planes, out_planes)
        planes = out_planes

        self.dense4 = self._make_dense(planes, num_blocks[3])
        planes += num_blocks[3] * growth_rate
        self.bn = nn.BatchNorm2d(planes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(planes, num_classes)

    def _make_dense(self, in_planes: int, num_layers: int) -> nn.Sequential:
        layers = []
        for _ in range(num_layers):
            layers.append(Bottleneck(in_planes, self.growth_rate))
            in_planes += self.growth_rate
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.trans1(self.dense1(out))
        out = self.trans2(self.dense2(out))
        out = self.trans3(self.dense3(out))
        out = self.dense4(out)
        out = self.pool(F.relu(self.bn(out)))
        return self.linear(torch.flatten(out, 1))


# ---------------------------------------------------------------------------
# VGG16-BN (kuangliu/pytorch-cifar models/vgg.py)
# ---------------------------------------------------------------------------

VGG16_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip


class VGG(nn.Module):
    """CIFAR VGG with batch norm: conv3x3-BN-ReLU stacks, five max-pools, Linear(512, K).

    PAPER.md, "Models and training" (VGG16-BN). The max-pools use ``ceil_mode=True``,
    which equals kuangliu's floor mode on 32x32 inputs (all sizes even) and lets
    smaller or odd-sized inputs (8x8, 28x28) reach the classifier; the trailing pool is
    adaptive (kuangliu's ``AvgPool2d(1)`` is the identity on his 1x1 map).
    """

    def __init__(self, cfg: Sequence[int | str], num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
            else:
                assert isinstance(v, int)
                layers += [nn.Conv2d(channels, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
                channels = v
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


# ---------------------------------------------------------------------------
# MobileNetV2 (kuangliu/pytorch-cifar models/mobilenetv2.py)
# ---------------------------------------------------------------------------


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection (+ shortcut).

    As in kuangliu's ``Block``: stride-1 blocks always add a shortcut (projected by a
    1x1 conv-BN when the channel count changes); stride-2 blocks have none.
    """

    def __init__(self, in_planes: int, out_planes: int, expansion: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        planes = expansion * in_planes
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, 3, stride=stride, padding=1, groups=planes, bias=False
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride == 1 and in_planes != out_planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, 1, bias=False),
                nn.BatchNorm2d(out_planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + self.shortcut(x) if self.stride == 1 else out


class MobileNetV2(nn.Module):
    """CIFAR MobileNetV2: stride-1 stem and second stage, 1280-channel head.

    PAPER.md, "Models and training" (MobileNetV2).
    """

    # (expansion, out_planes, num_blocks, stride); stage 2 stride 2 -> 1 for CIFAR.
    cfg: tuple[tuple[int, int, int, int], ...] = (
        (1, 16, 1, 1),
        (6, 24, 2, 1),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )

    def __init__(self, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.layers = self._make_layers(in_planes=32)
        self.conv2 = nn.Conv2d(320, 1280, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(1280)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(1280, num_classes)

    def _make_layers(self, in_planes: int) -> nn.Sequential:
        layers = []
        for expansion, out_planes, num_blocks, stride in self.cfg:
            for s in [stride] + [1] * (num_blocks - 1):
                layers.append(InvertedResidual(in_planes, out_planes, expansion, s))
                in_planes = out_planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.relu(self.bn2(self.conv2(out)))
        return self.linear(torch.flatten(self.pool(out), 1))


# ---------------------------------------------------------------------------
# Tabular and embedded-data models
# ---------------------------------------------------------------------------


class ColumnFC(nn.Module):
    """Column FC for tabular data: in-256-128-K, ReLU, dropout 0.1 after each hidden layer.

    PAPER.md, "Models and training" (Location, Purchase100, Texas100); the layout of
    the authors' ``ColumnFC``.
    """

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, 256)
        self.drop1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(256, 128)
        self.drop2 = nn.Dropout(dropout)
        self.fc3 = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(F.relu(self.fc1(x)))
        x = self.drop2(F.relu(self.fc2(x)))
        return self.fc3(x)


class MLP(nn.Module):
    """Small MLP for the embedded ``mnist1d`` signals: in-256-256-K, ReLU, no dropout.

    Not in the paper: the ``quick`` profile's stand-in for the image models (DESIGN.md,
    "Profiles and the embedded default"). Dropout is left out on purpose: the profile
    needs a victim that memorises its training set, as the paper's victims do.
    """

    def __init__(self, in_features: int, num_classes: int, hidden: int = 256) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class SmallCNN(nn.Module):
    """Small convnet for the embedded 8x8 ``digits`` images.

    conv3x3(C->32)-BN-ReLU, conv3x3(32->64)-BN-ReLU, 2x2 max-pool, conv3x3(64->64)-BN-ReLU,
    global average pooling, Linear(64, K). Not in the paper: the ``smoke``/``quick``
    stand-in (DESIGN.md) that still has the conv + BatchNorm layers that structured
    filter pruning and network slimming act on (PAPER.md, "Pruning").
    """

    def __init__(self, num_classes: int, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class SignalCNN(nn.Module):
    """Small 1-D convnet for the embedded ``mnist1d`` signals, built from ``Conv2d``.

    The ``(F,)`` signal is viewed as a ``1 x 1 x F`` image and convolved with ``1 x 5``
    kernels: conv(1->32)-BN-ReLU, conv(32->64)-BN-ReLU, 1x2 max-pool, conv(64->64)-BN-
    ReLU, global average pooling, Linear(64, K). Not in the paper: the ``quick``
    profile's stand-in for the image models, with the conv filters and BatchNorm
    channels that all four of the paper's pruning methods act on (PAPER.md,
    "Pruning"); ``Conv2d`` rather than ``Conv1d`` so that filter pruning, slimming
    and compaction treat it exactly like the paper's image nets.
    """

    def __init__(self, in_features: int, num_classes: int, width: int = 64) -> None:
        super().__init__()
        half = width // 2
        self.in_features = in_features
        self.features = nn.Sequential(
            nn.Conv2d(1, half, (1, 5), padding=(0, 2), bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(),
            nn.Conv2d(half, width, (1, 5), padding=(0, 2), bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d((1, 2)),
            nn.Conv2d(width, width, (1, 5), padding=(0, 2), bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], 1, 1, self.in_features)
        return self.classifier(torch.flatten(self.features(x), 1))


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------

Builder = Callable[[int, tuple[int, ...]], nn.Module]


@dataclass(frozen=True)
class ArchSpec:
    """One entry of the architecture registry ``ARCHS``.

    Attributes:
        name: Registry key, e.g. ``"resnet18"``.
        kind: ``"image"`` (input ``(C, H, W)``) or ``"vector"`` (input ``(F,)``).
        builder: ``builder(num_classes, input_shape)`` returns the bare (not yet
            Xavier-initialised) module; use :func:`build_model` instead.
        min_spatial: Smallest height/width an image architecture accepts: 8 for the
            paper nets (their three stride-2 stages take 8 down to 1; DenseNet's
            transition pools fail below that), 2 for ``small_cnn``, 0 for vector models.
        description: One line for listings, e.g. a notebook table of ``ARCHS``.
        tiny: Small enough that one CPU thread trains it faster than several (the
            embedded-data models: their matrices are too small for intra-op
            parallelism to pay; the smoke profile ran 3x faster on one thread).
        supports_all_pruners: Has conv filters and BatchNorm channels, so all four of
            the paper's pruning methods apply to it (PAPER.md, "Pruning").
    """

    name: str
    kind: Literal["image", "vector"]
    builder: Builder
    min_spatial: int
    description: str
    tiny: bool = False
    supports_all_pruners: bool = False

    def expected_shape(self) -> str:
        """Human-readable form of the input shape this architecture takes."""
        if self.kind == "image":
            return f"(C, H, W) with C >= 1 and H, W >= {self.min_spatial}"
        return "(F,) with F >= 1 features"


ARCHS: dict[str, ArchSpec] = {
    spec.name: spec
    for spec in (
        ArchSpec(
            "resnet18",
            "image",
            lambda k, s: ResNet([2, 2, 2, 2], k, in_channels=s[0]),
            8,
            "CIFAR ResNet18 (BasicBlock [2, 2, 2, 2])",
            supports_all_pruners=True,
        ),
        ArchSpec(
            "densenet121",
            "image",
            lambda k, s: DenseNet([6, 12, 24, 16], k, in_channels=s[0], growth_rate=32),
            8,
            "CIFAR DenseNet121 (growth 32, blocks 6-12-24-16, reduction 0.5)",
            supports_all_pruners=True,
        ),
        ArchSpec(
            "vgg16_bn",
            "image",
            lambda k, s: VGG(VGG16_CFG, k, in_channels=s[0]),
            8,
            "CIFAR VGG16 with batch norm, classifier Linear(512, K)",
            supports_all_pruners=True,
        ),
        ArchSpec(
            "mobilenetv2",
            "image",
            lambda k, s: MobileNetV2(k, in_channels=s[0]),
            8,
            "CIFAR MobileNetV2",
            supports_all_pruners=True,
        ),
        ArchSpec(
            "fc",
            "vector",
            lambda k, s: ColumnFC(s[0], k),
            0,
            "column FC in-256-128-K, ReLU, dropout 0.1 (tabular data)",
            tiny=True,
        ),
        ArchSpec(
            "mlp",
            "vector",
            lambda k, s: MLP(s[0], k),
            0,
            "MLP in-256-256-K, ReLU, no dropout (mnist1d signals)",
            tiny=True,
        ),
        ArchSpec(
            "signal_cnn",
            "vector",
            lambda k, s: SignalCNN(s[0], k),
            0,
            "small conv+BN net over 1 x F signals (mnist1d)",
            tiny=True,
            supports_all_pruners=True,
        ),
        ArchSpec(
            "small_cnn",
            "image",
            lambda k, s: SmallCNN(k, in_channels=s[0]),
            2,
            "small conv+BN net (digits 1x8x8)",
            tiny=True,
            supports_all_pruners=True,
        ),
    )
}
"""Known architectures, by name (PAPER.md, "Models and training")."""


def _lookup(arch: str) -> ArchSpec:
    if isinstance(arch, str) and arch in ARCHS:
        return ARCHS[arch]
    known = ", ".join(sorted(ARCHS))
    hint = ""
    if isinstance(arch, str):
        close = difflib.get_close_matches(arch.lower(), list(ARCHS), n=1, cutoff=0.5)
        if close:
            hint = f" Did you mean {close[0]!r}?"
    raise ValueError(f"unknown architecture {arch!r}; known architectures: {known}.{hint}")


def _as_int(value: object) -> int:
    """``value`` as a Python int if it is an integer (numpy ints too, bools not)."""
    if isinstance(value, bool):
        raise TypeError("bool is not a size")
    return operator.index(value)  # type: ignore[arg-type]


def _check_num_classes(num_classes: int) -> int:
    try:
        k = _as_int(num_classes)
    except TypeError:
        k = 0
    if k < 2:
        raise ValueError(
            f"num_classes must be an integer >= 2 (the number of labels of the dataset), "
            f"got {num_classes!r}"
        )
    return k


def _check_input_shape(spec: ArchSpec, input_shape: Sequence[int]) -> tuple[int, ...]:
    """Validate ``input_shape`` for ``spec``; return it as a tuple of ints."""
    what = (
        f"architecture {spec.name!r} expects input_shape {spec.expected_shape()} "
        f"(one sample, without the batch dimension)"
    )
    try:
        shape = tuple(_as_int(d) for d in input_shape)
    except TypeError:
        raise ValueError(f"{what}; got {input_shape!r}, not a sequence of integers") from None
    want_ndim = 3 if spec.kind == "image" else 1
    if len(shape) != want_ndim:
        other_ndim = 1 if spec.kind == "image" else 3
        if len(shape) == other_ndim:
            other = [n for n, s in ARCHS.items() if s.kind != spec.kind]
            hint = f"For {len(shape)}-D inputs use one of: {', '.join(other)}."
        elif spec.kind == "vector":
            hint = "Flatten each sample to (F,)."
        else:
            hint = "Give each image as (C, H, W), e.g. (1, 8, 8) for one-channel 8x8 images."
        raise ValueError(f"{what}; got {shape} ({len(shape)}-D). {hint}")
    if any(d < 1 for d in shape):
        raise ValueError(f"{what}; got {shape}, which has a non-positive dimension")
    if spec.kind == "image" and min(shape[1:]) < spec.min_spatial:
        raise ValueError(
            f"{what}; got spatial size {shape[1]}x{shape[2]}, which is too small "
            f"(resize or pad the images)"
        )
    return shape


def build_model(
    arch: str,
    num_classes: int,
    input_shape: Sequence[int],
    *,
    seed: int | None = None,
) -> nn.Module:
    """Build a victim/shadow model and apply the paper's Xavier initialisation.

    PAPER.md, "Models and training". The victim and every shadow model use the same
    architecture; only the seed (and the training split) differ.

    Args:
        arch: A key of :data:`ARCHS`: ``"resnet18"``, ``"densenet121"``, ``"vgg16_bn"``,
            ``"mobilenetv2"``, ``"fc"``, ``"mlp"`` or ``"small_cnn"``.
        num_classes: Number of classes K (>= 2); the model outputs ``(N, K)`` logits.
        input_shape: Shape of one sample: ``(C, H, W)`` for image architectures (any
            channel count, each arch's minimum spatial size), ``(F,)`` for ``fc`` and
            ``mlp``. ``miakit.data.DATASETS[name].input_shape`` has the right value.
        seed: Optional initialisation seed. When given, the weights depend only on it
            (for a device type) and the global torch RNG is left untouched; when ``None``
            the global RNG is used, so ``torch.manual_seed`` beforehand makes it
            reproducible.

    Returns:
        The model on CPU, in training mode, Xavier-initialised (:func:`xavier_init_`).

    Raises:
        ValueError: for an unknown ``arch`` (the message lists the known names), a
            ``num_classes`` below 2, or an ``input_shape`` the architecture cannot take.

    Example:
        >>> model = build_model("fc", 100, (600,), seed=0)  # Purchase100
        >>> sum(p.numel() for p in model.parameters())
        199652
    """
    spec = _lookup(arch)
    num_classes = _check_num_classes(num_classes)
    shape = _check_input_shape(spec, input_shape)
    if seed is None:
        model = spec.builder(num_classes, shape)
    else:
        with torch.random.fork_rng(devices=[]):  # construction's default init: no side effect
            model = spec.builder(num_classes, shape)
    return xavier_init_(model, seed=seed)


# ---------------------------------------------------------------------------
# Helpers for pruning
# ---------------------------------------------------------------------------


def is_convnet(model: nn.Module) -> bool:
    """Whether ``model`` has a 2-D convolution, i.e. filter pruning applies to it.

    PAPER.md, "Pruning": L1/L2 structured pruning removes conv filters.
    """
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` has a batch-norm layer, i.e. network slimming applies to it.

    PAPER.md, "Pruning": network slimming ranks channels by ``|gamma|`` of BatchNorm.
    """
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
