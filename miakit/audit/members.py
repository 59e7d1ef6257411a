"""Who the audited model trained on: a members file, or the paper's split (issue 15, item 3).

The audit scores the model on its members and on as many samples it never saw. With
``--members FILE`` the members are the file's indices into the dataset's pool (a text
file of integers, or a ``.npy`` integer array), and the non-members are drawn, with the
audit's seed, from the pool samples that are neither members nor the shadow models'
data of the paper's split (so no shadow ever trained on a target). Without a file the
audit assumes the paper's split (PAPER.md, "Data and splits") at the stated seed: the
victim's train set are the members and its test set the non-members, in the split's
order: the samples and order in which the pipeline scores its own victim. With a file,
members and non-members are kept equally many (the larger side is subsampled at the
seed), so the balanced accuracy and AUC read as the paper's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from miakit.splits import Splits

__all__ = ["Membership", "membership", "read_index_file"]


@dataclass(frozen=True, eq=False)
class Membership:
    """The audit's targets.

    Attributes:
        members: pool indices in the audited model's training set.
        nonmembers: pool indices it did not train on, as many as ``members``.
        source: in words, where they came from (for the report).
    """

    members: np.ndarray
    nonmembers: np.ndarray
    source: str

    @property
    def targets(self) -> np.ndarray:
        """Members then non-members, the order of :attr:`labels`."""
        return np.concatenate([self.members, self.nonmembers])

    @property
    def labels(self) -> np.ndarray:
        """1 for a member, 0 for a non-member, aligned with :attr:`targets`."""
        sizes = [len(self.members), len(self.nonmembers)]
        return np.repeat(np.array([1, 0], dtype=np.int64), sizes)


def read_index_file(path: str | Path, pool_size: int) -> np.ndarray:
    """The training indices a members file lists, checked against the pool's size.

    A ``.npy`` file holds a 1-D integer array (read with ``allow_pickle=False``); any other
    file is text: integers separated by spaces, commas or new lines, ``#`` starting a
    comment.

    Raises:
        ValueError: the file is missing, holds something other than integers, is empty,
            repeats an index, or names one outside ``0 .. pool_size - 1``; the message
            names the file and the first offending entry.
    """
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"--members {file}: no such file")
    if file.suffix == ".npy":
        try:
            arr = np.load(file, allow_pickle=False)
        except ValueError as err:
            raise ValueError(f"--members {file}: not a plain .npy integer array ({err})") from None
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"--members {file}: needs a 1-D integer array, got {arr.dtype} of shape {arr.shape}"
            )
        idx = arr.astype(np.int64)
    else:
        words = []
        for number, line in enumerate(file.read_text().splitlines(), start=1):
            for word in re.split(r"[\s,]+", line.split("#", 1)[0].strip()):
                if word:
                    words.append((number, word))
        bad = next(((n, w) for n, w in words if not re.fullmatch(r"\d+", w)), None)
        if bad is not None:
            raise ValueError(
                f"--members {file} line {bad[0]}: {bad[1]!r} is not a sample index (a "
                "non-negative integer)"
            )
        idx = np.array([int(w) for _, w in words], dtype=np.int64)
    if idx.size == 0:
        raise ValueError(f"--members {file}: lists no index")
    outside = idx[(idx < 0) | (idx >= pool_size)]
    if outside.size:
        raise ValueError(
            f"--members {file}: index {int(outside[0])} is outside the pool of {pool_size} "
            f"samples (0 .. {pool_size - 1}); {outside.size} such"
        )
    values, counts = np.unique(idx, return_counts=True)
    if (counts > 1).any():
        raise ValueError(
            f"--members {file}: index {int(values[counts > 1][0])} is listed "
            f"{int(counts.max())} times; list each member once"
        )
    return idx


def membership(
    splits: Splits, pool_size: int, members_file: str | Path | None = None, *, seed: int = 7
) -> Membership:
    """The audit's members and non-members (see the module docstring).

    Args:
        splits: the paper's split of the pool at the audit's seed (its shadows' data are
            never targets).
        pool_size: the number of samples in the dataset's pool.
        members_file: the audited model's training indices, or None for the paper's split.
        seed: draws the non-members (and subsamples the larger side).

    Raises:
        ValueError: a bad members file, or no pool sample left to serve as non-member.
    """
    rng = np.random.default_rng(seed)
    if members_file is None:
        members, nonmembers = splits.victim.train, splits.victim.test
        source = f"the paper's split at seed {seed} (victim train / test)"
        return Membership(members.astype(np.int64), nonmembers.astype(np.int64), source)
    members = read_index_file(members_file, pool_size)
    shadow = np.concatenate([np.concatenate([s.train, s.dev, s.test]) for s in splits.shadows])
    free = np.setdiff1d(np.arange(pool_size), np.concatenate([members, shadow]))
    if free.size == 0:
        raise ValueError(
            f"--members {members_file}: no pool sample is left to serve as a non-member "
            "(every one is a member or a shadow model's); the audit needs held-out samples"
        )
    nonmembers = free
    source = f"{Path(members_file).name} ({len(members)} members)"
    n = min(len(members), len(nonmembers))
    if len(members) > n:
        members = np.sort(rng.choice(members, n, replace=False))
        source += f", {n} of them drawn at seed {seed} to match the non-members"
    if len(nonmembers) > n:
        nonmembers = np.sort(rng.choice(nonmembers, n, replace=False))
    return Membership(np.asarray(members, np.int64), np.asarray(nonmembers, np.int64), source)
