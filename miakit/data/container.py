"""The :class:`Data` container: a whole dataset (or part of one) held as tensors.

Every dataset is loaded whole, as the *pool* (PAPER.md, "Data and splits"), into one
:class:`Data`; a split's members or non-members are a :meth:`Data.subset` of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

__all__ = ["Data"]


@dataclass(frozen=True, eq=False, repr=False)
class Data:
    """A whole dataset (or a part of one) held as tensors, on any device.

    The kit keeps datasets of this size in device memory and indexes batches from the
    tensors rather than using a ``DataLoader`` (DESIGN.md, "Speed").

    Attributes:
        x: Inputs, float32: ``(N, C, H, W)`` images or ``(N, F)`` tabular rows / 1-D
            signals, already normalised (PAPER.md, "Data and splits").
        y: Ground-truth labels, int64, ``(N,)``, each in ``[0, num_classes)``.
        num_classes: Number of classes K.
        name: Dataset name, e.g. ``"cifar10"`` (informative only).

    Raises:
        TypeError: If ``x`` or ``y`` is not a tensor.
        ValueError: If dtypes, shapes, devices or label range disagree.

    Example:
        >>> d = Data(torch.zeros(4, 3), torch.tensor([0, 1, 1, 0]), num_classes=2)
        >>> len(d.subset(np.array([0, 2])))
        2
    """

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or not isinstance(self.y, torch.Tensor):
            raise TypeError(
                f"Data.x and Data.y must be torch tensors, got {type(self.x).__name__} and "
                f"{type(self.y).__name__}; convert numpy arrays with torch.from_numpy(...)."
            )
        if self.x.dtype != torch.float32:
            raise ValueError(
                f"Data.x must be float32, got {self.x.dtype}; convert it with x.float()."
            )
        if self.y.dtype != torch.int64:
            raise ValueError(f"Data.y must be int64, got {self.y.dtype}; convert it with y.long().")
        if self.x.ndim < 2:
            raise ValueError(
                f"Data.x must have a sample axis and feature axes, shape (N, ...), got shape "
                f"{tuple(self.x.shape)}; reshape a single feature to (N, 1)."
            )
        if self.y.ndim != 1:
            raise ValueError(f"Data.y must be 1-D (N,), got shape {tuple(self.y.shape)}.")
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"Data.x and Data.y disagree on the number of samples: x has "
                f"{self.x.shape[0]}, y has {self.y.shape[0]}."
            )
        if self.x.device != self.y.device:
            raise ValueError(
                f"Data.x is on {self.x.device} but Data.y is on {self.y.device}; "
                "move both with Data.to(device)."
            )
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int):
            raise TypeError(f"num_classes must be an int, got {self.num_classes!r}.")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {self.num_classes}.")
        if self.y.numel() > 0:
            lo, hi = int(self.y.min()), int(self.y.max())
            if lo < 0 or hi >= self.num_classes:
                raise ValueError(
                    f"labels must lie in [0, {self.num_classes}) for num_classes="
                    f"{self.num_classes}, found labels in [{lo}, {hi}]; labels are 0-based."
                )

    def __len__(self) -> int:
        """Number of samples N."""
        return int(self.x.shape[0])

    def __repr__(self) -> str:
        return (
            f"Data(name={self.name!r}, n={len(self)}, x={tuple(self.x.shape)} "
            f"{str(self.x.dtype).removeprefix('torch.')}, num_classes={self.num_classes}, "
            f"device={self.x.device})"
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, e.g. ``(3, 32, 32)`` or ``(600,)``."""
        return tuple(int(s) for s in self.x.shape[1:])

    @property
    def device(self) -> torch.device:
        """Device holding the tensors."""
        return self.x.device

    def to(self, device: str | torch.device, *, non_blocking: bool = False) -> Data:
        """Return a copy of the dataset on ``device`` (the same object if already there).

        Args:
            device: Target device, e.g. ``"cuda"`` or ``torch.device("cpu")``.
            non_blocking: Passed to :meth:`torch.Tensor.to`.

        Returns:
            The dataset with ``x`` and ``y`` on ``device``.
        """
        device = torch.device(device)
        if self.x.device == device and self.y.device == device:
            return self
        return replace(
            self,
            x=self.x.to(device, non_blocking=non_blocking),
            y=self.y.to(device, non_blocking=non_blocking),
        )

    def subset(self, idx: np.ndarray | torch.Tensor | Sequence[int]) -> Data:
        """Select samples, e.g. a split's member indices (PAPER.md, "Data and splits").

        Args:
            idx: 1-D integer indices into this dataset (numpy array, tensor or list), or
                a boolean mask of length N. Negative indices are rejected.

        Returns:
            A new :class:`Data` with the selected rows, on the same device.

        Raises:
            ValueError: If ``idx`` is not 1-D integer / boolean or has the wrong length.
            IndexError: If an index is negative or not below N.
        """
        if isinstance(idx, torch.Tensor):
            t = idx
        else:
            arr = np.asarray(idx)
            if arr.dtype.kind in "iu":
                arr = arr.astype(np.int64, copy=False)
            t = torch.from_numpy(np.ascontiguousarray(arr))
        if t.dtype == torch.bool:
            if t.shape != (len(self),):
                raise ValueError(
                    f"a boolean mask must have shape ({len(self)},), got {tuple(t.shape)}."
                )
            t = t.nonzero().squeeze(1)
        elif t.numel() == 0:
            t = t.to(torch.int64)
        elif t.dtype.is_floating_point or t.dtype.is_complex:
            raise ValueError(f"subset indices must be integers, got dtype {t.dtype}.")
        if t.ndim != 1:
            raise ValueError(f"subset indices must be 1-D, got shape {tuple(t.shape)}.")
        t = t.to(device=self.x.device, dtype=torch.int64)
        if t.numel() > 0:
            lo, hi = int(t.min()), int(t.max())
            if lo < 0 or hi >= len(self):
                raise IndexError(
                    f"subset indices must lie in [0, {len(self)}), found [{lo}, {hi}]."
                )
        return replace(self, x=self.x[t], y=self.y[t])
