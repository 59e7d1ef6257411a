"""What :func:`miakit.train.fit_many` trains on: :class:`ModelData` and :func:`batch_groups`.

Models trained together share one pool of samples on the device and differ in which
rows they train and stop on (index matrices); models whose sets differ in size train
in separate groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from miakit.data import Data

__all__ = ["ModelData", "batch_groups", "random_draws"]


def batch_groups(sizes: Sequence[tuple[int, ...]]) -> list[list[int]]:
    """Indices grouped by equal size signatures (e.g. ``(n_train, n_dev)``), in first-seen order."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, sig in enumerate(sizes):
        groups.setdefault(tuple(sig), []).append(i)
    return list(groups.values())


@dataclass(frozen=True)
class ModelData:
    """Each model's training and dev rows of one shared pool, as index matrices.

    The pool sits on the device once, however many models train on it (64 reference
    models of CIFAR-10 would otherwise hold 64 copies of their training sets).

    Attributes:
        pool: the samples all models draw from.
        train: ``(N, n)`` int64 pool rows of each model's training set (one row per model).
        dev: ``(N, m)`` int64 pool rows of each model's dev set (early stopping).
    """

    pool: Data
    train: Tensor
    dev: Tensor

    def __post_init__(self) -> None:
        for name in ("train", "dev"):
            idx = torch.as_tensor(getattr(self, name))
            if idx.dim() != 2 or idx.shape[1] == 0 or idx.dtype != torch.int64:
                raise ValueError(
                    f"ModelData.{name} must be an (N, n) int64 index matrix with n >= 1 "
                    f"(one row per model; group models by set size), got {tuple(idx.shape)} "
                    f"{idx.dtype}"
                )
            if bool((idx < 0).any()) or bool((idx >= len(self.pool)).any()):
                raise ValueError(
                    f"ModelData.{name} holds rows outside the pool of {len(self.pool)}"
                )
            object.__setattr__(self, name, idx)
        if self.train.shape[0] != self.dev.shape[0]:
            raise ValueError(
                f"ModelData needs one train and one dev row per model, got "
                f"{self.train.shape[0]} and {self.dev.shape[0]}"
            )

    @classmethod
    def from_sets(cls, trains: Sequence[Data], devs: Sequence[Data]) -> ModelData:
        """Separate train and dev sets, pooled (each set its own rows)."""
        if not trains or len(trains) != len(devs):
            raise ValueError(
                f"fit_many needs one train set and one dev set per model, got {len(trains)} "
                f"and {len(devs)}"
            )
        for what, sets in (("train", trains), ("dev", devs)):
            sizes = sorted({len(d) for d in sets})
            if len(sizes) != 1 or sizes[0] == 0:
                raise ValueError(
                    f"fit_many needs non-empty {what} sets of one size, got sizes {sizes}; "
                    "group the models by data size (batch_groups) or train them with fit"
                )
        sets = [*trains, *devs]
        pool = Data(
            torch.cat([d.x for d in sets]), torch.cat([d.y for d in sets]), trains[0].num_classes
        )
        n, m, count = len(trains[0]), len(devs[0]), len(trains)
        rows = torch.arange(len(pool))
        train = rows[: n * count].view(count, n)
        return cls(pool, train, rows[n * count :].view(count, m))

    @property
    def num_models(self) -> int:
        return int(self.train.shape[0])

    def train_set(self, i: int) -> Data:
        """Model ``i``'s training set."""
        return self.pool.subset(self.train[i])

    def dev_set(self, i: int) -> Data:
        """Model ``i``'s dev set."""
        return self.pool.subset(self.dev[i])


def random_draws(
    pool: Data, count: int, n_train: int, n_dev: int, *, seed: int = 0
) -> tuple[list[Data], list[Data]]:
    """``count`` seeded random train and dev sets from ``pool`` (tests, benchmarks).

    Draw ``i`` is the first ``n_train`` and the next ``n_dev`` rows of the ``i``-th
    permutation of one generator seeded with ``seed``; a draw's two sets are disjoint.
    """
    gen = torch.Generator().manual_seed(seed)
    trains, devs = [], []
    for _ in range(count):
        perm = torch.randperm(len(pool), generator=gen)
        trains.append(pool.subset(perm[:n_train]))
        devs.append(pool.subset(perm[n_train : n_train + n_dev]))
    return trains, devs
