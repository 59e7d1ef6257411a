"""Pruning methods, post-pruning fine-tuning and sparsity accounting.

PAPER.md, "Pruning": one-shot pruning of the best checkpoint with one of four methods,
then fine-tuning on the same training data for half the training epochs (same optimizer,
early stopping); default sparsity 0.7, sweeps over roughly 0.5-0.9.

Every method is a plain function ``method(model, sparsity, ...) -> model`` that prunes
``model`` in place with :mod:`torch.nn.utils.prune` masks, like ``prune.l1_unstructured``:
each pruned tensor ``w`` becomes a parameter ``w_orig``, a buffer ``w_mask`` and a forward
pre-hook that recomputes ``w = w_orig * w_mask`` before every forward. Pruned entries are
therefore exactly zero during and after fine-tuning, whatever the optimizer does to
``w_orig``, and the ``state_dict`` carries the masks.

    >>> model = build_model("resnet18", 10, (3, 32, 32))  # doctest: +SKIP
    >>> prune_model(model, "l1_unstructured", 0.7)        # doctest: +SKIP
    >>> finetune(model, train, dev, train_cfg.halved())   # doctest: +SKIP
    >>> round(sparsity_report(model, (3, 32, 32)).sparsity, 3)  # doctest: +SKIP
    0.7

Methods (:data:`PRUNERS`):

- ``l1_unstructured``: magnitude pruning, the same sparsity in every Conv/Linear weight
  (layer-wise, the paper's default) or one global threshold (``scope="global"``).
- ``l1_structured`` / ``l2_structured``: filter pruning of every ``nn.Conv2d`` by the
  L1/L2 norm of each output filter (Li et al. 2017).
- ``slimming``: network slimming (Liu et al. 2017), channels ranked by ``|gamma|`` of the
  BatchNorm layers, globally across layers.

Rounding and the realised sparsity: a layer of ``n`` weights (filters, channels) loses
``min(round(s * n), n - 1)`` of them, ``round`` being Python's (half to even), as in
``torch.nn.utils.prune``; at least one weight, filter or channel survives in every layer
so that no layer becomes constant. The realised sparsity thus differs from the requested
``s`` only by rounding, which bounds it per method (``N`` = weights or channels of the
smallest layer unless said otherwise):

- ``l1_unstructured`` (layer): every layer exactly ``round(s * n) / n``, so
  ``|realised - s| <= 0.5 / N`` for each layer and over all Conv/Linear weights.
- ``l1_unstructured`` (global): exactly ``round(s * N_total)`` zero weights.
- ``l1_structured``/``l2_structured``: every conv exactly ``round(s * C)`` zero filters,
  so the fraction of zero conv weights is within ``0.5 / C_min`` of ``s``. The final
  classifier (a ``Linear``) is not pruned, so the fraction over *all* Conv/Linear
  weights is below ``s`` by the classifier's share.
- ``slimming`` (global): exactly ``round(s * C_total)`` zero channels over all BatchNorm
  layers (fewer only when keeping one channel per layer forbids it).

The kit's choices where the authors' code (NNI 2.x pruners) differs, each documented at
the function: filter pruning also masks the BatchNorm channel that normalises a pruned
filter (``mask_bn=True``), so a pruned filter's feature map is exactly zero, as when the
filter is physically removed; NNI masked only the conv (``mask_bn=False`` reproduces it)
and rounded the count down instead of to nearest.

Beyond the paper: :func:`compact` removes the zeroed filters and channels physically
(Torch-Pruning's ``DependencyGraph``), and :func:`compaction_report` measures the gain.

Note:
    After a forward pass with autograd on, a masked module's ``weight`` is a non-leaf
    tensor, and ``copy.deepcopy`` of the model fails (a ``torch.nn.utils.prune``
    limitation). :func:`finetune` and :func:`compact` refresh the masked tensors without
    autograd, which makes the model deep-copyable again.
"""

from __future__ import annotations

import copy
import math
import numbers
import operator
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.nn.utils import prune

from miakit.data import Data
from miakit.train import FitResult, Objective, TrainConfig, fit

__all__ = [
    "PRUNERS",
    "CompactionReport",
    "SlimmingPenalty",
    "SparsityReport",
    "compact",
    "compaction_report",
    "finetune",
    "is_pruned",
    "l1_structured",
    "l1_unstructured",
    "l2_structured",
    "make_permanent",
    "prune_model",
    "restore_masks",
    "slimming",
    "slimming_penalty",
    "sparsity_report",
]

Pruner = Callable[..., nn.Module]

_WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_BN = nn.modules.batchnorm._BatchNorm


# ---------------------------------------------------------------------------
# Validation and small helpers
# ---------------------------------------------------------------------------


def _check_sparsity(sparsity: object) -> float:
    """Return ``sparsity`` as a float in [0, 1) or raise one ``ValueError`` saying why."""
    expected = "sparsity must be a float in [0, 1), the fraction of weights to remove"
    if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real):
        raise ValueError(
            f"{expected}; got {sparsity!r} of type {type(sparsity).__name__}. "
            "Pass a number such as 0.7 (the paper's default)"
        )
    value = float(sparsity)
    if math.isnan(value):
        raise ValueError(f"{expected}; got NaN. Pass a number such as 0.7 (the paper's default)")
    if value < 0.0:
        raise ValueError(f"{expected}; got {value}, which is negative")
    if value >= 1.0:
        raise ValueError(
            f"{expected}; got {value}, which would remove every weight. The paper sweeps 0.5-0.9"
        )
    return value


