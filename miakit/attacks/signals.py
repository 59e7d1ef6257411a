"""Per-sample signals of a model's posteriors, shared by the attacks.

- The metric-based attacks' signals (PAPER.md, "The eight existing attacks",
  1-5): :func:`correctness`, :func:`true_class_confidence` (Conf's and the paper's
  Top1-conf's), :func:`entropy`, :func:`modified_entropy`, and :func:`top1_confidence`
  (the largest posterior, Max-conf's); :mod:`miakit.attacks.threshold` puts
  thresholds on them.
- LiRA's logit-scaled confidence (:func:`logit_confidence`) and the OUT mean
  (:func:`out_mean`) that the LiRA and RMIA kernels read.

Pure numpy over arrays; :mod:`miakit.attacks.base` builds :class:`AttackInputs` and
:class:`ReferenceSignals` on them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miakit._util import LOG_CLIP, safe_log, true_class_prob

__all__ = [
    "check_sample_ids",
    "correctness",
    "entropy",
    "logit_confidence",
    "modified_entropy",
    "out_mean",
    "top1_confidence",
    "true_class_confidence",
]

# --------------------------------------------------------------------------------------------------
# the metric-based attacks' signals (PAPER.md, "The eight existing attacks", 1-5)
# --------------------------------------------------------------------------------------------------


def _rows(posteriors: np.ndarray) -> np.ndarray:
    p = np.asarray(posteriors, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"posteriors must be (N, K), got shape {p.shape}")
    return p


def _labels(labels: np.ndarray, p: np.ndarray) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (p.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"labels must be ({p.shape[0]},) integer class indices matching posteriors, "
            f"got shape {y.shape} and dtype {y.dtype}"
        )
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError(f"labels must lie in [0, {p.shape[1]}), got [{y.min()}, {y.max()}]")
    return y.astype(np.int64)


def correctness(posteriors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Whether the model classifies each sample correctly, ``argmax_c p_c == y``, as 0/1.

    The Gap attack's signal (PAPER.md, "The eight existing attacks", 1). An
    argmax tie goes to the lowest class index (``numpy.argmax``).
    """
    p = _rows(posteriors)
    y = _labels(labels, p)
    return (p.argmax(axis=1) == y).astype(np.int64)


def true_class_confidence(posteriors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The ground-truth-class probability ``p_y`` (Conf's signal; PAPER.md, attack 2)."""
    p = _rows(posteriors)
    return true_class_prob(p, _labels(labels, p))


def entropy(posteriors: np.ndarray) -> np.ndarray:
    """Prediction entropy ``-sum_c p_c log p_c`` in nats (Xent's signal; PAPER.md, attack 3).

    ``log`` is applied to ``max(p, LOG_CLIP)``, so ``p_c = 0`` contributes 0.
    """
    p = _rows(posteriors)
    return -(p * safe_log(p)).sum(axis=1)


def modified_entropy(posteriors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Song & Mittal's (2021) modified entropy (Mentr's signal; PAPER.md, attack 4).

    ``Mentr(p, y) = -(1 - p_y) log p_y - sum_{c != y} p_c log(1 - p_c)``, in nats.
    It is 0 for a confident correct prediction (``p_y = 1``) and grows both
    with uncertainty and with confident mistakes, which plain entropy cannot
    tell apart from confident correct predictions. The arguments of ``log``
    are clipped below at ``LOG_CLIP`` (as in Song & Mittal's code) so
    ``p_y = 0`` or ``p_c = 1`` give a large finite value, never ``inf``.
    """
    p = _rows(posteriors)
    y = _labels(labels, p)
    rows = np.arange(p.shape[0])
    terms = -p * safe_log(1.0 - p)  # the c != y terms
    p_y = p[rows, y]
    terms[rows, y] = -(1.0 - p_y) * safe_log(p_y)
    return terms.sum(axis=1)


def top1_confidence(posteriors: np.ndarray) -> np.ndarray:
    """The largest posterior ``max_c p_c``: Max-conf's signal.

    Not the paper's Top1-conf signal: the authors' Top1-conf thresholds ``p_y``
    (:func:`true_class_confidence`; PAPER.md, "The eight existing attacks", 5).
    """
    return _rows(posteriors).max(axis=1)


# --------------------------------------------------------------------------------------------------
# LiRA's and RMIA's signals
# --------------------------------------------------------------------------------------------------


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
