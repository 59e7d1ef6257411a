"""The layer types the pruning package works on (shared by its modules).

``WEIGHT_LAYERS`` hold the prunable weights and define the paper's sparsity (PAPER.md,
"Pruning": the fraction of zero Conv/Linear weights); ``BATCHNORM`` is the base class of
the BatchNorm layers whose scale ``gamma`` network slimming ranks.
"""

from __future__ import annotations

from torch import nn

__all__ = ["BATCHNORM", "WEIGHT_LAYERS"]

WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
"""Conv/Linear layers: their ``weight`` is what the methods prune and sparsity counts."""

BATCHNORM = nn.modules.batchnorm._BatchNorm
"""Base class of ``nn.BatchNorm1d/2d/3d``."""
