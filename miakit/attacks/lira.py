"""LiRA, the likelihood-ratio attack, in its offline form (beyond the paper).

Carlini et al., "Membership Inference Attacks From First Principles" (IEEE S&P
2022). Per sample ``x``, the attack looks at the *logit-scaled confidence*
``phi = log(p_y / (1 - p_y))`` that each reference (shadow) model gives ``x``,
fits a Gaussian ``N(mu_out(x), sigma_out(x)^2)`` to the values of the
reference models that did **not** train on ``x`` (OUT), and asks how far
above that OUT distribution the target model's ``phi`` lies. The offline
variant needs no IN models, which is what the kit's shadows give on victim
samples (they never train on the victim half; DESIGN.md, "Beyond the paper").

The score is the one-sided test statistic ``-ln P_OUT(phi >= phi_target)``
(in nats; ``ln 2`` at the OUT mean, growing like ``z^2 / 2`` above it). It
ranks samples exactly like the z-score ``(phi_target - mu_out) / sigma_out``
but reads as a p-value: ``score >= -ln(alpha)`` rejects "non-member" at level
``alpha``.

Example:
    >>> ref = [shadow_inputs_on_victim_samples_0, ...]  # doctest: +SKIP
    >>> scores = LiRA(ref).score(victim_inputs)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from miakit.attacks.base import Attack, AttackInputs

__all__ = ["LiRA", "MIN_STD", "inputs_phi", "lira_offline", "logit_confidence"]

#: Floor on the OUT standard deviation, so identical reference values give finite scores.
MIN_STD = 1e-8
#: Smallest probability used in the posterior form of phi (clipping keeps phi finite, |phi| <= 69).
_EPS = 1e-30


def logit_confidence(
    values: np.ndarray, labels: np.ndarray, *, from_logits: bool = False, eps: float = _EPS
) -> np.ndarray:
    """LiRA's logit-scaled confidence ``phi = log(p_y / (1 - p_y))`` per sample.

    Computed in float64 without catastrophic cancellation near ``p_y = 1``:

    - from logits ``z``: ``phi = z_y - logsumexp_{c != y} z_c`` (exact, never saturates);
    - from posteriors ``p``: ``phi = log(max(p_y, eps)) - log(max(sum_{c != y} p_c, eps))``
      (summing the other classes instead of ``1 - p_y``; clipping bounds ``|phi|``).

    Args:
        values: ``(N, K)`` posteriors, or logits when ``from_logits``.
        labels: ``(N,)`` ground-truth classes.
        from_logits: Whether ``values`` are pre-softmax logits.
        eps: Clipping floor for the posterior form.

    Returns:
        ``(N,)`` float64 array of ``phi``.

    Raises:
        ValueError: If shapes disagree or there are fewer than two classes.
    """
    v = np.asarray(values, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if v.ndim != 2 or y.shape != (v.shape[0],):
        raise ValueError(f"need values (N, K) and labels (N,), got {v.shape} and {y.shape}")
    if v.shape[1] < 2:
        raise ValueError(f"phi = log(p_y / (1 - p_y)) needs at least 2 classes, got {v.shape[1]}")
    rows = np.arange(v.shape[0])
    own = v[rows, y]
    if from_logits:
        others = v.copy()
        others[rows, y] = -np.inf
        top = others.max(axis=1)
        lse = top + np.log(np.exp(others - top[:, None]).sum(axis=1))
        return own - lse
    # Sum the other classes directly: 1 - p_y loses all precision as p_y -> 1.
    others = v.copy()
    others[rows, y] = 0.0
    rest = others.sum(axis=1)
    return np.log(np.maximum(own, eps)) - np.log(np.maximum(rest, eps))


def inputs_phi(inputs: AttackInputs, *, use_logits: bool | None = None) -> np.ndarray:
    """:func:`logit_confidence` of one model's signals (logits when present).

    Args:
        inputs: The model's signals on a set of samples.
        use_logits: Force (``True``) or forbid (``False``) the logits form;
            ``None`` uses logits when ``inputs.logits`` is set.
    """
    if use_logits is None:
        use_logits = inputs.logits is not None
    if use_logits:
        if inputs.logits is None:
            raise ValueError("use_logits=True but these AttackInputs have logits=None")
        return logit_confidence(inputs.logits, inputs.labels, from_logits=True)
    return logit_confidence(inputs.posteriors, inputs.labels)


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
    if not (np.isfinite(t).all() and np.isfinite(r).all()):
        raise ValueError("phi values must be finite; compute them with logit_confidence")
    if reference_in is None:
        out = np.ones(r.shape, dtype=bool)
    else:
        out = ~np.asarray(reference_in, dtype=bool)
        if out.shape != r.shape:
            raise ValueError(f"reference_in must have shape {r.shape} like reference_phi")
    count = out.sum(axis=0)
    if (count == 0).any():
        raise ValueError(
            f"{int((count == 0).sum())} of {t.shape[0]} samples have no OUT reference model; "
            "offline LiRA needs at least one reference model that did not train on each sample"
        )
    mu = np.where(out, r, 0.0).sum(axis=0) / count
    sq = np.where(out, (r - mu) ** 2, 0.0)
    if fix_variance:
        dof = int(count.sum() - count.shape[0])
        if dof > 0:
            std = math.sqrt(float(sq.sum()) / dof)
        else:
            std = float(r[out].std())
    else:
        if (count < 2).any():
            raise ValueError(
                "per-sample variance (fix_variance=False) needs at least 2 OUT reference values "
                f"per sample, but {int((count < 2).sum())} samples have fewer; use "
                "fix_variance=True or more reference models"
            )
        std = np.sqrt(sq.sum(axis=0) / (count - 1))
    z = (t - mu) / np.maximum(std, MIN_STD)
    return -torch.special.log_ndtr(torch.from_numpy(-z)).numpy()


def _reference_matrix(
    reference: Sequence[AttackInputs] | np.ndarray,
) -> tuple[np.ndarray | None, list[AttackInputs] | None]:
    if isinstance(reference, np.ndarray):
        if reference.ndim != 2:
            raise ValueError(f"a reference matrix must be (S, N), got shape {reference.shape}")
        return reference, None
    refs = list(reference)
    if not refs or not all(isinstance(x, AttackInputs) for x in refs):
        raise ValueError(
            "reference must be an (S, N) array or a non-empty list of AttackInputs, one per "
            "reference model, each on the target samples"
        )
    n = refs[0].num_samples
    for i, ref in enumerate(refs):
        if ref.num_samples != n or not np.array_equal(ref.labels, refs[0].labels):
            raise ValueError(
                f"reference model {i} was evaluated on different samples (sizes or labels "
                "differ); every reference must cover the same target samples in the same order"
            )
    return None, refs


def _reference_in(refs: list[AttackInputs] | None, given: np.ndarray | None) -> np.ndarray | None:
    """The (S, N) IN matrix: as given, else from the references' membership, else all OUT."""
    if given is not None:
        return np.asarray(given, dtype=bool)
    if refs is not None and all(r.membership is not None for r in refs):
        return np.stack([r.require_membership() for r in refs]).astype(bool)
    return None


