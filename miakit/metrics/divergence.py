"""Prediction divergence: per-class member and non-member means of a signal, and their gap.

PAPER.md, "Prediction divergence (the analysis)".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from miakit.metrics._checks import as_labels, as_membership, as_values

__all__ = ["divergence_stats"]


def divergence_stats(values: Any, membership: Any, labels: Any) -> pd.DataFrame:
    """Per-class member and non-member means of a signal, and their gap.

    The paper's "prediction divergence" (PAPER.md, "Prediction divergence
    (the analysis)"): for a per-sample signal such as the ground-truth-class
    confidence ``p_y`` or sensitivity ``s_y``, the mean over members and over
    non-members of each class, and the gap ``member mean - non-member mean``
    (the paper's per-class bar charts; pruning widens the confidence gaps
    from about 0.08-0.18 to 0.09-0.37 on CIFAR-10). A class without members
    (or non-members) gets NaN for that mean and for the gap.

    Args:
        values: ``(n,)`` the signal, e.g. ``posteriors[np.arange(n), labels]``.
        membership: ``(n,)`` 0/1 truth, 1 = member.
        labels: ``(n,)`` ground-truth classes.

    Returns:
        A DataFrame with one row per class present in ``labels`` (sorted):
        ``class``, ``n_members``, ``n_nonmembers``, ``member_mean``,
        ``nonmember_mean``, ``gap``.

    Raises:
        ValueError: on bad shapes or values, or a set lacking members or non-members.
    """
    m = as_membership(membership)
    v = as_values(values, m.size, "values")
    y = as_labels(labels, m.size)
    classes, inverse = np.unique(y, return_inverse=True)
    k = classes.size
    n_members = np.bincount(inverse, weights=m, minlength=k).astype(np.int64)
    n_total = np.bincount(inverse, minlength=k)
    n_nonmembers = n_total - n_members
    sum_members = np.bincount(inverse, weights=v * m, minlength=k)
    sum_nonmembers = np.bincount(inverse, weights=v * (1 - m), minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        member_mean = np.where(n_members > 0, sum_members / n_members, np.nan)
        nonmember_mean = np.where(n_nonmembers > 0, sum_nonmembers / n_nonmembers, np.nan)
    return pd.DataFrame(
        {
            "class": classes,
            "n_members": n_members,
            "n_nonmembers": n_nonmembers,
            "member_mean": member_mean,
            "nonmember_mean": nonmember_mean,
            "gap": member_mean - nonmember_mean,
        }
    )
