"""Per-sample signals shared by several attacks: LiRA's logit-scaled confidence, the OUT mean.

Pure numpy over arrays; :mod:`miakit.attacks.base` builds :class:`AttackInputs` and
:class:`ReferenceSignals` on them, and the LiRA and RMIA kernels read them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miakit._util import LOG_CLIP, safe_log

__all__ = ["check_sample_ids", "logit_confidence", "out_mean"]


def logit_confidence(
    values: np.ndarray, labels: np.ndarray, *, from_logits: bool = False, eps: float = LOG_CLIP
) -> np.ndarray:
    """LiRA's logit-scaled confidence ``phi = log(p_y / (1 - p_y))`` per sample.

    Carlini et al. 2022. Computed in float64 without catastrophic cancellation
    near ``p_y = 1``:

    - from logits ``z``: ``phi = z_y - logsumexp_{c != y} z_c`` (exact, never saturates);
    - from posteriors ``p``: ``phi = log(max(p_y, eps)) - log(max(sum_{c != y} p_c, eps))``
      (summing the other classes instead of ``1 - p_y``; clipping bounds ``|phi|``).

    Args:
        values: ``(N, K)`` posteriors, or logits when ``from_logits``.
        labels: ``(N,)`` ground-truth classes.
        from_logits: Whether ``values`` are pre-softmax logits.
        eps: Clipping floor for the posterior form (default ``_util.LOG_CLIP``).

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
    if eps == LOG_CLIP:
        return safe_log(own) - safe_log(rest)
    return np.log(np.maximum(own, eps)) - np.log(np.maximum(rest, eps))


def out_mean(
    values: np.ndarray, is_in: np.ndarray | None = None, *, attack: str = ""
) -> np.ndarray:
    """Per sample, the mean of ``values`` over the reference models that did not train on it.

    The one copy of the OUT mean that offline LiRA (``mu_out``) and offline RMIA
    (``Pr_OUT(x)``) share. Models are rows (the kernels' ``(S, N)`` orientation).

    Args:
        values: ``(S, N)`` float64 signal of each reference model on each sample.
        is_in: ``(S, N)`` bool, True where reference ``s`` trained on sample ``n``
            (left out); ``None`` = every value is OUT (the plain mean).
        attack: the attack's name, for the error message.

    Returns:
        ``(N,)`` float64 means.

    Raises:
        ValueError: a sample has no OUT reference model.
    """
    if is_in is None:
        return values.mean(axis=0)
    out = ~is_in
    count = out.sum(axis=0)
    if (count == 0).any():
        raise ValueError(
            f"{int((count == 0).sum())} of {values.shape[1]} samples have no OUT reference model; "
            f"offline {attack or 'the attack'} needs at least one reference model that did not "
            "train on each sample"
        )
    return np.where(out, values, 0.0).sum(axis=0) / count


def check_sample_ids(ids: Any, n: int, name: str = "sample_ids") -> np.ndarray:
    """``ids`` as ``(n,)`` integer pool indices, else a ``ValueError`` naming ``name``."""
    a = np.asarray(ids)
    if a.shape != (n,) or (a.size and not np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name} must be ({n},) integer pool indices, got {a.shape} {a.dtype}")
    return a
