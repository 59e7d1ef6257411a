"""The check that post-pruning fine-tuning kept every pruning mask (all defenses use it)."""

from __future__ import annotations

from torch import nn

from miakit.prune import masked_tensors, refresh_masked_tensors

__all__ = ["check_masks_kept", "masked_names"]


def masked_names(model: nn.Module) -> set[tuple[str, str]]:
    """The ``(module_name, tensor_name)`` pairs of ``model``'s masked tensors."""
    return {(m, t) for m, _, t in masked_tensors(model)}


def check_masks_kept(model: nn.Module, before: set[tuple[str, str]]) -> None:
    """Refresh ``model``'s masked tensors, then check that no mask was lost or leaked.

    Raises:
        RuntimeError: if a mask present before fine-tuning is gone, or a pruned entry
            is non-zero.
    """
    refresh_masked_tensors(model)
    after = masked_names(model)
    if after != before:
        raise RuntimeError(f"fine-tuning lost pruning masks: {sorted(before - after)}")
    for mod_name, module, name in masked_tensors(model):
        mask = getattr(module, name + "_mask")
        if bool((getattr(module, name)[mask == 0] != 0).any()):
            raise RuntimeError(f"pruned entries of {mod_name}.{name} became non-zero")