def _count(sparsity: float, n: int) -> int:
    """How many of ``n`` weights/filters/channels to prune: ``round(s*n)``, at most ``n-1``."""
    return max(0, min(round(sparsity * n), n - 1))


def _refuse_pruned(model: nn.Module, method: str) -> None:
    """Refuse a model that already holds masks; give a channels_last model the plain layout.

    ``torch.nn.utils.prune`` flattens weights with ``view``, which a channels_last
    weight (as :func:`miakit.train.fit` leaves convnets) does not allow.
    """
    if is_pruned(model):
        raise ValueError(
            f"{method}: {type(model).__name__} is already pruned (it holds pruning masks). "
            "Call make_permanent(model) first to prune it again (existing zeros then count "
            "towards the new sparsity), or start from the dense model"
        )
    model.to(memory_format=torch.contiguous_format)


def _pruning_hooks(module: nn.Module) -> list[prune.BasePruningMethod]:
    return [h for h in module._forward_pre_hooks.values() if isinstance(h, prune.BasePruningMethod)]


def _masked_tensors(model: nn.Module) -> Iterator[tuple[str, nn.Module, str]]:
    """Yield ``(module_name, module, tensor_name)`` for every masked tensor of ``model``."""
    for mod_name, module in model.named_modules():
        for hook in _pruning_hooks(module):
            yield mod_name, module, hook._tensor_name


@torch.no_grad()
def _refresh(model: nn.Module) -> None:
    """Recompute every masked tensor ``w = w_orig * w_mask`` (as the pre-hook does), no grad.

    After ``load_state_dict`` (as :func:`~miakit.train.fit` does to restore the best-dev
    weights) the attribute ``w`` is stale until the next forward; this brings it up to date
    and makes it a plain tensor, so the model can be deep-copied.
    """
    for module in model.modules():
        for hook in _pruning_hooks(module):
            setattr(module, hook._tensor_name, hook.apply_mask(module))


def _effective(module: nn.Module, name: str) -> Tensor | None:
    """The tensor the module computes with: ``w_orig * w_mask`` when masked, else ``w``."""
    mask = getattr(module, name + "_mask", None)
    if mask is not None and hasattr(module, name + "_orig"):
        return (getattr(module, name + "_orig") * mask).detach()
    value = getattr(module, name, None)
    return value.detach() if isinstance(value, Tensor) else None


def _named_effective_params(model: nn.Module) -> Iterator[tuple[str, nn.Module, str, Tensor]]:
    """Every parameter of ``model`` once, as its effective (masked) value."""
    seen: set[int] = set()
    for mod_name, module in model.named_modules():
        for pname, param in module._parameters.items():
            if param is None or id(param) in seen:
                continue
            seen.add(id(param))
            base = pname[: -len("_orig")] if pname.endswith("_orig") else pname
            value = _effective(module, base) if base != pname else param.detach()
            yield mod_name, module, base, value if value is not None else param.detach()


# ---------------------------------------------------------------------------
# The methods
# ---------------------------------------------------------------------------


def _weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _WEIGHT_LAYERS)]


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
    s = _check_sparsity(sparsity)
    if scope not in ("layer", "global"):
        raise ValueError(f"scope must be 'layer' (the paper) or 'global', got {scope!r}")
    layers = _weight_layers(model)
    if not layers:
        raise ValueError(
            f"l1_unstructured prunes Conv/Linear weights but {type(model).__name__} has none"
        )
    _refuse_pruned(model, "l1_unstructured")
    if scope == "layer":
        for _, module in layers:
            prune.l1_unstructured(module, "weight", amount=_count(s, module.weight.numel()))
    else:
        prune.global_unstructured(
            [(module, "weight") for _, module in layers],
            pruning_method=prune.L1Unstructured,
            amount=s,
        )
    return model


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
            stacklevel=4,
        )
        return {}
    modules = dict(model.named_modules())
    pairs: dict[nn.Module, nn.Module] = {}
    for node in graph.nodes:
        bn = modules.get(node.target) if node.op == "call_module" else None
        if not isinstance(bn, _BN) or not bn.affine or not node.args:
            continue
        src = node.args[0]
        if not isinstance(src, fx.Node) or src.op != "call_module" or len(src.users) != 1:
            continue
        conv = modules.get(src.target)
        if isinstance(conv, nn.Conv2d) and conv.out_channels == bn.num_features:
            pairs.setdefault(conv, bn)
    return pairs


