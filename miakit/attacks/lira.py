"""LiRA, the likelihood-ratio attack, in its offline form (beyond the paper).

Carlini et al., "Membership Inference Attacks From First Principles" (IEEE S&P
2022). Per sample ``x``, the attack looks at the *logit-scaled confidence*
``phi = log(p_y / (1 - p_y))`` that each reference (shadow) model gives ``x``,
fits a Gaussian ``N(mu_out(x), sigma_out(x)^2)`` to the values of the
reference models that did **not** train on ``x`` (OUT), and asks how far
above that OUT distribution the target model's ``phi`` lies. The offline
variant needs no IN models, which is what the kit's shadows give on victim
samples (they never train on the victim half; DESIGN.md, "Beyond the paper").

The reference models' signals arrive in :meth:`LiRA.fit` as
:class:`~miakit.attacks.base.ReferenceSignals` (samples x models), where the OUT
mean and spread are estimated once; :meth:`LiRA.score` then needs only the target
model's ``phi``. Alignment is checked by ``sample_ids``.

The score is the one-sided test statistic ``-ln P_OUT(phi >= phi_target)``
(in nats; ``ln 2`` at the OUT mean, growing like ``z^2 / 2`` above it). It
ranks samples exactly like the z-score ``(phi_target - mu_out) / sigma_out``
but reads as a p-value: ``score >= -ln(alpha)`` rejects "non-member" at level
``alpha``.

Example:
    >>> refs = ReferenceSignals.from_inputs(shadows_on_victim_samples)  # doctest: +SKIP
    >>> LiRA().fit(None, refs).score(victim_inputs).scores  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from miakit.attacks.base import Attack, AttackInputs, ReferenceSignals
from miakit.attacks.signals import logit_confidence, out_mean

__all__ = [
    "MIN_STD",
    "LiRA",
    "check_phi",
    "gaussian_std",
    "inputs_phi",
    "lira_offline",
    "lira_out_gaussian",
    "lira_score",
    "logit_confidence",
    "matching_phi",
]

#: Floor on the OUT standard deviation, so identical reference values give finite scores.
MIN_STD = 1e-8


def inputs_phi(inputs: AttackInputs, *, use_logits: bool | None = None) -> np.ndarray:
    """:func:`logit_confidence` of one model's signals (logits when present).

    Args:
        inputs: The model's signals on a set of samples.
        use_logits: Force (``True``) or forbid (``False``) the logits form;
            ``None`` uses logits when ``inputs.logits`` is set.
    """
    return inputs.phi(use_logits)


def check_phi(*arrays: np.ndarray) -> None:
    """Raise ``ValueError`` unless every array of ``phi`` values is finite."""
    if not all(np.isfinite(a).all() for a in arrays):
        raise ValueError("phi values must be finite; compute them with logit_confidence")


def lira_out_gaussian(
    reference_phi: np.ndarray,
    reference_in: np.ndarray | None = None,
    *,
    fix_variance: bool = True,
) -> tuple[np.ndarray, float | np.ndarray]:
    """The OUT Gaussian of offline LiRA: per-sample mean and the standard deviation.

    See :func:`lira_offline` for the estimator. ``reference_phi`` and
    ``reference_in`` are ``(S, N)``.

    Returns:
        ``(mu_out, sigma_out)``: ``(N,)`` means and one global float
        (``fix_variance``) or ``(N,)`` per-sample values.
    """
    r = np.asarray(reference_phi, dtype=np.float64)
    if reference_in is None:
        is_in = np.zeros(r.shape, dtype=bool)
    else:
        is_in = np.asarray(reference_in, dtype=bool)
        if is_in.shape != r.shape:
            raise ValueError(f"reference_in must have shape {r.shape} like reference_phi")
    mu = out_mean(r, is_in, attack="LiRA")
    return mu, gaussian_std(r, ~is_in, mu, fix_variance=fix_variance, which="OUT")


def gaussian_std(
    values: np.ndarray, mask: np.ndarray, mu: np.ndarray, *, fix_variance: bool, which: str
) -> float | np.ndarray:
    """The spread of LiRA's Gaussian over the values where ``mask`` is True.

    ``fix_variance``: one global value, the pooled within-sample standard deviation
    ``sqrt(sum of squared deviations from each sample's own mean / (number of values -
    number of samples))``, or, with no degrees of freedom left (one value per sample),
    the standard deviation of all values; else the unbiased per-sample value (at least 2
    values per sample).

    Args:
        values: ``(S, N)`` reference models' ``phi``.
        mask: ``(S, N)`` bool, the values that belong to this Gaussian (IN or OUT).
        mu: ``(N,)`` each sample's mean over its masked values.
        fix_variance: One global standard deviation (True) or one per sample (False).
        which: ``"IN"`` or ``"OUT"``, for the error message.

    Raises:
        ValueError: ``fix_variance=False`` and a sample has fewer than 2 masked values.
    """
    count = mask.sum(axis=0)
    sq = np.where(mask, (values - mu) ** 2, 0.0)
    if fix_variance:
        dof = int(count.sum() - count.shape[0])
        if dof > 0:
            return math.sqrt(float(sq.sum()) / dof)
        return float(values[mask].std())
    if (count < 2).any():
        raise ValueError(
            f"per-sample variance (fix_variance=False) needs at least 2 {which} reference values "
            f"per sample, but {int((count < 2).sum())} samples have fewer; use "
            "fix_variance=True or more reference models"
        )
    return np.sqrt(sq.sum(axis=0) / (count - 1))


def lira_score(target_phi: np.ndarray, mu: np.ndarray, std: float | np.ndarray) -> np.ndarray:
    """``-ln(1 - Phi(z))``, ``z = (target_phi - mu) / max(std, MIN_STD)``: LiRA's score."""
    z = (target_phi - mu) / np.maximum(std, MIN_STD)
    return -torch.special.log_ndtr(torch.from_numpy(-z)).numpy()


