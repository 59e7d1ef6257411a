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

Online RMIA, with references that trained on the target samples, is
:mod:`miakit.attacks.rmia_online`.

The reference signals arrive in :meth:`RMIA.fit` as
:class:`~miakit.attacks.base.ReferenceSignals`; ``fit`` computes the offline
marginals ``Pr(x)`` and sorts the population's ratios once, and ``score`` only
counts. Alignment is checked by ``sample_ids``.

Example:
    >>> refs = ReferenceSignals.from_inputs(on_target, on_pop, victim_on_pop)  # doctest: +SKIP
    >>> RMIA().fit(None, refs).score(victim_inputs).scores  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from miakit.attacks.base import Attack, AttackInputs, ReferenceSignals
from miakit.attacks.signals import out_mean

__all__ = [
    "DIVISION_FLOOR",
    "RMIA",
    "check_rmia_arrays",
    "check_rmia_options",
    "fitted_scores",
    "offline_marginal",
    "reference_arrays",
    "rmia_count",
    "rmia_fit",
    "rmia_scores",
    "true_label_probability",
]

#: Floor on the marginal ``Pr(x)`` in the ratio ``p_y / Pr(x)``: it guards the division
#: (a marginal of exactly 0), it is not a log clip. The smallest positive float64.
DIVISION_FLOOR = np.finfo(np.float64).tiny


def true_label_probability(inputs: AttackInputs) -> np.ndarray:
    """``Pr(x | theta) = p_y``, the model's posterior of the true label, ``(N,)`` float64."""
    return inputs.p_y


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
    mean_out = out_mean(r, None if out is None else ~out, attack="RMIA")
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
    t, r, pt, pr = check_rmia_arrays(
        target_py, reference_py, population_target_py, population_reference_py
    )
    check_rmia_options(a, gamma)
    marginal_x, ratio_z = rmia_fit(r, pt, pr, a=a, reference_in=reference_in)
    return rmia_count(t / np.maximum(marginal_x, DIVISION_FLOOR), ratio_z, gamma)