def _ln_structured(model: nn.Module, sparsity: float, n: int, name: str, mask_bn: bool) -> None:
    s = _check_sparsity(sparsity)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(
            f"{name} prunes Conv2d filters but {type(model).__name__} has no Conv2d layer; "
            "use l1_unstructured for models without convolutions"
        )
    _refuse_pruned(model, name)
    pairs = _conv_bn_pairs(model) if mask_bn else {}
    for conv in convs:
        prune.ln_structured(conv, "weight", amount=_count(s, conv.out_channels), n=n, dim=0)
        keep = conv.weight_mask.reshape(conv.out_channels, -1).amax(dim=1)
        if conv.bias is not None:
            prune.custom_from_mask(conv, "bias", keep.clone())
        bn = pairs.get(conv)
        if bn is not None:
            prune.custom_from_mask(bn, "weight", keep.clone())
            prune.custom_from_mask(bn, "bias", keep.clone())


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
            :func:`compact` needs). ``False`` reproduces the authors' NNI masks, under
            which the BN keeps emitting its learned constant ``beta - gamma * mean / std``
            in the pruned channel.

    Returns:
        ``model``, pruned in place.

    Raises:
        ValueError: bad ``sparsity``, a model without ``nn.Conv2d``, or an already
            pruned model.
    """
    _ln_structured(model, sparsity, 1, "l1_structured", mask_bn)
    return model


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
    _ln_structured(model, sparsity, 2, "l2_structured", mask_bn)
    return model


def slimming(
    model: nn.Module, sparsity: float, *, scope: Literal["global", "layer"] = "global"
) -> nn.Module:
    """Network slimming: prune channels by ``|gamma|`` of their BatchNorm, in place.

    PAPER.md, "Pruning": network slimming (Liu et al. 2017; the authors' NNI
    ``SlimPruner``). Channels of all affine BatchNorm layers are ranked together by
    ``|gamma|`` and the ``round(sparsity * C_total)`` smallest are pruned: their ``gamma``
    AND ``beta`` are masked, so the BN outputs exactly ``0 * x_hat + 0 = 0`` there. Each
    layer keeps at least its largest-``|gamma|`` channel (the next smallest channel
    elsewhere is pruned instead), so the count is exact unless that forbids it. Ties are
    broken by layer order. The conv feeding a pruned channel is left as is: its output is
    discarded by the BN (:func:`compact` removes it).

    Liu et al. train with an L1 penalty on ``gamma`` first (:func:`slimming_penalty`);
    the paper prunes the normally trained best checkpoint in one shot.

    Args:
        model: a network with affine BatchNorm layers (``nn.BatchNorm1d/2d/3d``).
        sparsity: fraction of BN channels to prune, in [0, 1).
        scope: ``"global"`` (one ranking over all BN layers, the original method) or
            ``"layer"`` (``min(round(sparsity * C), C - 1)`` channels in every BN layer).

    Returns:
        ``model``, pruned in place.

    Raises:
        ValueError: bad ``sparsity`` or ``scope``, a model without affine BatchNorm, or
            an already pruned model.
    """
    s = _check_sparsity(sparsity)
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' (the original method) or 'layer', got {scope!r}")
    bns = [m for m in model.modules() if isinstance(m, _BN) and m.affine]
    if not bns:
        raise ValueError(
            f"slimming ranks channels by BatchNorm scale (gamma) but {type(model).__name__} "
            "has no affine BatchNorm layer; use l1_unstructured for models without BatchNorm"
        )
    _refuse_pruned(model, "slimming")
    gammas = [bn.weight.detach().abs().flatten().double().cpu() for bn in bns]
    if scope == "global":
        scores = torch.cat(gammas)
        sizes = [g.numel() for g in gammas]
        starts = torch.tensor([0, *sizes[:-1]]).cumsum(0)
        protected = starts + torch.stack([g.argmax() for g in gammas])
        scores[protected] = math.inf  # each layer's largest channel survives
        k = min(round(s * scores.numel()), scores.numel() - len(bns))
        pruned = torch.zeros(scores.numel(), dtype=torch.bool)
        pruned[torch.argsort(scores, stable=True)[:k]] = True
        flags = list(pruned.split(sizes))
    else:
        flags = []
        for g in gammas:
            f = torch.zeros(g.numel(), dtype=torch.bool)
            f[torch.argsort(g, stable=True)[: _count(s, g.numel())]] = True
            flags.append(f)
    for bn, f in zip(bns, flags, strict=True):
        keep = (~f).to(device=bn.weight.device, dtype=bn.weight.dtype)
        prune.custom_from_mask(bn, "weight", keep)
        prune.custom_from_mask(bn, "bias", keep.clone())
    return model


@dataclass(frozen=True)
class SlimmingPenalty:
    """Network slimming's sparsity-training loss: ``CE + lam * sum |gamma|``.

    PAPER.md, "Pruning" (network slimming; Liu et al. 2017, Eq. 1): an L1 penalty on the
    scale ``gamma`` of every affine BatchNorm layer pushes unimportant channels towards
    zero before :func:`slimming`. An :class:`~miakit.train.Objective` for
    :func:`~miakit.train.fit`; it never synchronises with the host.

    Attributes:
        lam: penalty weight (Liu et al.: 1e-4 to 1e-5).
    """

    lam: float = 1e-4

    def __post_init__(self) -> None:
        if (
            isinstance(self.lam, bool)
            or not isinstance(self.lam, numbers.Real)
            or not (math.isfinite(self.lam) and self.lam >= 0)
        ):
            raise ValueError(f"lam must be a finite number >= 0 (e.g. 1e-4), got {self.lam!r}")

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        loss = F.cross_entropy(model(x), y)  # the forward refreshes masked gammas first
        gammas = [m.weight for m in model.modules() if isinstance(m, _BN) and m.affine]
        if not gammas:
            raise ValueError(
                f"slimming_penalty needs affine BatchNorm layers; {type(model).__name__} has none"
            )
        return loss + self.lam * torch.stack([g.abs().sum() for g in gammas]).sum()


def slimming_penalty(lam: float = 1e-4) -> SlimmingPenalty:
    """The sparsity-training objective of network slimming: ``CE + lam * sum |gamma|``.

    PAPER.md, "Pruning". Pass it as ``objective`` to :func:`~miakit.train.fit` (or
    :func:`finetune`) to train before :func:`slimming`.

    Example:
        >>> fit(model, train, dev, cfg, objective=slimming_penalty(1e-4))  # doctest: +SKIP
    """
    return SlimmingPenalty(lam)


PRUNERS: dict[str, Pruner] = {
    "l1_unstructured": l1_unstructured,
    "l1_structured": l1_structured,
    "l2_structured": l2_structured,
    "slimming": slimming,
}
"""The paper's four pruning methods, by name (PAPER.md, "Pruning")."""


