"""Intervals: the sampling error of one run's metrics, and the spread over seeds.

One run (one seed of the whole pipeline) gives one estimate of each metric on a finite
set of members and non-members. Two sources of error make a reported number uncertain
(issue 13: "nothing can be told from noise"):

* **sampling error within a seed**, measured by a stratified bootstrap
  (:func:`bootstrap_indices`): members are resampled among members and non-members
  among non-members, so every resample keeps the set's counts;
* **seed-to-seed spread** (model initialisation, batch order, shadows, attack networks),
  measured over independent seeds of the pipeline.

:func:`seed_interval` combines them. With ``k`` seeds of estimates ``x_s`` and bootstrap
variances ``v_s``, the variance of one seed's estimate is taken as
``max(s^2, mean(v_s))``, where ``s^2`` is the sample variance of the ``x_s``: ``s^2``
already holds the sampling error, but with few seeds it can fall below it by chance,
and the bootstrap variance is then the better estimate (a random-effects estimate of
the seed variance, truncated at 0). The interval is ``mean +- q * sqrt(that / k)``
with ``q`` the Student-t quantile on ``k - 1`` degrees of freedom when the seed spread
decides, and the normal quantile when the bootstrap does (its variance rests on
hundreds of resamples of thousands of samples) or when there is one seed.

Differences (pruned minus original, attack A minus attack B) are *paired*: both
estimates come from the same seed and the same bootstrap resamples
(:func:`bootstrap_indices` is deterministic in the membership vector and the seed), so
:func:`bootstrap_metrics` of the two score vectors subtract resample by resample.

Example:
    >>> import numpy as np
    >>> m = np.array([1, 1, 1, 0, 0, 0])
    >>> s = np.array([0.9, 0.8, 0.4, 0.8, 0.3, 0.1])
    >>> boot = bootstrap_metrics(m, s, s >= 0.5, bootstrap_indices(m, 100, seed=0))
    >>> boot.shape
    (100, 4)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtri, stdtrit

from miakit.metrics._checks import as_decisions, as_membership, as_values

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "INTERVAL_LEVEL",
    "INTERVAL_METRICS",
    "Interval",
    "bootstrap_indices",
    "bootstrap_metrics",
    "seed_interval",
]

#: The metrics every interval is computed for, in the column order of
#: :func:`bootstrap_metrics`: balanced accuracy of the hard decisions, ROC AUC, and the
#: TPR at 0.1% and 1% FPR (PAPER.md, "Reporting"), named as in ``RESULT_COLUMNS``.
INTERVAL_METRICS: tuple[str, ...] = ("balanced_accuracy", "auc", "tpr@0.1%fpr", "tpr@1%fpr")

#: Bootstrap resamples per estimate: a standard error to about 5% of itself.
BOOTSTRAP_RESAMPLES = 200

#: The coverage of every interval the kit reports.
INTERVAL_LEVEL = 0.95

_FPRS = (0.001, 0.01)


def bootstrap_indices(membership: Any, resamples: int = BOOTSTRAP_RESAMPLES, *, seed: int = 0):
    """Stratified bootstrap resamples of an evaluation set, as ``(resamples, n)`` indices.

    Row ``b`` draws ``n_members`` indices with replacement among the members and
    ``n_nonmembers`` among the non-members, so every resample has the set's counts (and
    the FPR budgets mean the same number of false positives). The rows depend only on
    ``membership``, ``resamples`` and ``seed``: two score vectors on the same samples
    (two models, two attacks) are resampled identically, which pairs their differences.

    Raises:
        ValueError: bad membership, a set without members or non-members, or
            ``resamples < 2``.
    """
    m = as_membership(membership)
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 2:
        raise ValueError(f"resamples must be an integer >= 2, got {resamples!r}")
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, m.size), dtype=np.int64)
    start = 0
    for group in (np.flatnonzero(m == 1), np.flatnonzero(m == 0)):
        pick = rng.integers(0, group.size, size=(resamples, group.size))
        out[:, start : start + group.size] = group[pick]
        start += group.size
    return out


def bootstrap_metrics(membership: Any, scores: Any, decisions: Any, indices: Any) -> np.ndarray:
    """Each metric of :data:`INTERVAL_METRICS` on every bootstrap resample.

    Computed exactly as :func:`~miakit.metrics.evaluate_attack` computes them (ties
    switch together, no interpolation), from the count of each sample in each
    resample, so the identity resample (``indices = arange(n)[None]``) reproduces
    :func:`~miakit.metrics.evaluate_attack` exactly.

    Args:
        membership: ``(n,)`` 0/1 truth.
        scores: ``(n,)`` the attack's continuous scores.
        decisions: ``(n,)`` its hard 0/1 decisions.
        indices: ``(B, n)`` resamples from :func:`bootstrap_indices`.

    Returns:
        ``(B, 4)`` float64, columns in the order of :data:`INTERVAL_METRICS`.

    Raises:
        ValueError: bad shapes or values, or indices that do not keep the member count.
    """
    m = as_membership(membership)
    s = as_values(scores, m.size, "scores")
    d = as_decisions(decisions, m.size)
    idx = np.asarray(indices)
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"indices must be a (B, n) integer array, got {idx.dtype} {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= m.size):
        raise ValueError(f"indices must lie in [0, {m.size}); take them from bootstrap_indices")
    b = idx.shape[0]
    counts = np.bincount((idx + m.size * np.arange(b)[:, None]).ravel(), minlength=b * m.size)
    counts = counts.reshape(b, m.size)
    n_pos = counts @ m
    n_neg = counts.sum(axis=1) - n_pos
    if (n_pos != m.sum()).any() or (n_neg == 0).any():
        raise ValueError("each resample must keep the set's member and non-member counts")
    pos, neg = counts * m, counts * (1 - m)
    bal = 0.5 * ((pos @ d) / n_pos + (neg @ (1 - d)) / n_neg)
    # Group the samples by distinct score, highest first: one ROC point per group.
    order = np.argsort(-s, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(s[order]) != 0])
    tp = np.add.reduceat(pos[:, order], starts, axis=1)
    fp = np.add.reduceat(neg[:, order], starts, axis=1)
    fp_before = np.cumsum(fp, axis=1) - fp
    # A member beats the non-members below its group and ties half of its own group's.
    auc = ((tp * (n_neg[:, None] - fp_before - fp)).sum(1) + 0.5 * (tp * fp).sum(1)) / (
        n_pos * n_neg
    )
    cum_tp, cum_fp = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
    low = []
    for target in _FPRS:
        # The largest TPR among the points within budget (the (0, 0) point always is).
        ok = cum_fp / n_neg[:, None] <= target  # as tpr_at_fpr compares
        low.append(np.where(ok, cum_tp, 0).max(axis=1) / n_pos)
    return np.column_stack([bal, auc, *low]).astype(np.float64)


@dataclass(frozen=True)
class Interval:
    """A mean over seeds with its interval (see the module docstring for the rule).

    Attributes:
        mean: the mean of the per-seed estimates.
        low, high: the interval's ends, at :data:`INTERVAL_LEVEL`.
        se: the standard error of the mean.
        seeds: the number of seeds.
        spread_decides: whether the seed-to-seed variance exceeded the bootstrap
            variance (the interval then uses the t quantile).
    """

    mean: float
    low: float
    high: float
    se: float
    seeds: int
    spread_decides: bool

    def excludes(self, value: float = 0.0) -> bool:
        """Whether ``value`` lies outside the interval (e.g. a difference is not 0)."""
        return not self.low <= value <= self.high


def seed_interval(
    estimates: Sequence[float] | np.ndarray,
    bootstrap_se: Sequence[float] | np.ndarray | None = None,
    *,
    level: float = INTERVAL_LEVEL,
) -> Interval:
    """The interval of a mean over seeds, combining seed spread and sampling error.

    Args:
        estimates: ``(k,)`` one estimate per seed (NaNs are dropped, with their se).
        bootstrap_se: ``(k,)`` each estimate's bootstrap standard error; ``None`` (a
            quantity without sampling error, e.g. a test accuracy treated as fixed):
            the seed spread alone.
        level: the coverage, in (0, 1).

    Returns:
        An :class:`Interval`; with no finite estimate, every field NaN and ``seeds=0``.

    Raises:
        ValueError: mismatched lengths, a negative standard error, or a bad ``level``.

    Example:
        >>> iv = seed_interval([0.70, 0.72, 0.71], [0.01, 0.01, 0.01])
        >>> round(iv.mean, 3), iv.spread_decides
        (0.71, False)
    """
    x = np.asarray(estimates, dtype=np.float64).ravel()
    se = np.zeros_like(x) if bootstrap_se is None else np.asarray(bootstrap_se, np.float64).ravel()
    if se.shape != x.shape:
        raise ValueError(f"got {x.size} estimates but {se.size} standard errors")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    keep = np.isfinite(x)
    x, se = x[keep], se[keep]
    if (se < 0).any() or not np.isfinite(se).all():
        raise ValueError("standard errors must be finite and >= 0")
    k = x.size
    if k == 0:
        nan = math.nan
        return Interval(nan, nan, nan, nan, 0, False)
    within = float(np.mean(se**2))
    spread = float(np.var(x, ddof=1)) if k > 1 else 0.0
    spread_decides = k > 1 and spread > within
    tail = 0.5 + level / 2
    q = float(stdtrit(k - 1, tail)) if spread_decides else float(ndtri(tail))
    mean = float(x.mean())
    if k == 1 and within == 0.0:  # one seed and no sampling error known: no interval
        return Interval(mean, math.nan, math.nan, math.nan, 1, False)
    se_mean = math.sqrt(max(spread, within) / k)
    return Interval(mean, mean - q * se_mean, mean + q * se_mean, se_mean, k, spread_decides)
