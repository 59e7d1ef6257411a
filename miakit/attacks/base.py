"""The one interface every membership-inference attack in miakit follows.

An attack is *fitted* on the pooled shadow signals (members = shadow train,
non-members = shadow test; PAPER.md, "The eight existing attacks") and then
*scores* victim samples. The score is a float per sample, higher meaning
"more likely a member"; ``score >= attack.threshold`` is the attack's own
hard decision, which gives the paper's balanced attack accuracy, while the
continuous score gives ROC AUC and TPR at low FPR. Scoring never retrains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class AttackInputs:
    """The signals one model gives on a set of samples.

    Attributes:
        posteriors: ``(N, K)`` softmax outputs of the model.
        labels: ``(N,)`` ground-truth class indices.
        sensitivity: optional ``(N, K)`` per-class input sensitivity (SAMIA's
            feature; PAPER.md, "SAMIA").
        membership: optional ``(N,)`` 0/1 truth (1 = member, i.e. in the
            model's training set). Required to fit an attack or to score it.
        logits: optional ``(N, K)`` pre-softmax outputs (used by LiRA/RMIA when
            present; otherwise they work from posteriors).
    """

    posteriors: np.ndarray
    labels: np.ndarray
    sensitivity: np.ndarray | None = None
    membership: np.ndarray | None = None
    logits: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.validate()

    @property
    def num_samples(self) -> int:
        return int(self.posteriors.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.posteriors.shape[1])

    def validate(self) -> None:
        """Check shapes and value ranges; raise ``ValueError`` naming the problem."""
        p = self.posteriors
        if p.ndim != 2:
            raise ValueError(f"posteriors must be (N, K), got shape {p.shape}")
        n, k = p.shape
        if self.labels.shape != (n,):
            raise ValueError(
                f"labels must have shape ({n},) to match posteriors, got {self.labels.shape}"
            )
        if not np.issubdtype(self.labels.dtype, np.integer):
            raise ValueError(f"labels must be integer class indices, got dtype {self.labels.dtype}")
        if n and (self.labels.min() < 0 or self.labels.max() >= k):
            raise ValueError(
                f"labels must lie in [0, {k}); got [{self.labels.min()}, {self.labels.max()}]"
            )
        for name in ("sensitivity", "logits"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != (n, k):
                raise ValueError(
                    f"{name} must have shape ({n}, {k}) like posteriors, got {arr.shape}"
                )
        if self.membership is not None:
            m = self.membership
            if m.shape != (n,):
                raise ValueError(f"membership must have shape ({n},), got {m.shape}")
            if not np.isin(m, (0, 1)).all():
                raise ValueError("membership must hold only 0 (non-member) and 1 (member)")

    def require_membership(self) -> np.ndarray:
        if self.membership is None:
            raise ValueError(
                "these AttackInputs carry no membership labels; fitting or scoring needs them"
            )
        return self.membership.astype(np.int64)

    def subset(self, idx: np.ndarray) -> AttackInputs:
        """The same signals restricted to rows ``idx``."""
        take = lambda a: None if a is None else a[idx]  # noqa: E731
        return AttackInputs(
            posteriors=self.posteriors[idx],
            labels=self.labels[idx],
            sensitivity=take(self.sensitivity),
            membership=take(self.membership),
            logits=take(self.logits),
        )

    @staticmethod
    def concat(parts: list[AttackInputs]) -> AttackInputs:
        """Pool several models' signals (e.g. all shadows) into one set."""
        if not parts:
            raise ValueError("concat needs at least one AttackInputs")

        def cat(name: str) -> np.ndarray | None:
            arrs = [getattr(p, name) for p in parts]
            if any(a is None for a in arrs):
                return None
            return np.concatenate(arrs)

        return AttackInputs(
            posteriors=np.concatenate([p.posteriors for p in parts]),
            labels=np.concatenate([p.labels for p in parts]),
            sensitivity=cat("sensitivity"),
            membership=cat("membership"),
            logits=cat("logits"),
        )


@dataclass(eq=False)
class Attack:
    """Base class: subclasses set ``name`` and implement ``fit`` and ``score``.

    ``threshold`` is the score at or above which the attack's hard decision is
    "member"; subclasses set it in ``fit`` (e.g. 0.5 for a probability, 0.0
    for a margin over a learned threshold).
    """

    name: ClassVar[str] = "attack"
    threshold: float = field(default=0.5, init=False)

    def fit(self, shadow: AttackInputs) -> Attack:  # pragma: no cover - interface
        raise NotImplementedError

    def score(self, target: AttackInputs) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def decide(self, target: AttackInputs) -> np.ndarray:
        """Hard membership decisions (1 = member) at the fitted threshold."""
        return (self.score(target) >= self.threshold).astype(np.int64)