def prune_model(model: nn.Module, method: str, sparsity: float, **opts: Any) -> nn.Module:
    """Prune ``model`` in place with the method named ``method`` (a key of :data:`PRUNERS`).

    PAPER.md, "Pruning". ``opts`` go to the method (``scope=``, ``mask_bn=``).

    Raises:
        ValueError: an unknown ``method`` (the message lists the known ones), or any
            error of the method itself.

    Example:
        >>> prune_model(model, "slimming", 0.5)  # doctest: +SKIP
    """
    if not isinstance(method, str) or method not in PRUNERS:
        raise ValueError(f"unknown pruning method {method!r}; known methods: {', '.join(PRUNERS)}")
    return PRUNERS[method](model, sparsity, **opts)


def is_pruned(model: nn.Module) -> bool:
    """Whether any tensor of ``model`` carries a pruning mask (``torch.nn.utils.prune``)."""
    return prune.is_pruned(model)


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold every pruning mask into its tensor (``prune.remove``), in place.

    Afterwards the ``state_dict`` holds plain ``weight``/``bias`` entries whose pruned
    entries are zero (no ``*_orig``/``*_mask``), and nothing keeps them zero any more:
    further training would revive them. Use it for export, :func:`compact`, or before
    pruning a pruned model again.

    Returns:
        ``model``, without masks.
    """
    for _, module, name in list(_masked_tensors(model)):
        prune.remove(module, name)
    return model


def restore_masks(model: nn.Module, state_dict: dict[str, Tensor]) -> nn.Module:
    """Give ``model`` the masks named in a pruned ``state_dict`` so that it can load it.

    A pruned model's ``state_dict`` has ``<layer>.weight_orig`` and ``<layer>.weight_mask``
    entries; a freshly built dense model has ``<layer>.weight``. This registers a mask
    (values from ``state_dict``) for every ``*_mask`` entry; then
    ``model.load_state_dict(state_dict)`` works and the model is pruned as it was saved.

    Returns:
        ``model``, masked in place (weights still to be loaded).
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
            prune.custom_from_mask(module, tensor, mask.to(getattr(module, tensor).device))
    return model


# ---------------------------------------------------------------------------
# Fine-tuning
# ---------------------------------------------------------------------------


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
    before = {(m, t) for m, _, t in _masked_tensors(model)}
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
    _refresh(model)
    after = {(m, t) for m, _, t in _masked_tensors(model)}
    if after != before:
        raise RuntimeError(f"fine-tuning lost pruning masks: {sorted(before - after)}")
    for mod_name, module, name in _masked_tensors(model):
        mask = getattr(module, name + "_mask")
        if bool((getattr(module, name)[mask == 0] != 0).any()):
            raise RuntimeError(f"pruned entries of {mod_name}.{name} became non-zero")
    return result


