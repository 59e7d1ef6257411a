"""RMIA in its online form: ``Pr(x)`` over IN and OUT reference models (beyond the paper).

Zarifzadeh, Liu, Mahloujifar and Shokri, "Low-Cost High-Power Membership Inference
Attacks" (ICML 2024), online variant; beyond the paper (DESIGN.md, "Beyond the paper";
PAPER.md covers only the paper's own attacks). The score is offline RMIA's
(:mod:`miakit.attacks.rmia`): the fraction of population samples ``z`` with

    LR(x, z) = (p(x) / Pr(x)) / (p(z) / Pr(z)) >= gamma,

``p(.)`` the target model's ``p_y``. Online, the references were trained on random
halves of a candidate pool, so about half of them trained on each target sample, and
``Pr(x)`` is the plain mean of ``p_y`` over **all** references, IN and OUT: the paper's
estimate of ``Pr(x)`` over models trained with and without ``x``, which offline RMIA
approximates from OUT models with its coefficient ``a``. The population samples are
OUT for every reference, so ``Pr(z)`` is their mean too. The counting kernel
(:func:`~miakit.attacks.rmia.rmia_count`) is offline RMIA's.

The input is the same :class:`~miakit.attacks.base.ReferenceSignals` as offline
RMIA's; alignment is checked by ``sample_ids``.

Example:
    >>> refs = ReferenceSignals.from_inputs(on_target, on_pop, victim_on_pop)  # doctest: +SKIP
    >>> RMIAOnline().fit(None, refs).score(victim_inputs).scores  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from miakit.attacks.base import Attack, AttackInputs, ReferenceSignals
from miakit.attacks.rmia import (
    DIVISION_FLOOR,
    check_rmia_arrays,
    check_rmia_options,
    fitted_scores,
    reference_arrays,
    rmia_count,
)

__all__ = ["RMIAOnline", "rmia_online_fit", "rmia_online_scores"]


def rmia_online_scores(
    target_py: np.ndarray,
    reference_py: np.ndarray,
    population_target_py: np.ndarray,
    population_reference_py: np.ndarray,
    *,
    gamma: float = 1.0,
) -> np.ndarray:
    """Online RMIA scores (Zarifzadeh et al. 2024, online): :func:`rmia_scores`'s count
    with ``Pr(x)`` the mean ``p_y`` over **all** reference models, IN and OUT alike.

    The references are trained on random halves of a pool, so about half of them
    trained on each target sample; no offline correction ``a`` is needed. The
    population samples are OUT for every reference, so ``Pr(z)`` is their plain mean.

    Args:
        target_py: ``(N,)`` target model's ``p_y`` on the samples to score.
        reference_py: ``(S, N)`` reference models' ``p_y`` on those samples, IN or OUT.
        population_target_py: ``(Z,)`` target model's ``p_y`` on the population.
        population_reference_py: ``(S, Z)`` reference models' ``p_y`` on the population.
        gamma: Likelihood-ratio threshold, ``> 0``.

    Returns:
        ``(N,)`` float64 scores in ``[0, 1]``, higher = more likely a member.

    Raises:
        ValueError: On shape mismatches, invalid probabilities, ``gamma <= 0`` or an
            empty population.
    """
    t, r, pt, pr = check_rmia_arrays(
        target_py, reference_py, population_target_py, population_reference_py
    )
    check_rmia_options(1.0, gamma)
    marginal_x, ratio_z = rmia_online_fit(r, pt, pr)
    return rmia_count(t / np.maximum(marginal_x, DIVISION_FLOOR), ratio_z, gamma)


def rmia_online_fit(
    reference_py: np.ndarray, population_target_py: np.ndarray, population_reference_py: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """What online RMIA computes before scoring: ``Pr(x)`` over all references, sorted ratios.

    Arrays as in :func:`rmia_online_scores` (checked there or by :meth:`RMIAOnline.fit`).

    Returns:
        ``(marginal_x, ratio_z)``: ``(N,)`` mean ``p_y`` of the references on the target
        samples and ``(Z,)`` sorted ``p(z) / Pr(z)`` of the population.
    """
    marginal_x = np.asarray(reference_py, dtype=np.float64).mean(axis=0)
    ratio_z = np.sort(
        population_target_py
        / np.maximum(np.asarray(population_reference_py).mean(axis=0), DIVISION_FLOOR)
    )
    return marginal_x, ratio_z


@dataclass
class RMIAOnline(Attack):
    """Online RMIA over reference models that trained on about half of the target samples.

    Beyond the paper (DESIGN.md): Zarifzadeh et al. 2024, online. The same
    :class:`ReferenceSignals` as :class:`RMIA`'s; :meth:`fit` takes ``Pr(x)`` as the
    mean ``p_y`` over **all** references, IN and OUT (``is_in`` is not read), and
    sorts the population ratios (:func:`rmia_online_fit`); :meth:`score` counts
    (:func:`rmia_count`), so ``fit(...).score(t)`` equals :func:`rmia_online_scores`.

    Attributes:
        gamma: Pairwise likelihood-ratio threshold (default 1).
        beta: Hard decision: member iff the score (fraction of the population
            dominated) is at least ``beta``; sets ``threshold``.
    """

    name: ClassVar[str] = "rmia_online"
    title: ClassVar[str] = "RMIA (online)"
    family: ClassVar[str] = "reference"
    uses: ClassVar[frozenset[str]] = frozenset({"references", "reference_models"})

    gamma: float = 1.0
    beta: float = 0.5
    references_: ReferenceSignals | None = field(default=None, init=False, repr=False)
    marginal_x_: np.ndarray | None = field(default=None, init=False, repr=False)
    ratio_z_: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_rmia_options(1.0, self.gamma)
        self.threshold = float(self.beta)

    def fit(
        self, shadows: AttackInputs | None = None, references: ReferenceSignals | None = None
    ) -> RMIAOnline:
        """Online marginals of the target samples and sorted population ratios.

        Args:
            shadows: not used.
            references: the reference models on the target samples (IN and OUT) and on
                the population, and the target model on the population.
        """
        refs = self._need("ReferenceSignals", references)
        self.marginal_x_, self.ratio_z_ = rmia_online_fit(*reference_arrays(refs))
        self.references_ = refs
        return self

    def score_values(self, target: AttackInputs) -> np.ndarray:
        """Online RMIA scores of the target model on the reference samples, ``(N,)``."""
        fitted = (self.references_, self.marginal_x_, self.ratio_z_)
        return fitted_scores(self, fitted, target, self.gamma)
