"""Datasets: the :class:`Data` container, the registry, downloads and raw formats.

Every dataset is loaded whole, as the *pool*: the official train and test parts
concatenated in that order (train first), normalised exactly as the paper's code does
(images: ``ToTensor`` + ``Normalize`` only, no augmentation; tabular: float 0/1
features), and held as tensors in a :class:`Data` (PAPER.md, "Data and splits").
:func:`miakit.splits.paper_splits` then cuts the pool into the victim half and the
shadow half and each half into train / dev / test.

=====================  =================================================================
module                 holds
=====================  =================================================================
``data.container``     :class:`Data`
``data.info``          :class:`RemoteFile`, :class:`ArchiveLayout`, :class:`DatasetInfo`
``data.registry``      :data:`DATASETS`, :data:`ALIASES`, :func:`canonical_name`,
                       :func:`load_dataset`
``data.download``      :func:`data_root`, fetching, checksums, archives,
                       :class:`DatasetUnavailableError`
``data.pool``          the parsed-pool cache (``<name>-pool-v1.npz``)
``data.errors``        :class:`DataError` (a bad file, one line: which, what, how to
                       replace it) and its subclass :class:`ChecksumMismatchError`
``data.formats``       the raw parsers (CIFAR batches, SVHN ``.mat``, CHMNIST tiles,
                       tabular text, Texas100)
``data.authors``       parsers of the authors' own files (``purchase100.txt``,
                       MemGuard's ``data_complete.npz``), read with ``source="authors"``
``data.loaders``       one loader per format, named by each entry's ``loader`` field
=====================  =================================================================

The split names (:class:`Split`, :class:`Splits`, :func:`paper_splits`,
:func:`split_sizes`, :data:`TEST_SIZE`, :data:`DEV_SIZE`) live in :mod:`miakit.splits`
and are re-exported here, so ``from miakit.data import paper_splits`` keeps working.
"""

from __future__ import annotations

from miakit.data.container import Data
from miakit.data.download import DOWNLOAD_TIMEOUT_S, DatasetUnavailableError, data_root
from miakit.data.errors import ChecksumMismatchError, DataError
from miakit.data.info import ArchiveLayout, DatasetInfo, RemoteFile
from miakit.data.registry import ALIASES, DATASETS, canonical_name, load_dataset
from miakit.splits import (
    DEV_SIZE,
    TEST_SIZE,
    Split,
    Splits,
    paper_splits,
    reference_split,
    split_sizes,
)

__all__ = [
    "ALIASES",
    "DATASETS",
    "DEV_SIZE",
    "DOWNLOAD_TIMEOUT_S",
    "TEST_SIZE",
    "ArchiveLayout",
    "ChecksumMismatchError",
    "Data",
    "DataError",
    "DatasetInfo",
    "DatasetUnavailableError",
    "RemoteFile",
    "Split",
    "Splits",
    "canonical_name",
    "data_root",
    "load_dataset",
    "paper_splits",
    "reference_split",
    "split_sizes",
]
