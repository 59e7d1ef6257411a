"""The defenses by name, and the one post-pruning fine-tuning loop.

PAPER.md, "The defense": :func:`finetune` fine-tunes a pruned model under a defense
(:class:`~miakit.defenses.base.NoDefense` by default: plain fine-tuning with early
stopping) and checks that every pruned entry is still exactly zero.

Example:
    >>> make_defense("ppb")
    PPBParams(lam=4.0)
    >>> result = finetune(pruned, train, dev, cfg.halved(), PPBParams(lam=4.0))  # doctest: +SKIP
    >>> result.record()  # doctest: +SKIP
    {'defense': 'ppb', 'lam': 4.0, 'epochs_run': 12, 'best_dev_acc': 0.71, ...}
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from miakit.data import Data
from miakit.defenses.advreg import AdvRegParams
from miakit.defenses.base import DefenseParams, DefenseResult, NoDefense
from miakit.defenses.dpsgd import DPSGDParams
from miakit.defenses.ppb import PPBParams
from miakit.train import TrainConfig

__all__ = ["DEFENSES", "finetune", "make_defense"]

DEFENSES: dict[str, type[DefenseParams]] = {
    cls.name: cls for cls in (NoDefense, PPBParams, AdvRegParams, DPSGDParams)
}
"""Defense names and their parameter classes (PAPER.md, "The defense").

``"none"`` is plain fine-tuning with early stopping (the undefended baseline). Each
class holds its options' defaults and validates them.
"""


def make_defense(name: str | None, **options: Any) -> DefenseParams:
    """The parameters of a named defense: ``DEFENSES[name](**options)``.

    Args:
        name: ``"none"`` (or ``None``), ``"ppb"``, ``"advreg"`` or ``"dpsgd"``
            (case-insensitive).
        **options: that defense's options (its dataclass fields): ``lam`` for PPB;
            ``theta``, ``k``, ``lr``, ``seed`` for adversarial regularisation;
            ``noise_multiplier``, ``max_grad_norm``, ``delta`` for DP-SGD.

    Raises:
        ValueError: on an unknown name or an option the defense does not take; the
            dataclass itself rejects invalid values (negative or NaN lambda...).

    Example:
        >>> make_defense("advreg", theta=8).params()
        {'theta': 8.0, 'k': 7, 'lr': 0.001, 'seed': 0}
    """
    key = "none" if name is None else str(name).strip().lower()
    if key not in DEFENSES:
        raise ValueError(
            f"unknown defense {name!r}; expected one of {sorted(DEFENSES)} "
            "('none' is plain fine-tuning)"
        )
    cls = DEFENSES[key]
    accepted = [f.name for f in fields(cls)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"defense {key!r} does not take option(s) {unknown}; "
            f"it accepts: {', '.join(accepted) or 'no options'}"
        )
    return cls(**options)


_NO_DEFENSE = NoDefense()  # immutable: safe as a default argument


def finetune(
    model: nn.Module,
    train: Data,
    dev: Data,
    cfg: TrainConfig,
    defense: DefenseParams = _NO_DEFENSE,
    *,
    device: str | torch.device | None = None,
    progress: bool = False,
    checkpoint: str | Path | None = None,
) -> DefenseResult:
    """Fine-tune a pruned model under ``defense``: the one post-pruning loop.

    PAPER.md, "Pruning": after the one-shot prune, fine-tune on the same training data
    for half the training epochs with the same optimizer and early stopping (pass
    ``train_cfg.halved()`` as ``cfg``), keeping the best fine-tuned epoch (never the
    pruned model as it came in); "The defense": optionally under PPB or a baseline.
    PPB and adversarial regularisation are objectives run by :func:`miakit.train.fit`;
    DP-SGD has its own loop. Either way the masks are checked
    afterwards: every pruned entry is still exactly zero, and the model is
    deep-copyable.

    Args:
        model: the pruned model (a dense model is fine-tuned all the same); trained in
            place by every defense (``result.model`` is the same object).
        train: the training data it was trained on (adversarial regularisation's members).
        dev: dev data for early stopping (and adversarial regularisation's non-members).
        cfg: the fine-tuning schedule.
        defense: the defense's parameters, e.g. ``PPBParams(lam=4.0)`` or
            ``make_defense("dpsgd", noise_multiplier=0.1)``.
        device: ``None``/``"auto"``, ``"cpu"``, ``"cuda"``...
        progress: show a tqdm bar over epochs.
        checkpoint: optional file; the whole training state is saved there after every
            epoch (for DP-SGD its sampler, noise and accountant state too) and a killed
            run resumes from it, losing at most one epoch, with an identical result
            (same epsilon for DP-SGD). Deleted when fine-tuning ends.

    Returns:
        A :class:`~miakit.defenses.base.DefenseResult`; ``result.model`` is the model.

    Raises:
        TypeError: if ``defense`` is not a :class:`DefenseParams` (e.g. a name).
        RuntimeError: if a mask was lost or a pruned entry became non-zero.
    """
    if not isinstance(defense, DefenseParams):
        raise TypeError(
            f"defense must be a DefenseParams such as PPBParams(lam=4.0), got {defense!r}; "
            "build one from a name with make_defense(name, **options)"
        )
    return defense.finetune(
        model, train, dev, cfg, device=device, progress=progress, checkpoint=checkpoint
    )
