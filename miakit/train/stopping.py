"""Early stopping on dev accuracy, keeping the best-dev (or last) weights: :class:`EarlyStopping`.

Shared by :func:`miakit.train.fit`, :func:`miakit.train.fit_many` (one stopper per model
of the stack) and DP-SGD fine-tuning (:func:`miakit.defenses.dp_finetune`); PAPER.md,
"Models and training" for the rule, :attr:`miakit.train.TrainConfig.restore_best` for
which weights are kept.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from torch import Tensor, nn

__all__ = ["EarlyStopping", "HasStateDict"]


class HasStateDict(Protocol):
    """What :class:`EarlyStopping` copies the best weights from."""

    def state_dict(self) -> Mapping[str, Tensor]: ...


@dataclass
class EarlyStopping:
    """Early stopping on dev accuracy, keeping the best-dev (or the last) weights.

    PAPER.md, "Models and training", counted as the authors count it: after each epoch
    that does not improve on the best dev accuracy a counter grows (an improvement
    resets it), and training stops once the counter *exceeds* ``patience``. With
    patience 5 the run stops after the 6th epoch in a row without improvement, i.e. at
    epoch ``best_epoch + 6``. ``patience=0`` never stops. Shared by :func:`fit`,
    :func:`fit_many` and DP-SGD fine-tuning (:func:`miakit.defenses.dp_finetune`).

    ``keep_initial=False`` is post-pruning fine-tuning (PAPER.md, "Pruning": the authors
    start from ``best_acc = 0``): :meth:`update` ignores epoch 0 (the pruned weights), so
    the first trained epoch is always kept and the counter starts at epoch 1.

    ``restore_best=False`` (:attr:`TrainConfig.restore_best`) keeps the last counted
    epoch's weights instead: the counter and the stop are unchanged, but
    :attr:`best_state` is a copy of each counted epoch's weights in turn, so
    :meth:`restore` loads the epoch the run ended at (:meth:`kept` says which).

    Attributes:
        patience: non-improving epochs tolerated; the next one stops the run.
        keep_initial: whether the initial weights (epoch 0) may be kept.
        best_acc: best dev accuracy so far (``-1.0`` before any counted epoch).
        best_epoch: epoch of ``best_acc``.
        stale: epochs since the last improvement.
        best_state: a copy of the weights :meth:`restore` loads, the best ones (the last
            ones with ``restore_best=False``); ``None`` before any counted epoch.
        restore_best: whether the kept weights are the best-dev (else the last) ones.
    """

    patience: int
    keep_initial: bool = True
    best_acc: float = -1.0
    best_epoch: int = 0
    stale: int = 0
    best_state: dict[str, Tensor] | None = None
    restore_best: bool = True

    def update(self, epoch: int, acc: float, model: nn.Module | HasStateDict) -> bool:
        """Record an epoch's dev accuracy, copy the weights if it improved (every epoch with
        ``restore_best=False``); returns whether it improved.

        ``model`` is anything with a ``state_dict()`` (a module, or one model of the stack
        that :func:`miakit.train.fit_many` trains).
        """
        if epoch == 0 and not self.keep_initial:
            return False
        improved = acc > self.best_acc
        if improved:
            self.best_acc, self.best_epoch, self.stale = acc, epoch, 0
        else:
            self.stale += 1
        if improved or not self.restore_best:
            # a clone per tensor: a deep copy of a view (one model of fit_many's stack)
            # would copy the whole storage it views
            self.best_state = {
                k: v.detach().clone() if isinstance(v, Tensor) else copy.deepcopy(v)
                for k, v in model.state_dict().items()
            }
        return improved

    def kept(self, history: list[dict[str, float]]) -> tuple[int, float]:
        """The epoch and dev accuracy of the weights :meth:`restore` loads.

        The best-dev epoch's, or with ``restore_best=False`` the last epoch of ``history``
        (the run's rows, ``epoch`` and ``dev_acc``; the best one if it has none).
        """
        if self.restore_best or not history:
            return self.best_epoch, self.best_acc
        return int(history[-1]["epoch"]), float(history[-1]["dev_acc"])

    @property
    def should_stop(self) -> bool:
        """Whether the non-improving epochs now exceed ``patience`` (never for 0)."""
        return self.patience > 0 and self.stale > self.patience

    def restore(self, model: nn.Module) -> None:
        """Load the kept weights (:attr:`best_state`) into ``model``; put it in eval mode."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        model.eval()

    def state(self) -> dict[str, Any]:
        """Checkpoint entries: the fields, the best weights as ``best_model``."""
        return {
            "keep_initial": self.keep_initial,
            "best_acc": self.best_acc,
            "best_epoch": self.best_epoch,
            "stale": self.stale,
            "best_model": self.best_state,
        }

    @classmethod
    def from_state(
        cls, patience: int, state: Mapping[str, Any], restore_best: bool = True
    ) -> EarlyStopping:
        """The stopper that :meth:`state` saved (``keep_initial`` true if absent).

        ``restore_best`` comes from the run's :class:`TrainConfig`, which the checkpoint's
        ``run`` entry already matched (:func:`check_same_run`).
        """
        return cls(
            patience,
            keep_initial=bool(state.get("keep_initial", True)),
            best_acc=float(state["best_acc"]),
            best_epoch=int(state["best_epoch"]),
            stale=int(state["stale"]),
            best_state=state["best_model"],
            restore_best=restore_best,
        )
