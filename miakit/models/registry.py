"""The architecture registry, :data:`ARCHS`, and :func:`build_model`.

PAPER.md, "Models and training".

Each :class:`ArchSpec` names an architecture, the input it takes and how to build it;
:func:`build_model` checks the arguments, builds the module and applies the paper's
Xavier initialisation (:func:`miakit.models.init.xavier_init_`).
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from miakit.models.densenet import DenseNet
from miakit.models.init import xavier_init_
from miakit.models.mobilenet import MobileNetV2
from miakit.models.resnet import ResNet
from miakit.models.small import MLP, ColumnFC, SignalCNN, SmallCNN
from miakit.models.vgg import VGG, VGG16_CFG

__all__ = ["ARCHS", "ArchSpec", "Builder", "build_model"]

Builder = Callable[[int, tuple[int, ...]], nn.Module]


@dataclass(frozen=True)
class ArchSpec:
    """One entry of the architecture registry ``ARCHS``.

    Attributes:
        name: Registry key, e.g. ``"resnet18"``.
        kind: ``"image"`` (input ``(C, H, W)``) or ``"vector"`` (input ``(F,)``).
        builder: ``builder(num_classes, input_shape)`` returns the bare (not yet
            Xavier-initialised) module; use :func:`build_model` instead.
        min_spatial: Smallest height/width an image architecture accepts: 15 for
            ``densenet121`` (its max-pool stem and three transition pools take 15 to 8,
            4, 2 and 1 and fail below), 8 for the other CIFAR nets (their stride-2 stages
            take 8 down to 1), 2 for ``small_cnn``, 0 for vector models.
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
            "the authors' CIFAR ResNet18 (3x3 conv-BN-ReLU-max-pool stem, BasicBlock [2, 2, 2, 2])",
            supports_all_pruners=True,
        ),
        ArchSpec(
            "densenet121",
            "image",
            lambda k, s: DenseNet([6, 12, 24, 16], k, in_channels=s[0], growth_rate=32),
            15,
            "the authors' CIFAR DenseNet121 (3x3 conv0-norm0-relu0-max-pool stem, growth "
            "32, blocks 6-12-24-16, compression 0.5)",
            supports_all_pruners=True,
        ),
        ArchSpec(
            "vgg16_bn",
            "image",
            lambda k, s: VGG(VGG16_CFG, k, in_channels=s[0]),
            8,
            "the authors' CIFAR VGG16 with batch norm, classifier 512-4096-4096-K with dropout 0.5",
            supports_all_pruners=True,
        ),
        ArchSpec(
            "mobilenetv2",
            "image",
            lambda k, s: MobileNetV2(k, in_channels=s[0]),
            8,
            "CIFAR MobileNetV2 after kuangliu/pytorch-cifar (miakit's own choice: the "
            "authors' code cannot train it)",
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
"""Known architectures, by name (PAPER.md, "Models and training").

``resnet18``, ``densenet121`` and ``vgg16_bn`` are the authors' models
(huyvnphan/PyTorch_CIFAR10's CIFAR variants), ``fc`` the authors' tabular model;
``mobilenetv2`` (in the paper's text, not trainable with the authors' code), ``mlp``,
``signal_cnn`` and ``small_cnn`` are miakit's own.
"""


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
        arch: A key of :data:`ARCHS`: ``"resnet18"``, ``"densenet121"``, ``"vgg16_bn"``
            (the authors' image models), ``"mobilenetv2"`` (miakit's own), ``"fc"`` (the
            authors' tabular model), ``"mlp"``, ``"signal_cnn"`` or ``"small_cnn"``.
        num_classes: Number of classes K (>= 2); the model outputs ``(N, K)`` logits.
        input_shape: Shape of one sample: ``(C, H, W)`` for image architectures (any
            channel count, each arch's minimum spatial size), ``(F,)`` for ``fc`` and
            ``mlp`` and ``signal_cnn``. ``miakit.data.DATASETS[name].input_shape`` has
            the right value.
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
