"""ROC curves, exact ROC AUC, and the TPR at a fixed low FPR (PAPER.md, "Reporting").

Every point is a real threshold ("member iff ``score >= t``"); ties switch together
and nothing is interpolated, so AUC and TPR come from exact integer counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from miakit.metrics._checks import as_membership, as_values

__all__ = ["TprAtFpr", "roc_auc", "roc_curve", "tpr_at_fpr"]


def _roc_counts(m: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (fp, tp, threshold) at each distinct score, highest first, with (0, 0, +inf)."""
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    m_sorted = m[order]
    # The last position of each run of equal scores: all tied samples switch together.
    last = np.flatnonzero(np.diff(s_sorted) != 0)
    last = np.append(last, s_sorted.size - 1)
    tp = np.cumsum(m_sorted)[last]
    fp = last + 1 - tp
    zero = np.zeros(1, dtype=np.int64)
    return (
        np.concatenate([zero, fp]),
        np.concatenate([zero, tp]),
        np.concatenate([[np.inf], s_sorted[last]]),
    )


def roc_curve(membership: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve of an attack's scores: one point per distinct score.

    Point ``i`` is the attack "member iff ``score >= thresholds[i]``". Samples
    with equal scores always switch together, so a tie between a member and
    a non-member is one diagonal step of the curve (never an optimistic or
    pessimistic staircase). The first point is ``(0, 0)`` at threshold
    ``+inf`` (flag nothing), the last is ``(1, 1)`` at the lowest score. No
    point is dropped (``sklearn.metrics.roc_curve(..., drop_intermediate=False)``
    gives the same arrays). Plot it on log-log axes for the low-FPR regime
    (PAPER.md, "Reporting").

    Args:
        membership: ``(n,)`` 0/1 truth, 1 = member.
        scores: ``(n,)`` finite attack scores, higher = member.

    Returns:
        ``(fpr, tpr, thresholds)``, each of length ``1 + number of distinct scores``;
        ``fpr`` and ``tpr`` are non-decreasing, ``thresholds`` strictly decreasing.

    Raises:
        ValueError: on bad shapes or values, or a set lacking members or non-members.
    """
    m = as_membership(membership)
    s = as_values(scores, m.size, "scores")
    fp, tp, thresholds = _roc_counts(m, s)
    return fp / fp[-1], tp / tp[-1], thresholds


def roc_auc(membership: Any, scores: Any) -> float:
    """Exact area under the ROC curve; a member/non-member tie counts 1/2.

    Equals the probability that a random member scores above a random
    non-member, plus half the probability of a tie (the Mann-Whitney
    statistic). Computed from integer counts with a single final division,
    so it is exact up to that one rounding; it agrees with
    ``sklearn.metrics.roc_auc_score`` (which integrates float rates) to
    within floating-point rounding.

    Args:
        membership: ``(n,)`` 0/1 truth, 1 = member.
        scores: ``(n,)`` finite attack scores, higher = member.

    Returns:
        The AUC in ``[0, 1]``; 0.5 for a guessing attack.

    Raises:
        ValueError: on bad shapes or values, or a set lacking members or non-members.
    """
    m = as_membership(membership)
    s = as_values(scores, m.size, "scores")
    fp, tp, _ = _roc_counts(m, s)
    # Twice the trapezoid area in units of (1 non-member) x (1 member), an exact integer.
    twice_area = int((np.diff(fp) * (tp[1:] + tp[:-1])).sum())
    return twice_area / (2 * int(tp[-1]) * int(fp[-1]))


@dataclass(frozen=True)
class TprAtFpr:
    """The attack's true-positive rate at a fixed false-positive-rate budget.

    Attributes:
        tpr: the largest TPR among thresholds whose realised FPR is at most
            ``fpr_target``.
        fpr_target: the FPR budget asked for (e.g. 0.001 for 0.1%).
        fpr_realised: the FPR the chosen threshold actually has,
            ``fp / n_nonmembers``; it can be well below the target (with fewer
            than ``1 / fpr_target`` non-members it is necessarily 0).
        threshold: the chosen threshold (flag iff ``score >= threshold``);
            ``+inf`` when no threshold flags anything within the budget.
        tp: members flagged at that threshold.
        fp: non-members flagged at that threshold.
        n_members: members in the evaluation set.
        n_nonmembers: non-members in the evaluation set.
    """

    tpr: float
    fpr_target: float
    fpr_realised: float
    threshold: float
    tp: int
    fp: int
    n_members: int
    n_nonmembers: int


def tpr_at_fpr(membership: Any, scores: Any, fpr: float) -> TprAtFpr:
    """TPR at a fixed FPR: the largest TPR whose *realised* FPR is at most ``fpr``.

    Among the ROC points (:func:`roc_curve`) with ``fp / n_nonmembers <= fpr``
    it picks the one with the largest TPR and, among those, the lowest
    realised FPR (the highest threshold). Nothing is interpolated: the
    returned threshold really achieves ``tp`` and ``fp``. With few
    non-members the budget may allow no false positive at all (e.g. fewer
    than 1000 non-members at 0.1%), so the realised FPR is 0; it is reported
    rather than hidden (PAPER.md, "Reporting").

    Args:
        membership: ``(n,)`` 0/1 truth, 1 = member.
        scores: ``(n,)`` finite attack scores, higher = member.
        fpr: the FPR budget in ``[0, 1]``, e.g. 0.001 for 0.1%.

    Returns:
        A :class:`TprAtFpr` with the TPR, the target and realised FPR, the
        threshold, and the counts behind them.

    Raises:
        ValueError: on bad inputs or an ``fpr`` outside ``[0, 1]``.
    """
    if not 0.0 <= float(fpr) <= 1.0:
        raise ValueError(f"fpr must be a rate in [0, 1] (e.g. 0.001 for 0.1%), got {fpr}")
    m = as_membership(membership)
    s = as_values(scores, m.size, "scores")
    fp, tp, thresholds = _roc_counts(m, s)
    n_members, n_nonmembers = int(tp[-1]), int(fp[-1])
    # fp is non-decreasing, so the admissible points form a prefix (the (0, 0) point always is).
    last = int(np.searchsorted(fp / n_nonmembers, float(fpr), side="right")) - 1
    # tp is non-decreasing too: the first point reaching tp[last] has the lowest FPR for that TPR.
    i = int(np.searchsorted(tp, tp[last], side="left"))
    return TprAtFpr(
        tpr=int(tp[i]) / n_members,
        fpr_target=float(fpr),
        fpr_realised=int(fp[i]) / n_nonmembers,
        threshold=float(thresholds[i]),
        tp=int(tp[i]),
        fp=int(fp[i]),
        n_members=n_members,
        n_nonmembers=n_nonmembers,
    )
