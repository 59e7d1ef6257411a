"""The paper's victim / shadow split of a dataset's pool (PAPER.md, "Data and splits").

The pool ``0..n-1`` (a dataset's official train and test parts, concatenated) is cut
50/50 into a victim half and a shadow half; each half is then cut into train (members),
dev (early stopping) and test (non-members). :func:`paper_splits` reproduces the
authors' chain of scikit-learn ``train_test_split`` calls index for index, and
:func:`split_sizes` gives the sizes by arithmetic alone.

This module works on indices only (numpy), so it imports no other part of miakit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "DEV_SIZE",
    "TEST_SIZE",
    "Split",
    "Splits",
    "paper_splits",
    "reference_split",
    "split_sizes",
]

#: Fraction of each half held out as test (non-members), PAPER.md "Data and splits".
TEST_SIZE = 0.45
#: Fraction of the rest held out as dev (early stopping), PAPER.md "Data and splits".
DEV_SIZE = 0.1818


def _check_int_array(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"Split.{name} must be a 1-D integer index array, got dtype {arr.dtype} and "
            f"shape {arr.shape}."
        )
    if arr.size and int(arr.min()) < 0:
        raise ValueError(f"Split.{name} has negative indices; indices point into the pool.")
    return arr.astype(np.int64, copy=False)


@dataclass(frozen=True, eq=False)
class Split:
    """One model's train / dev / test indices into the pool (PAPER.md, "Data and splits").

    For the victim, ``train`` are the members and ``test`` the non-members; ``dev`` is
    used for early stopping only. For a shadow model the same roles hold on its half.

    Attributes:
        train: int64 indices of the training set (members).
        dev: int64 indices of the dev set (early stopping).
        test: int64 indices of the test set (non-members).

    Raises:
        ValueError: If an array is not 1-D integer, or the three overlap / repeat.
    """

    train: np.ndarray
    dev: np.ndarray
    test: np.ndarray

    def __post_init__(self) -> None:
        parts = {k: _check_int_array(k, getattr(self, k)) for k in ("train", "dev", "test")}
        for key, arr in parts.items():
            object.__setattr__(self, key, arr)
        joined = np.concatenate(list(parts.values()))
        if np.unique(joined).size != joined.size:
            raise ValueError(
                "Split.train, Split.dev and Split.test must be disjoint and free of repeats; "
                "a sample cannot be both a member and a non-member."
            )

    @property
    def members(self) -> np.ndarray:
        """The training indices (members), PAPER.md "Data and splits"."""
        return self.train

    @property
    def non_members(self) -> np.ndarray:
        """The test indices (non-members), PAPER.md "Data and splits"."""
        return self.test

    def sizes(self) -> tuple[int, int, int]:
        """``(len(train), len(dev), len(test))``."""
        return len(self.train), len(self.dev), len(self.test)

    def __repr__(self) -> str:
        train, dev, test = self.sizes()
        return f"Split(train={train}, dev={dev}, test={test})"


@dataclass(frozen=True, eq=False)
class Splits:
    """The victim's split and every shadow model's split (PAPER.md, "Data and splits").

    Attributes:
        victim: The victim model's split.
        shadows: One split per shadow model (they may overlap each other).
    """

    victim: Split
    shadows: tuple[Split, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "shadows", tuple(self.shadows))
        if not isinstance(self.victim, Split) or not all(
            isinstance(s, Split) for s in self.shadows
        ):
            raise TypeError("Splits.victim and every element of Splits.shadows must be Split.")
        if not self.shadows:
            raise ValueError("Splits needs at least one shadow split.")

    @property
    def num_shadows(self) -> int:
        """Number of shadow models."""
        return len(self.shadows)


def _train_test_split(a: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Exactly ``sklearn.model_selection.train_test_split(a, test_size=test_size,
    random_state=seed)`` (shuffled, no stratification): a fresh ``RandomState(seed)``
    permutes ``len(a)``; the first ``ceil(test_size * n)`` positions are the test part,
    the rest (in permuted order) the train part."""
    n = len(a)
    n_test = math.ceil(test_size * n)
    perm = np.random.RandomState(seed).permutation(n)
    return a[perm[n_test:]], a[perm[:n_test]]


def _half_sizes(h: int) -> tuple[int, int, int]:
    test = math.ceil(TEST_SIZE * h)
    rest = h - test
    dev = math.ceil(DEV_SIZE * rest)
    return rest - dev, dev, test


def split_sizes(n: int, *, half: Literal["victim", "shadow"] = "victim") -> tuple[int, int, int]:
    """``(train, dev, test)`` sizes of one half of a pool of ``n``, by arithmetic alone.

    The rule (PAPER.md, "Data and splits", with scikit-learn's rounding): the shadow half
    has ``ceil(n / 2)`` samples and the victim half the other ``floor(n / 2)``; in a half
    of ``h``: ``test = ceil(0.45 h)``, ``dev = ceil(0.1818 (h - test))``, ``train`` the
    rest. CIFAR-10 (n = 60000): 13500 / 3000 / 13500.

    Args:
        n: Pool size.
        half: ``"victim"`` or ``"shadow"`` (they differ by one sample when n is odd).

    Returns:
        ``(train, dev, test)``.
    """
    if half not in ("victim", "shadow"):
        raise ValueError(f"half must be 'victim' or 'shadow', got {half!r}.")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}.")
    shadow = math.ceil(0.5 * int(n))
    return _half_sizes(shadow if half == "shadow" else int(n) - shadow)


