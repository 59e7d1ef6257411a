"""What every attack returns: :class:`AttackScores`, per-sample scores with their threshold.

Scores are checked where they are made (finite float64, else an error naming the
attack); metrics come from :mod:`miakit.metrics` (PAPER.md, "Reporting").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from miakit._util import check_membership
from miakit.attacks.signals import check_sample_ids
from miakit.metrics import AttackResult, evaluate_attack, per_class_results, roc_curve
from miakit.metrics.intervals import BOOTSTRAP_RESAMPLES, bootstrap_indices, bootstrap_metrics

__all__ = ["AttackScores"]


@dataclass(frozen=True, eq=False)
class AttackScores:
    """What every attack returns: per-sample scores on one model's target samples.

    Attributes:
        attack: the attack's name.
        scores: ``(N,)`` finite float64 membership scores (higher = member).
        threshold: ``decisions() = scores >= threshold``.
        membership: ``(N,)`` truth for the target model, or ``None`` when unknown.
        labels: ``(N,)`` ground-truth classes.
        sample_ids: ``(N,)`` pool indices, when known.
        columns: what was attacked (e.g. ``victim``, ``shadows``), the default tags
            of :meth:`result` and :meth:`per_class`.
    """

    attack: str
    scores: np.ndarray
    threshold: float
    membership: np.ndarray | None
    labels: np.ndarray
    sample_ids: np.ndarray | None = None
    columns: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = np.asarray(self.scores, dtype=np.float64)
        if s.ndim != 1:
            raise ValueError(f"{self.attack}: scores must be (N,), got shape {s.shape}")
        bad = ~np.isfinite(s)
        if bad.any():
            raise ValueError(
                f"attack {self.attack!r} produced {int(bad.sum())} NaN or infinite scores of "
                f"{s.size}; check its inputs (posteriors, sensitivity) and options"
            )
        n = s.shape[0]
        object.__setattr__(self, "scores", s)
        object.__setattr__(self, "threshold", float(self.threshold))
        if self.membership is not None:
            object.__setattr__(self, "membership", check_membership(self.membership, n))
        labels = np.asarray(self.labels)
        if labels.shape != (n,):
            raise ValueError(f"{self.attack}: labels must be ({n},), got {labels.shape}")
        object.__setattr__(self, "labels", labels)
        if self.sample_ids is not None:
            object.__setattr__(self, "sample_ids", check_sample_ids(self.sample_ids, n))
        object.__setattr__(self, "columns", dict(self.columns))

    def decisions(self) -> np.ndarray:
        """The attack's own 0/1 decisions (1 = member), ``scores >= threshold``."""
        return (self.scores >= self.threshold).astype(np.int64)

    def _truth(self) -> np.ndarray:
        if self.membership is None:
            raise ValueError(f"{self.attack}: these scores carry no membership truth to evaluate")
        return self.membership

    def result(self, columns: Mapping[str, Any] | None = None) -> AttackResult:
        """Balanced accuracy, AUC and TPR at low FPR (PAPER.md, "Reporting")."""
        tags = {**self.columns, **(columns or {})}
        return evaluate_attack(self.attack, self._truth(), self.scores, self.decisions(), tags=tags)

    def bootstrap(self, resamples: int = BOOTSTRAP_RESAMPLES, *, seed: int = 0) -> np.ndarray:
        """``(resamples, 4)`` metrics on stratified bootstrap resamples of the targets.

        Columns as :data:`miakit.metrics.intervals.INTERVAL_METRICS`. The resamples depend
        only on the membership vector and ``seed``, so two scores on the same targets
        (two victims, two attacks) are resampled identically: their difference is paired.
        """
        truth = self._truth()
        indices = bootstrap_indices(truth, resamples, seed=seed)
        return bootstrap_metrics(truth, self.scores, self.decisions(), indices)

    def roc(self) -> tuple[np.ndarray, np.ndarray]:
        """``(fpr, tpr)`` of the ROC curve, for log-log plots."""
        fpr, tpr, _ = roc_curve(self._truth(), self.scores)
        return fpr, tpr

    def per_class(self, columns: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """The attack's metrics computed separately for each ground-truth class."""
        frame = per_class_results(self._truth(), self.scores, self.decisions(), self.labels)
        for k, v in {**self.columns, **(columns or {})}.items():
            frame.insert(0, k, v)
        frame.insert(0, "attack", self.attack)
        return frame
