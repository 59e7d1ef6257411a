"""What the kit knows about a dataset: its files, archive layout, loader and shape.

A :class:`DatasetInfo` holds every fact about one dataset in one place (ARCHITECTURE.md,
"One home per fact"): the registry :data:`miakit.data.DATASETS` is a dict of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pathlib import Path

    from miakit.data.container import Data

__all__ = ["CHECKSUM_ALGORITHMS", "ArchiveLayout", "DatasetInfo", "Loader", "RemoteFile"]

#: Algorithms a :attr:`RemoteFile.checksum` may name.
CHECKSUM_ALGORITHMS = ("md5", "sha1", "sha256", "sha384", "sha512")

#: ``loader(info, root, download, options) -> Data``: reads one dataset's pool.
Loader = Callable[["DatasetInfo", "Path | None", bool, "dict[str, Any]"], "Data"]


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file of a dataset.

    Attributes:
        filename: Name of the file in the dataset's folder under the data root.
        urls: Where to download it, tried in order (first is the canonical source).
        checksum: ``"<algorithm>:<hex digest>"`` (md5, sha256, ...), or ``None`` when no
            published checksum is known; the file is then not verified.
        size: Size in bytes when published, checked before hashing; ``None`` if unknown.
    """

    filename: str
    urls: tuple[str, ...]
    checksum: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError(f"RemoteFile {self.filename!r} needs at least one URL.")
        if self.checksum is not None:
            algo, _, digest = self.checksum.partition(":")
            if algo not in CHECKSUM_ALGORITHMS or not digest:
                raise ValueError(
                    f"checksum must look like 'md5:<hex>' with algorithm in "
                    f"{CHECKSUM_ALGORITHMS}, got {self.checksum!r}."
                )


@dataclass(frozen=True)
class ArchiveLayout:
    """Where a dataset's raw files lie once its archive (``files[0]``) is extracted.

    Attributes:
        members: Paths relative to the dataset's folder (files or folders), in the order
            the parser reads them, e.g. ``"cifar-10-batches-py/data_batch_1"``. Placing
            them there by hand makes the archive unnecessary.
        label_key: For CIFAR "python version" batches, the dict key of the labels
            (``"labels"`` for CIFAR-10, ``"fine_labels"`` for CIFAR-100); else ``None``.
    """

    members: tuple[str, ...]
    label_key: str | None = None

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("ArchiveLayout needs at least one member path.")


@dataclass(frozen=True)
class DatasetInfo:
    """What the kit knows about one dataset (PAPER.md, "Data and splits").

    Attributes:
        name: Registry key, e.g. ``"cifar10"``.
        kind: ``"image"`` (N, C, H, W), ``"tabular"`` (N, F) or ``"signal"`` (N, L).
        num_classes: Number of classes K.
        input_shape: Shape of one input.
        loader: The function that reads the pool (see :data:`Loader`);
            :func:`miakit.data.load_dataset` calls it.
        title: Display name for tables, plots and error messages, e.g. ``"CIFAR-10"``.
        pool_size: Size of the pool (train + test) of the published files, or ``None``
            where it depends on options (``mnist1d``).
        files: Files to download; empty for the embedded datasets.
        mean: Per-channel normalisation mean for images, if any.
        std: Per-channel normalisation std for images, if any.
        source: Citation / homepage.
        layout: Where the raw files lie after extracting the archive; ``None`` when the
            downloaded files are read directly (SVHN) or nothing is downloaded.
        authors_file: The file the paper's authors' code reads instead (PAPER.md, "Data
            and splits"), placed by hand in the dataset's folder and read only with the
            loader option ``source="authors"`` (:mod:`miakit.data.authors`):
            ``"purchase100.txt"`` or MemGuard's ``"data_complete.npz"``; ``None`` where
            the kit has only its own source.
    """

    name: str
    kind: Literal["image", "tabular", "signal"]
    num_classes: int
    input_shape: tuple[int, ...]
    loader: Loader
    title: str = ""
    pool_size: int | None = None
    files: tuple[RemoteFile, ...] = ()
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    source: str = ""
    layout: ArchiveLayout | None = None
    authors_file: str | None = None

    @property
    def embedded(self) -> bool:
        """True for datasets that ship with the dependencies (no download)."""
        return not self.files
