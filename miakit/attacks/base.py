"""The one protocol every membership-inference attack in miakit follows.

Every attack receives the same inputs and returns one typed object
(ARCHITECTURE.md, "One attack protocol over cached signals"):

* :meth:`Attack.fit` takes the pooled shadow signals (:class:`AttackInputs`;
  members = shadow train, non-members = shadow test; PAPER.md, "The eight existing
  attacks") and/or the reference models' signals on the target samples
  (:class:`ReferenceSignals`, samples x models), as the attack's ``uses`` declares.
* :meth:`Attack.score` takes one model's signals on the target samples and returns
  :class:`AttackScores`: a float per sample, higher meaning "more likely a member",
  and the attack's threshold (``score >= threshold`` is its hard decision, which
  gives the paper's balanced attack accuracy; the continuous score gives ROC AUC
  and TPR at low FPR). Scoring never retrains.

Options go to the constructor, data to ``fit``: one fitted attack scores many
victims. Membership always means "in the training set of the model that produced
these signals".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from miakit._util import check_membership, true_class_prob
from miakit.attacks.scores import AttackScores
from miakit.attacks.signals import check_sample_ids, logit_confidence, out_mean

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "Attack",
    "AttackInputs",
    "AttackScores",
    "AttackSettings",
    "ReferenceSignals",
]


@dataclass(frozen=True)
class AttackInputs:
    """The signals one model gives on a set of samples.

    Attributes:
        posteriors: ``(N, K)`` softmax outputs of the model.
        labels: ``(N,)`` ground-truth class indices.
        sensitivity: optional ``(N, K)`` per-class input sensitivity (SAMIA's
            feature; PAPER.md, "SAMIA").
        membership: optional ``(N,)`` 0/1 truth: 1 = in the training set of THE
            MODEL that produced these signals. Required to fit an attack or to
            evaluate its scores.
        logits: optional ``(N, K)`` pre-softmax outputs (LiRA's ``phi`` uses them
            when present; otherwise it works from posteriors).
        sample_ids: optional ``(N,)`` pool indices of the samples, so that signals
            of different models can be checked to cover the same samples.
    """

    posteriors: np.ndarray
    labels: np.ndarray
    sensitivity: np.ndarray | None = None
    membership: np.ndarray | None = None
    logits: np.ndarray | None = None
    sample_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.validate()

    @property
    def num_samples(self) -> int:
        return int(self.posteriors.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.posteriors.shape[1])

    @property
    def p_y(self) -> np.ndarray:
        """``(N,)`` float64 probability of each sample's true class (Conf's and RMIA's signal)."""
        return true_class_prob(np.asarray(self.posteriors, dtype=np.float64), self.labels)

    def phi(self, use_logits: bool | None = None) -> np.ndarray:
        """LiRA's ``phi = log(p_y / (1 - p_y))`` (:func:`logit_confidence`), ``(N,)``.

        Args:
            use_logits: force (``True``) or forbid (``False``) the logits form;
                ``None`` uses logits when :attr:`logits` is set.
        """
        if use_logits is None:
            use_logits = self.logits is not None
        if use_logits:
            if self.logits is None:
                raise ValueError("use_logits=True but these AttackInputs have logits=None")
            return logit_confidence(self.logits, self.labels, from_logits=True)
        return logit_confidence(self.posteriors, self.labels)

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
            object.__setattr__(self, "membership", check_membership(self.membership, n))
        if self.sample_ids is not None:
            object.__setattr__(self, "sample_ids", check_sample_ids(self.sample_ids, n))

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
            sample_ids=take(self.sample_ids),
        )

    @staticmethod
    def concat(parts: Sequence[AttackInputs]) -> AttackInputs:
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
            sample_ids=cat("sample_ids"),
        )


def _aligned(parts: Sequence[AttackInputs], what: str) -> np.ndarray:
    """The common ``sample_ids`` of ``parts``; raise if any lacks them or they differ."""
    if not parts or not all(isinstance(x, AttackInputs) for x in parts):
        raise ValueError(f"{what} must be a non-empty list of AttackInputs, one per model")
    ids = parts[0].sample_ids
    for i, x in enumerate(parts):
        if x.sample_ids is None or ids is None or not np.array_equal(x.sample_ids, ids):
            raise ValueError(
                f"the {what} signals of model {i} cover different samples (sample_ids missing "
                "or different); evaluate every model on the same samples in the same order"
            )
    return ids


