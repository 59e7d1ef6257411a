"""What every defense shares: its parameters' base class, the result, the value check.

PAPER.md, "The defense": a pruned model is fine-tuned (the halved schedule,
:meth:`miakit.train.TrainConfig.halved`) under one defense, and the kept model is the
best fine-tuned epoch, never the un-fine-tuned pruned one (PAPER.md, "Pruning": the
authors start from ``best_acc = 0``). Each defense is a frozen
dataclass of its options (:class:`DefenseParams`), validated once at construction; it
knows its training objective, how to fine-tune under it, and how to rebuild an empty
model that can load its cached weights. :class:`NoDefense` is plain fine-tuning with
early stopping, the undefended baseline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from miakit.data import Data
from miakit.defenses._masks import check_masks_kept, masked_names
from miakit.train import FitResult, ModelData, Objective, TrainConfig, fit, fit_many
from miakit.train.loop import StatefulObjective

__all__ = ["DefenseParams", "DefenseResult", "NoDefense", "check_weight"]


def check_weight(name: str, value: Any, *, positive: bool = False) -> float:
    """Validate a loss weight or noise level: a finite real number, >= 0 (or > 0).

    Args:
        name: the option's name, for the error (``"lam"``, ``"theta"``...).
        value: the value to check; booleans are rejected.
        positive: require ``> 0`` instead of ``>= 0``.

    Returns:
        ``value`` as a float.

    Raises:
        ValueError: naming the option, the bound and an example.
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        bound = "> 0" if positive else ">= 0"
        raise ValueError(
            f"{name}={value!r} is invalid: expected a finite number {bound}; "
            f"pass e.g. {name}=1.0 (the paper's sweeps are in LAMBDAS, THETAS and "
            "NOISE_MULTIPLIERS of miakit.defenses)"
        )
    return float(value)


@dataclass
class DefenseResult:
    """The uniform outcome of a defended fine-tuning run, for caching and tables.

    Attributes:
        name: the defense (a key of :data:`miakit.defenses.DEFENSES`).
        params: its complete options (defaults filled in), e.g. ``{"lam": 4.0}``.
        epochs_run: epochs trained before stopping.
        best_dev_acc: dev accuracy of the kept (best-dev) weights.
        epsilon: DP epsilon of the run at ``delta`` (``"dpsgd"`` only, else ``None``).
        delta: DP delta (``"dpsgd"`` only, else ``None``).
        converted: the BatchNorm layers DP-SGD froze while it trained (``"dpsgd"`` only;
            empty otherwise).
        best_epoch: 1-based epoch whose weights were kept (>= 1: a fine-tuned epoch).
        stopped_early: whether patience ran out.
        history: per-epoch dicts (``epoch``, ``train_loss``, ``dev_acc``[, ``epsilon``]).
        model: the fine-tuned model, the input object (trained in place). Not part of
            :meth:`record`.
    """

    name: str
    params: dict[str, Any]
    epochs_run: int
    best_dev_acc: float
    epsilon: float | None
    delta: float | None
    converted: list[str]
    best_epoch: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list, repr=False)
    model: nn.Module | None = field(default=None, repr=False, compare=False)

    def record(self) -> dict[str, Any]:
        """A flat, JSON-able row: ``defense``, the params, and the run's numbers."""
        return {
            "defense": self.name,
            **self.params,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "best_dev_acc": self.best_dev_acc,
            "stopped_early": self.stopped_early,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "converted": list(self.converted),
        }


