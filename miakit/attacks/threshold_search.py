"""The threshold search of the metric-based attacks: :func:`best_threshold`, :class:`ThresholdFit`.

Conf, Xent, Mentr (one threshold per ground-truth class) and Top1-conf (one
global threshold) are calibrated on the pooled shadow data (shadow train =
member, shadow test = non-member) to maximise balanced accuracy (PAPER.md,
"The eight existing attacks", attacks 2-5). :func:`best_threshold` does it with
one sort and cumulative counts, O(n log n) for all classes at once, instead of
the authors' scan that re-counts every sample for every candidate threshold
(O(n^2) per class). It searches the same candidate set as that scan, so it
finds the same maximal accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ThresholdFit", "best_threshold"]


@dataclass(frozen=True, eq=False)
class ThresholdFit:
    """The balanced-accuracy-maximising threshold of each group, from :func:`best_threshold`.

    Attributes:
        groups: ``(G,)`` the distinct group ids, sorted (``[0]`` when no groups were given).
        thresholds: ``(G,)`` the chosen thresholds, in the units of ``values``;
            NaN for a group without members or without non-members.
        balanced_accuracy: ``(G,)`` the balanced accuracy each threshold
            achieves on its own group's data; NaN where ``thresholds`` is.
        n_members: ``(G,)`` members per group.
        n_nonmembers: ``(G,)`` non-members per group.
        higher_is_member: the decision rule: ``value >= threshold`` if True,
            ``value <= threshold`` if False.
    """

    groups: np.ndarray
    thresholds: np.ndarray
    balanced_accuracy: np.ndarray
    n_members: np.ndarray
    n_nonmembers: np.ndarray
    higher_is_member: bool

    def decide(self, values: Any, groups: Any | None = None) -> np.ndarray:
        """0/1 member decisions for ``values`` with the threshold of each sample's group.

        Args:
            values: ``(n,)`` signal values.
            groups: ``(n,)`` group ids, all among :attr:`groups`; None uses the
                first (for a fit without groups, the only) threshold.

        Returns:
            ``(n,)`` int64, 1 = member. A NaN threshold decides "non-member".

        Raises:
            KeyError: if a group id was not seen by the fit.
        """
        v = np.asarray(values, dtype=np.float64)
        if groups is None:
            t = np.full(v.shape, self.thresholds[0])
        else:
            g = np.asarray(groups)
            idx = np.minimum(np.searchsorted(self.groups, g), self.groups.size - 1)
            unseen = self.groups[idx] != g
            if unseen.any():
                raise KeyError(
                    f"group ids {np.unique(g[unseen])[:5].tolist()} were not in the fitted data; "
                    "choose a fallback threshold for them"
                )
            t = self.thresholds[idx]
        return (v >= t if self.higher_is_member else v <= t).astype(np.int64)


def _group_value_order(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """A permutation sorting by group, then by value (the order among equal values is arbitrary).

    Equivalent to ``np.lexsort((x, g))`` up to the order of equal ``(g, x)`` pairs, which the
    search does not depend on, but faster: one unstable float sort, then a stable sort of small
    integer group codes (a radix sort in numpy).
    """
    if np.issubdtype(g.dtype, np.integer) and g.size and int(g.max()) - int(g.min()) < 2**16:
        lo = g.min()
        # Subtract in a dtype that cannot overflow (int8 [-100, 100] spans 200).
        wide = g if np.issubdtype(g.dtype, np.unsignedinteger) else g.astype(np.int64)
        codes = (wide - lo).astype(np.uint16)
    else:
        codes = np.unique(g, return_inverse=True)[1].reshape(-1)
    by_value = np.argsort(x)
    return by_value[np.argsort(codes[by_value], kind="stable")]


def best_threshold(
    values: Any,
    membership: Any,
    groups: Any | None = None,
    higher_is_member: bool = True,
) -> ThresholdFit:
    """Per group, the threshold on ``values`` that maximises balanced accuracy.

    This is the calibration step of Conf, Xent, Mentr (one threshold per
    ground-truth class) and Top1-conf (one global threshold) on the pooled
    shadow data (PAPER.md, "The eight existing attacks"). Balanced accuracy
    is ``(TPR + TNR) / 2`` within the group.

    Candidates and ties:

    * A threshold only ever falls *between* two adjacent distinct values of
      the group, at their midpoint, so equal values always get the same
      decision. (If the midpoint of two adjacent floats rounds onto the
      non-member-side value, the member-side value is used instead, so the
      cut is still strict.) The other candidate is the cut that flags the
      whole group as members; its threshold is the group's least
      member-like value itself (the minimum if ``higher_is_member``). These
      are exactly the cuts the authors' scan over "member iff value >= a data
      value" can make, so both find the same maximal accuracy. The cut that
      flags nothing is not a candidate: it scores 0.5, as does flagging all.
    * Accuracies are compared as exact integers
      (``TP * n_nonmembers + TN * n_members``), and among equally accurate
      cuts the one flagging the most samples as members wins (the lowest
      threshold if ``higher_is_member``, the highest otherwise). A group in
      which no cut beats chance therefore gets the flag-all threshold.
    * A group without members or without non-members has no balanced
      accuracy: its threshold and accuracy are NaN (callers choose a
      fallback, as the class-wise attacks do).

    Cost: one ``lexsort`` by (group, value) and segment-wise cumulative
    counts, O(n log n) for all groups together.

    Args:
        values: ``(n,)`` finite signal values (e.g. ``p_y``, entropy).
        membership: ``(n,)`` 0/1 truth, 1 = member.
        groups: optional ``(n,)`` group ids (e.g. ground-truth classes); None
            means a single group with id 0.
        higher_is_member: True if members tend to have higher values (conf),
            False if lower (entropy, modified entropy).

    Returns:
        A :class:`ThresholdFit` with one entry per distinct group id.

    Raises:
        ValueError: on shapes that differ, non-finite values or membership
            other than 0/1.

    Example:
        >>> fit = best_threshold([0.1, 0.4, 0.6, 0.9], [0, 0, 1, 1])
        >>> float(fit.thresholds[0]), float(fit.balanced_accuracy[0])
        (0.5, 1.0)
    """
    v = np.asarray(values)
    if v.ndim != 1:
        raise ValueError(f"values must be a 1-D array, got shape {v.shape}")
    n = v.shape[0]
    v = v.astype(np.float64)
    if not np.isfinite(v).all():
        raise ValueError("values must be finite; replace or clip NaN/inf values before the search")
    m = np.asarray(membership)
    if m.shape != (n,):
        raise ValueError(f"membership must have shape ({n},) like values, got {m.shape}")
    if m.dtype != bool and not ((m == 0) | (m == 1)).all():
        raise ValueError("membership must hold only 0 (non-member) and 1 (member)")
    m = m.astype(np.int64)
    if groups is None:
        g = np.zeros(n, dtype=np.int64)
    else:
        g = np.asarray(groups)
        if g.shape != (n,):
            raise ValueError(f"groups must have shape ({n},) like values, got {g.shape}")
    if n == 0:
        raise ValueError("best_threshold needs at least one sample")

    # Work in the orientation "member iff x >= threshold".
    x = v if higher_is_member else -v
    order = _group_value_order(x, g)
    xs, ms, gs = x[order], m[order], g[order]

    # Segments: one per group, [start, end) in sorted order.
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(gs[1:], gs[:-1], out=new_group[1:])
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:], n)

    # Exclusive prefix count of members before each sorted position; per-group totals.
    cum_m = np.concatenate([[0], np.cumsum(ms)])
    base_m = cum_m[starts]
    base_n = starts - base_m
    n_mem = cum_m[ends] - base_m
    n_non = (ends - starts) - n_mem

    # Candidate cuts "flag positions >= i of the group": its start, and every change of value.
    new_value = np.empty(n, dtype=bool)
    new_value[0] = True
    np.not_equal(xs[1:], xs[:-1], out=new_value[1:])
    cand = np.flatnonzero(new_value | new_group)
    first_cand = np.flatnonzero(new_group[cand])  # each group's first candidate (its start)
    per_group = np.diff(np.append(first_cand, cand.size))
    members_below = cum_m[cand] - np.repeat(base_m, per_group)
    nonmembers_below = (cand - cum_m[cand]) - np.repeat(base_n, per_group)
    # 2 * P * N * balanced accuracy = TP * N + TN * P = P * N + (TN * P - (P - TP) * N), exact.
    # The constant P * N is added back below; the argmax does not need it.
    score = nonmembers_below * np.repeat(n_mem, per_group)
    score -= members_below * np.repeat(n_non, per_group)

    # Per group, the first (most permissive) candidate with the maximal score.
    best = np.maximum.reduceat(score, first_cand)
    hits = np.flatnonzero(score == np.repeat(best, per_group))
    chosen = cand[hits[np.searchsorted(hits, first_cand)]]  # one sorted position per group
    best = best + n_mem * n_non

    is_start = chosen == starts
    below = xs[np.maximum(chosen - 1, 0)]
    above = xs[chosen]
    mid = below / 2 + above / 2  # no overflow; may round onto `below` for adjacent floats
    mid = np.where(mid > below, mid, above)
    thr = np.where(is_start, above, mid)

    defined = (n_mem > 0) & (n_non > 0)
    denom = 2 * n_mem * n_non
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(defined, best / np.where(defined, denom, 1), np.nan)
    thr = np.where(defined, thr, np.nan)
    if not higher_is_member:
        thr = -thr
    return ThresholdFit(
        groups=gs[starts],
        thresholds=thr,
        balanced_accuracy=acc,
        n_members=n_mem,
        n_nonmembers=n_non,
        higher_is_member=bool(higher_is_member),
    )
