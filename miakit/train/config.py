"""What a training run uses: :class:`TrainConfig` and the loss, :class:`Objective`.

PAPER.md, "Models and training": Adam (lr 1e-3, weight decay 5e-4), batch 128, early
stopping on dev accuracy with patience 5 (stop after 6 epochs without improvement);
post-pruning fine-tuning runs half the epochs (PAPER.md, "Pruning"). The loss is
cross-entropy unless a defense or network slimming plugs in its own :class:`Objective`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Protocol

import torch.nn.functional as F
from torch import Tensor, nn

from miakit._util import KEY_DEFAULT, check_types

__all__ = ["Objective", "TrainConfig", "cross_entropy"]


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (PAPER.md, "Models and training").

    Attributes:
        epochs: maximum number of epochs (paper: 100 for images, 50 tabular).
        batch_size: minibatch size (paper: 128).
        lr: Adam learning rate (paper: 1e-3).
        weight_decay: Adam weight decay (paper: 5e-4).
        patience: early-stopping patience on dev accuracy (paper: 5), counted as the
            authors count it: training stops once the epochs in a row without a new
            best exceed it, i.e. after ``patience + 1`` of them (6 for the paper).
            ``0`` disables early stopping (all epochs run; best-dev still kept).
        seed: seed for the batch order (and dropout) of this run.
        restore_best: keep the best-dev epoch's weights at the end (the paper's rule,
            PAPER.md, "Models and training"); ``False`` keeps the last epoch's weights
            instead (beyond the paper: the long fine-tune that exposes what drives the
            leak, issue 13). It combines with early stopping: with ``patience > 0`` a run
            still stops once dev accuracy stalls and keeps the weights of the epoch it
            stopped at; with ``patience=0`` every epoch runs and the last one is kept.
            Left out of cache keys while ``True``, so keys made before it stay valid
            (:func:`miakit._util.key_fields`); ``False`` gives new keys.
    """

    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 5e-4
    patience: int = 5
    seed: int = 0
    restore_best: bool = field(default=True, metadata={KEY_DEFAULT: True})

    def __post_init__(self) -> None:
        check_types(self)
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0 and math.isfinite(self.lr),
            "weight_decay": self.weight_decay >= 0,
            "patience": self.patience >= 0,
            "seed": self.seed >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"TrainConfig.{name}={getattr(self, name)!r} is invalid: epochs and "
                    "batch_size must be >= 1, lr > 0, weight_decay/patience/seed >= 0"
                )

    def halved(self) -> TrainConfig:
        """The post-pruning fine-tuning schedule: half the epochs, same optimizer.

        PAPER.md, "Pruning": fine-tune for half the training epochs (50 images /
        25 tabular) with the same optimizer settings and early stopping; the kept
        model is the best fine-tuned epoch (``fit(..., keep_initial=False)``).
        ``restore_best`` is kept as the training schedule has it.
        """
        return TrainConfig(**{**asdict(self), "epochs": max(1, self.epochs // 2)})


class Objective(Protocol):
    """A training loss: ``objective(model, x, y) -> scalar loss``.

    The default is cross-entropy on ``model(x)``. Defenses (PPB, adversarial
    regularisation) and network slimming's L1 penalty plug in here. An
    objective must not synchronise with the host (no ``.item()``).
    """

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor: ...


def cross_entropy(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """The plain objective: mean cross-entropy of ``model(x)`` against ``y``."""
    return F.cross_entropy(model(x), y)
