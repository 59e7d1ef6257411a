"""PPB: pair-based posterior balancing, the paper's defense (PAPER.md, "The defense").

During post-pruning fine-tuning the loss is cross-entropy plus ``lam`` times a KL term
that pulls the sorted posteriors of random pairs of training samples together, so
members stop standing out by how confident the model is on them.

Example:
    >>> PPBParams().lam
    4.0
    >>> fit(pruned, train, dev, cfg.halved(), objective=PPB(lam=4.0))  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miakit.data import Data
from miakit.defenses.base import DefenseParams, check_weight

__all__ = ["LAMBDAS", "PPB", "PPBParams", "ppb_divergence", "ppb_loss"]

LAMBDAS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
"""PPB's lambda sweep (PAPER.md, "The defense"); the default is :attr:`PPBParams.lam`."""


def _upcast(logits: Tensor) -> Tensor:
    """Half-precision (autocast) logits to float32; float32/float64 kept as they are."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def ppb_divergence(logits: Tensor) -> Tensor:
    """PPB's balancing term: KL between the sorted posteriors of the two half-batches.

    PAPER.md, "The defense": the even part of the minibatch is split into halves A
    (first ``n // 2`` rows) and B (the next ``n // 2`` rows; an odd last row is left out
    of this term); each row's logits are sorted in descending order, and the term is
    ``KL(P || Q)`` averaged over the ``n // 2`` pairs ``(A_i, B_i)``, with the reference
    distribution ``P = softmax(sort z_B)`` and ``Q = softmax(sort z_A)``::

        KL(P || Q) = sum_c P_c (log P_c - log Q_c)

    In PyTorch ``F.kl_div(input=log Q, target=P, reduction="batchmean")`` computes
    exactly this; here the target is passed as ``log P`` with ``log_target=True`` for
    numerical stability. Gradients flow through BOTH halves (the target ``P`` is not
    detached), so each pair pulls the two sorted posteriors towards each other. Sorting
    makes the term class-agnostic: it balances the *shape* of the posteriors (how
    confident), not which class is predicted.

    Args:
        logits: ``(n, K)`` pre-softmax outputs of one minibatch.

    Returns:
        A 0-d tensor (float32 for half-precision logits); ``0`` when ``n < 2`` (no pair).
    """
    if logits.ndim != 2:
        raise ValueError(f"PPB expects (batch, classes) logits, got shape {tuple(logits.shape)}")
    z = _upcast(logits)
    half = z.shape[0] // 2
    if half == 0:
        return z.sum() * 0.0  # keeps the graph; no pair to balance
    sorted_a = z[:half].sort(dim=1, descending=True).values
    sorted_b = z[half : 2 * half].sort(dim=1, descending=True).values
    log_q = F.log_softmax(sorted_a, dim=1)  # Q = softmax(sort z_A): the "input" of kl_div
    log_p = F.log_softmax(sorted_b, dim=1)  # P = softmax(sort z_B): the reference (target)
    # F.kl_div(log_q, log_p, reduction="batchmean", log_target=True), written out as its
    # kernel computes it, because vmap (fit_many) has no batching rule for kl_div
    return (log_p.exp() * (log_p - log_q)).sum() / half


def _ppb_loss(logits: Tensor, y: Tensor, lam: float) -> Tensor:
    """:func:`ppb_loss` for an already validated ``lam`` (the per-minibatch hot path)."""
    ce = F.cross_entropy(_upcast(logits), y)
    if lam == 0.0:
        return ce
    return ce + lam * ppb_divergence(logits)


def ppb_loss(logits: Tensor, y: Tensor, lam: float) -> Tensor:
    """The PPB loss ``CE(logits, y) + lam * KL(softmax(sort z_B) || softmax(sort z_A))``.

    PAPER.md, "The defense" (pair-based posterior balancing): cross-entropy over the
    WHOLE minibatch (an odd last sample included) plus ``lam`` times
    :func:`ppb_divergence` over the pairs of its even part, batch-mean, gradients
    through both halves. Half-precision (bf16 autocast) logits are upcast to float32.

    Args:
        logits: ``(n, K)`` pre-softmax outputs.
        y: ``(n,)`` int64 labels.
        lam: weight of the balancing term, finite and >= 0 (paper: 4; sweep
            :data:`LAMBDAS`); ``0`` gives plain cross-entropy.

    Returns:
        The 0-d loss tensor.

    Raises:
        ValueError: if ``lam`` is negative, NaN or infinite.

    Example:
        >>> z = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 3.0], [0.0, 0.5, 0.0]])
        >>> ppb_loss(z, torch.tensor([0, 1, 2, 1]), lam=4.0).shape
        torch.Size([])
    """
    return _ppb_loss(logits, y, check_weight("lam", lam))


@dataclass(frozen=True)
class PPBParams(DefenseParams):
    """PPB's options (PAPER.md, "The defense").

    Attributes:
        lam: weight of the KL balancing term, finite and >= 0; the paper's default 4,
            swept over :data:`LAMBDAS`. Stored as a float.

    Raises:
        ValueError: at construction, if ``lam`` is negative, NaN or infinite.
    """

    name: ClassVar[str] = "ppb"
    title: ClassVar[str] = "PPB"

    lam: float = 4.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lam", check_weight("lam", self.lam))

    def objective(self, dev: Data, num_classes: int) -> PPB:
        """The PPB loss as a :class:`miakit.train.Objective` (``dev`` is not used)."""
        return PPB(self.lam)


class PPB:
    """Pair-based posterior balancing as a :class:`miakit.train.Objective`.

    PAPER.md, "The defense": used during post-pruning fine-tuning only;
    ``objective(model, x, y) = ppb_loss(model(x), y, lam)``. ``fit`` draws each
    minibatch from a fresh random permutation, so the pairs (A_i, B_i) are random pairs
    of training samples. ``lam`` is validated here, once, not on every minibatch.

    Args:
        lam: weight of the KL term (default :attr:`PPBParams.lam`; sweep :data:`LAMBDAS`).

    Example:
        >>> fit(pruned, train, dev, cfg.halved(), objective=PPB(lam=4.0))  # doctest: +SKIP
    """

    def __init__(self, lam: float = PPBParams.lam) -> None:
        self.lam = PPBParams(lam).lam

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """The PPB loss of ``model`` on the minibatch ``(x, y)``."""
        return _ppb_loss(model(x), y, self.lam)

    def __repr__(self) -> str:
        return f"PPB(lam={self.lam})"
