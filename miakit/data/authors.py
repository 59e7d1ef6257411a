"""Parsers of the tabular files the paper's authors' code reads (``source="authors"``).

The authors read Purchase100, Location and Texas100 from files of their own, not from
Shokri et al.'s release that miakit downloads (PAPER.md, "Data and splits"); since row
order decides which records the split indices pick, reproducing their victim and shadow
sets needs their files, in their order:

* ``purchase100.txt``: ``np.loadtxt(path, delimiter=",")``, the features in every column
  but the last and the **0-based** label in the last column (their loader does not
  subtract 1). Numbers may be written as integers or floats (``1`` or ``1.0e+00``, as
  ``np.savetxt`` writes them).
* MemGuard's ``data_complete.npz`` (Location from jinyuan-jia/MemGuard's
  ``data/location``; Texas100 prepared the same way): ``np.load(path)`` with the
  features in array ``x`` ``(N, F)`` and the **1-based** labels in array ``y`` ``(N,)``
  (their loader subtracts 1, as MemGuard's own ``input_data_class.py`` does).

Both return what the other parsers of :mod:`miakit.data.formats` return: uint8 0/1
features and int64 0-based labels, rows in the file's order. A file that is not in its
format raises one :class:`~miakit.data.errors.DataError` naming it and what is wrong;
the loader adds what to do. An ``.npz`` is read with ``allow_pickle=False``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from miakit.data.errors import DataError, is_system_error
from miakit.data.formats import pandas_reason

__all__ = ["AUTHORS_FORMATS", "parse_authors_file", "parse_authors_purchase", "parse_memguard_npz"]

_ROWS_PER_CHUNK = 8192


def _binary_rows(path: Path, x: np.ndarray, first_row: int) -> np.ndarray:
    """``x`` as uint8 after checking that every value is 0 or 1 (NaN included)."""
    bad = ~((x == 0) | (x == 1))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            path,
            f"features must be binary 0/1, found {x[row, col].item()} in record "
            f"{first_row + row + 1} (feature {col + 1})",
        )
    return x.astype(np.uint8)


def _labels(
    path: Path, y: np.ndarray, first_row: int, *, base: int, num_classes: int
) -> np.ndarray:
    """``y`` (base ``base``) as int64 0-based labels, checked to be integers in range."""
    lo, hi = base, base + num_classes - 1
    whole = y == np.round(y) if y.dtype.kind == "f" else True
    bad = ~(whole & (y >= lo) & (y <= hi))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        which = "0-based" if base == 0 else "1-based"
        raise DataError(
            path,
            f"labels must be {which} integers in {lo}..{hi} as the authors' loader reads "
            f"them, found {y[row].item()} in record {first_row + row + 1}",
        )
    return y.astype(np.int64) - base


def _looks_like_text(path: Path) -> bool:
    """False if the file's first 8 KiB hold a NUL byte or are not UTF-8 text."""
    with open(path, "rb") as fh:
        head = fh.read(8192)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.start >= len(head) - 3  # a character cut at the end of the sample
    return b"\x00" not in head


