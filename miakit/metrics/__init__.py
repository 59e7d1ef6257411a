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

Modules: :mod:`~miakit.metrics.roc` (``roc_curve``, ``roc_auc``, ``tpr_at_fpr``),
:mod:`~miakit.metrics.accuracy` (``balanced_accuracy``), :mod:`~miakit.metrics.results`
(``AttackResult``, ``evaluate_attack``, ``results_frame``, ``per_class_results``,
``RESULT_COLUMNS``) and :mod:`~miakit.metrics.divergence` (``divergence_stats``).
"""

from __future__ import annotations

from miakit.metrics.accuracy import balanced_accuracy
from miakit.metrics.divergence import divergence_stats
from miakit.metrics.results import (
    RESULT_COLUMNS,
    AttackResult,
    evaluate_attack,
    per_class_results,
    results_frame,
    summary,
)
from miakit.metrics.roc import TprAtFpr, roc_auc, roc_curve, tpr_at_fpr

__all__ = [
    "RESULT_COLUMNS",
    "AttackResult",
    "TprAtFpr",
    "balanced_accuracy",
    "divergence_stats",
    "evaluate_attack",
    "per_class_results",
    "results_frame",
    "summary",
    "roc_auc",
    "roc_curve",
    "tpr_at_fpr",
]