_MIN_POOL = next(n for n in range(2, 1000) if min(split_sizes(n)) >= 1)


def paper_splits(n: int, *, seed: int = 7, num_shadows: int = 5) -> Splits:
    """The paper's victim / shadow data split (PAPER.md, "Data and splits").

    The pool ``0..n-1`` is split 50/50 (seed ``seed``) into a victim half and a shadow
    half. The victim half is split once with ``seed``: 45% test, then 18.18% of the rest
    dev, the remainder train. The shadow half is re-split the same way for each shadow
    ``i`` with seed ``seed + i``, so shadow splits overlap each other but never touch the
    victim half. This reproduces the authors' chain of scikit-learn ``train_test_split``
    calls index for index (ceil rounding of the test part; see :func:`split_sizes`).

    Args:
        n: Pool size (e.g. ``len(load_dataset("cifar10"))`` = 60000).
        seed: Split seed (the paper uses 7); shadows use ``seed .. seed + num_shadows - 1``.
        num_shadows: Number of shadow models (the paper uses 5).

    Returns:
        :class:`Splits` of int64 index arrays into the pool.

    Raises:
        ValueError: If ``n`` is too small for non-empty parts, the seed is negative or
            too large for numpy's ``RandomState``, or ``num_shadows < 1``.

    Example:
        >>> s = paper_splits(60000)
        >>> s.victim.sizes()
        (13500, 3000, 13500)
    """
    for label, value in (("n", n), ("seed", seed), ("num_shadows", num_shadows)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{label} must be an int, got {value!r}.")
    n, seed, num_shadows = int(n), int(seed), int(num_shadows)
    if n < _MIN_POOL:
        raise ValueError(
            f"a pool of n={n} is too small to split into non-empty victim and shadow "
            f"train/dev/test parts; n must be at least {_MIN_POOL}."
        )
    if num_shadows < 1:
        raise ValueError(f"num_shadows must be at least 1, got {num_shadows}.")
    if seed < 0 or seed + num_shadows - 1 >= 2**32:
        raise ValueError(
            f"seed must satisfy 0 <= seed and seed + num_shadows - 1 < 2**32 (numpy "
            f"RandomState seeds), got seed={seed}, num_shadows={num_shadows}."
        )

    def split_half(half: np.ndarray, s: int) -> Split:
        rest, test = _train_test_split(half, TEST_SIZE, s)
        train, dev = _train_test_split(rest, DEV_SIZE, s)
        return Split(train=train, dev=dev, test=test)

    victim_half, shadow_half = _train_test_split(np.arange(n, dtype=np.int64), 0.5, seed)
    return Splits(
        victim=split_half(victim_half, seed),
        shadows=tuple(split_half(shadow_half, seed + i) for i in range(num_shadows)),
    )


def reference_split(victim: Split, index: int, *, seed: int = 7) -> Split:
    """Reference model ``index``'s split for online LiRA / RMIA (beyond the paper).

    Carlini et al. (2022) train each reference model on a random half of a pool that
    holds the target samples, so every target sample is IN for about half of the
    references. Here the pool is the victim's candidates, its members and non-members
    (``victim.train`` and ``victim.test``), and the halves come in complementary pairs:
    references ``2j`` and ``2j + 1`` split one random permutation (drawn by
    ``numpy.random.default_rng([seed, j])``) between them, ``2j`` training on the first
    ``len(victim.train)`` candidates (the victim's training-set size) and ``2j + 1`` on
    the rest. So with ``2p`` references every target sample is IN for exactly ``p`` and
    OUT for ``p`` (random halves leave a sample with no IN model with probability
    ``2**-S``), and each reference's ``test`` is its partner's ``train``. The ``dev``
    split (early stopping) is the victim's, so RMIA's population (the victim's dev)
    stays a non-member of every model. References trained on the shadow half alone
    would be OUT for every target sample and leave online LiRA no IN distribution.

    Args:
        victim: The victim's split.
        index: Which reference (0, 1, ...); reference ``i`` does not depend on how many
            there are.
        seed: The split seed.

    Returns:
        A :class:`Split` of pool indices, ``train`` and ``test`` sorted.
    """
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or index < 0:
        raise ValueError(f"index must be a non-negative int, got {index!r}.")
    candidates = np.sort(np.concatenate([victim.train, victim.test]))
    order = np.random.default_rng([int(seed), int(index) // 2]).permutation(len(candidates))
    k = len(victim.train)
    first, rest = np.sort(candidates[order[:k]]), np.sort(candidates[order[k:]])
    train, test = (first, rest) if index % 2 == 0 else (rest, first)
    return Split(train=train, dev=victim.dev.copy(), test=test)