# ---------------------------------------------------------------------------
# Sparsity accounting
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SparsityReport:
    """How sparse a (pruned) model is, per layer and overall.

    PAPER.md, "Pruning": sparsity is the fraction of pruned (zero) weights.

    Attributes:
        layers: one row per Conv/Linear/BatchNorm layer: ``name``, ``type``, ``params``
            (its weight and bias elements), ``zeros`` (exact zeros among them, effective
            values ``w_orig * w_mask``), ``fraction_zero``, ``channels`` (output
            channels/features), ``dead_channels`` (output channels whose parameters are
            all zero: conv/linear filter and bias, or BN ``gamma`` and ``beta``),
            ``macs`` and ``effective_macs`` (0 for BN).
        weights: elements of all Conv/Linear weight tensors (the prunable weights).
        zero_weights: exact zeros among them.
        sparsity: ``zero_weights / weights``, the paper's sparsity.
        params_dense: all parameters of the model (each shared tensor once).
        params_effective: non-zero parameters.
        sparsity_all: ``1 - params_effective / params_dense``.
        macs_dense: multiply-accumulates of all Conv/Linear layers for one input.
        macs_effective: those not removed by pruning (see :func:`sparsity_report`).
        traced: whether dead input channels were traced (``torch.fx``); if ``False`` the
            effective MACs only reflect each layer's own zero weights.
    """

    layers: pd.DataFrame
    weights: int
    zero_weights: int
    sparsity: float
    params_dense: int
    params_effective: int
    sparsity_all: float
    macs_dense: int
    macs_effective: int
    traced: bool

    @property
    def channel_sparsity(self) -> float:
        """Fraction of BatchNorm channels with ``gamma = beta = 0`` (NaN without BatchNorm).

        Network slimming's sparsity; filter pruning with ``mask_bn=True`` gives the same
        fraction over the BNs that follow a conv directly.
        """
        bn = self.layers[self.layers["type"].str.startswith("BatchNorm")]
        total = int(bn["channels"].sum())
        return int(bn["dead_channels"].sum()) / total if total else math.nan

    @property
    def macs_fraction(self) -> float:
        """``macs_effective / macs_dense`` (1.0 for a dense model)."""
        return self.macs_effective / self.macs_dense if self.macs_dense else 1.0

    def summary(self) -> dict[str, float | int | bool]:
        """The scalar fields as a dict (one row of a results table)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "layers"}
        out["channel_sparsity"] = self.channel_sparsity
        out["macs_fraction"] = self.macs_fraction
        return out


_PASS_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Hardtanh,
    nn.Hardswish, nn.Identity, nn.Flatten, nn.modules.dropout._DropoutNd,
    nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd,
)  # fmt: skip
_PASS_FUNCTIONS = {
    F.relu, torch.relu, F.relu6, F.leaky_relu, F.elu, F.gelu, F.silu, torch.tanh, F.hardtanh,
    F.hardswish, F.dropout, torch.flatten, F.avg_pool1d, F.avg_pool2d, F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d, F.max_pool1d, F.max_pool2d, F.adaptive_max_pool2d,
}  # fmt: skip
_PASS_METHODS = {"relu", "relu_", "flatten", "view", "reshape", "contiguous", "clone"}
_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}


def _dead_filters(live: Tensor, bias: Tensor | None) -> Tensor:
    """Filters (rows of ``live``) without a live weight, whose bias is zero too."""
    dead = ~live.reshape(live.shape[0], -1).any(dim=1)
    return dead & (bias == 0) if bias is not None else dead


def _positions(module: nn.Module, out: Tensor) -> int:
    """Output positions per sample of a Conv/Linear layer (spatial size; 1 for a vector)."""
    channels = (
        module.out_channels
        if isinstance(module, nn.modules.conv._ConvNd)
        else (module.out_features)
    )
    return out.numel() // (out.shape[0] * channels)


def _dead_from(module: nn.Module, weight: Tensor | None, bias: Tensor | None) -> Tensor | None:
    """Output channels that ``module`` zeroes by these (effective) parameters alone."""
    if weight is None:
        return None
    if isinstance(module, _WEIGHT_LAYERS):
        return _dead_filters(weight != 0, bias)
    if isinstance(module, _BN) and bias is not None:
        return (weight == 0) & (bias == 0)
    return None


def _dead_outputs(module: nn.Module) -> Tensor | None:
    """Output channels of ``module`` that are zero by its own parameters alone."""
    return _dead_from(module, _effective(module, "weight"), _effective(module, "bias"))


def _live_weights(module: nn.Module, in_dead: Tensor | None) -> Tensor:
    """Boolean mask of the weights that multiply a non-zero value: ``w != 0``, live input."""
    w = _effective(module, "weight")
    live = w != 0
    if in_dead is None:
        return live
    groups = getattr(module, "groups", 1)
    in_dead = in_dead.to(live.device)
    if in_dead.numel() != live.shape[1] * groups:
        return live
    per_filter = in_dead.view(groups, -1).repeat_interleave(live.shape[0] // groups, dim=0)
    return live & ~per_filter.view(*per_filter.shape, *([1] * (live.dim() - 2)))


class _MacTracer(fx.Interpreter):
    """Runs the traced model on one input, counting MACs and tracking exactly-zero channels.

    ``dead[node]`` is a boolean vector over dim 1 of the node's output (channels for
    ``(N, C, ...)``, features for ``(N, F)``), ``True`` where the value is zero for every
    input because of zeroed parameters; ``None`` when unknown (treated as live).
    """

    def __init__(self, gm: fx.GraphModule, modules: dict[str, nn.Module]) -> None:
        super().__init__(gm)
        self.modules = modules
        self.dead: dict[fx.Node, Tensor | None] = {}
        self.macs: dict[str, list[int]] = {}

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        self.dead[n] = self._dead(n, out) if isinstance(out, Tensor) and out.dim() >= 2 else None
        return out

    def _arg(self, n: fx.Node, i: int = 0) -> tuple[Tensor | None, Tensor | None]:
        a = n.args[i] if len(n.args) > i else None
        if not isinstance(a, fx.Node) or not isinstance(self.env.get(a), Tensor):
            return None, None
        return self.env[a], self.dead.get(a)

    @staticmethod
    def _pass(x: Tensor | None, dead: Tensor | None, out: Tensor) -> Tensor | None:
        if x is None or dead is None or x.dim() < 2:
            return None
        if out.shape[:2] == x.shape[:2]:
            return dead
        if out.dim() == 2 and out.shape[0] == x.shape[0] and out.shape[1] == x[0].numel():
            return dead.repeat_interleave(x[0, 0].numel())  # flatten (N, C, H, W) -> (N, CHW)
        return None

    def _dead(self, n: fx.Node, out: Tensor) -> Tensor | None:
        if n.op == "call_module":
            module = self.modules[n.target]
            if isinstance(module, _WEIGHT_LAYERS):
                return self._weight_layer(n, module, out)
            if isinstance(module, _BN):
                return _dead_outputs(module)
            if isinstance(module, _PASS_MODULES):
                return self._pass(*self._arg(n), out)
            return None
        if (n.op == "call_function" and n.target in _ADD_FUNCTIONS) or (
            n.op == "call_method" and n.target in ("add", "add_")
        ):
            return self._add(n, out)
        if n.op == "call_function" and n.target is torch.cat:
            return self._cat(n, out)
        if (n.op == "call_function" and n.target in _PASS_FUNCTIONS) or (
            n.op == "call_method" and n.target in _PASS_METHODS
        ):
            return self._pass(*self._arg(n), out)
        return None

    def _weight_layer(self, n: fx.Node, module: nn.Module, out: Tensor) -> Tensor | None:
        x, in_dead = self._arg(n)
        vector = out.dim() == 2  # (N, F) for a Linear, never a conv output
        if isinstance(module, nn.Linear) and (x is None or x.dim() != 2):
            in_dead = None
        live = _live_weights(module, in_dead)
        dead_out = _dead_filters(live, _effective(module, "bias"))
        # Filters whose only consumer is a BatchNorm that zeroes their channel are wasted.
        wasted = torch.zeros_like(dead_out)
        users = list(n.users)
        if len(users) == 1 and users[0].op == "call_module":
            bn_dead = _dead_outputs(self.modules[users[0].target])
            if bn_dead is not None and bn_dead.numel() == wasted.numel():
                wasted = bn_dead.to(wasted.device)
        row = self.macs.setdefault(n.target, [0, 0])
        positions = _positions(module, out)
        row[0] += positions * live.numel()
        row[1] += positions * int(live[~wasted].sum())
        return dead_out if vector or isinstance(module, nn.modules.conv._ConvNd) else None

    def _add(self, n: fx.Node, out: Tensor) -> Tensor | None:
        dead = None
        for a in n.args:
            if isinstance(a, fx.Node) and isinstance(self.env.get(a), Tensor):
                x, d = self.env[a], self.dead.get(a)
                if d is None or x.dim() < 2 or x.shape[1] != out.shape[1]:
                    return None
                dead = d if dead is None else dead & d
            elif a != 0:
                return None
        return dead

    def _cat(self, n: fx.Node, out: Tensor) -> Tensor | None:
        tensors = n.args[0]
        dim = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else 0)
        if not isinstance(tensors, (list, tuple)) or dim % out.dim() != 1:
            return None
        parts = []
        for a in tensors:
            x = self.env.get(a) if isinstance(a, fx.Node) else None
            if not isinstance(x, Tensor):
                return None
            d = self.dead.get(a)
            parts.append(
                d if d is not None else torch.zeros(x.shape[1], dtype=torch.bool, device=x.device)
            )
        return torch.cat([p.to(parts[0].device) for p in parts])


def _count_macs_hooks(model: nn.Module, x: Tensor) -> dict[str, list[int]]:
    """Fallback MAC count with forward hooks: each layer's own zero weights only."""
    macs: dict[str, list[int]] = {}
    names = {m: n for n, m in model.named_modules()}

    def hook(module: nn.Module, _inputs: Any, out: Tensor) -> None:
        live = _effective(module, "weight") != 0
        positions = _positions(module, out)
        row = macs.setdefault(names[module], [0, 0])
        row[0] += positions * live.numel()
        row[1] += positions * int(live.sum())

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _WEIGHT_LAYERS)
    ]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return macs


