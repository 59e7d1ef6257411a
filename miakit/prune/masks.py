"""Mask bookkeeping: which tensors carry pruning masks, and adding, folding or moving them.

PAPER.md, "Pruning": pruned entries stay exactly zero during fine-tuning. miakit keeps
them zero with :mod:`torch.nn.utils.prune` masks: :func:`apply_masks` turns each masked
tensor ``w`` of a module into a parameter ``w_orig``, a buffer ``w_mask`` and a forward
pre-hook that recomputes ``w = w_orig * w_mask`` before every forward, so the optimizer
may change ``w_orig`` freely and the ``state_dict`` carries the masks.

    >>> layer = nn.Linear(2, 2)
    >>> apply_masks(layer, {(layer, "weight"): torch.tensor([[1.0, 0.0], [0.0, 1.0]])})
    Linear(in_features=2, out_features=2, bias=True)
    >>> sorted(layer.state_dict())
    ['bias', 'weight_mask', 'weight_orig']
    >>> is_pruned(layer), bool(layer.weight[0, 1] == 0)
    (True, True)

The functions here never decide *what* to prune (that is :mod:`miakit.prune.methods`);
they add masks (:func:`apply_masks`, :func:`restore_masks`, :func:`reapply_masks`), fold
them into the weights (:func:`make_permanent`, :func:`strip_masks`), and read a masked
model (:func:`masked_tensors`, :func:`effective_tensor`, :func:`effective_parameters`,
:func:`refresh_masked_tensors`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
import torch.nn.utils.prune as tprune
from torch import Tensor, nn

__all__ = [
    "Masks",
    "apply_masks",
    "check_unpruned",
    "effective_parameters",
    "effective_tensor",
    "is_pruned",
    "make_permanent",
    "masked_tensors",
    "reapply_masks",
    "refresh_masked_tensors",
    "restore_masks",
    "strip_masks",
]

Masks = dict[tuple[nn.Module, str], Tensor]
"""Masks by ``(module, tensor name)``: 1 keeps an entry, 0 prunes it (as torch's
``global_unstructured`` names its tensors)."""


def _pruning_hooks(module: nn.Module) -> list[tprune.BasePruningMethod]:
    return [
        h for h in module._forward_pre_hooks.values() if isinstance(h, tprune.BasePruningMethod)
    ]


def is_pruned(model: nn.Module) -> bool:
    """Whether any tensor of ``model`` carries a pruning mask (``torch.nn.utils.prune``)."""
    return tprune.is_pruned(model)


def check_unpruned(model: nn.Module, method: str) -> None:
    """Refuse a model that already holds masks, naming ``method`` and the way out.

    Raises:
        ValueError: ``model`` holds pruning masks.
    """
    if is_pruned(model):
        raise ValueError(
            f"{method}: {type(model).__name__} is already pruned (it holds pruning masks). "
            "Call make_permanent(model) first to prune it again (existing zeros then count "
            "towards the new sparsity), or start from the dense model"
        )


def apply_masks(model: nn.Module, masks: Masks, *, method: str = "apply_masks") -> nn.Module:
    """Mask the tensors of a dense ``model`` in place (``custom_from_mask`` per entry).

    Each ``(module, name) -> mask`` entry becomes ``name_orig``, ``name_mask`` and a
    forward pre-hook, in the order of ``masks``. The model first gets the plain
    (contiguous) memory layout: ``torch.nn.utils.prune`` flattens weights with ``view``,
    which a channels_last weight (as :func:`miakit.train.fit` leaves convnets) does not
    allow.

    Args:
        model: the dense model that owns every module in ``masks``.
        masks: 0/1 masks of the shape of their tensors, on the tensors' device.
        method: the name to give in the error.

    Returns:
        ``model``, masked in place.

    Raises:
        ValueError: ``model`` is already pruned.
    """
    check_unpruned(model, method)
    model.to(memory_format=torch.contiguous_format)
    for (module, name), mask in masks.items():
        tprune.custom_from_mask(module, name, mask)
    return model


def masked_tensors(model: nn.Module) -> Iterator[tuple[str, nn.Module, str]]:
    """Yield ``(module_name, module, tensor_name)`` for every masked tensor of ``model``."""
    for mod_name, module in model.named_modules():
        for hook in _pruning_hooks(module):
            yield mod_name, module, hook._tensor_name


@torch.no_grad()
def refresh_masked_tensors(model: nn.Module) -> None:
    """Recompute every masked tensor ``w = w_orig * w_mask`` (as the pre-hook does), no grad.

    After ``load_state_dict`` (as :func:`~miakit.train.fit` does to restore the best-dev
    weights) the attribute ``w`` is stale until the next forward; this brings it up to date
    and makes it a plain tensor, so the model can be deep-copied.
    """
    for module in model.modules():
        for hook in _pruning_hooks(module):
            setattr(module, hook._tensor_name, hook.apply_mask(module))


def effective_tensor(module: nn.Module, name: str) -> Tensor | None:
    """The tensor the module computes with: ``w_orig * w_mask`` when masked, else ``w``.

    Detached; ``None`` when ``module`` has no tensor ``name``.
    """
    mask = getattr(module, name + "_mask", None)
    if mask is not None and hasattr(module, name + "_orig"):
        return (getattr(module, name + "_orig") * mask).detach()
    value = getattr(module, name, None)
    return value.detach() if isinstance(value, Tensor) else None


def effective_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Module, str, Tensor]]:
    """Every parameter of ``model`` once, as ``(module_name, module, name, effective value)``.

    A masked tensor is reported under its own name (``weight``, not ``weight_orig``) with
    the value :func:`effective_tensor` gives.
    """
    seen: set[int] = set()
    for mod_name, module in model.named_modules():
        for pname, param in module._parameters.items():
            if param is None or id(param) in seen:
                continue
            seen.add(id(param))
            base = pname[: -len("_orig")] if pname.endswith("_orig") else pname
            value = effective_tensor(module, base) if base != pname else param.detach()
            yield mod_name, module, base, value if value is not None else param.detach()


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold every pruning mask into its tensor (``prune.remove``), in place.

    Afterwards the ``state_dict`` holds plain ``weight``/``bias`` entries whose pruned
    entries are zero (no ``*_orig``/``*_mask``), and nothing keeps them zero any more:
    further training would revive them. Use it for export,
    :func:`~miakit.prune.compact.compact`, or before pruning a pruned model again.

    Returns:
        ``model``, without masks.
    """
    for _, module, name in list(masked_tensors(model)):
        tprune.remove(module, name)
    return model


