"""Datasets, downloads and the victim/shadow split (PAPER.md, "Data and splits").

Every dataset is loaded whole, as the *pool*: the official train and test parts
concatenated in that order (train first), normalised exactly as the paper's code does
(images: ``ToTensor`` + ``Normalize`` only, no augmentation; tabular: float 0/1
features), and held as tensors in a :class:`Data`. :func:`paper_splits` then cuts the
pool into the victim half and the shadow half and each half into train / dev / test.

Two datasets ship with the dependencies and never touch the network:

- ``digits``: scikit-learn's handwritten digits, 1797 images of 1x8x8, 10 classes.
- ``mnist1d``: procedurally generated 1-D digits (the ``mnist1d`` package), (N, 40).

The paper's seven datasets are downloaded on first use into the data root (the
``root`` argument, else ``$MIAKIT_DATA``, else ``$XDG_CACHE_HOME/miakit/data``, else
``~/.cache/miakit/data``), one sub-folder per dataset, verified by checksum where one is
published, written atomically (temporary file, then rename), parsed, and cached as a
``<name>-pool-v1.npz`` (raw uint8 pixels or 0/1 features, no pickle) beside the raw
file so that later loads skip the slow parsing (delete it to parse the raw files again).
Offline, a missing file raises one :class:`DatasetUnavailableError` that names the file,
the URL and the exact path at which to place it by hand.

Sources (all public; checksums as published by their maintainers):

============  =======================================================================  ======
dataset       file (URL)                                                               check
============  =======================================================================  ======
cifar10       https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz                  md5 [1]
cifar100      https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz                 md5 [1]
svhn          http://ufldl.stanford.edu/housenumbers/{train,test}_32x32.mat            md5 [1]
chmnist       https://zenodo.org/records/53169/files/                                  sha256
              Kather_texture_2016_image_tiles_5000.zip                                 [2]
purchase100   https://github.com/privacytrustlab/datasets/raw/master/                  none
              dataset_purchase.tgz (mirror: https://www.comp.nus.edu.sg/~reza/files/)  [3]
texas100      .../privacytrustlab/datasets/raw/master/dataset_texas.tgz (same mirror)  none
location      .../privacytrustlab/datasets/raw/master/dataset_location.tgz             none
============  =======================================================================  ======

[1] torchvision's published md5 (``torchvision.datasets.CIFAR10/CIFAR100/SVHN``).
[2] TensorFlow Datasets' ``url_checksums/colorectal_histology.txt`` (sha256 and size).
[3] Shokri et al.'s preprocessed tabular files (as used by ML-Leaks and ML Privacy
    Meter) have no published checksum; miakit cannot know one offline, so they are
    not verified (their row/column counts and label ranges are still checked).
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import http.client
import importlib
import math
import os
import pickle
import random
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

__all__ = [
    "DATASETS",
    "DEV_SIZE",
    "DOWNLOAD_TIMEOUT_S",
    "TEST_SIZE",
    "ChecksumMismatchError",
    "Data",
    "DatasetInfo",
    "DatasetUnavailableError",
    "RemoteFile",
    "Split",
    "Splits",
    "data_root",
    "load_dataset",
    "paper_splits",
    "split_sizes",
]

# ----------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------


class DatasetUnavailableError(FileNotFoundError):
    """A dataset file is neither on disk nor downloadable (offline, or ``download=False``).

    The message names the file, the URL(s) it comes from and the exact path at which
    to place it by hand.
    """


class ChecksumMismatchError(ValueError):
    """A dataset file does not match its published checksum (or size); it was not used."""


# ----------------------------------------------------------------------------------------
# Data: a whole dataset as tensors
# ----------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------

_CHECKSUM_ALGORITHMS = ("md5", "sha1", "sha256", "sha384", "sha512")


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
            if algo not in _CHECKSUM_ALGORITHMS or not digest:
                raise ValueError(
                    f"checksum must look like 'md5:<hex>' with algorithm in "
                    f"{_CHECKSUM_ALGORITHMS}, got {self.checksum!r}."
                )


@dataclass(frozen=True)
class DatasetInfo:
    """What the kit knows about one dataset (PAPER.md, "Data and splits").

    Attributes:
        name: Registry key, e.g. ``"cifar10"``.
        kind: ``"image"`` (N, C, H, W), ``"tabular"`` (N, F) or ``"signal"`` (N, L).
        num_classes: Number of classes K.
        input_shape: Shape of one input.
        title: Human-readable name.
        pool_size: Size of the pool (train + test) of the published files, or ``None``
            where it depends on options (``mnist1d``).
        files: Files to download; empty for the embedded datasets.
        mean: Per-channel normalisation mean for images, if any.
        std: Per-channel normalisation std for images, if any.
        source: Citation / homepage.
    """

    name: str
    kind: Literal["image", "tabular", "signal"]
    num_classes: int
    input_shape: tuple[int, ...]
    title: str = ""
    pool_size: int | None = None
    files: tuple[RemoteFile, ...] = ()
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    source: str = ""

    @property
    def embedded(self) -> bool:
        """True for datasets that ship with the dependencies (no download)."""
        return not self.files


_CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
_CIFAR_STD = (0.2023, 0.1994, 0.2010)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_PRIVACYTRUSTLAB = "https://github.com/privacytrustlab/datasets/raw/master/"
_SHOKRI_MIRROR = "https://www.comp.nus.edu.sg/~reza/files/"

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "digits",
            "image",
            10,
            (1, 8, 8),
            title="scikit-learn digits",
            pool_size=1797,
            source="sklearn.datasets.load_digits (UCI optical handwritten digits)",
        ),
        DatasetInfo(
            "mnist1d",
            "signal",
            10,
            (40,),
            title="MNIST-1D",
            source="Greydanus 2020, the mnist1d package (procedurally generated)",
        ),
        DatasetInfo(
            "cifar10",
            "image",
            10,
            (3, 32, 32),
            title="CIFAR-10",
            pool_size=60000,
            files=(
                RemoteFile(
                    "cifar-10-python.tar.gz",
                    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                    "md5:c58f30108f718f92721af3b95e74349a",
                ),
            ),
            mean=_CIFAR_MEAN,
            std=_CIFAR_STD,
            source="Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html",
        ),
        DatasetInfo(
            "cifar100",
            "image",
            100,
            (3, 32, 32),
            title="CIFAR-100",
            pool_size=60000,
            files=(
                RemoteFile(
                    "cifar-100-python.tar.gz",
                    ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",),
                    "md5:eb9058c3a382ffc7106e4002c42a8d85",
                ),
            ),
            # The paper's code normalises CIFAR-100 with the CIFAR-10 statistics.
            mean=_CIFAR_MEAN,
            std=_CIFAR_STD,
            source="Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html",
        ),
        DatasetInfo(
            "svhn",
            "image",
            10,
            (3, 32, 32),
            title="SVHN (train + test, no extra)",
            pool_size=73257 + 26032,
            files=(
                RemoteFile(
                    "train_32x32.mat",
                    ("http://ufldl.stanford.edu/housenumbers/train_32x32.mat",),
                    "md5:e26dedcc434d2e4c54c9b2d4a06d8373",
                ),
                RemoteFile(
                    "test_32x32.mat",
                    ("http://ufldl.stanford.edu/housenumbers/test_32x32.mat",),
                    "md5:eb5a983be6a315427106f1b164d9cef3",
                ),
            ),
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
            source="Netzer et al. 2011, http://ufldl.stanford.edu/housenumbers/",
        ),
        DatasetInfo(
            "chmnist",
            "image",
            8,
            (3, 32, 32),
            title="CHMNIST (Kather 2016 colorectal histology)",
            pool_size=5000,
            files=(
                RemoteFile(
                    "Kather_texture_2016_image_tiles_5000.zip",
                    (
                        "https://zenodo.org/records/53169/files/"
                        "Kather_texture_2016_image_tiles_5000.zip?download=1",
                    ),
                    # From TensorFlow Datasets' url_checksums/colorectal_histology.txt.
                    "sha256:936d0b95ae0f04f1f7b18a2b7e8c55776c3e887d102f645bcee752d1a6626a32",
                    size=258098431,
                ),
            ),
            mean=_IMAGENET_MEAN,
            std=_IMAGENET_STD,
            source="Kather et al. 2016, Sci. Rep. 6:27988, doi:10.5281/zenodo.53169",
        ),
        DatasetInfo(
            "location",
            "tabular",
            30,
            (446,),
            title="Location (Foursquare check-ins, Bangkok)",
            pool_size=5010,
            files=(
                # No published checksum is known for this file: it is not verified.
                RemoteFile("dataset_location.tgz", (_PRIVACYTRUSTLAB + "dataset_location.tgz",)),
            ),
            source="Shokri et al. 2017 (preprocessed release, privacytrustlab/datasets)",
        ),
        DatasetInfo(
            "purchase100",
            "tabular",
            100,
            (600,),
            title="Purchase100",
            pool_size=197324,
            files=(
                # No published checksum is known for this file: it is not verified.
                RemoteFile(
                    "dataset_purchase.tgz",
                    (
                        _PRIVACYTRUSTLAB + "dataset_purchase.tgz",
                        _SHOKRI_MIRROR + "dataset_purchase.tgz",
                    ),
                ),
            ),
            source="Shokri et al. 2017 (preprocessed release, privacytrustlab/datasets)",
        ),
        DatasetInfo(
            "texas100",
            "tabular",
            100,
            (6169,),
            title="Texas100",
            pool_size=67330,
            files=(
                # No published checksum is known for this file: it is not verified.
                RemoteFile(
                    "dataset_texas.tgz",
                    (_PRIVACYTRUSTLAB + "dataset_texas.tgz", _SHOKRI_MIRROR + "dataset_texas.tgz"),
                ),
            ),
            source="Shokri et al. 2017 (preprocessed release, privacytrustlab/datasets)",
        ),
    )
}

_ALIASES = {"purchase": "purchase100", "texas": "texas100", "kather": "chmnist"}


def _canonical_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {type(name).__name__}.")
    key = name.strip().lower().replace("-", "").replace("_", "")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise KeyError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}. "
            "Embedded (no download): digits, mnist1d."
        )
    return key


# ----------------------------------------------------------------------------------------
# Data root, downloads, checksums, archives
# ----------------------------------------------------------------------------------------

#: Seconds a download may stall (connect or read) before it counts as unavailable.
DOWNLOAD_TIMEOUT_S = 30.0
_CACHE_VERSION = 1


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds downloaded datasets (one sub-folder per dataset).

    Args:
        root: Explicit folder; wins over everything else.

    Returns:
        ``root`` if given, else ``$MIAKIT_DATA``, else ``$XDG_CACHE_HOME/miakit/data``,
        else ``~/.cache/miakit/data``. The folder is not created here.
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("MIAKIT_DATA")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "miakit" / "data"


def _download(url: str, dest: Path, *, timeout: float) -> None:
    """Stream ``url`` into ``dest`` (the caller owns temp naming and the final rename)."""
    request = urllib.request.Request(url, headers={"User-Agent": "miakit"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


def _file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: Path, remote: RemoteFile, *, origin: str) -> None:
    """Check size and checksum of ``path`` against ``remote`` (no-op where unknown)."""
    if remote.size is not None and path.stat().st_size != remote.size:
        raise ChecksumMismatchError(
            f"size mismatch for {remote.filename} ({origin}): expected {remote.size} bytes, "
            f"got {path.stat().st_size}."
        )
    if remote.checksum is None:
        return
    algorithm, _, expected = remote.checksum.partition(":")
    actual = _file_digest(path, algorithm)
    if actual.lower() != expected.lower():
        raise ChecksumMismatchError(
            f"checksum mismatch for {remote.filename} ({origin}): expected {algorithm} "
            f"{expected}, got {actual}."
        )


def _manual_instructions(info: DatasetInfo, remote: RemoteFile, path: Path) -> str:
    check = (
        f"its {remote.checksum.replace(':', ' ')} is checked"
        if remote.checksum
        else "no published checksum is known, so it is not verified"
    )
    return (
        f"To fix it, download it by hand from\n  {remote.urls[0]}\nand save it as\n  {path}\n"
        f"({check}), then call load_dataset({info.name!r}) again. To use another data "
        "folder, pass root=... or set the MIAKIT_DATA environment variable."
    )


def _fetch(info: DatasetInfo, remote: RemoteFile, directory: Path, *, download: bool) -> Path:
    """Return the verified local path of ``remote``, downloading it atomically if needed.

    Raises:
        DatasetUnavailableError: The file is missing and cannot be downloaded.
        ChecksumMismatchError: The file on disk, or the one downloaded, fails its
            checksum; a downloaded copy is deleted, a copy placed by hand is left alone.
    """
    path = directory / remote.filename
    if path.is_file():
        try:
            _verify(path, remote, origin=f"file on disk at {path}")
        except ChecksumMismatchError as err:
            raise ChecksumMismatchError(
                f"{err} The file is corrupt or not the published one and was not used. "
                f"Delete it to download it again, or replace it by hand.\n"
                f"{_manual_instructions(info, remote, path)}"
            ) from None
        return path
    if not download:
        raise DatasetUnavailableError(
            f"{info.title or info.name} needs the file {remote.filename!r}, which is not at\n"
            f"  {path}\nand download=False.\n{_manual_instructions(info, remote, path)}"
        )
    directory.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for url in remote.urls:
        fd, tmp_name = tempfile.mkstemp(
            dir=directory, prefix=f".{remote.filename}.", suffix=".part"
        )
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            try:
                _download(url, tmp, timeout=DOWNLOAD_TIMEOUT_S)
            except (OSError, http.client.HTTPException, ValueError) as err:
                failures.append(f"  {url}: {err}")
                continue
            try:
                _verify(tmp, remote, origin=f"downloaded from {url}")
            except ChecksumMismatchError as err:
                raise ChecksumMismatchError(
                    f"{err} The download was deleted and not used; try again later, or fetch "
                    f"the file by hand.\n{_manual_instructions(info, remote, path)}"
                ) from None
            os.replace(tmp, path)
            return path
        finally:
            tmp.unlink(missing_ok=True)
    raise DatasetUnavailableError(
        f"{info.title or info.name} needs the file {remote.filename!r}, which is not at\n"
        f"  {path}\nand could not be downloaded (no network?):\n"
        + "\n".join(failures)
        + f"\n{_manual_instructions(info, remote, path)}"
    )


def _extract(archive: Path, directory: Path) -> None:
    """Extract a .tar(.gz) or .zip archive into ``directory`` without leaving half-written
    entries: it is unpacked into a temporary folder first, then each top-level entry is
    moved into place."""
    tmp = Path(tempfile.mkdtemp(dir=directory, prefix=".extract-"))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)  # zipfile strips absolute paths and "..".
        else:
            with tarfile.open(archive) as tf:
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(tmp, filter="data")
                else:  # pragma: no cover - Python without PEP 706 filters.
                    for member in tf.getmembers():
                        target = (tmp / member.name).resolve()
                        if not target.is_relative_to(tmp.resolve()):
                            raise ValueError(f"unsafe path {member.name!r} in {archive}.")
                    tf.extractall(tmp)
        for entry in tmp.iterdir():
            target = directory / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _find(directory: Path, relative: str) -> Path | None:
    """``directory / relative`` if it exists, else the unique file of that base name."""
    path = directory / relative
    if path.exists():
        return path
    matches = [
        p
        for p in directory.rglob(Path(relative).name)
        if not any(part.startswith(".") for part in p.relative_to(directory).parts)
    ]
    return matches[0] if len(matches) == 1 else None


def _ensure_extracted(
    info: DatasetInfo, directory: Path, members: Sequence[str], *, download: bool
) -> list[Path]:
    """Paths of ``members`` (files or folders) of the dataset's archive, fetching and
    extracting the archive first if any is missing."""
    found = [_find(directory, m) for m in members]
    if all(p is not None for p in found):
        return [p for p in found if p is not None]
    try:
        archive = _fetch(info, info.files[0], directory, download=download)
    except DatasetUnavailableError as err:
        tops = sorted({str(directory / m.split("/")[0]) for m in members})
        raise DatasetUnavailableError(
            f"{err}\nAlternatively, extract the archive by hand so that "
            f"{' and '.join(tops)} exist{'s' if len(tops) == 1 else ''}."
        ) from None
    _extract(archive, directory)
    found = [_find(directory, m) for m in members]
    missing = [m for m, p in zip(members, found, strict=True) if p is None]
    if missing:
        raise FileNotFoundError(
            f"{archive} was extracted into {directory} but does not contain {missing}; the "
            "archive is not the expected one. Delete it and the extracted files, then retry."
        )
    return [p for p in found if p is not None]


def _cached_pool(
    directory: Path, name: str, build: Callable[[], tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """Raw pool arrays from ``<name>-pool-v1.npz`` in ``directory``, else ``build()``
    them and write that cache atomically (no pickle: ``allow_pickle=False``)."""
    cache = directory / f"{name}-pool-v{_CACHE_VERSION}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return z["x"], z["y"]
    x, y = build()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{cache.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, x=x, y=y)
            os.replace(tmp_name, cache)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
    except OSError as err:
        warnings.warn(
            f"could not write the parsed-dataset cache {cache} ({err}); the raw files "
            "will be parsed again next time.",
            stacklevel=4,
        )
    return x, y


# ----------------------------------------------------------------------------------------
# Raw-format parsers (small, so tests can feed them tiny files)
# ----------------------------------------------------------------------------------------


def _numpy_global(module: str, name: str) -> Any:
    for mod in (module.replace("numpy.core", "numpy._core"), module):
        with contextlib.suppress(ImportError, AttributeError):
            return getattr(importlib.import_module(mod), name)
    raise pickle.UnpicklingError(f"cannot resolve {module}.{name}")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler for the CIFAR "python version" batches: dicts, lists, strings and
    numpy arrays only, so a tampered file cannot run code."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        *(
            (f"numpy.{core}.multiarray", n)
            for core in ("core", "_core")
            for n in ("_reconstruct", "scalar")
        ),
        *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")),
    }

    def find_class(self, module: str, name: str) -> Any:
        if module == "_codecs" and name == "encode":
            return codecs.encode
        if (module, name) in self._ALLOWED:
            return _numpy_global(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} from a CIFAR batch: the batches hold only "
            "numpy arrays and lists. The file is not a genuine CIFAR batch."
        )


def _parse_cifar(
    folder: Path, files: Sequence[str], *, label_key: str
) -> tuple[np.ndarray, np.ndarray]:
    """Read CIFAR "python version" batches (pickled dicts with ``data`` (N, 3072) uint8
    and ``label_key`` labels), concatenated in the order of ``files``.

    Returns:
        ``(x, y)``: uint8 ``(N, 3, 32, 32)`` and int64 ``(N,)``.
    """
    xs, ys = [], []
    for fname in files:
        path = Path(folder) / fname
        with open(path, "rb") as fh:
            batch = _ArrayUnpickler(fh, encoding="latin1").load()
        if not isinstance(batch, dict) or "data" not in batch or label_key not in batch:
            raise ValueError(
                f"{path} is not a CIFAR batch: expected a dict with keys 'data' and {label_key!r}."
            )
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key], dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
            raise ValueError(
                f"{path}: expected data of shape (N, 3072) and N labels, got data "
                f"{data.shape} and {len(labels)} labels."
            )
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


def _parse_svhn(mat_files: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Read SVHN cropped-digit ``.mat`` files (``X`` (32, 32, 3, N) uint8, ``y`` (N, 1)
    with label 10 meaning digit 0), concatenated in order.

    Returns:
        ``(x, y)``: uint8 ``(N, 3, 32, 32)`` and int64 ``(N,)`` in 0..9.
    """
    import scipy.io

    xs, ys = [], []
    for path in mat_files:
        mat = scipy.io.loadmat(path)
        if "X" not in mat or "y" not in mat:
            raise ValueError(f"{path} is not an SVHN .mat file: expected variables X and y.")
        x = np.asarray(mat["X"], dtype=np.uint8)
        y = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
        if x.ndim != 4 or x.shape[2] != 3 or x.shape[3] != len(y):
            raise ValueError(
                f"{path}: expected X of shape (H, W, 3, N) with N labels, got {x.shape} and "
                f"{len(y)} labels."
            )
        y = np.where(y == 10, 0, y)  # SVHN writes digit 0 as label 10.
        xs.append(np.ascontiguousarray(x.transpose(3, 2, 0, 1)))
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _parse_chmnist(
    folder: Path, *, size: int = 32
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Read image tiles from class folders, as ``torchvision.datasets.ImageFolder`` does
    (classes and files in sorted order), resized with ``Resize((size, size))`` (PIL
    bilinear) as the paper's code does.

    Returns:
        ``(x, y, classes)``: uint8 ``(N, 3, size, size)``, int64 ``(N,)`` and the class
        folder names (label i is ``classes[i]``).
    """
    from PIL import Image

    folder = Path(folder)
    classes = tuple(sorted(e.name for e in os.scandir(folder) if e.is_dir()))
    if not classes:
        raise ValueError(f"{folder} has no class sub-folders of image tiles.")
    xs: list[np.ndarray] = []
    ys: list[int] = []
    for label, cls in enumerate(classes):
        count = 0
        for dirpath, _, fnames in sorted(os.walk(folder / cls, followlinks=True)):
            for fname in sorted(fnames):
                if not fname.lower().endswith(_IMAGE_EXTENSIONS):
                    continue
                with Image.open(Path(dirpath) / fname) as im:
                    im = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
                    xs.append(np.asarray(im, dtype=np.uint8).transpose(2, 0, 1))
                ys.append(label)
                count += 1
        if count == 0:
            raise ValueError(f"class folder {folder / cls} contains no image files.")
    return np.stack(xs), np.asarray(ys, dtype=np.int64), classes


def _read_int_table(path: Path, *, what: str) -> np.ndarray:
    """A comma-separated table of small non-negative integers as uint8 (N, columns)."""
    import pandas as pd

    try:
        table = pd.read_csv(path, header=None, dtype=np.uint8, engine="c").to_numpy()
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(
            f"could not parse {path} as {what} (comma-separated integers 0-255, one row per "
            f"line): {err}"
        ) from err
    if table.shape[0] == 0:
        raise ValueError(f"{path} has no rows; expected {what}.")
    return table


def _check_tabular(
    path: Path, x: np.ndarray, labels: np.ndarray, *, num_features: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    if x.shape[1] != num_features:
        raise ValueError(f"{path}: expected {num_features} features per row, found {x.shape[1]}.")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 1 or hi > num_classes:
        raise ValueError(
            f"{path}: labels must be 1-based in 1..{num_classes} as in the published files, "
            f"found {lo}..{hi}."
        )
    if int(x.max()) > 1:
        raise ValueError(f"{path}: features must be binary 0/1, found the value {int(x.max())}.")
    return np.ascontiguousarray(x), labels.astype(np.int64) - 1


def _parse_tabular(
    path: Path, *, num_features: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read a Shokri-style text file, one record per line: ``label,f1,...,fF`` with a
    1-based label and binary features (Purchase100 ``dataset_purchase``, Location
    ``bangkok``).

    Returns:
        ``(x, y)``: uint8 0/1 ``(N, F)`` and int64 0-based labels ``(N,)``.
    """
    table = _read_int_table(Path(path), what=f"'label,f1,...,f{num_features}' records")
    if table.shape[1] != num_features + 1:
        raise ValueError(
            f"{path}: expected {num_features + 1} columns (label then {num_features} "
            f"features), found {table.shape[1]}."
        )
    return _check_tabular(
        Path(path), table[:, 1:], table[:, 0], num_features=num_features, num_classes=num_classes
    )


def _parse_texas(
    feats_path: Path, labels_path: Path, *, num_features: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read Texas100's separate files: ``texas/100/feats`` (``f1,...,fF`` per line) and
    ``texas/100/labels`` (one 1-based label per line).

    Returns:
        ``(x, y)``: uint8 0/1 ``(N, F)`` and int64 0-based labels ``(N,)``.
    """
    x = _read_int_table(Path(feats_path), what=f"'f1,...,f{num_features}' records")
    labels = _read_int_table(Path(labels_path), what="one label per line")
    if labels.shape[1] != 1 or labels.shape[0] != x.shape[0]:
        raise ValueError(
            f"{labels_path}: expected one label per line for the {x.shape[0]} rows of "
            f"{feats_path}, found shape {labels.shape}."
        )
    return _check_tabular(
        Path(feats_path), x, labels[:, 0], num_features=num_features, num_classes=num_classes
    )


# ----------------------------------------------------------------------------------------
# Loaders
# ----------------------------------------------------------------------------------------


def _take_options(info: DatasetInfo, options: Mapping[str, Any], **defaults: Any) -> dict:
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        accepted = ", ".join(sorted(defaults)) or "none"
        raise TypeError(
            f"load_dataset({info.name!r}) got unknown option(s) {unknown}; "
            f"{info.name} accepts: {accepted}."
        )
    return {**defaults, **options}


def _normalise_images(x: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``ToTensor`` (uint8 -> [0, 1]) then ``Normalize(mean, std)``, batched."""
    t = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32).div_(255)
    m = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return t.sub_(m).div_(s)


def _finish(info: DatasetInfo, x: torch.Tensor, y: np.ndarray) -> Data:
    if info.pool_size is not None and len(y) != info.pool_size:
        warnings.warn(
            f"{info.name}: the pool has {len(y)} samples but the published files have "
            f"{info.pool_size}; the files on disk are not the published ones.",
            stacklevel=4,
        )
    if tuple(x.shape[1:]) != info.input_shape:
        raise ValueError(
            f"{info.name}: inputs have shape {tuple(x.shape[1:])}, expected {info.input_shape}."
        )
    return Data(x, torch.from_numpy(np.asarray(y, dtype=np.int64)), info.num_classes, info.name)


def _load_digits(info: DatasetInfo, root: Path | None, download: bool, options: dict) -> Data:
    """scikit-learn digits: pixels 0..16 scaled to [0, 1], then standardised with the
    mean and std of the whole dataset; shape (1797, 1, 8, 8)."""
    _take_options(info, options)
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.images.astype(np.float64) / 16.0
    x = (x - x.mean()) / x.std()
    x_t = torch.from_numpy(x.astype(np.float32)).unsqueeze(1)
    return _finish(info, x_t, digits.target)


@contextlib.contextmanager
def _preserved_global_rng() -> Iterator[None]:
    """mnist1d seeds the global ``random`` and ``numpy.random`` states; undo that."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _load_mnist1d(info: DatasetInfo, root: Path | None, download: bool, options: dict) -> Data:
    """MNIST-1D, generated procedurally with ``mnist1d.data.make_dataset`` (never
    ``get_dataset``, which downloads); the package's train and test parts are
    concatenated, giving ``num_samples`` signals of length 40."""
    opts = _take_options(info, options, num_samples=8000, seed=42)
    num_samples, seed = opts["num_samples"], opts["seed"]
    if isinstance(num_samples, bool) or not isinstance(num_samples, int):
        raise TypeError(f"mnist1d num_samples must be an int, got {num_samples!r}.")
    if num_samples < 10 or num_samples % 10:
        raise ValueError(
            f"mnist1d num_samples must be a positive multiple of 10 (the generator makes "
            f"num_samples // 10 signals per class), got {num_samples}."
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"mnist1d seed must be an int in [0, 2**32), got {seed!r}.")
    import mnist1d.data as m1d

    args = m1d.get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    with _preserved_global_rng():
        ds = m1d.make_dataset(args)
    x = np.concatenate([ds["x"], ds["x_test"]]).astype(np.float32)
    y = np.concatenate([ds["y"], ds["y_test"]]).astype(np.int64)
    return _finish(info, torch.from_numpy(x), y)


_CIFAR_LAYOUT = {
    "cifar10": (
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",),
        "labels",
    ),
    "cifar100": ("cifar-100-python", ("train", "test"), "fine_labels"),
}


def _load_cifar(info: DatasetInfo, root: Path | None, download: bool, options: dict) -> Data:
    """CIFAR-10/100 from the "python version" archive (the extracted folder, e.g.
    ``cifar-10-batches-py``, may also be placed in the dataset folder by hand)."""
    _take_options(info, options)
    base, files, label_key = _CIFAR_LAYOUT[info.name]
    directory = data_root(root) / info.name

    def build() -> tuple[np.ndarray, np.ndarray]:
        paths = _ensure_extracted(
            info, directory, [f"{base}/{f}" for f in files], download=download
        )
        return _parse_cifar(paths[0].parent, files, label_key=label_key)

    x, y = _cached_pool(directory, info.name, build)
    return _finish(info, _normalise_images(x, info.mean or (), info.std or ()), y)


def _load_svhn(info: DatasetInfo, root: Path | None, download: bool, options: dict) -> Data:
    """SVHN train then test (no "extra")."""
    _take_options(info, options)
    directory = data_root(root) / info.name

    def build() -> tuple[np.ndarray, np.ndarray]:
        paths = [_fetch(info, f, directory, download=download) for f in info.files]
        return _parse_svhn(paths)

    x, y = _cached_pool(directory, info.name, build)
    return _finish(info, _normalise_images(x, info.mean or (), info.std or ()), y)


def _load_chmnist(info: DatasetInfo, root: Path | None, download: bool, options: dict) -> Data:
    """CHMNIST: the 5000 Kather 2016 tiles (150x150, 8 class folders) resized to 32x32."""
    _take_options(info, options)
    directory = data_root(root) / info.name

    def build() -> tuple[np.ndarray, np.ndarray]:
        (folder,) = _ensure_extracted(
            info, directory, ["Kather_texture_2016_image_tiles_5000"], download=download
        )
        x, y, classes = _parse_chmnist(folder, size=info.input_shape[-1])
        if len(classes) != info.num_classes:
            raise ValueError(
                f"{folder} has {len(classes)} class folders {classes}, expected {info.num_classes}."
            )
        return x, y

    x, y = _cached_pool(directory, info.name, build)
    return _finish(info, _normalise_images(x, info.mean or (), info.std or ()), y)


_TABULAR_MEMBERS = {
    "purchase100": ("dataset_purchase",),
    "location": ("bangkok",),
    "texas100": ("texas/100/feats", "texas/100/labels"),
}


def _load_tabular(info: DatasetInfo, root: Path | None, download: bool, options: dict) -> Data:
    """Purchase100, Location, Texas100 from Shokri et al.'s preprocessed release."""
    _take_options(info, options)
    directory = data_root(root) / info.name
    (num_features,) = info.input_shape

    def build() -> tuple[np.ndarray, np.ndarray]:
        paths = _ensure_extracted(info, directory, _TABULAR_MEMBERS[info.name], download=download)
        if info.name == "texas100":
            return _parse_texas(*paths, num_features=num_features, num_classes=info.num_classes)
        return _parse_tabular(paths[0], num_features=num_features, num_classes=info.num_classes)

    x, y = _cached_pool(directory, info.name, build)
    return _finish(info, torch.from_numpy(x).to(torch.float32), y)


_Loader = Callable[[DatasetInfo, Path | None, bool, dict], Data]
_LOADERS: dict[str, _Loader] = {
    "digits": _load_digits,
    "mnist1d": _load_mnist1d,
    "cifar10": _load_cifar,
    "cifar100": _load_cifar,
    "svhn": _load_svhn,
    "chmnist": _load_chmnist,
    "location": _load_tabular,
    "purchase100": _load_tabular,
    "texas100": _load_tabular,
}


def load_dataset(
    name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    **options: Any,
) -> Data:
    """Load a dataset's whole pool, normalised as in PAPER.md, "Data and splits".

    The pool is the official train part followed by the test part (the paper's code
    concatenates them before splitting). Images get ``ToTensor`` + ``Normalize`` only
    (CIFAR-10/100: mean (0.4914, 0.4822, 0.4465), std (0.2023, 0.1994, 0.2010); SVHN:
    0.5 / 0.5; CHMNIST: ImageNet statistics); tabular data are float 0/1 features with
    0-based labels.

    Args:
        name: A key of :data:`DATASETS` (case and ``-``/``_`` are ignored): ``digits``,
            ``mnist1d`` (embedded, no download), ``cifar10``, ``cifar100``, ``svhn``,
            ``chmnist``, ``location``, ``purchase100``, ``texas100``.
        root: Data root for downloaded datasets; see :func:`data_root`.
        download: Whether a missing file may be downloaded.
        **options: Dataset-specific options; ``mnist1d`` takes ``num_samples`` (default
            8000, a multiple of 10) and ``seed`` (default 42). Others take none.

    Returns:
        The pool as a :class:`Data` on the CPU.

    Raises:
        KeyError: Unknown dataset name (the message lists the known ones).
        TypeError: Unknown option for that dataset.
        DatasetUnavailableError: A file is missing and cannot be downloaded; the message
            says which file, from which URL, and the exact path to place it by hand.
        ChecksumMismatchError: A file fails its published checksum; it is not used.

    Example:
        >>> pool = load_dataset("digits")
        >>> pool.x.shape, pool.num_classes
        (torch.Size([1797, 1, 8, 8]), 10)
    """
    info = DATASETS[_canonical_name(name)]
    return _LOADERS[info.name](info, root, download, dict(options))


# ----------------------------------------------------------------------------------------
# Victim / shadow splits
# ----------------------------------------------------------------------------------------

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
