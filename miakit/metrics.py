"""How well a membership-inference attack separates members from non-members.

The paper reports *attack accuracy* on a balanced member/non-member set
(PAPER.md, "Reporting"); on an unbalanced set the same quantity is the
balanced accuracy, the mean of the true-positive and true-negative rates. The
kit also reports what the field now expects: ROC AUC, the TPR at 0.1% and 1%
FPR with the realised FPR and the counts behind it, ROC curves, per-class
results, and the per-class member/non-member gaps of the paper's "prediction
divergence" analysis (PAPER.md, "Prediction divergence (the analysis)").

Conventions, shared by every function here:

* ``membership`` is 0/1 (or boolean), 1 = member (in the model's training set).
* ``scores`` are finite floats, higher = "more likely a member"; a sample is
  flagged as a member at threshold ``t`` iff ``score >= t``.
* ``decisions`` are an attack's hard 0/1 guesses, 1 = member.

All functions are pure, take numpy-compatible arrays and run in O(n log n).

Example:
    >>> import numpy as np
    >>> m = np.array([1, 1, 1, 0, 0, 0])
    >>> s = np.array([0.9, 0.8, 0.4, 0.8, 0.3, 0.1])
    >>> roc_auc(m, s)  # of 9 member/non-member pairs, 7 ordered and 1 tied: 7.5 / 9
    0.8333333333333334
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "RESULT_COLUMNS",
    "AttackResult",
    "TprAtFpr",
    "balanced_accuracy",
    "divergence_stats",
    "evaluate_attack",
    "per_class_results",
    "results_frame",
    "roc_auc",
    "roc_curve",
    "tpr_at_fpr",
]

# The two low false-positive rates every AttackResult reports, with the column suffix used for them.
_LOW_FPRS: tuple[tuple[float, str], ...] = ((0.001, "@0.1%fpr"), (0.01, "@1%fpr"))

RESULT_COLUMNS: tuple[str, ...] = (
    "attack",
    "balanced_accuracy",
    "auc",
    *(f"{q}{suffix}" for _, suffix in _LOW_FPRS for q in ("tpr", "realised_fpr", "tp", "fp")),
    "n_members",
    "n_nonmembers",
)
"""Columns of :func:`results_frame` after the tag columns, in order."""


# --------------------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------------------


def _as_membership(membership: Any, *, require_both: bool = True) -> np.ndarray:
    """Membership as a 1-D int64 0/1 array; raise ``ValueError`` if it is anything else."""
    m = np.asarray(membership)
    if m.ndim != 1:
        raise ValueError(
            f"membership must be a 1-D array of 0/1 labels, got shape {m.shape}; "
            "pass one label per sample (1 = member, 0 = non-member)"
        )
    if m.dtype != bool and not np.isin(m, (0, 1)).all():
        bad = np.unique(m[~np.isin(m, (0, 1))])[:5]
        raise ValueError(
            f"membership must hold only 0 (non-member) and 1 (member); found {bad.tolist()}; "
            "convert it, e.g. membership = (is_member).astype(int)"
        )
    m = m.astype(np.int64)
    if require_both:
        n_members = int(m.sum())
        if n_members == 0 or n_members == m.size:
            raise ValueError(
                f"membership needs both members and non-members, got {n_members} members and "
                f"{m.size - n_members} non-members; evaluate on a set that holds both"
            )
    return m


def _as_values(values: Any, n: int, what: str) -> np.ndarray:
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


def _as_decisions(decisions: Any, n: int) -> np.ndarray:
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


def _as_labels(labels: Any, n: int) -> np.ndarray:
    """Class labels of length ``n``; raise ``ValueError`` otherwise."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(
            f"labels must be a 1-D array with one class per sample ({n},), got shape {y.shape}"
        )
    return y


# --------------------------------------------------------------------------------------------------
# scalar metrics
# --------------------------------------------------------------------------------------------------


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
    m = _as_membership(membership)
    d = _as_decisions(decisions, m.size)
    n_members = int(m.sum())
    n_nonmembers = m.size - n_members
    tp = int((d & m).sum())
    tn = int(((1 - d) & (1 - m)).sum())
    # One correctly rounded division of exact integers.
    return (tp * n_nonmembers + tn * n_members) / (2 * n_members * n_nonmembers)


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
    m = _as_membership(membership)
    s = _as_values(scores, m.size, "scores")
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
    m = _as_membership(membership)
    s = _as_values(scores, m.size, "scores")
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
    m = _as_membership(membership)
    s = _as_values(scores, m.size, "scores")
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


