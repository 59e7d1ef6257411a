"""Magnitude pruning: L1 unstructured, L1 and L2 structured (three of the paper's four methods).

PAPER.md, "Pruning": one-shot pruning of the best checkpoint with one of four methods,
default sparsity 0.7, sweeps over roughly 0.5-0.9.

Each method is two layers, as in :mod:`torch.nn.utils.prune` (``compute_mask`` under
thin in-place functions). A *masks function* ``method_masks(model, sparsity, **options)``
decides what to prune and returns 0/1 masks by ``(module, tensor name)`` without touching
the model (the :class:`Pruner` protocol, the one override point). The in-place function
``method(model, sparsity, **options)`` hands those masks to
:func:`~miakit.prune.masks.apply_masks` and returns the model. Adding a method is one
masks function and one :data:`PRUNERS` line:

    >>> def random_masks(model, sparsity):  # doctest: +SKIP
    ...     return {(m, "weight"): (torch.rand_like(m.weight) >= sparsity).float()
    ...             for m in model.modules() if isinstance(m, nn.Linear)}
    >>> PRUNERS["random"] = PrunerSpec("random", "random", random_masks)  # doctest: +SKIP
    >>> prune_model(model, "random", 0.5)  # doctest: +SKIP

Rounding: a layer of ``n`` weights (filters, channels) loses ``min(round(s * n), n - 1)``
of them, ``round`` being Python's (half to even), as in ``torch.nn.utils.prune``; at
least one weight, filter or channel survives in every layer so that no layer becomes
constant (bounds on the realised sparsity: :mod:`miakit.prune`).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, Protocol

import torch
import torch.nn.utils.prune as tprune
from torch import Tensor, fx, nn

from miakit._util import check_fraction
from miakit.prune._layers import BATCHNORM, WEIGHT_LAYERS
from miakit.prune.masks import Masks, apply_masks, check_unpruned

__all__ = [
    "Pruner",
    "check_sparsity",
    "l1_structured",
    "l1_structured_masks",
    "l1_unstructured",
    "l1_unstructured_masks",
    "l2_structured",
    "l2_structured_masks",
]


def check_sparsity(sparsity: object) -> float:
    """Return ``sparsity`` as a float in [0, 1) or raise one ``ValueError`` saying why.

    PAPER.md, "Pruning": sparsity is the fraction of weights removed; 1 would remove every
    weight. Booleans, strings and NaN are refused as well.

    Raises:
        ValueError: ``sparsity`` is not a number in [0, 1).
    """
    try:
        return check_fraction("sparsity", sparsity, what="fraction of weights removed")
    except ValueError as err:
        raise ValueError(
            f"{err}. Pass a number such as 0.7 (the paper's default; it sweeps 0.5-0.9)"
        ) from None


def _count(sparsity: float, n: int) -> int:
    """How many of ``n`` weights/filters/channels to prune: ``round(s*n)``, at most ``n-1``."""
    return max(0, min(round(sparsity * n), n - 1))


class Pruner(Protocol):
    """The masks of one pruning method: what to prune, without changing the model.

    Returns 0/1 masks keyed by ``(module, tensor name)``, on each tensor's device, for a
    dense model; :func:`~miakit.prune.masks.apply_masks` applies them in dict order.
    Raises ``ValueError`` for a bad ``sparsity`` (:func:`check_sparsity`) or option, or a
    model the method does not apply to.
    """

    def __call__(self, model: nn.Module, sparsity: float, /, **options: Any) -> Masks: ...


# ---------------------------------------------------------------------------
# L1 unstructured
# ---------------------------------------------------------------------------


def _weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)]


def l1_unstructured_masks(
    model: nn.Module, sparsity: float, *, scope: Literal["layer", "global"] = "layer"
) -> Masks:
    """The masks of :func:`l1_unstructured`: one per Conv/Linear ``weight``."""
    s = check_sparsity(sparsity)
    if scope not in ("layer", "global"):
        raise ValueError(f"scope must be 'layer' (the paper) or 'global', got {scope!r}")
    layers = _weight_layers(model)
    if not layers:
        raise ValueError(
            f"l1_unstructured prunes Conv/Linear weights but {type(model).__name__} has none"
        )
    check_unpruned(model, "l1_unstructured")
    # Masks are computed on the plain layout, which apply_masks gives the model.
    weights = [module.weight.detach().contiguous() for _, module in layers]
    if scope == "layer":
        return {
            (module, "weight"): tprune.L1Unstructured(amount=_count(s, w.numel())).compute_mask(
                w, default_mask=torch.ones_like(w)
            )
            for (_, module), w in zip(layers, weights, strict=True)
        }
    # One threshold over all weights, exactly as tprune.global_unstructured computes it.
    scores = nn.utils.parameters_to_vector(weights)
    default_mask = nn.utils.parameters_to_vector([torch.ones_like(w) for w in weights])
    container = tprune.PruningContainer()
    container._tensor_name = "temp"
    method = tprune.L1Unstructured(amount=s)
    method._tensor_name = "temp"
    container.add_pruning_method(method)
    final_mask = container.compute_mask(scores, default_mask)
    masks: Masks = {}
    pointer = 0
    for (_, module), w in zip(layers, weights, strict=True):
        masks[module, "weight"] = final_mask[pointer : pointer + w.numel()].view_as(w)
        pointer += w.numel()
    return masks


def l1_unstructured(
    model: nn.Module, sparsity: float, *, scope: Literal["layer", "global"] = "layer"
) -> nn.Module:
    """L1 unstructured (magnitude) pruning of every Conv/Linear weight, in place.

    PAPER.md, "Pruning": layer-wise L1 unstructured pruning, the same sparsity in every
    conv/linear layer (the authors' NNI ``LevelPruner``). Each weight tensor of ``n``
    entries loses its ``min(round(sparsity * n), n - 1)`` smallest-magnitude entries.
    Biases, BatchNorm and the classifier's bias are kept; the classifier's weight is
    pruned like every other Linear.

    Args:
        model: the network; ``nn.Conv1d/2d/3d`` and ``nn.Linear`` weights are masked.
        sparsity: fraction of weights to remove, in [0, 1).
        scope: ``"layer"`` (the paper: every layer at ``sparsity``) or ``"global"`` (one
            magnitude threshold over all those weights, ``prune.global_unstructured``;
            exactly ``round(sparsity * N)`` of all ``N`` weights, layers unequal, and a
            layer may lose every weight at extreme sparsity).

    Returns:
        ``model``, pruned in place (masks as forward pre-hooks).

    Raises:
        ValueError: bad ``sparsity`` or ``scope``, a model without Conv/Linear layers, or
            a model that is already pruned.

    Example:
        >>> layer = nn.Linear(10, 20)
        >>> int((l1_unstructured(layer, 0.3).weight == 0).sum())
        60
    """
    masks = l1_unstructured_masks(model, sparsity, scope=scope)
    return apply_masks(model, masks, method="l1_unstructured")


# ---------------------------------------------------------------------------
# L1 / L2 structured (filters)
# ---------------------------------------------------------------------------


def _conv_bn_pairs(model: nn.Module) -> dict[nn.Module, nn.Module]:
    """Map each ``nn.Conv2d`` to the affine BatchNorm that is the sole user of its output.

    Found with ``torch.fx``; in post-activation nets (conv -> BN -> ReLU: ResNet, VGG,
    MobileNetV2) that is the BN of the conv's own channels. In pre-activation DenseNet the
    concatenated outputs feed several BNs and are not paired.
    """
    try:
        graph = fx.symbolic_trace(model).graph
    except Exception as err:  # data-dependent control flow and the like
        warnings.warn(
            f"could not trace {type(model).__name__} with torch.fx ({err}); only the conv "
            "filters are masked, the BatchNorm after each pruned filter keeps its channel",
            stacklevel=5,
        )
        return {}
    modules = dict(model.named_modules())
    pairs: dict[nn.Module, nn.Module] = {}
    for node in graph.nodes:
        bn = modules.get(node.target) if node.op == "call_module" else None
        if not isinstance(bn, BATCHNORM) or not bn.affine or not node.args:
            continue
        src = node.args[0]
        if not isinstance(src, fx.Node) or src.op != "call_module" or len(src.users) != 1:
            continue
        conv = modules.get(src.target)
        if isinstance(conv, nn.Conv2d) and conv.out_channels == bn.num_features:
            pairs.setdefault(conv, bn)
    return pairs


def _add_mask(masks: Masks, module: nn.Module, name: str, mask: Tensor) -> None:
    """Add a mask; a tensor masked twice (a BatchNorm module reused) keeps both zeros."""
    key = (module, name)
    masks[key] = masks[key] * mask if key in masks else mask


def _ln_structured_masks(
    model: nn.Module, sparsity: float, n: int, name: str, mask_bn: bool
) -> Masks:
    s = check_sparsity(sparsity)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(
            f"{name} prunes Conv2d filters but {type(model).__name__} has no Conv2d layer; "
            "use l1_unstructured for models without convolutions"
        )
    check_unpruned(model, name)
    pairs = _conv_bn_pairs(model) if mask_bn else {}
    masks: Masks = {}
    for conv in convs:
        w = conv.weight.detach().contiguous()
        method = tprune.LnStructured(amount=_count(s, conv.out_channels), n=n, dim=0)
        mask = method.compute_mask(w, default_mask=torch.ones_like(w))
        _add_mask(masks, conv, "weight", mask)
        keep = mask.reshape(conv.out_channels, -1).amax(dim=1)
        if conv.bias is not None:
            _add_mask(masks, conv, "bias", keep.clone())
        bn = pairs.get(conv)
        if bn is not None:
            _add_mask(masks, bn, "weight", keep.clone())
            _add_mask(masks, bn, "bias", keep.clone())
    return masks


def l1_structured_masks(model: nn.Module, sparsity: float, *, mask_bn: bool = True) -> Masks:
    """The masks of :func:`l1_structured`: conv filters, their biases and BN channels."""
    return _ln_structured_masks(model, sparsity, 1, "l1_structured", mask_bn)


def l2_structured_masks(model: nn.Module, sparsity: float, *, mask_bn: bool = True) -> Masks:
    """The masks of :func:`l2_structured`: conv filters, their biases and BN channels."""
    return _ln_structured_masks(model, sparsity, 2, "l2_structured", mask_bn)


def l1_structured(model: nn.Module, sparsity: float, *, mask_bn: bool = True) -> nn.Module:
    """L1 structured (filter) pruning of every ``nn.Conv2d``, in place.

    PAPER.md, "Pruning": L1 structured filter pruning (the authors' NNI
    ``L1FilterPruner``, Li et al. 2017). In every Conv2d, including the first, the
    ``min(round(sparsity * C), C - 1)`` output filters (``weight[o]``) with the smallest L1
    norm are zeroed (``prune.ln_structured(conv, "weight", n=1, dim=0)``), with their bias.
    Only convolutions are pruned: the final classifier and any other ``nn.Linear`` stay
    dense, as in the paper's code.

    Args:
        model: a network with ``nn.Conv2d`` layers.
        sparsity: fraction of filters removed from each conv, in [0, 1).
        mask_bn: also mask ``gamma`` and ``beta`` of the BatchNorm that directly (and
            solely) normalises the conv's output, so that a pruned filter's feature map is
            exactly zero after BN, as it is when the filter is removed (and as
            :func:`~miakit.prune.compact.compact` needs). ``False`` reproduces the
            authors' NNI masks, under which the BN keeps emitting its learned constant
            ``beta - gamma * mean / std`` in the pruned channel.

    Returns:
        ``model``, pruned in place.

    Raises:
        ValueError: bad ``sparsity``, a model without ``nn.Conv2d``, or an already
            pruned model.
    """
    masks = l1_structured_masks(model, sparsity, mask_bn=mask_bn)
    return apply_masks(model, masks, method="l1_structured")


def l2_structured(model: nn.Module, sparsity: float, *, mask_bn: bool = True) -> nn.Module:
    """L2 structured (filter) pruning of every ``nn.Conv2d``, in place.

    PAPER.md, "Pruning": L2 structured filter pruning (NNI ``L2FilterPruner``). As
    :func:`l1_structured`, with filters ranked by their L2 norm.

    Args:
        model: a network with ``nn.Conv2d`` layers.
        sparsity: fraction of filters removed from each conv, in [0, 1).
        mask_bn: also mask the BatchNorm channel of each pruned filter (see
            :func:`l1_structured`).

    Returns:
        ``model``, pruned in place.

    Raises:
        ValueError: bad ``sparsity``, a model without ``nn.Conv2d``, or an already
            pruned model.
    """
    masks = l2_structured_masks(model, sparsity, mask_bn=mask_bn)
    return apply_masks(model, masks, method="l2_structured")