def check_rmia_arrays(
    target_py: np.ndarray,
    reference_py: np.ndarray,
    population_target_py: np.ndarray,
    population_reference_py: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four ``p_y`` arrays of :func:`rmia_scores` as float64, checked."""
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
    return t, r, pt, pr


def rmia_fit(
    reference_py: np.ndarray,
    population_target_py: np.ndarray,
    population_reference_py: np.ndarray,
    *,
    a: float = 0.3,
    reference_in: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """What offline RMIA computes before scoring: ``Pr(x)`` and the sorted population ratios.

    Arrays as in :func:`rmia_scores` (checked there or by :meth:`RMIA.fit`).

    Returns:
        ``(marginal_x, ratio_z)``: ``(N,)`` offline ``Pr(x)`` of the target samples and
        ``(Z,)`` sorted ``p(z) / Pr(z)`` of the population.
    """
    out = None
    if reference_in is not None:
        out = ~np.asarray(reference_in, dtype=bool)
        if out.shape != reference_py.shape:
            raise ValueError(f"reference_in must have shape {reference_py.shape} like reference_py")
    marginal_x = offline_marginal(reference_py, a, out)
    ratio_z = np.sort(
        population_target_py
        / np.maximum(offline_marginal(population_reference_py, a), DIVISION_FLOOR)
    )
    return marginal_x, ratio_z


def rmia_count(ratio_x: np.ndarray, ratio_z: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """``|{z : ratio_x / ratio_z >= gamma}| / Z`` per sample, exactly, by binary search.

    ``ratio_z`` must be sorted (:func:`rmia_fit`); see :func:`rmia_scores`.
    """
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


def check_rmia_options(a: float, gamma: float) -> None:
    """Raise ``ValueError`` unless ``0 <= a <= 1`` and ``gamma > 0``."""
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"the offline coefficient a must lie in [0, 1], got {a}")
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")


@dataclass
class RMIA(Attack):
    """Offline RMIA over reference models and a population of known non-members.

    Beyond the paper (DESIGN.md): Zarifzadeh et al. 2024. :meth:`fit` reads the
    reference (shadow) models' ``p_y`` **on the target samples**, their ``p_y``
    on the population and the target's ``p_y`` on the population
    (:class:`ReferenceSignals`), and computes the offline marginals and the
    sorted population ratios (:func:`rmia_fit`); :meth:`score` counts
    (:func:`rmia_count`), so ``fit(...).score(t)`` equals :func:`rmia_scores`.

    Attributes:
        a: Offline coefficient (default 0.3, Privacy Meter's default).
        gamma: Pairwise likelihood-ratio threshold (default 1).
        beta: Hard decision: member iff the score (fraction of the population
            dominated) is at least ``beta``; sets ``threshold``.
    """

    name: ClassVar[str] = "rmia"
    title: ClassVar[str] = "RMIA"
    family: ClassVar[str] = "reference"
    uses: ClassVar[frozenset[str]] = frozenset({"references"})

    a: float = 0.3
    gamma: float = 1.0
    beta: float = 0.5
    references_: ReferenceSignals | None = field(default=None, init=False, repr=False)
    marginal_x_: np.ndarray | None = field(default=None, init=False, repr=False)
    ratio_z_: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_rmia_options(self.a, self.gamma)
        self.threshold = float(self.beta)

    def fit(
        self, shadows: AttackInputs | None = None, references: ReferenceSignals | None = None
    ) -> RMIA:
        """Offline marginals of the target samples and sorted population ratios.

        Args:
            shadows: not used.
            references: the reference models on the target samples and on the
                population, and the target model on the population.
        """
        refs = self._need("ReferenceSignals", references)
        r, pt, pr = reference_arrays(refs)
        self.marginal_x_, self.ratio_z_ = rmia_fit(
            r, pt, pr, a=self.a, reference_in=np.ascontiguousarray(refs.is_in.T)
        )
        self.references_ = refs
        return self

    def score_values(self, target: AttackInputs) -> np.ndarray:
        """RMIA scores of the target model on the reference samples, ``(N,)`` in ``[0, 1]``."""
        fitted = (self.references_, self.marginal_x_, self.ratio_z_)
        return fitted_scores(self, fitted, target, self.gamma)


def reference_arrays(refs: ReferenceSignals) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernels' ``(reference_py (S, N), population_target_py (Z,), population_reference_py
    (S, Z))`` of ``refs``, checked (finite probabilities, a non-empty population)."""
    r = _check_py("reference p_y", np.ascontiguousarray(refs.p_y.T), 2)
    pr = _check_py("population_reference_py", np.ascontiguousarray(refs.population_p_y.T), 2)
    pt = _check_py("population_target_py", refs.target_population_p_y, 1)
    if pt.shape[0] == 0:
        raise ValueError("RMIA needs a non-empty population of known non-members")
    return r, pt, pr


def fitted_scores(
    attack: Attack,
    fitted: tuple[ReferenceSignals | None, np.ndarray | None, np.ndarray | None],
    target: AttackInputs,
    gamma: float,
) -> np.ndarray:
    """A fitted RMIA's (offline or online) scores of ``target``: :func:`rmia_count`.

    Args:
        attack: the attack, for its name and title in error messages.
        fitted: its ``(references, marginal_x, ratio_z)``; ``None`` entries = not fitted.
        target: the target model on the references' samples (checked by ``sample_ids``).
        gamma: the pairwise likelihood-ratio threshold.
    """
    refs, marginal_x, ratio_z = fitted
    if refs is None or marginal_x is None or ratio_z is None:
        raise ValueError(f"{attack.title} is not fitted; call fit(None, references) first")
    refs.check_target(target, attack.name)
    t = _check_py("target_py", target.p_y, 1)
    return rmia_count(t / np.maximum(marginal_x, DIVISION_FLOOR), ratio_z, gamma)