def lira_offline(
    target_phi: np.ndarray,
    reference_phi: np.ndarray,
    reference_in: np.ndarray | None = None,
    *,
    fix_variance: bool = True,
) -> np.ndarray:
    """Offline LiRA scores from logit-scaled confidences (Carlini et al. 2022, offline).

    For each sample ``n``, ``mu_out(n)`` is the mean of ``reference_phi[s, n]``
    over the reference models ``s`` that did not train on ``n``; ``sigma_out``
    is either one global value (``fix_variance=True``, the paper's choice for
    few reference models: the pooled within-sample standard deviation, i.e.
    ``sqrt(sum of squared deviations from each sample's own OUT mean / (number
    of OUT values - number of samples))``) or per sample (unbiased, needs two
    OUT values per sample). The score is ``-ln(1 - Phi(z))`` with
    ``z = (target_phi - mu_out) / sigma_out``: the negative log one-sided
    p-value of the target's ``phi`` under the OUT Gaussian. Differences from
    the authors' reference code: the OUT centre is the mean (their code uses
    the median) and the global variance is pooled within samples (their code
    takes the spread of all values, which only rescales the scores).

    With a single OUT value per sample and ``fix_variance=True`` the pooled
    variance has no degrees of freedom; the standard deviation of all OUT
    values is used instead (the ranking of the scores does not depend on it).

    Args:
        target_phi: ``(N,)`` the target model's ``phi`` on the samples.
        reference_phi: ``(S, N)`` the reference models' ``phi`` on the same samples.
        reference_in: ``(S, N)`` bool, True where reference ``s`` trained on
            sample ``n`` (those values are left out); ``None`` = all OUT.
        fix_variance: One global ``sigma_out`` (True) or one per sample (False).

    Returns:
        ``(N,)`` float64 scores, higher = more likely a member.

    Raises:
        ValueError: On shape mismatches, non-finite values, a sample without
            any OUT reference, or too few OUT values to estimate a variance.
    """
    t = np.asarray(target_phi, dtype=np.float64)
    r = np.asarray(reference_phi, dtype=np.float64)
    if t.ndim != 1 or r.ndim != 2 or r.shape[1] != t.shape[0]:
        raise ValueError(
            f"need target_phi (N,) and reference_phi (S, N) on the same N samples; got "
            f"{t.shape} and {r.shape}"
        )
    check_phi(t, r)
    mu, std = lira_out_gaussian(r, reference_in, fix_variance=fix_variance)
    return lira_score(t, mu, std)


