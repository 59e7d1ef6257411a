"""Validation of the arrays every metric takes (private to :mod:`miakit.metrics`).

Membership goes through :func:`miakit._util.check_membership`, the one 0/1 check of the
kit; the rest are the shapes and values the metrics need (see the conventions in
:mod:`miakit.metrics`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miakit._util import check_membership

__all__ = ["as_decisions", "as_labels", "as_membership", "as_values"]


def as_membership(membership: Any, *, require_both: bool = True) -> np.ndarray:
    """Membership as a 1-D int64 0/1 array; raise ``ValueError`` if it is anything else."""
    m = check_membership(membership)
    if require_both:
        n_members = int(m.sum())
        if n_members == 0 or n_members == m.size:
            raise ValueError(
                f"membership needs both members and non-members, got {n_members} members and "
                f"{m.size - n_members} non-members; evaluate on a set that holds both"
            )
    return m


def as_values(values: Any, n: int, what: str) -> np.ndarray:
    """A 1-D finite float64 array of length ``n``; raise ``ValueError`` otherwise."""
    v = np.asarray(values)
    if v.ndim != 1 or v.shape[0] != n:
        raise ValueError(
            f"{what} must be a 1-D array with one entry per sample ({n},), got shape {v.shape}"
        )
    if not (np.issubdtype(v.dtype, np.number) or v.dtype == bool):
        raise ValueError(f"{what} must be numeric, got dtype {v.dtype}")
    v = v.astype(np.float64)
    if not np.isfinite(v).all():
        k = int((~np.isfinite(v)).sum())
        raise ValueError(
            f"{what} must be finite, got {k} NaN/inf values; replace or clip them first "
            "(e.g. np.nan_to_num or np.clip)"
        )
    return v


def as_decisions(decisions: Any, n: int) -> np.ndarray:
    """Hard 0/1 decisions of length ``n`` as int64; raise ``ValueError`` otherwise."""
    d = np.asarray(decisions)
    if d.ndim != 1 or d.shape[0] != n:
        raise ValueError(
            f"decisions must be a 1-D array with one entry per sample ({n},), got shape {d.shape}"
        )
    if d.dtype != bool and not np.isin(d, (0, 1)).all():
        raise ValueError(
            "decisions must hold only 0 (non-member) and 1 (member); threshold the scores first, "
            "e.g. (scores >= attack.threshold).astype(int)"
        )
    return d.astype(np.int64)


def as_labels(labels: Any, n: int) -> np.ndarray:
    """Class labels of length ``n``; raise ``ValueError`` otherwise."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(
            f"labels must be a 1-D array with one class per sample ({n},), got shape {y.shape}"
        )
    return y
