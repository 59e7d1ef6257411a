"""Network slimming (Liu et al. 2017): prune BatchNorm channels by |gamma| (PAPER.md, "Pruning").

:func:`slimming_masks` ranks the scale ``gamma`` of every affine BatchNorm (globally by
default, the original method) and masks the smallest channels' ``gamma`` and ``beta``;
:func:`slimming` applies them in place. :func:`slimming_penalty` is the L1 penalty on
``gamma`` that the method trains with before pruning.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miakit.prune._layers import BATCHNORM
from miakit.prune.masks import Masks, apply_masks, check_unpruned
from miakit.prune.methods import _add_mask, _count, check_sparsity

__all__ = ["SlimmingPenalty", "slimming", "slimming_masks", "slimming_penalty"]


# ---------------------------------------------------------------------------
# Network slimming
# ---------------------------------------------------------------------------


def slimming_masks(
    model: nn.Module, sparsity: float, *, scope: Literal["global", "layer"] = "global"
) -> Masks:
    """The masks of :func:`slimming`: ``gamma`` and ``beta`` of every affine BatchNorm."""
    s = check_sparsity(sparsity)
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' (the original method) or 'layer', got {scope!r}")
    bns = [m for m in model.modules() if isinstance(m, BATCHNORM) and m.affine]
    if not bns:
        raise ValueError(
            f"slimming ranks channels by BatchNorm scale (gamma) but {type(model).__name__} "
            "has no affine BatchNorm layer; use l1_unstructured for models without BatchNorm"
        )
    check_unpruned(model, "slimming")
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
    masks: Masks = {}
    for bn, f in zip(bns, flags, strict=True):
        keep = (~f).to(device=bn.weight.device, dtype=bn.weight.dtype)
        _add_mask(masks, bn, "weight", keep)
        _add_mask(masks, bn, "bias", keep.clone())
    return masks


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
    discarded by the BN (:func:`~miakit.prune.compact.compact` removes it).

    Liu et al. train with an L1 penalty on ``gamma`` first (:func:`slimming_penalty`);
    the paper prunes the normally trained best checkpoint in one shot, which can remove
    whole layers of a small net. The pipeline prunes a penalised model unless
    ``ExperimentConfig.slimming_lambda`` is 0 (:meth:`miakit.steps.ModelSteps.base`).

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
    return apply_masks(model, slimming_masks(model, sparsity, scope=scope), method="slimming")


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
        gammas = [m.weight for m in model.modules() if isinstance(m, BATCHNORM) and m.affine]
        if not gammas:
            raise ValueError(
                f"slimming_penalty needs affine BatchNorm layers; {type(model).__name__} has none"
            )
        return loss + self.lam * torch.stack([g.abs().sum() for g in gammas]).sum()


def slimming_penalty(lam: float = 1e-4) -> SlimmingPenalty:
    """The sparsity-training objective of network slimming: ``CE + lam * sum |gamma|``.

    PAPER.md, "Pruning". Pass it as ``objective`` to :func:`~miakit.train.fit` (or
    :func:`miakit.train.fit`) to train before :func:`slimming`.

    Example:
        >>> fit(model, train, dev, cfg, objective=slimming_penalty(1e-4))  # doctest: +SKIP
    """
    return SlimmingPenalty(lam)
