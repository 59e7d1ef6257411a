"""The parsed-pool cache: ``<name>-pool-v1.npz`` beside a dataset's raw files.

A pool read from another source of the same dataset (the authors' files,
``source="authors"``) has its own cache, ``<name>-<source>-pool-v1.npz``, so two
sources never share a cached pool.

Parsing the raw files (unpickling CIFAR batches, decoding 5000 tiles, reading a 200k-row
text file) is slow, so the parsed pool's raw arrays (uint8 pixels or 0/1 features, int64
labels) are written once, atomically, as a plain ``.npz`` (no pickle), and read back on
later loads. Delete the file to parse the raw files again. A cache that is not a valid
``.npz`` of those two arrays raises one :class:`~miakit.data.errors.DataError` that
names it and says to delete it; an object array in it is never loaded.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from miakit._util import atomic_write
from miakit.data.errors import DataError, is_system_error

__all__ = ["cached_pool"]

_CACHE_VERSION = 1


def _read_pool(
    cache: Path, call: str, input_shape: tuple[int, ...] | None, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """The arrays of a pool cache, checked; any fault is one :class:`DataError`."""

    def bad(problem: str) -> DataError:
        return DataError(
            cache,
            f"is not a valid parsed-pool cache: {problem}",
            f"Delete it and call {call} again: the raw files are parsed "
            "again and the cache is rewritten.",
        )

    with open(cache, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":  # every .npz is a zip archive
            raise bad("it is not a numpy .npz archive (it does not start like a zip file)")
    try:
        with np.load(cache, allow_pickle=False) as z:
            if sorted(z.files) != ["x", "y"]:
                raise bad(f"it holds the arrays {sorted(z.files)}, expected x and y")
            x, y = z["x"], z["y"]
    except DataError:
        raise
    except ValueError as err:
        if "pickle" in str(err):  # numpy refusing an object array: never load one.
            raise bad("it holds an object array, which miakit never writes") from None
        raise bad("an array header is garbled") from None
    except Exception as err:  # zipfile, zlib, EOFError: a damaged archive
        if is_system_error(err):
            raise
        raise bad("it is truncated or damaged") from None
    if x.dtype != np.uint8 or x.ndim < 2 or y.dtype.kind not in "iu" or y.ndim != 1:
        raise bad(
            f"expected uint8 x (N, ...) and integer y (N,), got x {x.dtype} {x.shape} "
            f"and y {y.dtype} {y.shape}"
        )
    if len(x) != len(y):
        raise bad(f"x has {len(x)} rows but y has {len(y)} labels")
    if input_shape is not None and tuple(x.shape[1:]) != tuple(input_shape):
        raise bad(f"its inputs have shape {tuple(x.shape[1:])}, expected {tuple(input_shape)}")
    if num_classes is not None and len(y) and not 0 <= int(y.min()) <= int(y.max()) < num_classes:
        raise bad(
            f"its labels lie in {int(y.min())}..{int(y.max())}, expected 0..{num_classes - 1}"
        )
    return x, y


def cached_pool(
    directory: Path,
    name: str,
    build: Callable[[], tuple[np.ndarray, np.ndarray]],
    *,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    source: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw pool arrays from ``<name>-pool-v1.npz`` in ``directory``, else ``build()``
    them and write that cache atomically (no pickle: ``allow_pickle=False``).

    A cache that cannot be written only warns: the raw files are parsed again next time.

    Args:
        directory: The dataset's folder.
        name: The dataset's registry key (names the cache and the advice).
        build: Parses the raw files into uint8 ``x`` and integer ``y``.
        input_shape: If given, the shape one cached input must have.
        num_classes: If given, cached labels must lie in ``0..num_classes - 1``.
        source: The dataset's non-default source (``"authors"``), which names its own
            cache ``<name>-<source>-pool-v1.npz``; ``None`` for the default source.

    Raises:
        DataError: The cache is not a valid ``.npz`` of uint8 ``x`` and integer ``y``
            (garbled, truncated, an object array, wrong keys, shapes or labels); the
            message says to delete it.
    """
    stem = f"{name}-{source}" if source else name
    cache = directory / f"{stem}-pool-v{_CACHE_VERSION}.npz"
    call = f"load_dataset({name!r}, source={source!r})" if source else f"load_dataset({name!r})"
    if cache.is_file():
        return _read_pool(cache, call, input_shape, num_classes)
    x, y = build()

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a path
            np.savez(fh, x=x, y=y)

    try:
        atomic_write(cache, write)
    except OSError as err:
        warnings.warn(
            f"could not write the parsed-dataset cache {cache} ({err}); the raw files "
            "will be parsed again next time.",
            stacklevel=4,
        )
    return x, y
