"""The dense-plus-pruned attack: membership read from what pruning changed (issue 15, item 4).

When both the dense original and its pruned release are public, the pair says more than
either model: recent work on compressed models (CompLeak, 2025) finds the original the
strongest reference for attacking its compressed version. Pruning's fine-tuning runs on
the members again, so a member's true-class confidence tends to move differently from a
non-member's. :class:`PairAttack` reads, per sample, the dense model's and the pruned
model's log true-class probability (the stable log-odds of LiRA's ``phi``, clipped) and
their difference, and calibrates a logistic regression on shadow pairs: each shadow
model and its own pruned version, on the shadow's members and non-members. Its score is
the regression's membership probability; its threshold 0.5.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from miakit.attacks import AttackInputs, AttackScores

__all__ = ["PairAttack", "pair_features"]

NAME = "dense+pruned"


def pair_features(dense: AttackInputs, pruned: AttackInputs) -> np.ndarray:
    """``(N, 3)``: dense ``phi``, pruned ``phi`` and their difference, per sample.

    Raises:
        ValueError: the two models' signals are on different samples.
    """
    if dense.num_samples != pruned.num_samples or (
        dense.sample_ids is not None
        and pruned.sample_ids is not None
        and not np.array_equal(dense.sample_ids, pruned.sample_ids)
    ):
        raise ValueError("the dense and the pruned model's signals must be on the same samples")
    a, b = dense.phi(), pruned.phi()
    return np.column_stack([a, b, b - a])


class PairAttack:
    """Fit on shadow pairs, score a target pair (see the module docstring)."""

    def __init__(self, seed: int = 0) -> None:
        self.model = make_pipeline(StandardScaler(), LogisticRegression(random_state=seed))

    def fit(self, dense: AttackInputs, pruned: AttackInputs) -> PairAttack:
        """Calibrate on shadow pairs with their (shared) membership."""
        truth = dense.require_membership()
        if not np.array_equal(truth, pruned.require_membership()):
            raise ValueError("shadow pairs must share their membership (one shadow, two models)")
        self.model.fit(pair_features(dense, pruned), truth)
        return self

    def score(self, dense: AttackInputs, pruned: AttackInputs) -> AttackScores:
        """Membership probabilities of the target pair's samples."""
        prob = self.model.predict_proba(pair_features(dense, pruned))[:, 1]
        return AttackScores(
            attack=NAME,
            scores=prob.astype(np.float64),
            threshold=0.5,
            membership=pruned.membership,
            labels=pruned.labels,
            sample_ids=pruned.sample_ids,
        )