# --------------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttackResult:
    """One attack against one model: the paper's accuracy plus the modern metrics.

    Attributes:
        attack: the attack's name (e.g. ``"mentr"``, ``"samia"``).
        balanced_accuracy: balanced attack accuracy of the hard decisions
            (the paper's "attack accuracy"; PAPER.md, "Reporting").
        auc: ROC AUC of the continuous scores.
        at_fpr_0_1pct: TPR at 0.1% FPR with realised FPR and counts.
        at_fpr_1pct: TPR at 1% FPR with realised FPR and counts.
        n_members: members in the evaluation set.
        n_nonmembers: non-members in the evaluation set.
        tags: free-form labels of what was attacked (dataset, model,
            pruning method, sparsity, defense, ...); they become the leading
            columns of :func:`results_frame`. Keys must be strings that do
            not clash with :data:`RESULT_COLUMNS`.
    """

    attack: str
    balanced_accuracy: float
    auc: float
    at_fpr_0_1pct: TprAtFpr
    at_fpr_1pct: TprAtFpr
    n_members: int
    n_nonmembers: int
    tags: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        """Check the tag keys and keep a private copy of the tags."""
        tags = dict(self.tags)
        bad = [k for k in tags if not isinstance(k, str)]
        if bad:
            raise ValueError(f"tag keys must be strings, got {bad!r}")
        clash = sorted(set(tags) & set(RESULT_COLUMNS))
        if clash:
            raise ValueError(
                f"tag keys {clash} clash with result columns {list(RESULT_COLUMNS)}; rename them"
            )
        # A private copy, so later edits of the caller's dict do not leak into the result.
        object.__setattr__(self, "tags", tags)

    @property
    def tpr_at_0_1pct_fpr(self) -> float:
        """TPR at 0.1% FPR (realised FPR in ``at_fpr_0_1pct.fpr_realised``)."""
        return self.at_fpr_0_1pct.tpr

    @property
    def tpr_at_1pct_fpr(self) -> float:
        """TPR at 1% FPR (realised FPR in ``at_fpr_1pct.fpr_realised``)."""
        return self.at_fpr_1pct.tpr

    def metrics(self) -> dict[str, Any]:
        """The result as one flat row keyed by :data:`RESULT_COLUMNS` (tags excluded)."""
        row: dict[str, Any] = {
            "attack": self.attack,
            "balanced_accuracy": self.balanced_accuracy,
            "auc": self.auc,
        }
        for (_, suffix), low in zip(_LOW_FPRS, (self.at_fpr_0_1pct, self.at_fpr_1pct), strict=True):
            row[f"tpr{suffix}"] = low.tpr
            row[f"realised_fpr{suffix}"] = low.fpr_realised
            row[f"tp{suffix}"] = low.tp
            row[f"fp{suffix}"] = low.fp
        row["n_members"] = self.n_members
        row["n_nonmembers"] = self.n_nonmembers
        return row

    def to_row(self) -> dict[str, Any]:
        """Tags first, then :meth:`metrics`: one row of :func:`results_frame`."""
        return {**self.tags, **self.metrics()}


