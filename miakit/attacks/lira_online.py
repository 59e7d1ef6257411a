"""LiRA in its online form: per-sample IN and OUT Gaussians (beyond the paper).

Carlini et al., "Membership Inference Attacks From First Principles" (IEEE S&P
2022), online variant; beyond the paper (DESIGN.md, "Beyond the paper"; PAPER.md
covers only the paper's own attacks). Where offline LiRA (:mod:`miakit.attacks.lira`)
only knows how a sample's logit-scaled confidence ``phi`` is spread among reference
models that did **not** train on it, the online attack also fits a Gaussian
``N(mu_in(x), sigma_in(x)^2)`` to the references that **did** (IN), and scores the
target model's ``phi`` by the log likelihood ratio of the two:

    score(x) = ln N(phi_target; mu_in, sigma_in) - ln N(phi_target; mu_out, sigma_out).

``score > 0`` (likelihood ratio above 1) means IN explains the target's value better
than OUT; that is the hard decision (``threshold = 0``).

It needs reference models that trained on each target sample and others that did not:
references trained on random halves of a candidate pool (each sample IN for about half
of them) give both. The input is the same
:class:`~miakit.attacks.base.ReferenceSignals` as offline LiRA's (``phi`` and
``is_in``, samples x models); alignment is checked by ``sample_ids``.

Example:
    >>> refs = ReferenceSignals.from_inputs(references_on_target_samples)  # doctest: +SKIP
    >>> LiRAOnline().fit(None, refs).score(victim_inputs).scores  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from miakit.attacks.base import Attack, AttackInputs, ReferenceSignals
from miakit.attacks.lira import MIN_STD, check_phi, gaussian_std, matching_phi
from miakit.attacks.signals import out_mean

__all__ = ["LiRAOnline", "gaussian_log_ratio", "lira_in_out_gaussians", "lira_online"]

Std = float | np.ndarray


def lira_in_out_gaussians(
    reference_phi: np.ndarray, reference_in: np.ndarray, *, fix_variance: bool = True
) -> tuple[np.ndarray, Std, np.ndarray, Std]:
    """The IN and OUT Gaussians of online LiRA, per sample.

    ``mu_in(n)`` (``mu_out(n)``) is the mean of ``reference_phi[s, n]`` over the
    references ``s`` that did (did not) train on ``n``. With ``fix_variance`` (the
    paper's choice for few references) ``sigma_in`` and ``sigma_out`` are one global
    value each, pooled within samples as in offline LiRA
    (:func:`~miakit.attacks.lira.gaussian_std`); else one unbiased value per sample
    (needs two IN and two OUT values per sample). Differences from the authors' code:
    means, not medians, and the pooled within-sample spread, not that of all values.

    Args:
        reference_phi: ``(S, N)`` the reference models' ``phi`` on the target samples.
        reference_in: ``(S, N)`` bool, True where reference ``s`` trained on sample ``n``.
        fix_variance: Global (True) or per-sample (False) standard deviations.

    Returns:
        ``(mu_in, sigma_in, mu_out, sigma_out)``: ``(N,)`` means, and standard
        deviations that are floats (``fix_variance``) or ``(N,)`` arrays.

    Raises:
        ValueError: On shape mismatches, non-finite values, a sample without any IN or
            without any OUT reference, or (``fix_variance=False``) fewer than two of either.
    """
    r = np.asarray(reference_phi, dtype=np.float64)
    is_in = np.asarray(reference_in, dtype=bool)
    if r.ndim != 2 or is_in.shape != r.shape:
        raise ValueError(
            f"need reference_phi and reference_in of the same shape (S, N); got {r.shape} and "
            f"{is_in.shape}"
        )
    check_phi(r)
    n_in = is_in.sum(axis=0)
    no_in, no_out = int((n_in == 0).sum()), int((n_in == r.shape[0]).sum())
    if no_in or no_out:
        raise ValueError(
            f"online LiRA needs, for every target sample, reference models that trained on it "
            f"(IN) and others that did not (OUT); of {r.shape[1]} samples, {no_in} have no IN "
            f"and {no_out} no OUT reference among the {r.shape[0]}. Train more reference "
            "models (num_references; each on a random half of the pool), or use offline LiRA"
        )
    mu_in = out_mean(r, ~is_in, attack="online LiRA")  # the mean over the IN values
    mu_out = out_mean(r, is_in, attack="online LiRA")
    return (
        mu_in,
        gaussian_std(r, is_in, mu_in, fix_variance=fix_variance, which="IN"),
        mu_out,
        gaussian_std(r, ~is_in, mu_out, fix_variance=fix_variance, which="OUT"),
    )


def gaussian_log_ratio(
    target_phi: np.ndarray, mu_in: np.ndarray, std_in: Std, mu_out: np.ndarray, std_out: Std
) -> np.ndarray:
    """``ln N(t; mu_in, s_in) - ln N(t; mu_out, s_out)`` (natural log), ``s = max(std, MIN_STD)``.

    The ``-ln sqrt(2 pi)`` of both densities cancels.
    """
    s_in, s_out = np.maximum(std_in, MIN_STD), np.maximum(std_out, MIN_STD)
    z_in, z_out = (target_phi - mu_in) / s_in, (target_phi - mu_out) / s_out
    return 0.5 * (z_out**2 - z_in**2) + np.log(s_out) - np.log(s_in)


def lira_online(
    target_phi: np.ndarray,
    reference_phi: np.ndarray,
    reference_in: np.ndarray,
    *,
    fix_variance: bool = True,
) -> np.ndarray:
    """Online LiRA scores from logit-scaled confidences (Carlini et al. 2022, online).

    The Gaussians are :func:`lira_in_out_gaussians`'s; the score is their
    :func:`gaussian_log_ratio` at the target's ``phi``.

    Args:
        target_phi: ``(N,)`` the target model's ``phi`` on the samples.
        reference_phi: ``(S, N)`` the reference models' ``phi`` on the same samples.
        reference_in: ``(S, N)`` bool, True where reference ``s`` trained on sample ``n``.
        fix_variance: Global (True) or per-sample (False) standard deviations.

    Returns:
        ``(N,)`` float64 log likelihood ratios, higher = more likely a member.

    Raises:
        ValueError: As :func:`lira_in_out_gaussians`, or ``target_phi`` not ``(N,)``
            finite values.
    """
    t = np.asarray(target_phi, dtype=np.float64)
    r = np.asarray(reference_phi, dtype=np.float64)
    if t.ndim != 1 or r.ndim != 2 or r.shape[1] != t.shape[0]:
        raise ValueError(
            f"need target_phi (N,) and reference_phi (S, N) on the same N samples; got "
            f"{t.shape} and {r.shape}"
        )
    check_phi(t)
    return gaussian_log_ratio(t, *lira_in_out_gaussians(r, reference_in, fix_variance=fix_variance))


@dataclass
class LiRAOnline(Attack):
    """Online LiRA over reference models' signals on the target samples.

    Beyond the paper (DESIGN.md): Carlini et al. 2022, online variant. :meth:`fit`
    estimates each sample's IN and OUT Gaussians from the references' ``phi`` and
    ``is_in`` (:func:`lira_in_out_gaussians`); :meth:`score` computes their
    :func:`gaussian_log_ratio` at the target's ``phi``, so ``fit(...).score(t)`` equals
    :func:`lira_online`. The hard decision is "member" iff the likelihood ratio is at
    least 1 (``threshold = 0``); AUC and TPR at low FPR do not depend on it.

    Attributes:
        fix_variance: Global IN and OUT variances (default; right for few references).
    """

    name: ClassVar[str] = "lira_online"
    title: ClassVar[str] = "LiRA (online)"
    family: ClassVar[str] = "reference"
    uses: ClassVar[frozenset[str]] = frozenset({"references", "reference_models"})

    fix_variance: bool = True
    references_: ReferenceSignals | None = field(default=None, init=False, repr=False)
    gaussians_: tuple[np.ndarray, Std, np.ndarray, Std] | None = field(
        default=None, init=False, repr=False
    )

    def __post_init__(self) -> None:
        self.threshold = 0.0

    @property
    def num_references(self) -> int:
        """S, the number of reference models (after ``fit``)."""
        return 0 if self.references_ is None else self.references_.num_models

    def fit(
        self, shadows: AttackInputs | None = None, references: ReferenceSignals | None = None
    ) -> LiRAOnline:
        """Estimate each sample's IN and OUT Gaussians from ``references``.

        Args:
            shadows: not used.
            references: the reference models on the target samples, with ``is_in``.
        """
        refs = self._need("ReferenceSignals", references)
        self.gaussians_ = lira_in_out_gaussians(
            np.ascontiguousarray(refs.phi.T),  # the kernels' (S, N)
            np.ascontiguousarray(refs.is_in.T),
            fix_variance=self.fix_variance,
        )
        self.references_ = refs
        return self

    def score_values(self, target: AttackInputs) -> np.ndarray:
        """Online LiRA scores (log likelihood ratios) of the target model, ``(N,)``."""
        refs = self.references_
        if refs is None or self.gaussians_ is None:
            raise ValueError("LiRA (online) is not fitted; call fit(None, references) first")
        refs.check_target(target, self.name)
        return gaussian_log_ratio(matching_phi(refs, target), *self.gaussians_)