@dataclass(frozen=True)
class ReferenceSignals:
    """Reference (shadow) models' signals on the target samples: samples x models.

    Like Privacy Meter's ``all_signals`` matrix; built once from cached signals and
    read by LiRA and RMIA (beyond the paper; DESIGN.md).

    Attributes:
        sample_ids: ``(N,)`` pool indices of the target samples.
        p_y: ``(N, S)`` true-class probability per reference model (RMIA).
        phi: ``(N, S)`` logit-scaled confidence per reference model (LiRA).
        is_in: ``(N, S)`` bool, True where reference ``s`` trained on sample ``n``.
        population_p_y: ``(Z, S)`` the references on known non-members (RMIA's population).
        target_population_p_y: ``(Z,)`` the target model on the same population samples.
        phi_from_logits: whether ``phi`` was computed from logits; the target's ``phi``
            must use the same form.
    """

    sample_ids: np.ndarray
    p_y: np.ndarray
    phi: np.ndarray
    is_in: np.ndarray
    population_p_y: np.ndarray
    target_population_p_y: np.ndarray
    phi_from_logits: bool = True

    def __post_init__(self) -> None:
        p = np.asarray(self.p_y, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] < 1:
            raise ValueError(f"p_y must be (N, S) with S >= 1 reference models, got {p.shape}")
        n, s = p.shape
        check_sample_ids(self.sample_ids, n)
        for name in ("phi", "is_in"):
            if np.shape(getattr(self, name)) != (n, s):
                raise ValueError(
                    f"{name} must be ({n}, {s}) like p_y, got {np.shape(getattr(self, name))}"
                )
        pop = np.asarray(self.population_p_y, dtype=np.float64).reshape(-1, s)
        tpop = np.asarray(self.target_population_p_y, dtype=np.float64)
        if tpop.shape != (pop.shape[0],):
            raise ValueError(
                f"target_population_p_y must be ({pop.shape[0]},) like population_p_y, got "
                f"{tpop.shape}"
            )
        object.__setattr__(self, "p_y", p)
        object.__setattr__(self, "phi", np.asarray(self.phi, dtype=np.float64))
        object.__setattr__(self, "is_in", np.asarray(self.is_in, dtype=bool))
        object.__setattr__(self, "population_p_y", pop)
        object.__setattr__(self, "target_population_p_y", tpop)

    @property
    def num_samples(self) -> int:
        return int(self.p_y.shape[0])

    @property
    def num_models(self) -> int:
        return int(self.p_y.shape[1])

    @classmethod
    def from_inputs(
        cls,
        references: Sequence[AttackInputs],
        population: Sequence[AttackInputs] = (),
        target_population: AttackInputs | None = None,
    ) -> ReferenceSignals:
        """Stack per-model signals into the samples x models matrices.

        Args:
            references: one :class:`AttackInputs` per reference model on the target
                samples, each with ``sample_ids`` and ``membership`` (1 = that model
                trained on the sample).
            population: the same models on known non-members (RMIA); may be empty.
            target_population: the target model on those population samples.
        """
        ids = _aligned(references, "reference")
        for r in references:
            r.require_membership()
        use_logits = all(r.logits is not None for r in references)
        if population:
            pop_ids = _aligned(population, "population")
            if target_population is None or not np.array_equal(
                target_population.sample_ids, pop_ids
            ):
                raise ValueError(
                    "target_population must be the target model on the population samples "
                    "(same sample_ids as the population references)"
                )
            pop = np.stack([x.p_y for x in population], axis=1)
            tpop = target_population.p_y
        else:
            pop, tpop = np.zeros((0, len(references))), np.zeros(0)
        return cls(
            sample_ids=ids,
            p_y=np.stack([r.p_y for r in references], axis=1),
            phi=np.stack([r.phi(use_logits) for r in references], axis=1),
            is_in=np.stack([r.membership.astype(bool) for r in references], axis=1),
            population_p_y=pop,
            target_population_p_y=tpop,
            phi_from_logits=use_logits,
        )

    def out_mean(self, values: np.ndarray, *, attack: str = "") -> np.ndarray:
        """``(N,)`` mean of ``values`` ``(N, S)`` over each sample's OUT references."""
        v = np.ascontiguousarray(np.asarray(values, dtype=np.float64).T)
        return out_mean(v, np.ascontiguousarray(self.is_in.T), attack=attack)

    def check_target(self, target: AttackInputs, attack: str) -> None:
        """Raise unless ``target`` covers these samples in this order (by ``sample_ids``)."""
        if target.sample_ids is None or not np.array_equal(target.sample_ids, self.sample_ids):
            got = "none" if target.sample_ids is None else f"{target.num_samples} other"
            raise ValueError(
                f"{attack}: the target's sample_ids ({got}) differ from the {self.num_samples} "
                "samples the references cover; score the samples the references were evaluated on"
            )


