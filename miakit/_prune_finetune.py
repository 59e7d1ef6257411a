"""Temporary home of ``miakit.prune.finetune`` until ``defenses.finetune`` replaces it.

TEMPORARY (ARCHITECTURE.md, "Layer order"): fine-tuning needs :mod:`miakit.train`, which
the pruning package (layer L1) must not import. Today's :func:`finetune` therefore lives
here, outside :mod:`miakit.prune`, which exposes it lazily (``from miakit.prune import
finetune`` still works). Delete this module once every caller uses the single
post-pruning loop ``miakit.defenses.finetune``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from miakit.data import Data
from miakit.prune.masks import masked_tensors, refresh_masked_tensors
from miakit.train import FitResult, Objective, TrainConfig, fit

__all__ = ["finetune"]


def finetune(
    model: nn.Module,
    train: Data,
    dev: Data,
    cfg: TrainConfig,
    *,
    objective: Objective | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    checkpoint: str | Path | None = None,
) -> FitResult:
    """Fine-tune a pruned model with its masks applied: :func:`~miakit.train.fit`.

    Temporary: to be replaced by ``miakit.defenses.finetune`` (see the module docstring).

    PAPER.md, "Pruning": after the one-shot prune, fine-tune on the same training data
    for half the training epochs (50 images / 25 tabular) with the same optimizer
    settings and early stopping; pass ``train_cfg.halved()`` as ``cfg``. The masks are
    forward pre-hooks, so pruned weights stay exactly zero, and the best-dev state that
    ``fit`` restores holds ``*_orig`` and ``*_mask`` alike. Afterwards this refreshes
    every masked tensor and checks that each pruned entry is still exactly zero.

    Args:
        model: the pruned model (a dense model is fine-tuned all the same).
        train: the training data it was trained on.
        dev: dev data for early stopping.
        cfg: the fine-tuning schedule (``train_cfg.halved()`` for the paper's).
        objective: a custom loss, e.g. the PPB defense; cross-entropy by default.
        device, progress, checkpoint: as for :func:`~miakit.train.fit`.

    Returns:
        ``fit``'s :class:`~miakit.train.FitResult`.

    Raises:
        RuntimeError: if a pruned entry ended up non-zero (a mask was lost).

    Example:
        >>> finetune(prune_model(model, "l1_unstructured", 0.7), train, dev,
        ...          train_cfg.halved())  # doctest: +SKIP
    """
    before = {(m, t) for m, _, t in masked_tensors(model)}
    result = fit(
        model,
        train,
        dev,
        cfg,
        objective=objective,
        device=device,
        progress=progress,
        checkpoint=checkpoint,
        desc="finetune",
    )
    refresh_masked_tensors(model)
    after = {(m, t) for m, _, t in masked_tensors(model)}
    if after != before:
        raise RuntimeError(f"fine-tuning lost pruning masks: {sorted(before - after)}")
    for mod_name, module, name in masked_tensors(model):
        mask = getattr(module, name + "_mask")
        if bool((getattr(module, name)[mask == 0] != 0).any()):
            raise RuntimeError(f"pruned entries of {mod_name}.{name} became non-zero")
    return result