def _model_device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _check_input_shape(input_shape: Any) -> tuple[int, ...]:
    try:
        shape = tuple(operator.index(d) for d in input_shape)
    except TypeError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise ValueError(
            f"input_shape must be the shape of one sample without the batch dimension, e.g. "
            f"(3, 32, 32) or (600,); got {input_shape!r}"
        )
    return shape


@torch.no_grad()
def sparsity_report(model: nn.Module, input_shape: tuple[int, ...]) -> SparsityReport:
    """Count zero weights, parameters and MACs of a (pruned) model.

    PAPER.md, "Pruning". Values are the effective ones (``w_orig * w_mask`` for masked
    tensors), so a masked and a :func:`make_permanent` model report the same numbers.

    What is counted:

    - Sparsity: exact zeros among all Conv/Linear weight tensors (biases, BN excluded).
    - Parameters: every parameter once; *effective* = non-zero ones.
    - MACs: one input of shape ``(1, *input_shape)`` runs through the model in eval mode.
      A Conv/Linear layer's dense MACs are ``positions * weight.numel()`` (``positions`` =
      output spatial size, 1 for a Linear on a vector); biases, BN, activations and
      pooling are not counted. Effective MACs count only weights that are non-zero, whose
      input channel is not dead, and whose filter is not wasted. An input channel is dead
      when the model's parameters make it exactly zero for every input: the output of a
      filter with zero weights (on live inputs) and zero bias, or of a BN channel with
      ``gamma = beta = 0``, carried through zero-preserving ops (ReLU-like activations,
      dropout, pooling, flatten, addition of dead channels, concatenation). A filter is
      wasted when its only consumer is a BN that zeroes its channel (network slimming).
      This needs ``torch.fx`` tracing; if that fails (``traced=False``), effective MACs
      scale each layer's MACs by its own non-zero weight fraction only.

    Args:
        model: any model (masked, compacted or dense), on any device.
        input_shape: the shape of one sample without the batch dimension, as given to
            :func:`~miakit.models.build_model`: ``(C, H, W)`` or ``(F,)``. Small spatial
            sizes are fine (e.g. ``(3, 8, 8)``); MACs scale with them.

    Returns:
        A :class:`SparsityReport`.
    """
    shape = _check_input_shape(input_shape)
    x = torch.zeros(1, *shape, device=_model_device(model))
    was_training = model.training
    model.eval()
    try:
        modules = dict(model.named_modules())
        try:  # trace, then run once; any failure falls back to plain forward hooks
            tracer = _MacTracer(fx.symbolic_trace(model), modules)
            tracer.run(x)
            macs, traced = tracer.macs, True
        except Exception:
            macs, traced = _count_macs_hooks(model, x), False
    finally:
        model.train(was_training)

    rows: dict[str, dict[str, Any]] = {}
    values: dict[tuple[str, str], Tensor] = {}
    params_dense = params_effective = weights = zero_weights = 0
    for mod_name, module, pname, value in _named_effective_params(model):
        nz = int(torch.count_nonzero(value))
        params_dense += value.numel()
        params_effective += nz
        if isinstance(module, _WEIGHT_LAYERS) and pname == "weight":
            weights += value.numel()
            zero_weights += value.numel() - nz
        if isinstance(module, (*_WEIGHT_LAYERS, _BN)) and pname in ("weight", "bias"):
            values[mod_name, pname] = value
            row = rows.setdefault(mod_name, {"params": 0, "zeros": 0})
            row["params"] += value.numel()
            row["zeros"] += value.numel() - nz
    records = []
    for name, row in rows.items():
        module = modules[name]
        dead = _dead_from(module, values.get((name, "weight")), values.get((name, "bias")))
        mac = macs.get(name, [0, 0])
        records.append(
            {
                "name": name,
                "type": type(module).__name__,
                "params": row["params"],
                "zeros": row["zeros"],
                "fraction_zero": row["zeros"] / row["params"] if row["params"] else 0.0,
                "channels": int(dead.numel()) if dead is not None else 0,
                "dead_channels": int(dead.sum()) if dead is not None else 0,
                "macs": mac[0],
                "effective_macs": mac[1],
            }
        )
    columns = [
        "name",
        "type",
        "params",
        "zeros",
        "fraction_zero",
        "channels",
        "dead_channels",
        "macs",
        "effective_macs",
    ]
    return SparsityReport(
        layers=pd.DataFrame.from_records(records, columns=columns),
        weights=weights,
        zero_weights=zero_weights,
        sparsity=zero_weights / weights if weights else 0.0,
        params_dense=params_dense,
        params_effective=params_effective,
        sparsity_all=1.0 - params_effective / params_dense if params_dense else 0.0,
        macs_dense=sum(m[0] for m in macs.values()),
        macs_effective=sum(m[1] for m in macs.values()),
        traced=traced,
    )


