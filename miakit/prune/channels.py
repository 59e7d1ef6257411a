"""Structured sparsity: zeroed channels and the multiply-accumulates left.

PAPER.md, "Pruning": filter pruning and network slimming remove whole channels, which the
paper's sparsity (the fraction of zero Conv/Linear weights) does not see: slimming masks
BatchNorm ``gamma`` and ``beta`` only, so its weight sparsity reads 0 although its
channels are gone. :func:`channel_sparsity` counts the zeroed channels, :func:`macs` the
multiply-accumulates a forward pass still needs once they are removed, and
:func:`structured_sparsity` gives both as a model's columns (``channel_sparsity``,
``macs_left``).

    >>> slimming(model, 0.7)                              # doctest: +SKIP
    >>> structured_sparsity(model, (1, 8, 8))             # doctest: +SKIP
    {'channel_sparsity': 0.7, 'macs_left': 0.41}
"""

from __future__ import annotations

import math

import torch
from torch import nn

from miakit.prune._layers import BATCHNORM
from miakit.prune.sparsity import dead_output_channels, sparsity_report

__all__ = ["channel_sparsity", "macs", "macs_left", "structured_sparsity"]


def channel_sparsity(model: nn.Module) -> float:
    """Fraction of a model's channels that its parameters zero.

    With affine BatchNorm layers: the BN channels with ``gamma = beta = 0`` (network
    slimming; filter pruning with ``mask_bn=True`` too). Without: the conv output
    channels whose filter and bias are all zero (filter pruning). Effective values
    (``w_orig * w_mask``), so a masked and a permanent model agree.

    Returns:
        The fraction in [0, 1]; NaN for a model with neither layer (an MLP has no
        channels: use :func:`~miakit.prune.sparsity_report`'s ``sparsity``).
    """
    bns = [m for m in model.modules() if isinstance(m, BATCHNORM) and m.affine]
    layers = bns or [m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    dead = [d for d in (dead_output_channels(m) for m in layers) if d is not None]
    total = sum(d.numel() for d in dead)
    return int(sum(int(d.sum()) for d in dead)) / total if total else math.nan


def macs(model: nn.Module, input_shape: tuple[int, ...], *, effective: bool = True) -> int:
    """Multiply-accumulates of the model's Conv/Linear layers for one input.

    ``effective=True``: with pruned channels removed, i.e. only weights that are
    non-zero, read a live input channel and feed a live output channel (a filter whose
    BatchNorm channel is masked is wasted); ``False``: the dense count
    (``positions * weight.numel()`` per layer). Biases, BatchNorm, activations and
    pooling are not counted. See :func:`~miakit.prune.sparsity_report` for the tracing.

    Args:
        model: any model (masked, permanent or compacted).
        input_shape: one sample's shape without the batch dimension, e.g. ``(1, 8, 8)``.
    """
    report = sparsity_report(model, input_shape)
    return report.macs_effective if effective else report.macs_dense


def macs_left(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """``macs(model, shape) / macs(model, shape, effective=False)``: 1.0 when dense."""
    return sparsity_report(model, input_shape).macs_fraction


@torch.no_grad()
def structured_sparsity(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, float]:
    """A model's structured sparsity as columns: ``channel_sparsity`` and ``macs_left``.

    PAPER.md, "Pruning": for filter pruning and network slimming, whose weight sparsity
    misses the removed channels (slimming's reads ~0). ``channel_sparsity`` is
    :func:`channel_sparsity`, ``macs_left`` is :func:`macs_left`, from one trace.
    """
    report = sparsity_report(model, input_shape)
    return {"channel_sparsity": channel_sparsity(model), "macs_left": report.macs_fraction}
