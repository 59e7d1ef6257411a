"""The metric-based attacks: the paper's Gap, Conf, Xent, Mentr and Top1-conf, and Max-conf.

Each reads one number per sample from the model's posteriors and compares it
with a threshold (PAPER.md, "The eight existing attacks", attacks 1-5):

========== ================================================ ==================================
attack     signal                                           threshold
========== ================================================ ==================================
gap        correct classification, ``argmax p == y``       none: member iff correct
conf       ground-truth-class probability ``p_y``           per class, member iff higher
xent       entropy ``-sum_c p_c log p_c``                   per class, member iff lower
mentr      modified entropy (Song & Mittal 2021)            per class, member iff lower
top1_conf  ground-truth-class probability ``p_y``           one global, member iff higher
max_conf   largest probability ``max_c p_c``                one global, member iff higher
========== ================================================ ==================================

``top1_conf`` is the paper's Top1-conf column as the authors' code computes it:
one global threshold on ``p_y`` (PAPER.md, attack 5; the name suggests the
largest probability, but the authors threshold the ground-truth-class one).
``max_conf`` is the label-free attack that the name suggests, on ``max_c p_c``;
it is not one of the paper's attacks (not in :data:`miakit.attacks.BASELINES`).

The signals live in :mod:`miakit.attacks.signals`. Thresholds are calibrated
on the pooled shadow data (shadow train = member, shadow test = non-member) to
maximise balanced accuracy, by :func:`~miakit.attacks.threshold_search.best_threshold`
(one sort and cumulative counts, O(n log n); the same maximal accuracy as the
authors' O(n^2) scan).

All six are ``family = "threshold"`` and use the pooled shadow signals.
Scores follow :class:`~miakit.attacks.base.Attack`: higher = member. For the
class-wise attacks the score is the oriented margin past the sample's class
threshold (``p_y - t_y`` for conf, ``t_y - H`` for xent and mentr), so
``score >= 0`` (the attack's ``threshold``) reproduces the class-wise
decisions exactly while the continuous margin gives the ROC curve. For the
global ones the score is the signal itself and ``threshold`` the fitted value.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from miakit._util import LOG_CLIP
from miakit.attacks.base import Attack, AttackInputs, ReferenceSignals
from miakit.attacks.signals import (
    correctness,
    entropy,
    modified_entropy,
    top1_confidence,
    true_class_confidence,
)
from miakit.attacks.threshold_search import ThresholdFit, best_threshold

__all__ = [
    "LOG_CLIP",
    "Conf",
    "Gap",
    "MaxConf",
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

# Re-exported for existing imports: LOG_CLIP (``_util.LOG_CLIP``), the signals
# (:mod:`miakit.attacks.signals`) and the threshold search (:mod:`miakit.attacks.threshold_search`).


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
        t = self.class_thresholds[target.labels]  # AttackInputs checked them: in [0, K)
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
class _GlobalThresholdAttack(Attack):
    """Shared machinery of Top1-conf and Max-conf: one global threshold, member iff higher.

    ``fit`` calls :func:`best_threshold` without groups on the pooled shadow
    data; ``threshold`` is the fitted value and the score is the signal itself,
    so ``decide`` is "member iff ``signal >= threshold``".

    Attributes:
        shadow_fit: the global :class:`ThresholdFit` on the shadow data (its
            ``balanced_accuracy[0]`` is the shadow accuracy).
    """

    shadow_fit: ThresholdFit | None = field(default=None, init=False, repr=False)

    def signal(self, inputs: AttackInputs) -> np.ndarray:  # pragma: no cover - interface
        """The per-sample value the threshold is put on."""
        raise NotImplementedError

    def fit(
        self, shadows: AttackInputs | None = None, references: ReferenceSignals | None = None
    ) -> _GlobalThresholdAttack:
        """Choose the balanced-accuracy-maximising global threshold on ``shadows``.

        Raises:
            ValueError: if ``shadows`` has no membership or lacks members or non-members.
        """
        shadow = self._need("pooled shadow signals", shadows)
        m = shadow.require_membership()
        fit = best_threshold(self.signal(shadow), m, None, True)
        if np.isnan(fit.thresholds[0]):
            raise ValueError(
                f"{self.name}: shadow data need both members and non-members to calibrate a "
                f"threshold, got {int(m.sum())} members and {int(m.size - m.sum())} non-members"
            )
        self.threshold = float(fit.thresholds[0])
        self.shadow_fit = fit
        return self

    def score_values(self, target: AttackInputs) -> np.ndarray:
        """The signal itself (member iff ``>= threshold``)."""
        if self.shadow_fit is None:
            raise ValueError(f"{self.name}: call fit(shadow) before score(target)")
        return self.signal(target)


@dataclass
class Top1Conf(_GlobalThresholdAttack):
    """Top1-conf, the paper's: one global threshold on the ground-truth-class probability ``p_y``.

    PAPER.md, "The eight existing attacks", 5: in the authors' code the paper's
    Top1-conf column thresholds ``p_y`` with one threshold for all classes (their
    ``_mem_inf_thre_non_cls`` on the confidence), not the largest probability that
    the name suggests. This is that attack, so that miakit's ``top1_conf`` is the
    number the paper reports; the largest-probability attack is :class:`MaxConf`.
    Member iff ``p_y >= threshold``; the score is ``p_y``.
    """

    name: ClassVar[str] = "top1_conf"
    title: ClassVar[str] = "Top1-conf"

    def signal(self, inputs: AttackInputs) -> np.ndarray:
        """``p_y``."""
        return inputs.p_y


@dataclass
class MaxConf(_GlobalThresholdAttack):
    """Max-conf: one global threshold on the largest posterior ``max_c p_c`` (label-free).

    Not one of the paper's attacks: it is what the name "Top1-conf" suggests, but
    the paper's Top1-conf column is :class:`Top1Conf` on ``p_y`` (PAPER.md, "The
    eight existing attacks", 5). Kept as miakit's own attack, for an adversary
    without labels. Member iff ``max_c p_c >= threshold``; the score is ``max_c p_c``.
    """

    name: ClassVar[str] = "max_conf"
    title: ClassVar[str] = "Max-conf"

    def signal(self, inputs: AttackInputs) -> np.ndarray:
        """``max_c p_c``."""
        return top1_confidence(inputs.posteriors)