# ---------------------------------------------------------------------------
# Compaction (beyond the paper)
# ---------------------------------------------------------------------------


def _import_torch_pruning() -> Any:
    try:
        import torch_pruning
    except ImportError as err:
        raise ImportError(
            "compact() removes pruned channels with Torch-Pruning, which is not installed: "
            "pip install torch-pruning"
        ) from err
    return torch_pruning


def _output_layer(model: nn.Module, x: Tensor) -> nn.Module | None:
    """The last Conv/Linear layer run by a forward pass: the classifier, never pruned."""
    order: list[nn.Module] = []
    handles = [
        m.register_forward_hook(lambda mod, *_: order.append(mod))
        for m in model.modules()
        if isinstance(m, _WEIGHT_LAYERS)
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return order[-1] if order else None


def _zero_channels(tp: Any, layer: Any, idxs: list[int]) -> Tensor:
    """For an out-channel dependency: which of ``idxs`` are produced as exact zeros."""
    n = len(idxs)
    if isinstance(layer, tp.ops._OutputOp) or not isinstance(layer, nn.Module):
        return torch.zeros(n, dtype=torch.bool)  # a model output, or an unwrapped parameter
    if isinstance(layer, _WEIGHT_LAYERS) or (isinstance(layer, _BN) and layer.affine):
        return _dead_outputs(layer).cpu()[idxs]
    if next(iter(layer.parameters(recurse=False)), None) is None:
        return torch.ones(n, dtype=torch.bool)  # parameter-free (concat, add, reshape...)
    return torch.zeros(n, dtype=torch.bool)  # other parametrised layers: keep


@torch.no_grad()
def _zero_wasted_filters(dg: Any, out_layer: nn.Module | None) -> None:
    """Zero each Conv/Linear filter whose only consumer is a BN channel with gamma=beta=0."""
    for module, node in dg.module2node.items():
        if not isinstance(module, _WEIGHT_LAYERS) or module is out_layer:
            continue
        if len(node.outputs) != 1 or not isinstance(node.outputs[0].module, _BN):
            continue
        dead = _dead_outputs(node.outputs[0].module)
        if dead is None or dead.numel() != module.weight.shape[0] or not dead.any():
            continue
        module.weight[dead] = 0
        if module.bias is not None:
            module.bias[dead] = 0


def compact(model: nn.Module, example_input: Tensor) -> nn.Module:
    """A physically smaller copy of a structured-pruned model, with dead channels removed.

    Beyond the paper (PAPER.md, "Pruning" keeps masks). A deep copy of ``model`` gets its
    masks folded in (:func:`make_permanent`); Torch-Pruning's ``DependencyGraph`` groups
    the channels that must be removed together (a conv's filters, its BN, the next
    layers' input channels, residual and concatenation partners), and every channel whose
    producing parameters are all zero in every layer of its group (conv/linear filter and
    bias, BN ``gamma`` and ``beta``) is removed; a filter that feeds only a zeroed BN
    channel counts as zero (network slimming). At least one channel of each group stays,
    and the classifier's outputs are never touched. The activations between layers must
    map 0 to 0 (ReLU-like), as in all registry architectures.

    Which channels go: after :func:`l1_structured` (``mask_bn=True``) or :func:`slimming`
    every pruned channel of a plain chain (VGG, ``small_cnn``, the inside of ResNet
    blocks); channels coupled by a residual addition or a concatenation, or running
    through a MobileNetV2 expansion and its depthwise conv, only where every coupled layer
    pruned them (the methods prune layers independently, as the paper does). For a plain
    chain the compacted model runs exactly the effective MACs of :func:`sparsity_report`;
    elsewhere those are a lower bound. Unstructured masks remove little or nothing.

    Args:
        model: the masked model (left unchanged).
        example_input: a batch for tracing, e.g. ``train.x[:2]``, on the model's device.

    Returns:
        The compacted model, in eval mode, with plain (unmasked) weights.

    Raises:
        ImportError: Torch-Pruning is not installed (``pip install torch-pruning``).
        RuntimeError: if the compacted model's outputs differ from ``model``'s (eval
            mode) beyond float tolerance; that means a removed channel was not dead.
    """
    tp = _import_torch_pruning()
    was_training = model.training
    _refresh(model)
    model.eval()
    try:
        with torch.no_grad():
            reference = model(example_input)
        small = make_permanent(copy.deepcopy(model)).eval()
    finally:
        model.train(was_training)
    out_layer = _output_layer(small, example_input)
    dg = tp.DependencyGraph().build_dependency(small, example_inputs=example_input, verbose=False)
    _zero_wasted_filters(dg, out_layer)

    plan = []
    ignored = [out_layer] if out_layer is not None else []
    for group in dg.get_all_groups(ignored_layers=ignored, root_module_types=_WEIGHT_LAYERS):
        root = group[0].dep
        n = len(group[0].idxs)
        live_votes = torch.zeros(n)
        for item in group.items:
            if not dg.is_out_channel_pruning_fn(item.dep.handler):
                continue
            zero = _zero_channels(tp, item.dep.target.module, list(item.idxs))
            live_votes.index_add_(0, torch.as_tensor(item.root_idxs), (~zero).float())
        dead = (live_votes == 0).nonzero().flatten().tolist()
        if len(dead) == n:
            dead = dead[1:]  # keep one channel per group
        if dead:
            plan.append((root.target.module, root.handler, dead))
    for module, handler, idxs in plan:
        dg.get_pruning_group(module, handler, idxs).prune()

    small.eval()
    with torch.no_grad():
        got = small(example_input)
    if got.shape != reference.shape or not torch.allclose(got, reference, atol=1e-4, rtol=1e-4):
        diff = (got - reference).abs().max().item() if got.shape == reference.shape else "n/a"
        raise RuntimeError(
            f"compaction changed the outputs of {type(model).__name__} (max |diff| {diff}); a "
            "removed channel was not exactly zero (an activation that does not map 0 to 0?). "
            "Use the masked model"
        )
    return small


@dataclass(frozen=True)
class CompactionReport:
    """Size and speed of a masked model against its :func:`compact` version.

    Attributes:
        params_before: parameters of the masked model (masked entries included).
        params_after: parameters of the compacted model.
        latency_before_ms: median forward time of the masked model (ms, eval mode).
        latency_after_ms: the same for the compacted model.
        speedup: ``latency_before_ms / latency_after_ms``.
    """

    params_before: int
    params_after: int
    latency_before_ms: float
    latency_after_ms: float
    speedup: float


@torch.no_grad()
def _latency_ms(model: nn.Module, x: Tensor, repeats: int, warmup: int) -> float:
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        model(x)
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def compaction_report(
    masked: nn.Module,
    compacted: nn.Module,
    example_input: Tensor,
    *,
    repeats: int = 20,
    warmup: int = 3,
) -> CompactionReport:
    """Parameters and measured latency before and after :func:`compact`.

    Both models run ``example_input`` in eval mode without autograd, on their device (the
    CPU for the figures the kit reports), ``warmup`` times untimed and then ``repeats``
    times timed; the median is reported. Their train/eval modes are restored.

    Args:
        masked: the masked model (its mask hooks run in every forward).
        compacted: the result of ``compact(masked, ...)``.
        example_input: the batch to time, e.g. 128 samples.
        repeats: timed forwards per model (>= 1).
        warmup: untimed forwards first.

    Returns:
        A :class:`CompactionReport`.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    modes = masked.training, compacted.training
    masked.eval()
    compacted.eval()
    try:
        before = _latency_ms(masked, example_input, repeats, warmup)
        after = _latency_ms(compacted, example_input, repeats, warmup)
    finally:
        masked.train(modes[0])
        compacted.train(modes[1])
    return CompactionReport(
        params_before=sum(p.numel() for p in masked.parameters()),
        params_after=sum(p.numel() for p in compacted.parameters()),
        latency_before_ms=before,
        latency_after_ms=after,
        speedup=before / after if after > 0 else math.inf,
    )
