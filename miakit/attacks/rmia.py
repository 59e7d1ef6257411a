"""RMIA, the relative membership inference attack, offline (beyond the paper).

Zarifzadeh, Liu, Mahloujifar and Shokri, "Low-Cost High-Power Membership
Inference Attacks" (ICML 2024). For a target model ``theta`` and a sample
``x``, RMIA compares ``x`` with population samples ``z`` (known non-members)
through the pairwise likelihood ratio

    LR(x, z) = (Pr(x | theta) / Pr(x)) / (Pr(z | theta) / Pr(z)),

where ``Pr(. | theta)`` is the target's probability of the true label
``p_y``, and ``Pr(.)`` averages ``p_y`` over reference models. The score is
the fraction of population samples that ``x`` dominates:
``Score(x) = |{z : LR(x, z) >= gamma}| / Z``.

Offline (only OUT reference models, as the kit's shadows are for victim
samples), ``Pr(x)`` is corrected towards what IN models would add, with the
paper's linear approximation (its Appendix, "offline" RMIA)

    Pr(x) = ((1 + a) * Pr_OUT(x) + (1 - a)) / 2,

applied to ``x`` and ``z`` alike, as the authors' Privacy Meter code does
(``run_rmia``). Defaults follow that code: ``a = 0.3`` (its default
``offline_a``; the paper tunes ``a`` per dataset on a paired reference model)
and ``gamma = 1`` (its ``ratios > 1.0``; here ``>=``, as in the paper's
definition, which only changes exact ties).

Example:
    >>> attack = RMIA(refs_on_target, victim_on_pop, refs_on_pop)  # doctest: +SKIP
    >>> scores = attack.score(victim_inputs)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from miakit.attacks.base import Attack, AttackInputs

__all__ = ["RMIA", "offline_marginal", "rmia_scores", "true_label_probability"]

_TINY = np.finfo(np.float64).tiny


def true_label_probability(inputs: AttackInputs) -> np.ndarray:
    """``Pr(x | theta) = p_y``, the model's posterior of the true label, ``(N,)`` float64."""
    p = np.asarray(inputs.posteriors, dtype=np.float64)
    return p[np.arange(p.shape[0]), np.asarray(inputs.labels, dtype=np.int64)]


def offline_marginal(
    reference_py: np.ndarray, a: float, out: np.ndarray | None = None
) -> np.ndarray:
    """RMIA's offline ``Pr(x) = ((1 + a) * Pr_OUT(x) + (1 - a)) / 2`` per sample.

    Args:
        reference_py: ``(S, N)`` reference models' ``p_y``.
        a: The offline coefficient in ``[0, 1]`` (``a = 1``: plain OUT mean).
        out: ``(S, N)`` bool, True where the value is OUT; ``None`` = all OUT.

    Returns:
        ``(N,)`` float64 ``Pr(x)``.
    """
    r = np.asarray(reference_py, dtype=np.float64)
    if out is None:
        mean_out = r.mean(axis=0)
    else:
        count = out.sum(axis=0)
        if (count == 0).any():
            raise ValueError(
                f"{int((count == 0).sum())} samples have no OUT reference model; offline RMIA "
                "needs at least one reference model that did not train on each sample"
            )
        mean_out = np.where(out, r, 0.0).sum(axis=0) / count
    return 0.5 * ((1.0 + a) * mean_out + (1.0 - a))


def _check_py(name: str, arr: np.ndarray, ndim: int) -> np.ndarray:
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {a.shape}")
    if not (np.isfinite(a).all() and (a >= 0).all()):
        raise ValueError(f"{name} must hold finite probabilities >= 0 (p_y of the true label)")
    return a