@dataclass
class LiRA(Attack):
    """Offline LiRA over reference models' signals on the target samples.

    Beyond the paper (DESIGN.md): Carlini et al. 2022, offline variant. The
    reference models are the kit's shadow models, evaluated **on the target
    samples** (the victim's members and non-members). :meth:`fit` estimates
    the OUT Gaussian of each sample from the references' ``phi`` and ``is_in``
    (:func:`lira_out_gaussian`); :meth:`score` computes :func:`lira_score` of
    the target's ``phi``, so ``fit(...).score(t)`` equals :func:`lira_offline`.

    Attributes:
        fix_variance: Global OUT variance (default; right for few shadows).
        alpha: Level of the hard decision: member iff the one-sided p-value is
            at most ``alpha``, i.e. ``threshold = -ln(alpha)``. The default 0.5
            means "above the OUT mean"; AUC and TPR at low FPR do not depend on it.
    """

    name: ClassVar[str] = "lira"
    title: ClassVar[str] = "LiRA"
    family: ClassVar[str] = "reference"
    uses: ClassVar[frozenset[str]] = frozenset({"references"})

    fix_variance: bool = True
    alpha: float = 0.5
    references_: ReferenceSignals | None = field(default=None, init=False, repr=False)
    mu_: np.ndarray | None = field(default=None, init=False, repr=False)
    std_: float | np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha must lie in (0, 1], got {self.alpha}")
        self.threshold = -math.log(self.alpha)

    @property
    def num_references(self) -> int:
        """S, the number of reference models (after ``fit``)."""
        return 0 if self.references_ is None else self.references_.num_models

    def fit(
        self, shadows: AttackInputs | None = None, references: ReferenceSignals | None = None
    ) -> LiRA:
        """Estimate each sample's OUT mean and the OUT spread from ``references``.

        Args:
            shadows: not used.
            references: the reference models on the target samples.
        """
        refs = self._need("ReferenceSignals", references)
        phi = np.ascontiguousarray(refs.phi.T)  # the kernels' (S, N)
        check_phi(phi)
        self.mu_, self.std_ = lira_out_gaussian(
            phi, np.ascontiguousarray(refs.is_in.T), fix_variance=self.fix_variance
        )
        self.references_ = refs
        return self

    def score_values(self, target: AttackInputs) -> np.ndarray:
        """Offline LiRA scores of the target model on the reference samples, ``(N,)``."""
        refs = self.references_
        if refs is None:
            raise ValueError("LiRA is not fitted; call fit(None, references) first")
        refs.check_target(target, self.name)
        return lira_score(matching_phi(refs, target), self.mu_, self.std_)


def matching_phi(refs: ReferenceSignals, target: AttackInputs) -> np.ndarray:
    """The target's ``phi`` in the form the references' ``phi`` took (logits or posteriors).

    Raises:
        ValueError: the references' ``phi`` came from logits and the target has none,
            or the values are not finite.
    """
    if refs.phi_from_logits and target.logits is None:
        raise ValueError(
            "the references' phi was computed from logits but the target has logits=None; "
            "give the target's logits or build the references from posteriors only"
        )
    t = target.phi(refs.phi_from_logits)
    check_phi(t)
    return t
