"""Pruning-mask bookkeeping that the defenses need and :mod:`miakit.prune` does not expose.

TODO(merge): use prune.masks' public helpers once ``miakit.prune`` exports them (a
masked-tensor iterator, a refresh of the masked tensors, and strip/reapply of the
masks); these are local copies of ``prune._masked_tensors`` and ``prune._refresh``.
Re-installing the masks already uses the public :func:`miakit.prune.restore_masks`,
and folding them in uses :func:`miakit.prune.make_permanent`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch import Tensor, nn
from torch.nn.utils import prune as tprune

from miakit.prune import make_permanent, restore_masks

__all__ = ["check_masks_kept", "masked_names", "refresh", "reapply_masks", "strip_masks"]


def _masked_tensors(model: nn.Module) -> Iterator[tuple[str, nn.Module, str]]:
    """``(module_name, module, tensor_name)`` for every masked tensor of ``model``."""
    for mod_name, module in model.named_modules():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, tprune.BasePruningMethod):
                yield mod_name, module, hook._tensor_name


def masked_names(model: nn.Module) -> set[tuple[str, str]]:
    """The ``(module_name, tensor_name)`` pairs of ``model``'s masked tensors."""
    return {(m, t) for m, _, t in _masked_tensors(model)}


@torch.no_grad()
def refresh(model: nn.Module) -> None:
    """Recompute every masked tensor ``w = w_orig * w_mask`` without autograd.

    After ``load_state_dict`` (best-dev weights) ``w`` is stale until the next forward;
    this brings it up to date and makes it a plain tensor, so the model can be
    deep-copied.
    """
    for module in model.modules():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, tprune.BasePruningMethod):
                setattr(module, hook._tensor_name, hook.apply_mask(module))


def check_masks_kept(model: nn.Module, before: set[tuple[str, str]]) -> None:
    """Refresh ``model``'s masked tensors, then check that no mask was lost or leaked.

    Raises:
        RuntimeError: if a mask present before fine-tuning is gone, or a pruned entry
            is non-zero.
    """
    refresh(model)
    after = masked_names(model)
    if after != before:
        raise RuntimeError(f"fine-tuning lost pruning masks: {sorted(before - after)}")
    for mod_name, module, name in _masked_tensors(model):
        mask = getattr(module, name + "_mask")
        if bool((getattr(module, name)[mask == 0] != 0).any()):
            raise RuntimeError(f"pruned entries of {mod_name}.{name} became non-zero")


def strip_masks(model: nn.Module) -> dict[tuple[str, str], Tensor]:
    """Fold every mask into its tensor (:func:`miakit.prune.make_permanent`); return them.

    Opacus's per-sample-gradient hooks see a pruned layer's ``weight`` as a plain tensor
    (the trainable parameter is ``weight_orig``), so DP-SGD takes the masks out and
    re-imposes them after every optimizer step instead.
    """
    masks = {(q, t): getattr(m, t + "_mask").detach().clone() for q, m, t in _masked_tensors(model)}
    make_permanent(model)
    return masks


def reapply_masks(model: nn.Module, masks: Mapping[tuple[str, str], Tensor]) -> None:
    """Re-install the masks that :func:`strip_masks` took out (``w_orig * w_mask``)."""
    restore_masks(model, {(f"{q}.{t}" if q else t) + "_mask": m for (q, t), m in masks.items()})