def rmia_scores(
    target_py: np.ndarray,
    reference_py: np.ndarray,
    population_target_py: np.ndarray,
    population_reference_py: np.ndarray,
    *,
    a: float = 0.3,
    gamma: float = 1.0,
    reference_in: np.ndarray | None = None,
) -> np.ndarray:
    """Offline RMIA scores: the fraction of population samples each target sample dominates.

    ``Score(x) = |{z : (p(x) / Pr(x)) / (p(z) / Pr(z)) >= gamma}| / Z`` with
    ``p(.)`` the target model's ``p_y`` and ``Pr(.)`` from
    :func:`offline_marginal` (Zarifzadeh et al. 2024). The population's ratios
    are sorted once and each target sample's count is found by binary search
    (``O((N + Z) log Z)`` instead of the ``O(N Z)`` pairwise matrix); a final
    fix-up evaluates the defining comparison ``ratio_x / ratio_z >= gamma``
    itself at the boundary, so the result equals the pairwise definition
    exactly, floating-point rounding included.

    Args:
        target_py: ``(N,)`` target model's ``p_y`` on the samples to score.
        reference_py: ``(S, N)`` reference models' ``p_y`` on those samples.
        population_target_py: ``(Z,)`` target model's ``p_y`` on population
            samples (non-members of the target and of every reference).
        population_reference_py: ``(S, Z)`` reference models' ``p_y`` on the population.
        a: Offline coefficient of ``Pr(x)`` in ``[0, 1]``.
        gamma: Likelihood-ratio threshold, ``> 0``.
        reference_in: ``(S, N)`` bool, True where reference ``s`` trained on
            sample ``n`` (left out of ``Pr_OUT``); ``None`` = all OUT.

    Returns:
        ``(N,)`` float64 scores in ``[0, 1]``, higher = more likely a member.

    Raises:
        ValueError: On shape mismatches, invalid probabilities, ``a`` outside
            ``[0, 1]``, ``gamma <= 0`` or an empty population.
    """
    t = _check_py("target_py", target_py, 1)
    r = _check_py("reference_py", reference_py, 2)
    pt = _check_py("population_target_py", population_target_py, 1)
    pr = _check_py("population_reference_py", population_reference_py, 2)
    if r.shape[1] != t.shape[0] or pr.shape[1] != pt.shape[0] or pr.shape[0] != r.shape[0]:
        raise ValueError(
            "need target_py (N,), reference_py (S, N), population_target_py (Z,) and "
            f"population_reference_py (S, Z); got {t.shape}, {r.shape}, {pt.shape}, {pr.shape}"
        )
    if pt.shape[0] == 0:
        raise ValueError("RMIA needs a non-empty population of known non-members")
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"the offline coefficient a must lie in [0, 1], got {a}")
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    out = None
    if reference_in is not None:
        out = ~np.asarray(reference_in, dtype=bool)
        if out.shape != r.shape:
            raise ValueError(f"reference_in must have shape {r.shape} like reference_py")
    ratio_x = t / np.maximum(offline_marginal(r, a, out), _TINY)
    ratio_z = np.sort(pt / np.maximum(offline_marginal(pr, a), _TINY))
    z = ratio_z.shape[0]

    def dominates(rx: np.ndarray, rz: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return rx / rz >= gamma

    # ratio_x / ratio_z >= gamma  <=>  ratio_z <= ratio_x / gamma, up to rounding; as
    # fl(rx / rz) is non-increasing in rz, the dominated z are a prefix of the sorted ratios.
    count = np.searchsorted(ratio_z, ratio_x / gamma, side="right")
    while True:
        up = count < z
        up[up] = dominates(ratio_x[up], ratio_z[count[up]])
        down = count > 0
        down[down] = ~dominates(ratio_x[down], ratio_z[count[down] - 1])
        if not (up.any() or down.any()):
            break
        count[up] = np.searchsorted(ratio_z, ratio_z[count[up]], side="right")
        count[down] = np.searchsorted(ratio_z, ratio_z[count[down] - 1], side="left")
    return count / z


def _py_matrix(reference: Sequence[AttackInputs] | np.ndarray, what: str) -> np.ndarray:
    if isinstance(reference, np.ndarray):
        return reference
    refs = list(reference)
    if not refs or not all(isinstance(x, AttackInputs) for x in refs):
        raise ValueError(
            f"{what} must be an (S, n) array of p_y or a non-empty list of AttackInputs, "
            "one per reference model"
        )
    if any(not np.array_equal(x.labels, refs[0].labels) for x in refs):
        raise ValueError(
            f"the {what} models were evaluated on different samples (labels differ); every "
            "reference must cover the same samples in the same order"
        )
    return np.stack([true_label_probability(x) for x in refs])


@dataclass
class RMIA(Attack):
    """Offline RMIA over reference models and a population of known non-members.

    Beyond the paper (DESIGN.md): Zarifzadeh et al. 2024, scored by
    :func:`rmia_scores`. Everything is given at construction, as the
    reference (shadow) models' signals **on the target samples** and all
    models' signals on the population; :meth:`fit` only returns ``self``.

    Attributes:
        reference: Reference models on the target samples: a list of
            :class:`AttackInputs` (``membership`` = whether that reference
            trained on each sample) or an ``(S, N)`` array of ``p_y``.
        population: The target model on the population samples
            (:class:`AttackInputs` or ``(Z,)`` ``p_y``).
        population_reference: The reference models on the population samples
            (list of :class:`AttackInputs` or ``(S, Z)`` ``p_y``).
        reference_in: ``(S, N)`` bool IN matrix, overriding the references'
            ``membership``; ``None`` and no membership = all OUT.
        a: Offline coefficient (default 0.3, Privacy Meter's default).
        gamma: Pairwise likelihood-ratio threshold (default 1).
        beta: Hard decision: member iff the score (fraction of the population
            dominated) is at least ``beta``; sets ``threshold``.
    """

    name: ClassVar[str] = "rmia"

    reference: Sequence[AttackInputs] | np.ndarray = field(repr=False, compare=False)
    population: AttackInputs | np.ndarray = field(repr=False, compare=False)
    population_reference: Sequence[AttackInputs] | np.ndarray = field(repr=False, compare=False)
    reference_in: np.ndarray | None = field(default=None, repr=False, compare=False)
    a: float = 0.3
    gamma: float = 1.0
    beta: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.reference, np.ndarray):
            self.reference = list(self.reference)
        if not isinstance(self.population_reference, np.ndarray):
            self.population_reference = list(self.population_reference)
        self._ref_py = _py_matrix(self.reference, "reference")
        self._pop_ref_py = _py_matrix(self.population_reference, "population_reference")
        if isinstance(self.population, AttackInputs):
            self._pop_py = true_label_probability(self.population)
            if isinstance(self.population_reference, list) and not np.array_equal(
                self.population.labels, self.population_reference[0].labels
            ):
                raise ValueError(
                    "population and population_reference cover different samples (labels "
                    "differ); evaluate the target and every reference on the same population"
                )
        else:
            self._pop_py = np.asarray(self.population, dtype=np.float64)
        self._in = self.reference_in
        if self._in is None and isinstance(self.reference, list):
            if all(x.membership is not None for x in self.reference):
                self._in = np.stack([x.require_membership() for x in self.reference]).astype(bool)
        # Validate shapes, a and gamma once, at construction, on an empty target.
        rmia_scores(
            np.zeros(0),
            np.zeros((self._ref_py.shape[0], 0)),
            self._pop_py,
            self._pop_ref_py,
            a=self.a,
            gamma=self.gamma,
            reference_in=None if self._in is None else np.zeros((self._ref_py.shape[0], 0), bool),
        )
        self.threshold = float(self.beta)

    def fit(self, shadow: AttackInputs | None = None) -> RMIA:
        """No training: the reference and population signals are given at construction."""
        return self

    def score(self, target: AttackInputs) -> np.ndarray:
        """RMIA scores of the target model on the reference samples, ``(N,)`` in ``[0, 1]``."""
        if target.num_samples != self._ref_py.shape[1]:
            raise ValueError(
                f"the target has {target.num_samples} samples but the references cover "
                f"{self._ref_py.shape[1]}: score the samples the references were evaluated on"
            )
        if isinstance(self.reference, list):
            if not np.array_equal(self.reference[0].labels, target.labels):
                raise ValueError(
                    "the target's labels differ from the references': score the same samples "
                    "in the same order"
                )
        return rmia_scores(
            true_label_probability(target),
            self._ref_py,
            self._pop_py,
            self._pop_ref_py,
            a=self.a,
            gamma=self.gamma,
            reference_in=self._in,
        )