def evaluate_attack(
    name: str,
    membership: Any,
    scores: Any,
    decisions: Any,
    tags: Mapping[str, Any] | None = None,
) -> AttackResult:
    """Score one attack on one evaluation set (PAPER.md, "Reporting").

    Args:
        name: the attack's name, e.g. ``attack.name``.
        membership: ``(n,)`` 0/1 truth, 1 = member.
        scores: ``(n,)`` the attack's continuous scores (``attack.score(target)``),
            used for AUC and TPR at low FPR.
        decisions: ``(n,)`` the attack's hard 0/1 decisions (``attack.decide(target)``),
            used for balanced accuracy.
        tags: labels of what was attacked (model, pruning, sparsity, defense, ...).

    Returns:
        An :class:`AttackResult`.

    Raises:
        ValueError: on bad shapes or values, or a set lacking members or non-members.

    Example:
        >>> r = evaluate_attack("conf", [1, 0], [0.9, 0.2], [1, 0], tags={"model": "fc"})
        >>> (r.balanced_accuracy, r.auc, r.tpr_at_1pct_fpr)
        (1.0, 1.0, 1.0)
    """
    m = _as_membership(membership)
    s = _as_values(scores, m.size, "scores")
    d = _as_decisions(decisions, m.size)
    n_members = int(m.sum())
    low = [tpr_at_fpr(m, s, target) for target, _ in _LOW_FPRS]
    return AttackResult(
        attack=str(name),
        balanced_accuracy=balanced_accuracy(m, d),
        auc=roc_auc(m, s),
        at_fpr_0_1pct=low[0],
        at_fpr_1pct=low[1],
        n_members=n_members,
        n_nonmembers=m.size - n_members,
        tags=dict(tags or {}),
    )


def results_frame(results: AttackResult | Iterable[AttackResult]) -> pd.DataFrame:
    """A tidy table of attack results: one row per attacked model x attack.

    The tag columns come first, in order of first appearance across
    ``results`` (a result without some tag gets NaN there), then
    :data:`RESULT_COLUMNS`.

    Args:
        results: one :class:`AttackResult` or any iterable of them.

    Returns:
        A ``pandas.DataFrame`` (empty, with the metric columns, for no results).

    Raises:
        ValueError: when an item is not an :class:`AttackResult`.
    """
    items = [results] if isinstance(results, AttackResult) else list(results)
    tag_keys: dict[str, None] = {}
    for r in items:
        if not isinstance(r, AttackResult):
            raise ValueError(
                f"results_frame takes AttackResult objects (from evaluate_attack), got {type(r)}"
            )
        tag_keys.update(dict.fromkeys(r.tags))
    columns = [*tag_keys, *RESULT_COLUMNS]
    return pd.DataFrame([r.to_row() for r in items], columns=columns)


def _nan_metrics() -> dict[str, Any]:
    row = {c: math.nan for c in RESULT_COLUMNS if c not in ("attack", "n_members", "n_nonmembers")}
    return row


def per_class_results(membership: Any, scores: Any, decisions: Any, labels: Any) -> pd.DataFrame:
    """Attack metrics computed separately for each ground-truth class.

    The paper finds that pruning changes privacy risk differently from class
    to class (PAPER.md, claim 1); this table shows it for any attack. A
    class whose evaluation samples are all members or all non-members gets
    its counts and NaN metrics.

    Args:
        membership: ``(n,)`` 0/1 truth, 1 = member.
        scores: ``(n,)`` the attack's continuous scores.
        decisions: ``(n,)`` the attack's hard 0/1 decisions.
        labels: ``(n,)`` ground-truth classes.

    Returns:
        A DataFrame with one row per class present in ``labels`` (sorted):
        ``class``, ``n_members``, ``n_nonmembers``, then the metric columns
        of :data:`RESULT_COLUMNS` (without ``attack``).

    Raises:
        ValueError: on bad shapes or values, or a set lacking members or non-members.
    """
    m = _as_membership(membership)
    s = _as_values(scores, m.size, "scores")
    d = _as_decisions(decisions, m.size)
    y = _as_labels(labels, m.size)
    classes, inverse = np.unique(y, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(classes.size + 1))
    metric_cols = [c for c in RESULT_COLUMNS if c not in ("attack", "n_members", "n_nonmembers")]
    rows = []
    for k, c in enumerate(classes.tolist()):
        idx = order[bounds[k] : bounds[k + 1]]
        mk = m[idx]
        n_members = int(mk.sum())
        row: dict[str, Any] = {"class": c, "n_members": n_members}
        row["n_nonmembers"] = idx.size - n_members
        if 0 < n_members < idx.size:
            row.update(evaluate_attack("", mk, s[idx], d[idx]).metrics())
        else:
            row.update(_nan_metrics())
        rows.append({key: row[key] for key in ("class", "n_members", "n_nonmembers", *metric_cols)})
    return pd.DataFrame(rows, columns=["class", "n_members", "n_nonmembers", *metric_cols])


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
    m = _as_membership(membership)
    v = _as_values(values, m.size, "values")
    y = _as_labels(labels, m.size)
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