def restore_masks(model: nn.Module, state_dict: dict[str, Tensor]) -> nn.Module:
    """Give ``model`` the masks named in a pruned ``state_dict`` so that it can load it.

    A pruned model's ``state_dict`` has ``<layer>.weight_orig`` and ``<layer>.weight_mask``
    entries; a freshly built dense model has ``<layer>.weight``. This registers a mask
    (values from ``state_dict``) for every ``*_mask`` entry; then
    ``model.load_state_dict(state_dict)`` works and the model is pruned as it was saved.

    Returns:
        ``model``, masked in place (weights still to be loaded).

    Raises:
        ValueError: an entry masks a tensor that ``model`` does not have.
    """
    modules = dict(model.named_modules())
    for key, mask in state_dict.items():
        if not key.endswith("_mask"):
            continue
        mod_name, _, tensor = key[: -len("_mask")].rpartition(".")
        module = modules.get(mod_name)
        if module is None or not isinstance(getattr(module, tensor, None), Tensor):
            raise ValueError(
                f"state_dict entry {key!r} masks {mod_name or 'the model'}.{tensor}, which "
                f"{type(model).__name__} does not have; build the same architecture first"
            )
        if not any(h._tensor_name == tensor for h in _pruning_hooks(module)):
            tprune.custom_from_mask(module, tensor, mask.to(getattr(module, tensor).device))
    return model


def strip_masks(model: nn.Module) -> dict[tuple[str, str], Tensor]:
    """Fold every mask into its tensor, in place, and return the masks by qualified name.

    Like :func:`make_permanent`, but the masks (detached copies) are kept, keyed by
    ``(module_name, tensor_name)`` so that they survive a model conversion that replaces
    modules (Opacus's per-sample-gradient hooks see a masked ``weight`` as a plain tensor
    whose trainable parameter is ``weight_orig``). :func:`reapply_masks` puts them back.

    Returns:
        The masks, e.g. ``{("conv1", "weight"): mask}``; empty for a dense model.
    """
    masks: dict[tuple[str, str], Tensor] = {}
    for qualname, module in model.named_modules():
        for hook in _pruning_hooks(module):
            tensor_name = hook._tensor_name
            masks[(qualname, tensor_name)] = getattr(module, tensor_name + "_mask").detach().clone()
            tprune.remove(module, tensor_name)
    return masks


def reapply_masks(model: nn.Module, masks: Mapping[tuple[str, str], Tensor]) -> nn.Module:
    """Mask ``model`` again with masks from :func:`strip_masks`, in place.

    Each mask moves to its tensor's device and is applied with ``custom_from_mask``, so
    ``w = w_orig * w_mask`` holds again before every forward.

    Returns:
        ``model``, masked in place.
    """
    for (qualname, tensor_name), mask in masks.items():
        module = model.get_submodule(qualname)
        param = getattr(module, tensor_name)
        tprune.custom_from_mask(module, tensor_name, mask.to(param.device))
    return model
