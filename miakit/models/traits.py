"""What kinds of layers a model has, i.e. which of the paper's pruning methods apply."""

from __future__ import annotations

from torch import nn

__all__ = ["has_batchnorm", "is_convnet"]


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
