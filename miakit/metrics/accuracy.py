"""Balanced attack accuracy, the paper's "attack accuracy" (PAPER.md, "Reporting")."""

from __future__ import annotations

from typing import Any

from miakit.metrics._checks import as_decisions, as_membership

__all__ = ["balanced_accuracy"]


def balanced_accuracy(membership: Any, decisions: Any) -> float:
    """Balanced attack accuracy: the mean of the TPR and the TNR.

    On a balanced member/non-member set this is the paper's "attack accuracy"
    (PAPER.md, "Reporting"); on an unbalanced set it is the number that
    stays at 0.5 for an attack that guesses.

    Args:
        membership: ``(n,)`` 0/1 truth, 1 = member.
        decisions: ``(n,)`` 0/1 attack guesses, 1 = member.

    Returns:
        ``(TP / n_members + TN / n_nonmembers) / 2``.

    Raises:
        ValueError: on shapes that differ, values other than 0/1, or a set
            without members or without non-members.
    """
    m = as_membership(membership)
    d = as_decisions(decisions, m.size)
    n_members = int(m.sum())
    n_nonmembers = m.size - n_members
    tp = int((d & m).sum())
    tn = int(((1 - d) & (1 - m)).sum())
    # One correctly rounded division of exact integers.
    return (tp * n_nonmembers + tn * n_members) / (2 * n_members * n_nonmembers)