@dataclass(frozen=True)
class DefenseParams:
    """A defense and its options: the base of every defense's frozen dataclass.

    A subclass sets the class variables :attr:`name` (its key in
    :data:`miakit.defenses.DEFENSES`) and :attr:`title` (its name in figures), declares
    its options as dataclass fields with the paper's defaults, and checks them in
    ``__post_init__``, once. It then overrides :meth:`objective` (a loss run by
    :func:`miakit.train.fit`; :meth:`training_objective` when the loss also needs the
    training data) or, for a different training procedure, :meth:`finetune`; and
    :meth:`rebuild` when its trained model has another structure than a fresh one.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""

    def params(self) -> dict[str, Any]:
        """The options as ``{field: value}``, in field order (cache keys, table columns)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def objective(self, dev: Data, num_classes: int) -> Objective | None:
        """The :class:`miakit.train.Objective` to fine-tune with (``None``: cross-entropy).

        Args:
            dev: the non-member dev split (adversarial regularisation's reference data).
            num_classes: K.
        """
        return None

    def training_objective(self, train: Data, dev: Data) -> Objective | None:
        """The objective :meth:`finetune` trains with: :meth:`objective` by default.

        A defense whose loss draws on the training data besides the minibatch being
        trained (adversarial regularisation's member minibatches) overrides this.

        Args:
            train: the training data (members).
            dev: the non-member dev split.
        """
        return self.objective(dev, train.num_classes)

    def finetune(
        self,
        model: nn.Module,
        train: Data,
        dev: Data,
        cfg: TrainConfig,
        *,
        device: str | torch.device | None = None,
        progress: bool = False,
        checkpoint: str | Path | None = None,
    ) -> DefenseResult:
        """Fine-tune ``model`` (a pruned model) in place under this defense.

        PAPER.md, "Pruning" and "The defense": :func:`miakit.train.fit` with
        :meth:`training_objective` on the schedule ``cfg`` (normally
        ``train_cfg.halved()``), early stopping on ``dev``, the best-dev fine-tuned
        epoch kept (``keep_initial=False``: never the pruned model as it came in, even
        when every epoch is worse on dev, as the authors' ``best_acc = 0`` does). The
        pruning masks are forward pre-hooks, so pruned weights stay exactly zero;
        afterwards every masked tensor is refreshed (deep-copyable again) and checked.
        An override must keep a fine-tuned epoch the same way.

        Args:
            model: the pruned model, trained in place.
            train: its training data.
            dev: dev data (early stopping; a defense's non-members).
            cfg: the fine-tuning schedule.
            device: ``None``/``"auto"``, ``"cpu"``, ``"cuda"``...
            progress: show a tqdm bar over epochs.
            checkpoint: optional file for :func:`miakit.train.fit`'s per-epoch
                checkpoint (the objective's own state included): a killed run resumes
                from it, losing at most one epoch, with an identical result; deleted at
                the end. An override must honour it the same way.

        Raises:
            RuntimeError: if a mask was lost or a pruned entry became non-zero.
        """
        before = masked_names(model)
        res = fit(
            model,
            train,
            dev,
            cfg,
            objective=self.training_objective(train, dev),
            device=device,
            progress=progress,
            checkpoint=checkpoint,
            desc="finetune",
            keep_initial=False,
        )
        check_masks_kept(model, before)
        return self._result(res, model)

    def can_batch(self, train: Data, dev: Data) -> bool:
        """Whether :meth:`finetune_many` can fine-tune several models at once.

        True when this defense fine-tunes through :meth:`finetune` as defined here
        (not its own loop, as DP-SGD) with an objective that holds no state of its own
        (not adversarial regularisation's game): such an objective is one function of
        each model's minibatch, so :func:`miakit.train.fit_many` runs it per model.
        """
        if type(self).finetune is not DefenseParams.finetune:
            return False
        return not isinstance(self.training_objective(train, dev), StatefulObjective)

    def finetune_many(
        self,
        models: Sequence[nn.Module],
        data: ModelData,
        cfg: TrainConfig,
        seeds: Sequence[int],
        *,
        device: str | torch.device | None = None,
        progress: bool = False,
        checkpoint: str | Path | None = None,
        desc: str = "finetune",
    ) -> list[DefenseResult]:
        """:meth:`finetune` of each model, computed together (:func:`miakit.train.fit_many`).

        Each model has its own rows of ``data``, batch-order seed (``seeds``, as ``cfg.seed`` of
        :meth:`finetune`), masks and early stopping; the results equal one
        :meth:`finetune` per model up to float rounding. Needs :meth:`can_batch`.

        Raises:
            ValueError: if this defense cannot batch (see :meth:`can_batch`).
            RuntimeError: if a mask was lost or a pruned entry became non-zero.
        """
        train, dev = data.train_set(0), data.dev_set(0)
        if not self.can_batch(train, dev):
            raise ValueError(
                f"the {self.name!r} defense cannot fine-tune models together "
                "(its own loop or a stateful objective); call finetune per model"
            )
        before = [masked_names(m) for m in models]
        results = fit_many(
            models,
            data,
            cfg,
            seeds,
            objective=self.training_objective(train, dev),
            device=device,
            progress=progress,
            checkpoint=checkpoint,
            desc=desc,
            keep_initial=False,
        )
        for model, names in zip(models, before, strict=True):
            check_masks_kept(model, names)
        return [self._result(r, m) for r, m in zip(results, models, strict=True)]

    def _result(self, res: FitResult, model: nn.Module) -> DefenseResult:
        """The :class:`DefenseResult` of a fine-tuning run through ``fit`` or ``fit_many``."""
        return DefenseResult(
            name=self.name,
            params=self.params(),
            epochs_run=res.epochs_run,
            best_dev_acc=res.best_dev_acc,
            epsilon=None,
            delta=None,
            converted=[],
            best_epoch=res.best_epoch,
            stopped_early=res.stopped_early,
            history=res.history,
            model=model,
        )

    def rebuild(self, model: nn.Module) -> nn.Module:
        """A freshly built ``model`` in the structure this defense trains (as is by default).

        The pipeline calls it before loading a cached defended model's ``state_dict``.
        """
        return model


@dataclass(frozen=True)
class NoDefense(DefenseParams):
    """Plain fine-tuning with early stopping: the undefended pruned model."""

    name: ClassVar[str] = "none"
    title: ClassVar[str] = "no defense"