@dataclass
class LiRA(Attack):
    """Offline LiRA over reference models' signals on the target samples.

    Beyond the paper (DESIGN.md): Carlini et al. 2022, offline variant,
    scored by :func:`lira_offline`. The reference models are the kit's shadow
    models, evaluated **on the target samples** (the victim's members and
    non-members), so nothing is fitted on pooled shadow data: :meth:`fit` only
    checks and returns ``self``.

    Attributes:
        reference: One :class:`AttackInputs` per reference model on the target
            samples (same order; ``membership`` = whether that reference
            trained on each sample), or an ``(S, N)`` array of ``phi`` already
            computed with :func:`logit_confidence`.
        reference_in: ``(S, N)`` bool IN matrix; overrides the references'
            ``membership``; ``None`` and no membership = all OUT.
        fix_variance: Global OUT variance (default; right for few shadows).
        alpha: Level of the hard decision: member iff the one-sided p-value is
            at most ``alpha``, i.e. ``threshold = -ln(alpha)``. The default 0.5
            means "above the OUT mean"; AUC and TPR at low FPR do not depend on it.
    """

    name: ClassVar[str] = "lira"

    reference: Sequence[AttackInputs] | np.ndarray = field(repr=False, compare=False)
    reference_in: np.ndarray | None = field(default=None, repr=False, compare=False)
    fix_variance: bool = True
    alpha: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha must lie in (0, 1], got {self.alpha}")
        self._phi, self._refs = _reference_matrix(self.reference)
        self.threshold = -math.log(self.alpha)

    @property
    def num_references(self) -> int:
        """S, the number of reference models."""
        return len(self._refs) if self._refs is not None else int(self._phi.shape[0])

    def fit(self, shadow: AttackInputs | None = None) -> LiRA:
        """No training: LiRA's reference signals are given at construction. Returns ``self``."""
        return self

    def score(self, target: AttackInputs) -> np.ndarray:
        """Offline LiRA scores of the target model on the reference samples, ``(N,)``.

        ``phi`` uses logits when the target and every reference carry them,
        posteriors otherwise (the same form for all models).
        """
        if self._refs is not None:
            n = self._refs[0].num_samples
            if target.num_samples != n or not np.array_equal(target.labels, self._refs[0].labels):
                raise ValueError(
                    f"the target has {target.num_samples} samples but the references cover {n} "
                    "(or the labels differ): score the samples the references were evaluated on"
                )
            use_logits = target.logits is not None and all(r.logits is not None for r in self._refs)
            ref_phi = np.stack([inputs_phi(r, use_logits=use_logits) for r in self._refs])
            target_phi = inputs_phi(target, use_logits=use_logits)
        else:
            ref_phi = self._phi
            if target.num_samples != ref_phi.shape[1]:
                raise ValueError(
                    f"the target has {target.num_samples} samples but the reference matrix "
                    f"covers {ref_phi.shape[1]}: score the samples the references were evaluated on"
                )
            target_phi = inputs_phi(target)
        return lira_offline(
            target_phi,
            ref_phi,
            _reference_in(self._refs, self.reference_in),
            fix_variance=self.fix_variance,
        )
