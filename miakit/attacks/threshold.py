"""The five metric-based attacks of the paper: Gap, Conf, Xent, Mentr and Top1-conf.

Each reads one number per sample from the model's posteriors and compares it
with a threshold (PAPER.md, "The eight existing attacks", attacks 1-5):

========== ================================================ ==================================
attack     signal                                           threshold
========== ================================================ ==================================
gap        correct classification, ``argmax p == y``       none: member iff correct
conf       ground-truth-class probability ``p_y``           per class, member iff higher
xent       entropy ``-sum_c p_c log p_c``                   per class, member iff lower
mentr      modified entropy (Song & Mittal 2021)            per class, member iff lower
top1_conf  largest probability ``max_c p_c``                one global, member iff higher
========== ================================================ ==================================

Thresholds are calibrated on the pooled shadow data (shadow train =
member, shadow test = non-member) to maximise balanced accuracy, by
:func:`best_threshold`: one sort and cumulative counts, O(n log n) for all
classes at once, instead of the authors' scan that re-counts every sample
for every candidate threshold (O(n^2) per class). It searches the same
candidate set as that scan, so it finds the same maximal accuracy.

All five are ``family = "threshold"`` and use the pooled shadow signals.
Scores follow :class:`~miakit.attacks.base.Attack`: higher = member. For the
class-wise attacks the score is the oriented margin past the sample's class
threshold (``p_y - t_y`` for conf, ``t_y - H`` for xent and mentr), so
``score >= 0`` (the attack's ``threshold``) reproduces the class-wise
decisions exactly while the continuous margin gives the ROC curve.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from miakit._util import LOG_CLIP, safe_log, true_class_prob
from miakit.attacks.base import Attack, AttackInputs, ReferenceSignals

__all__ = [
    "LOG_CLIP",
    "Conf",
    "Gap",
    "Mentr",
    "ThresholdFit",
    "Top1Conf",
    "Xent",
    "best_threshold",
    "correctness",
    "entropy",
    "modified_entropy",
    "top1_confidence",
    "true_class_confidence",
]

# LOG_CLIP (``_util.LOG_CLIP``, 1e-30, Song & Mittal's constant) is the smallest argument
# given to ``log`` in the entropies, so ``log 0`` never occurs: a probability of exactly 0 or 1
# gives a large finite term. Re-exported here for existing imports.


# --------------------------------------------------------------------------------------------------
# signals
# --------------------------------------------------------------------------------------------------


def _rows(posteriors: np.ndarray) -> np.ndarray:
    p = np.asarray(posteriors, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"posteriors must be (N, K), got shape {p.shape}")
    return p


def _labels(labels: np.ndarray, p: np.ndarray) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (p.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"labels must be ({p.shape[0]},) integer class indices matching posteriors, "
            f"got shape {y.shape} and dtype {y.dtype}"
        )
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError(f"labels must lie in [0, {p.shape[1]}), got [{y.min()}, {y.max()}]")
    return y.astype(np.int64)


def correctness(posteriors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Whether the model classifies each sample correctly, ``argmax_c p_c == y``, as 0/1.

    The Gap attack's signal (PAPER.md, "The eight existing attacks", 1). An
    argmax tie goes to the lowest class index (``numpy.argmax``).
    """
    p = _rows(posteriors)
    y = _labels(labels, p)
    return (p.argmax(axis=1) == y).astype(np.int64)