@dataclass(frozen=True)
class AttackSettings:
    """Training settings of the neural attacks, built once from an experiment's config.

    Defaults are the paper's attack-model schedule (PAPER.md, "The eight existing
    attacks"): 100 epochs, SGD at lr 1e-3, batch 128. Attacks that train nothing
    ignore them.

    Attributes:
        progress: show a progress bar over the attack network's training epochs
            (its loss as the postfix). Not part of any result or cache key.
        label: what the attack is fitted for (e.g. the shadows' variant), shown in
            the bar: ``"fit samia (l1_unstructured 0.7)"``. Not part of any key.
    """

    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 128
    seed: int = 0
    device: str | torch.device | None = None
    progress: bool = False
    label: str = ""

    def key(self) -> dict[str, Any]:
        """The settings that determine a result (not the device or the bar), for cache keys."""
        return {
            "epochs": self.epochs,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "seed": self.seed,
        }


Family = Literal["threshold", "neural", "reference"]


@dataclass(eq=False)
class Attack(ABC):
    """Base class: subclasses set the class attributes and implement ``fit`` and ``score``.

    Class attributes:
        name: registry key (``miakit.attacks.ATTACKS``).
        title: display name in figures and tables.
        family: ``"threshold"``, ``"neural"`` or ``"reference"``.
        uses: what :meth:`fit` reads: ``{"shadows"}`` (pooled shadow signals) or
            ``{"references"}`` (:class:`ReferenceSignals` of the shadows, all OUT); with
            ``"reference_models"``, of the reference models, IN and OUT (online attacks).
        persist: whether the fitted state is worth caching (:meth:`state`).

    ``threshold`` is the score at or above which the attack's hard decision is
    "member"; subclasses set it (e.g. 0.5 for a probability, 0.0 for a margin
    over a learned threshold).
    """

    name: ClassVar[str] = "attack"
    title: ClassVar[str] = "Attack"
    family: ClassVar[Family] = "threshold"
    uses: ClassVar[frozenset[str]] = frozenset({"shadows"})
    persist: ClassVar[bool] = False
    threshold: float = field(default=0.5, init=False)

    @classmethod
    def from_settings(cls, settings: AttackSettings, **options: Any) -> Self:
        """The attack with ``options``; only attacks that train something read ``settings``."""
        return cls(**options)

    @abstractmethod
    def fit(
        self, shadows: AttackInputs | None = None, references: ReferenceSignals | None = None
    ) -> Self:
        """Learn from the inputs named in ``uses``; returns ``self``."""

    @abstractmethod
    def score_values(self, target: AttackInputs) -> np.ndarray:
        """``(N,)`` raw float64 scores of the target samples (higher = member)."""

    def score(self, target: AttackInputs) -> AttackScores:
        """Score the target model's samples: :class:`AttackScores` (checked finite)."""
        return AttackScores(
            attack=self.name,
            scores=self.score_values(target),
            threshold=self.threshold,
            membership=target.membership,
            labels=target.labels,
            sample_ids=target.sample_ids,
        )

    def run(
        self,
        target: AttackInputs,
        shadows: AttackInputs | None = None,
        references: ReferenceSignals | None = None,
    ) -> AttackScores:
        """One-shot form: :meth:`fit`, then :meth:`score`."""
        return self.fit(shadows, references).score(target)

    def decide(self, target: AttackInputs) -> np.ndarray:
        """Hard membership decisions (1 = member) at the fitted threshold."""
        return self.score(target).decisions()

    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The fitted state as tensors plus JSON-able metadata (``persist`` attacks only)."""
        raise NotImplementedError(f"{self.name} keeps no state worth storing (persist=False)")

    @classmethod
    def from_state(
        cls,
        tensors: Mapping[str, Tensor],
        meta: Mapping[str, Any],
        settings: AttackSettings,
        **options: Any,
    ) -> Self:
        """Rebuild a fitted attack from :meth:`state` (``persist`` attacks only)."""
        raise NotImplementedError(f"{cls.name} keeps no state worth storing (persist=False)")

    def _need(self, what: str, value: Any) -> Any:
        if value is None:
            raise ValueError(f"{self.name}: fit needs {what} (its `uses` is {sorted(self.uses)})")
        return value