def parse_authors_purchase(
    path: Path, *, num_features: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read the authors' ``purchase100.txt``: one record per line, ``f1,...,fF,label``
    with 0/1 features and a 0-based label, read in chunks (the real file has 197,324
    lines).

    Returns:
        ``(x, y)``: uint8 0/1 ``(N, F)`` and int64 0-based labels ``(N,)``, in file order.

    Raises:
        DataError: The file is not text, has no rows, a row of the wrong width, a value
            that is not a number, a feature that is not 0/1 or a label outside
            ``0..num_classes - 1``.
    """
    import pandas as pd

    path = Path(path)
    what = f"'f1,...,f{num_features},label' records (comma-separated numbers)"
    if not path.is_file():
        raise DataError(path, f"is not a file; expected a text file of {what}")
    if not _looks_like_text(path):
        raise DataError(path, f"is not text (a binary or compressed file?); expected {what}")
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    done = 0
    try:
        chunks = pd.read_csv(
            path, header=None, dtype=np.float32, engine="c", chunksize=_ROWS_PER_CHUNK
        )
        with chunks:
            for chunk in chunks:
                table = chunk.to_numpy()
                if table.shape[1] != num_features + 1:
                    raise DataError(
                        path,
                        f"expected {num_features + 1} columns ({num_features} features, then "
                        f"the label), found {table.shape[1]}",
                    )
                missing = np.isnan(table).any(axis=1)
                if missing.any():
                    raise DataError(
                        path,
                        f"record {done + int(np.flatnonzero(missing)[0]) + 1} has an empty "
                        f"field or fewer than {num_features + 1} values",
                    )
                xs.append(_binary_rows(path, table[:, :-1], done))
                ys.append(_labels(path, table[:, -1], done, base=0, num_classes=num_classes))
                done += len(table)
    except DataError:
        raise
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(path, f"could not parse it as {what}: {pandas_reason(err)}") from err
    if not done:
        raise DataError(path, f"has no rows; expected {what}")
    return np.concatenate(xs), np.concatenate(ys)


def _npz_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``x`` and ``y`` of an ``.npz`` (no pickle); any fault is one DataError."""
    what = "MemGuard's data_complete.npz (a numpy .npz with arrays x and y)"
    if not path.is_file():
        raise DataError(path, f"is not a file; expected {what}")
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":  # every .npz is a zip archive
            raise DataError(path, f"is not {what}: it does not start like a zip file")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = sorted({"x", "y"} - set(z.files))
            if missing:
                raise DataError(
                    path, f"holds the arrays {sorted(z.files)} but not {missing}; expected {what}"
                )
            return z["x"], z["y"]
    except DataError:
        raise
    except ValueError as err:
        if "pickle" in str(err):  # numpy refusing an object array: never load one.
            raise DataError(path, "holds an object array; expected numeric x and y") from None
        raise DataError(path, f"cannot be read as {what}: an array header is garbled") from None
    except Exception as err:  # zipfile, zlib, EOFError: a damaged archive
        if is_system_error(err):
            raise
        raise DataError(path, f"cannot be read as {what}: it is truncated or damaged") from None


def parse_memguard_npz(
    path: Path, *, num_features: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read MemGuard's ``data_complete.npz``: 0/1 features ``x`` ``(N, F)`` (any numeric
    dtype) and 1-based labels ``y`` ``(N,)``.

    Returns:
        ``(x, y)``: uint8 0/1 ``(N, F)`` and int64 0-based labels ``(N,)``, in file order.

    Raises:
        DataError: The file is not a readable ``.npz``, lacks ``x`` or ``y``, or holds
            arrays of the wrong dtype or shape, non-binary features or labels outside
            ``1..num_classes``.
    """
    path = Path(path)
    x, y = _npz_arrays(path)
    if x.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
        raise DataError(path, f"expected numeric x and y, got x {x.dtype} and y {y.dtype}")
    if x.ndim != 2 or x.shape[1] != num_features or y.shape != (len(x),):
        raise DataError(
            path,
            f"expected x of shape (N, {num_features}) and y of shape (N,), got x {x.shape} "
            f"and y {y.shape}",
        )
    if not len(x):
        raise DataError(path, "has no records (x and y are empty)")
    out = np.empty(x.shape, dtype=np.uint8)
    for start in range(0, len(x), _ROWS_PER_CHUNK):  # bounded memory on Texas100's 415M
        out[start : start + _ROWS_PER_CHUNK] = _binary_rows(
            path, x[start : start + _ROWS_PER_CHUNK], start
        )
    return out, _labels(path, y, 0, base=1, num_classes=num_classes)


#: The parser of each authors' file, by its suffix.
AUTHORS_FORMATS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    ".txt": parse_authors_purchase,
    ".npz": parse_memguard_npz,
}


def parse_authors_file(
    path: Path, *, num_features: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read an authors' file with the parser its suffix names (:data:`AUTHORS_FORMATS`).

    Raises:
        ValueError: No parser for that suffix (a registry entry naming a wrong file).
        DataError: The file is bad (see the parsers).
    """
    parse = AUTHORS_FORMATS.get(Path(path).suffix)
    if parse is None:
        raise ValueError(
            f"no parser for the authors' file {Path(path).name!r}; known suffixes: "
            f"{', '.join(AUTHORS_FORMATS)}."
        )
    return parse(Path(path), num_features=num_features, num_classes=num_classes)