def true_class_confidence(posteriors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The ground-truth-class probability ``p_y`` (Conf's signal; PAPER.md, attack 2)."""
    p = _rows(posteriors)
    return true_class_prob(p, _labels(labels, p))


def entropy(posteriors: np.ndarray) -> np.ndarray:
    """Prediction entropy ``-sum_c p_c log p_c`` in nats (Xent's signal; PAPER.md, attack 3).

    ``log`` is applied to ``max(p, LOG_CLIP)``, so ``p_c = 0`` contributes 0.
    """
    p = _rows(posteriors)
    return -(p * safe_log(p)).sum(axis=1)


def modified_entropy(posteriors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Song & Mittal's (2021) modified entropy (Mentr's signal; PAPER.md, attack 4).

    ``Mentr(p, y) = -(1 - p_y) log p_y - sum_{c != y} p_c log(1 - p_c)``, in nats.
    It is 0 for a confident correct prediction (``p_y = 1``) and grows both
    with uncertainty and with confident mistakes, which plain entropy cannot
    tell apart from confident correct predictions. The arguments of ``log``
    are clipped below at ``LOG_CLIP`` (as in Song & Mittal's code) so
    ``p_y = 0`` or ``p_c = 1`` give a large finite value, never ``inf``.
    """
    p = _rows(posteriors)
    y = _labels(labels, p)
    rows = np.arange(p.shape[0])
    terms = -p * safe_log(1.0 - p)  # the c != y terms
    p_y = p[rows, y]
    terms[rows, y] = -(1.0 - p_y) * safe_log(p_y)
    return terms.sum(axis=1)


def top1_confidence(posteriors: np.ndarray) -> np.ndarray:
    """The largest posterior ``max_c p_c`` (Top1-conf's signal; PAPER.md, attack 5)."""
    return _rows(posteriors).max(axis=1)


# --------------------------------------------------------------------------------------------------
# threshold search
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# attacks
# --------------------------------------------------------------------------------------------------


@dataclass
class Gap(Attack):
    """Gap attack: member iff the model classifies the sample correctly.

    PAPER.md, "The eight existing attacks", 1. Nothing is learned: ``fit``
    only returns the attack. The score is 1.0 (correct) or 0.0 (wrong), the
    threshold 0.5, so the ROC curve has a single interior point.
    """

    name: ClassVar[str] = "gap"
    title: ClassVar[str] = "Gap"
    uses: ClassVar[frozenset[str]] = frozenset()

    def fit(
        self, shadows: AttackInputs | None = None, references: ReferenceSignals | None = None
    ) -> Gap:
        """Nothing to calibrate; returns ``self``."""
        return self

    def score_values(self, target: AttackInputs) -> np.ndarray:
        """1.0 for correctly classified samples, 0.0 otherwise."""
        return correctness(target.posteriors, target.labels).astype(np.float64)


@dataclass
class _ClassWiseThresholdAttack(Attack):
    """Shared machinery of Conf, Xent and Mentr: one threshold per ground-truth class.

    ``fit`` calls :func:`best_threshold` with the ground-truth classes as
    groups on the pooled shadow data. A class with no shadow samples, or
    with only members or only non-members, cannot be calibrated: it falls
    back to one global threshold fitted on all shadow data, is listed in
    ``fallback_classes``, and a ``UserWarning`` says so.

    Attributes:
        class_thresholds: ``(K,)`` the threshold on the signal used for each class.
        global_threshold: the all-class threshold used for the fallback classes.
        fallback_classes: classes that use ``global_threshold``.
        shadow_fit: the per-class :class:`ThresholdFit` on the shadow data
            (its ``balanced_accuracy`` is each class's shadow accuracy).
    """

    higher_is_member: ClassVar[bool] = True
    threshold: float = field(default=0.0, init=False)
    class_thresholds: np.ndarray | None = field(default=None, init=False, repr=False)
    global_threshold: float | None = field(default=None, init=False)
    fallback_classes: tuple[int, ...] = field(default=(), init=False)
    shadow_fit: ThresholdFit | None = field(default=None, init=False, repr=False)

    def signal(self, inputs: AttackInputs) -> np.ndarray:  # pragma: no cover - interface
        """The per-sample value the threshold is put on."""
        raise NotImplementedError

    def fit(
        self, shadows: AttackInputs | None = None, references: ReferenceSignals | None = None
    ) -> _ClassWiseThresholdAttack:
        """Choose each class's balanced-accuracy-maximising threshold on ``shadows``.

        Args:
            shadows: pooled shadow signals with ``membership`` (1 = shadow train).
            references: not used.

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: if ``shadows`` has no membership or lacks members or non-members.
        """
        shadow = self._need("pooled shadow signals", shadows)
        m = shadow.require_membership()
        if m.sum() == 0 or m.sum() == m.size:
            raise ValueError(
                f"{self.name}: shadow data need both members and non-members to calibrate a "
                f"threshold, got {int(m.sum())} members and {int(m.size - m.sum())} non-members"
            )
        values = self.signal(shadow)
        per_class = best_threshold(values, m, shadow.labels, self.higher_is_member)
        glob = best_threshold(values, m, None, self.higher_is_member)
        k = shadow.num_classes
        thresholds = np.full(k, float(glob.thresholds[0]))
        ok = ~np.isnan(per_class.thresholds)
        thresholds[per_class.groups[ok]] = per_class.thresholds[ok]
        calibrated = np.zeros(k, dtype=bool)
        calibrated[per_class.groups[ok]] = True
        fallback = tuple(int(c) for c in np.flatnonzero(~calibrated))
        if fallback:
            warnings.warn(
                f"{self.name}: classes {list(fallback)} have no shadow members or no shadow "
                f"non-members; they use the global threshold {thresholds[fallback[0]]:.6g}",
                UserWarning,
                stacklevel=2,
            )
        self.class_thresholds = thresholds
        self.global_threshold = float(glob.thresholds[0])
        self.fallback_classes = fallback
        self.shadow_fit = per_class
        return self

    def score_values(self, target: AttackInputs) -> np.ndarray:
        """The margin past the sample's class threshold, oriented so ``>= 0`` means member."""
        if self.class_thresholds is None:
            raise ValueError(f"{self.name}: call fit(shadow) before score(target)")
        if target.num_classes != self.class_thresholds.size:
            raise ValueError(
                f"{self.name}: fitted on {self.class_thresholds.size} classes but the target "
                f"posteriors have {target.num_classes}; use the same task for shadow and target"
            )
        t = self.class_thresholds[_labels(target.labels, target.posteriors)]
        v = self.signal(target)
        # For finite floats, a - b >= 0 iff a >= b, so the margin keeps the decisions exact.
        return v - t if self.higher_is_member else t - v


@dataclass
class Conf(_ClassWiseThresholdAttack):
    """Conf attack: a per-class threshold on the ground-truth-class probability ``p_y``.

    PAPER.md, "The eight existing attacks", 2: member iff ``p_y >= t_y``, with
    ``t_y`` maximising balanced accuracy on class ``y`` of the shadow data.
    Score: ``p_y - t_y``.
    """

    name: ClassVar[str] = "conf"
    title: ClassVar[str] = "Conf"
    higher_is_member: ClassVar[bool] = True

    def signal(self, inputs: AttackInputs) -> np.ndarray:
        """``p_y``."""
        return inputs.p_y


@dataclass
class Xent(_ClassWiseThresholdAttack):
    """Xent (entropy) attack: a per-class threshold on the prediction entropy ``H(p)``.

    PAPER.md, "The eight existing attacks", 3: member iff ``H(p) <= t_y``.
    Score: ``t_y - H(p)``.
    """

    name: ClassVar[str] = "xent"
    title: ClassVar[str] = "Xent"
    higher_is_member: ClassVar[bool] = False

    def signal(self, inputs: AttackInputs) -> np.ndarray:
        """``-sum_c p_c log p_c``."""
        return entropy(inputs.posteriors)


@dataclass
class Mentr(_ClassWiseThresholdAttack):
    """Mentr attack: a per-class threshold on the modified entropy (Song & Mittal 2021).

    PAPER.md, "The eight existing attacks", 4: member iff ``Mentr(p, y) <= t_y``
    (see :func:`modified_entropy`). Score: ``t_y - Mentr(p, y)``.
    """

    name: ClassVar[str] = "mentr"
    title: ClassVar[str] = "Mentr"
    higher_is_member: ClassVar[bool] = False

    def signal(self, inputs: AttackInputs) -> np.ndarray:
        """``-(1 - p_y) log p_y - sum_{c != y} p_c log(1 - p_c)``."""
        return modified_entropy(inputs.posteriors, inputs.labels)


@dataclass
class Top1Conf(Attack):
    """Top1-conf attack: one global threshold on the largest posterior ``max_c p_c``.

    PAPER.md, "The eight existing attacks", 5. The label is not used. The
    score is ``max_c p_c`` itself and ``threshold`` is the fitted value, so
    ``decide`` is "member iff ``max_c p_c >= threshold``".
    """

    name: ClassVar[str] = "top1_conf"
    title: ClassVar[str] = "Top1-conf"
    shadow_fit: ThresholdFit | None = field(default=None, init=False, repr=False)

    def fit(
        self, shadows: AttackInputs | None = None, references: ReferenceSignals | None = None
    ) -> Top1Conf:
        """Choose the balanced-accuracy-maximising global threshold on ``shadows``.

        Raises:
            ValueError: if ``shadows`` has no membership or lacks members or non-members.
        """
        shadow = self._need("pooled shadow signals", shadows)
        m = shadow.require_membership()
        fit = best_threshold(top1_confidence(shadow.posteriors), m, None, True)
        if np.isnan(fit.thresholds[0]):
            raise ValueError(
                f"{self.name}: shadow data need both members and non-members to calibrate a "
                f"threshold, got {int(m.sum())} members and {int(m.size - m.sum())} non-members"
            )
        self.threshold = float(fit.thresholds[0])
        self.shadow_fit = fit
        return self

    def score_values(self, target: AttackInputs) -> np.ndarray:
        """``max_c p_c``."""
        if self.shadow_fit is None:
            raise ValueError(f"{self.name}: call fit(shadow) before score(target)")
        return top1_confidence(target.posteriors)
