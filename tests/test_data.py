"""Tests of miakit.data: Data, the registry, raw-format parsers and downloads
(PAPER.md, "Data and splits"). The victim/shadow split is tested in test_splits.py.

No test touches the network: an autouse fixture replaces the downloader with one that
fails like an offline machine; tests that need a download install a fake that serves
tiny archives the test writes itself in the published raw formats.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import miakit.data
import miakit.splits
from miakit.data import (
    DATASETS,
    ArchiveLayout,
    ChecksumMismatchError,
    Data,
    DataError,
    DatasetInfo,
    DatasetUnavailableError,
    canonical_name,
    data_root,
    formats,
    load_dataset,
    loaders,
)
from miakit.data import download as dl

CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


# ----------------------------------------------------------------------------------------
# Fixtures and raw-format writers
# ----------------------------------------------------------------------------------------


#: No test here reaches the network: every download fails as offline (``conftest.py``).
pytestmark = pytest.mark.usefixtures("offline")


def serve(monkeypatch, files: dict[str, bytes]) -> list[str]:
    """Install a fake downloader serving ``files`` by file name; returns URLs fetched."""
    fetched: list[str] = []

    def fake(url, dest, *, timeout):
        fetched.append(url)
        name = url.split("/")[-1].split("?")[0]
        if name not in files:
            raise urllib.error.URLError(f"404 {url}")
        Path(dest).write_bytes(files[name])

    monkeypatch.setattr(dl, "download_file", fake)
    return fetched


def with_checksum(monkeypatch, name: str, payloads: dict[str, bytes]) -> None:
    """Point the registry entry's checksums at the test's own tiny files."""
    info = DATASETS[name]
    files = tuple(
        replace(f, checksum="md5:" + hashlib.md5(payloads[f.filename]).hexdigest(), size=None)
        for f in info.files
    )
    monkeypatch.setitem(DATASETS, name, replace(info, files=files))


def write_cifar_batch(path: Path, rng: np.random.Generator, n: int, label_key: str, k: int):
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = rng.integers(0, k, size=n).tolist()
    path.write_bytes(pickle.dumps({"data": data, label_key: labels, "filenames": ["a"] * n}, 2))
    return data, labels


def make_cifar10_folder(folder: Path, n: int = 2, seed: int = 0):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    parts = [write_cifar_batch(folder / f, rng, n, "labels", 10) for f in CIFAR10_FILES]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, payload in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(payload)
            tf.addfile(ti, io.BytesIO(payload))
    return buf.getvalue()


def tabular_text(rows: list[list[int]]) -> bytes:
    return "".join(",".join(map(str, r)) + "\n" for r in rows).encode()


def make_tabular_rows(rng: np.random.Generator, n: int, f: int, k: int) -> np.ndarray:
    """``n`` rows of ``label,f1..ff`` with 1-based labels and 0/1 features."""
    return np.column_stack([rng.integers(1, k + 1, n), rng.integers(0, 2, (n, f))])


def save_svhn_mat(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    import scipy.io

    scipy.io.savemat(path, {"X": x, "y": y.reshape(-1, 1)})


def make_tiles(folder: Path, classes: list[str], per_class: int, size: int, ext: str = ".tif"):
    from PIL import Image

    rng = np.random.default_rng(1)
    for cls in classes:
        (folder / cls).mkdir(parents=True)
        for j in range(per_class):
            pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / cls / f"tile_{j}{ext}")


# ----------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------


def test_data_len_subset_to_and_repr():
    d = Data(torch.arange(12.0).view(6, 2), torch.tensor([0, 1, 2, 0, 1, 2]), 3, "toy")
    assert len(d) == 6 and d.input_shape == (2,)
    s = d.subset(np.array([4, 0]))
    assert torch.equal(s.x, torch.tensor([[8.0, 9.0], [0.0, 1.0]]))
    assert s.y.tolist() == [1, 0] and s.num_classes == 3 and s.name == "toy"
    assert d.subset(torch.tensor([1])).y.tolist() == [1]
    assert d.subset([]).x.shape == (0, 2)
    assert d.subset(np.arange(6, dtype=np.uint32)[::-2]).y.tolist() == [2, 0, 1]
    mask = np.array([True, False, False, False, False, True])
    assert d.subset(mask).y.tolist() == [0, 2]
    assert d.to("cpu") is d
    assert repr(d) == "Data(name='toy', n=6, x=(6, 2) float32, num_classes=3, device=cpu)"


@pytest.mark.parametrize(
    ("x", "y", "k", "match"),
    [
        (torch.zeros(3, 2), torch.tensor([0, 1]), 2, "disagree on the number of samples"),
        (torch.zeros(2, 2), torch.tensor([0, 2]), 2, r"labels must lie in \[0, 2\)"),
        (torch.zeros(2, 2), torch.tensor([-1, 0]), 2, "labels must lie"),
        (torch.zeros(2, 2, dtype=torch.float64), torch.tensor([0, 1]), 2, "float32"),
        (torch.zeros(2, 2), torch.tensor([0, 1], dtype=torch.int32), 2, "int64"),
        (torch.zeros(2), torch.tensor([0, 1]), 2, r"shape \(N, \.\.\.\)"),
        (torch.zeros(2, 2), torch.tensor([[0, 1]]), 2, "1-D"),
        (torch.zeros(2, 2), torch.tensor([0, 0]), 0, "at least 1"),
    ],
)
def test_data_validates(x, y, k, match):
    with pytest.raises(ValueError, match=match):
        Data(x, y, k)


def test_data_rejects_numpy_and_bad_indices():
    with pytest.raises(TypeError, match="torch tensors"):
        Data(np.zeros((2, 2), np.float32), torch.tensor([0, 1]), 2)
    d = Data(torch.zeros(3, 1), torch.tensor([0, 1, 0]), 2)
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        d.subset(np.array([0, 3]))
    with pytest.raises(IndexError):
        d.subset(np.array([-1]))
    with pytest.raises(ValueError, match="integers"):
        d.subset(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="boolean mask"):
        d.subset(np.array([True, False]))


# ----------------------------------------------------------------------------------------
# Registry, data root, embedded datasets
# ----------------------------------------------------------------------------------------


def test_registry_matches_the_paper():
    expected = {
        "digits": ("image", 10, (1, 8, 8)),
        "mnist1d": ("signal", 10, (40,)),
        "mnist5k": ("image", 10, (1, 28, 28)),
        "cifar10": ("image", 10, (3, 32, 32)),
        "cifar100": ("image", 100, (3, 32, 32)),
        "svhn": ("image", 10, (3, 32, 32)),
        "chmnist": ("image", 8, (3, 32, 32)),
        "location": ("tabular", 30, (446,)),
        "purchase100": ("tabular", 100, (600,)),
        "texas100": ("tabular", 100, (6169,)),
    }
    assert {k: (v.kind, v.num_classes, v.input_shape) for k, v in DATASETS.items()} == expected
    assert {k for k, v in DATASETS.items() if v.embedded} == {"digits", "mnist1d", "mnist5k"}
    assert DATASETS["cifar10"].files[0].checksum == "md5:c58f30108f718f92721af3b95e74349a"
    assert DATASETS["cifar100"].mean == DATASETS["cifar10"].mean == (0.4914, 0.4822, 0.4465)
    assert DATASETS["chmnist"].std == (0.229, 0.224, 0.225)
    for info in DATASETS.values():
        for f in info.files:
            assert all(u.startswith(("https://", "http://")) for u in f.urls)


def test_registry_entries_carry_loader_layout_and_title():
    loaders_by_name = {
        "digits": loaders.load_digits,
        "mnist1d": loaders.load_mnist1d,
        "mnist5k": loaders.load_mnist5k,
        "cifar10": loaders.load_cifar,
        "cifar100": loaders.load_cifar,
        "svhn": loaders.load_svhn,
        "chmnist": loaders.load_chmnist,
        "location": loaders.load_tabular,
        "purchase100": loaders.load_tabular,
        "texas100": loaders.load_texas,
    }
    assert {k: v.loader for k, v in DATASETS.items()} == loaders_by_name
    assert all(isinstance(v, DatasetInfo) and v.name == k for k, v in DATASETS.items())
    batches = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    assert DATASETS["cifar10"].layout == ArchiveLayout(
        tuple(f"cifar-10-batches-py/{f}" for f in batches), label_key="labels"
    )
    assert DATASETS["cifar100"].layout == ArchiveLayout(
        ("cifar-100-python/train", "cifar-100-python/test"), label_key="fine_labels"
    )
    assert DATASETS["chmnist"].layout.members == ("Kather_texture_2016_image_tiles_5000",)
    assert DATASETS["purchase100"].layout.members == ("dataset_purchase",)
    assert DATASETS["location"].layout.members == ("bangkok",)
    assert DATASETS["texas100"].layout.members == ("texas/100/feats", "texas/100/labels")
    # read directly (SVHN's .mat files) or embedded: no archive layout
    no_layout = {"digits", "mnist1d", "mnist5k", "svhn"}
    assert {k for k, v in DATASETS.items() if v.layout is None} == no_layout
    assert DATASETS["cifar10"].title == "CIFAR-10" and DATASETS["mnist1d"].title == "MNIST-1D"
    assert DATASETS["cifar100"].title == "CIFAR-100" and DATASETS["texas100"].title == "Texas100"
    assert all(v.title for v in DATASETS.values())
    with pytest.raises(ValueError, match="at least one member"):
        ArchiveLayout(())


def test_load_dataset_calls_the_entrys_loader(monkeypatch):
    calls = []

    def fake(info, root, download, options):
        calls.append((info.name, root, download, options))
        return Data(torch.zeros(1, 40), torch.tensor([3]), info.num_classes, info.name)

    monkeypatch.setitem(DATASETS, "mnist1d", replace(DATASETS["mnist1d"], loader=fake))
    pool = load_dataset("MNIST_1D", root="somewhere", download=False, seed=1)
    assert calls == [("mnist1d", "somewhere", False, {"seed": 1})]
    assert pool.y.tolist() == [3]


def test_layout_is_required_by_archive_loaders(monkeypatch):
    monkeypatch.setitem(DATASETS, "location", replace(DATASETS["location"], layout=None))
    with pytest.raises(ValueError, match=r"DATASETS\['location'\] has no layout"):
        load_dataset("location")
    cifar = replace(DATASETS["cifar10"], layout=ArchiveLayout(("cifar-10-batches-py/test_batch",)))
    monkeypatch.setitem(DATASETS, "cifar10", cifar)
    with pytest.raises(ValueError, match="needs label_key"):
        load_dataset("cifar10")


def test_canonical_name_is_public_and_has_no_private_alias():
    assert canonical_name("CIFAR-10") == "cifar10" and canonical_name(" Mnist_1D ") == "mnist1d"
    assert canonical_name("purchase") == "purchase100" and canonical_name("Kather") == "chmnist"
    with pytest.raises(TypeError, match="must be a string"):
        canonical_name(10)
    with pytest.raises(KeyError, match="unknown dataset 'svhm'"):
        canonical_name("svhm")
    assert not hasattr(miakit.data, "_canonical_name")


def test_package_reexports_the_old_public_names():
    old = {
        "DATASETS", "DEV_SIZE", "DOWNLOAD_TIMEOUT_S", "TEST_SIZE", "ChecksumMismatchError",
        "Data", "DatasetInfo", "DatasetUnavailableError", "RemoteFile", "Split", "Splits",
        "data_root", "load_dataset", "paper_splits", "split_sizes",
    }  # fmt: skip
    assert old <= set(miakit.data.__all__)
    assert all(hasattr(miakit.data, n) for n in miakit.data.__all__)
    for name in miakit.splits.__all__:
        assert getattr(miakit.data, name) is getattr(miakit.splits, name)
    assert miakit.data.DOWNLOAD_TIMEOUT_S == 30.0


def test_import_miakit_data_stays_light():
    code = (
        "import sys, miakit.data; "
        "print(sorted(m for m in ('matplotlib', 'pandas', 'scipy', 'PIL', 'sklearn', "
        "'miakit.train', 'miakit.models', 'miakit.experiment') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_unknown_name_and_option():
    with pytest.raises(KeyError, match="unknown dataset 'cifar11'.*cifar10.*texas100"):
        load_dataset("cifar11")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['bogus'\].*accepts: none"):
        load_dataset("digits", bogus=1)
    with pytest.raises(TypeError, match="num_samples, seed"):
        load_dataset("mnist1d", samples=10)


def test_data_root_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("MIAKIT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_root() == tmp_path / "xdg" / "miakit" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data_root() == Path.home() / ".cache" / "miakit" / "data"
    monkeypatch.setenv("MIAKIT_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "arg") == tmp_path / "arg"


def test_digits_embedded():
    d = load_dataset("digits")
    assert d.x.shape == (1797, 1, 8, 8) and d.x.dtype == torch.float32
    assert d.num_classes == 10 and d.name == "digits" and set(d.y.tolist()) == set(range(10))
    assert abs(float(d.x.mean())) < 1e-5 and abs(float(d.x.std(unbiased=False)) - 1) < 1e-5
    assert torch.equal(d.x, load_dataset("DIGITS").x)


def test_mnist1d_embedded_deterministic_and_offline(monkeypatch, offline):
    import urllib.request

    def forbidden(*args, **kwargs):
        raise AssertionError("mnist1d must never download")

    monkeypatch.setattr(urllib.request, "urlopen", forbidden)
    requests = pytest.importorskip("requests")
    monkeypatch.setattr(requests, "get", forbidden)

    np.random.seed(0)
    a = load_dataset("mnist1d", num_samples=200, seed=3)
    after = np.random.rand()  # the global numpy RNG is left as it was
    np.random.seed(0)
    assert after == np.random.rand()
    b = load_dataset("MNIST-1D", num_samples=200, seed=3)
    c = load_dataset("mnist1d", num_samples=200, seed=4)
    assert a.x.shape == (200, 40) and a.x.dtype == torch.float32 and a.num_classes == 10
    assert torch.bincount(a.y).tolist() == [20] * 10
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)
    assert offline == []
    with pytest.raises(ValueError, match="multiple of 10"):
        load_dataset("mnist1d", num_samples=205)


# ----------------------------------------------------------------------------------------
# Raw-format parsers and the download flow, on tiny files in the published formats
# ----------------------------------------------------------------------------------------


def test_parse_cifar10_batches_and_torchvision_normalisation(tmp_path):
    from PIL import Image
    from torchvision import transforms

    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    raw, labels = make_cifar10_folder(folder)
    x, y = formats.parse_cifar(folder, CIFAR10_FILES, label_key="labels")
    assert x.shape == (12, 3, 32, 32) and x.dtype == np.uint8
    assert np.array_equal(x.reshape(12, -1), raw)  # train batches first, then test
    assert y.tolist() == labels.tolist()

    # The extracted folder placed by hand is used as is (no archive, no download).
    with pytest.warns(UserWarning, match="pool has 12 samples"):
        pool = load_dataset("cifar10", root=tmp_path)
    info = DATASETS["cifar10"]
    tv = transforms.Compose([transforms.ToTensor(), transforms.Normalize(info.mean, info.std)])
    for i in (0, 11):
        expected = tv(Image.fromarray(raw[i].reshape(3, 32, 32).transpose(1, 2, 0)))
        assert torch.allclose(pool.x[i], expected, atol=1e-6, rtol=0)
    assert pool.y.tolist() == labels.tolist() and pool.num_classes == 10


def test_parse_cifar100(tmp_path):
    rng = np.random.default_rng(2)
    train, train_y = write_cifar_batch(tmp_path / "train", rng, 3, "fine_labels", 100)
    test, test_y = write_cifar_batch(tmp_path / "test", rng, 2, "fine_labels", 100)
    x, y = formats.parse_cifar(tmp_path, ["train", "test"], label_key="fine_labels")
    assert np.array_equal(x.reshape(5, -1), np.concatenate([train, test]))
    assert y.tolist() == train_y + test_y


def test_cifar_pickle_cannot_run_code(tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "test_batch").write_bytes(pickle.dumps({"data": Evil(), "labels": []}))
    with pytest.raises(DataError, match="refusing to load builtins.print") as e:
        formats.parse_cifar(tmp_path, ["test_batch"], label_key="labels")
    assert str(tmp_path / "test_batch") in str(e.value) and "pwned" not in capsys.readouterr().out


def test_cifar_download_extract_parse_and_cache(monkeypatch, tmp_path):
    src = tmp_path / "src"
    raw, labels = make_cifar10_folder(src / "cifar-10-batches-py", n=1)
    archive = tar_bytes(
        {
            f"cifar-10-batches-py/{f}": (src / "cifar-10-batches-py" / f).read_bytes()
            for f in CIFAR10_FILES
        }
    )
    with_checksum(monkeypatch, "cifar10", {"cifar-10-python.tar.gz": archive})
    fetched = serve(monkeypatch, {"cifar-10-python.tar.gz": archive})
    root = tmp_path / "root"
    with pytest.warns(UserWarning, match="pool has 6"):
        first = load_dataset("cifar10", root=root)
    assert fetched == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
    assert (root / "cifar10" / "cifar-10-python.tar.gz").read_bytes() == archive
    assert (root / "cifar10" / "cifar10-pool-v1.npz").is_file()
    assert not list((root / "cifar10").glob(".*"))  # no temporary files left behind
    assert first.y.tolist() == labels.tolist()

    # The parsed cache is used next time, even with the raw files gone and no network.
    (root / "cifar10" / "cifar-10-python.tar.gz").unlink()
    shutil.rmtree(root / "cifar10" / "cifar-10-batches-py")
    monkeypatch.setattr(dl, "download_file", lambda *a, **k: pytest.fail("downloaded twice"))
    with pytest.warns(UserWarning):
        second = load_dataset("cifar10", root=root)
    assert torch.equal(first.x, second.x) and torch.equal(first.y, second.y)


def test_pool_cache_write_failure_only_warns(monkeypatch, tmp_path):
    x, y = np.arange(6, dtype=np.uint8).reshape(3, 2), np.array([0, 1, 0])

    def read_only(path, write):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(miakit.data.pool, "atomic_write", read_only)
    with pytest.warns(UserWarning, match="parsed again next time"):
        got = dl.cached_pool(tmp_path, "toy", lambda: (x, y))
    assert got[0] is x and got[1] is y and list(tmp_path.iterdir()) == []

    monkeypatch.undo()
    dl.cached_pool(tmp_path, "toy", lambda: (x, y))
    assert [p.name for p in tmp_path.iterdir()] == ["toy-pool-v1.npz"]
    again = dl.cached_pool(tmp_path, "toy", lambda: pytest.fail("parsed twice"))
    assert np.array_equal(again[0], x) and np.array_equal(again[1], y)


def test_parse_svhn_mat_and_load(monkeypatch, tmp_path):
    rng = np.random.default_rng(3)
    xtr = rng.integers(0, 256, (32, 32, 3, 3), dtype=np.uint8)
    xte = rng.integers(0, 256, (32, 32, 3, 2), dtype=np.uint8)
    save_svhn_mat(tmp_path / "train_32x32.mat", xtr, np.array([10, 1, 9]))
    save_svhn_mat(tmp_path / "test_32x32.mat", xte, np.array([3, 10]))
    x, y = formats.parse_svhn([tmp_path / "train_32x32.mat", tmp_path / "test_32x32.mat"])
    assert y.tolist() == [0, 1, 9, 3, 0]  # label 10 is digit 0
    assert x.shape == (5, 3, 32, 32)
    assert np.array_equal(x[1], xtr[:, :, :, 1].transpose(2, 0, 1))
    assert np.array_equal(x[4], xte[:, :, :, 1].transpose(2, 0, 1))

    payloads = {n: (tmp_path / n).read_bytes() for n in ("train_32x32.mat", "test_32x32.mat")}
    with_checksum(monkeypatch, "svhn", payloads)
    serve(monkeypatch, payloads)
    with pytest.warns(UserWarning, match="pool has 5"):
        pool = load_dataset("svhn", root=tmp_path / "root")
    expected = (torch.from_numpy(x[2]).float() / 255 - 0.5) / 0.5
    assert torch.allclose(pool.x[2], expected, atol=1e-6) and pool.y.tolist() == y.tolist()


def test_parse_chmnist_matches_torchvision_imagefolder(tmp_path):
    from torchvision import datasets, transforms

    make_tiles(tmp_path, ["02_STROMA", "01_TUMOR"], per_class=2, size=150)
    (tmp_path / "01_TUMOR" / "notes.txt").write_text("not an image")
    x, y, classes = formats.parse_chmnist(tmp_path)
    assert classes == ("01_TUMOR", "02_STROMA") and y.tolist() == [0, 0, 1, 1]
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.uint8
    mean, std = DATASETS["chmnist"].mean, DATASETS["chmnist"].std
    ours = loaders.normalise_images(x, mean, std)
    tv = datasets.ImageFolder(
        tmp_path,
        transform=transforms.Compose(
            [transforms.Resize((32, 32)), transforms.ToTensor(), transforms.Normalize(mean, std)]
        ),
    )
    for i in range(4):
        img, label = tv[i]
        assert label == y[i] and torch.allclose(ours[i], img, atol=1e-6, rtol=0)


def test_chmnist_zip_flow_and_class_count(monkeypatch, tmp_path):
    tiles = tmp_path / "tiles" / "Kather_texture_2016_image_tiles_5000"
    classes = [
        "01_TUMOR",
        "02_STROMA",
        "03_COMPLEX",
        "04_LYMPHO",
        "05_DEBRIS",
        "06_MUCOSA",
        "07_ADIPOSE",
        "08_EMPTY",
    ]
    make_tiles(tiles, classes, per_class=1, size=40)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(tiles.rglob("*.tif")):
            zf.write(p, p.relative_to(tiles.parent).as_posix())
    payload = buf.getvalue()
    with_checksum(monkeypatch, "chmnist", {"Kather_texture_2016_image_tiles_5000.zip": payload})
    serve(monkeypatch, {"Kather_texture_2016_image_tiles_5000.zip": payload})
    with pytest.warns(UserWarning, match="pool has 8"):
        pool = load_dataset("chmnist", root=tmp_path / "root")
    assert pool.x.shape == (8, 3, 32, 32) and pool.y.tolist() == list(range(8))

    shutil.rmtree(tiles / "08_EMPTY")  # a hand-placed folder with a class missing
    (tmp_path / "tiles").rename(tmp_path / "chmnist")
    with pytest.raises(ValueError, match="7 class folders"):
        load_dataset("chmnist", root=tmp_path, download=False)


@pytest.mark.parametrize(
    ("name", "member", "f", "k"),
    [
        ("purchase100", "dataset_purchase", 600, 100),
        ("location", "bangkok", 446, 30),
    ],
)
def test_parse_label_first_tabular(tmp_path, name, member, f, k):
    rows = make_tabular_rows(np.random.default_rng(4), 5, f, k)
    rows[0, 0], rows[1, 0] = 1, k  # both ends of the 1-based label range
    path = tmp_path / member
    path.write_bytes(tabular_text(rows.tolist()))
    x, y = formats.parse_tabular(path, num_features=f, num_classes=k)
    assert x.shape == (5, f) and np.array_equal(x, rows[:, 1:])
    assert y.dtype == np.int64 and y.tolist() == (rows[:, 0] - 1).tolist()

    path.write_bytes(tabular_text(rows[:, :-1].tolist()))
    with pytest.raises(ValueError, match=f"expected {f + 1} columns"):
        formats.parse_tabular(path, num_features=f, num_classes=k)
    bad = rows.copy()
    bad[2, 5] = 2
    path.write_bytes(tabular_text(bad.tolist()))
    with pytest.raises(ValueError, match="binary 0/1"):
        formats.parse_tabular(path, num_features=f, num_classes=k)
    bad = rows.copy()
    bad[0, 0] = 0
    path.write_bytes(tabular_text(bad.tolist()))
    with pytest.raises(ValueError, match=f"1-based in 1..{k}"):
        formats.parse_tabular(path, num_features=f, num_classes=k)
    path.write_bytes(b"1,0,x\n")
    with pytest.raises(ValueError, match="could not parse"):
        formats.parse_tabular(path, num_features=2, num_classes=k)


def test_parse_texas(tmp_path):
    rows = make_tabular_rows(np.random.default_rng(5), 4, 6169, 100)
    (tmp_path / "feats").write_bytes(tabular_text(rows[:, 1:].tolist()))
    (tmp_path / "labels").write_bytes(tabular_text(rows[:, :1].tolist()))
    x, y = formats.parse_texas(
        tmp_path / "feats", tmp_path / "labels", num_features=6169, num_classes=100
    )
    assert np.array_equal(x, rows[:, 1:]) and y.tolist() == (rows[:, 0] - 1).tolist()
    (tmp_path / "labels").write_bytes(tabular_text(rows[:3, :1].tolist()))
    with pytest.raises(ValueError, match="one label per line for the 4 rows"):
        formats.parse_texas(
            tmp_path / "feats", tmp_path / "labels", num_features=6169, num_classes=100
        )


@pytest.mark.parametrize("name", ["purchase100", "location", "texas100"])
def test_tabular_tgz_flow(monkeypatch, tmp_path, name):
    info = DATASETS[name]
    (f,), k = info.input_shape, info.num_classes
    rows = make_tabular_rows(np.random.default_rng(6), 3, f, k)
    if name == "texas100":
        members = {
            "texas/100/feats": tabular_text(rows[:, 1:].tolist()),
            "texas/100/labels": tabular_text(rows[:, :1].tolist()),
        }
    else:
        members = {info.layout.members[0]: tabular_text(rows.tolist())}
    archive = info.files[0].filename
    serve(monkeypatch, {archive: tar_bytes(members)})  # no published checksum: not verified
    with pytest.warns(UserWarning, match="pool has 3"):
        pool = load_dataset(name, root=tmp_path)
    assert pool.x.dtype == torch.float32 and pool.x.shape == (3, f)
    assert torch.equal(pool.x, torch.from_numpy(rows[:, 1:]).float())
    assert pool.y.tolist() == (rows[:, 0] - 1).tolist() and pool.num_classes == k


# ----------------------------------------------------------------------------------------
# Checksums and the offline error
# ----------------------------------------------------------------------------------------


def test_checksum_mismatch_on_disk_is_not_used(tmp_path):
    folder = tmp_path / "svhn"
    folder.mkdir()
    (folder / "train_32x32.mat").write_bytes(b"not the published file")
    with pytest.raises(ChecksumMismatchError, match="md5 e26dedcc434d2e4c54c9b2d4a06d8373") as e:
        load_dataset("svhn", root=tmp_path)
    assert str(folder / "train_32x32.mat") in str(e.value) and "was not used" in str(e.value)
    assert not (folder / "svhn-pool-v1.npz").exists()


def test_checksum_mismatch_on_download_deletes_it(monkeypatch, tmp_path):
    serve(monkeypatch, {"cifar-10-python.tar.gz": b"<html>rate limited</html>"})
    with pytest.raises(ChecksumMismatchError, match="checksum mismatch.*downloaded from"):
        load_dataset("cifar10", root=tmp_path)
    assert list((tmp_path / "cifar10").iterdir()) == []  # neither the file nor a .part


def test_size_mismatch(monkeypatch, tmp_path):
    serve(monkeypatch, {"Kather_texture_2016_image_tiles_5000.zip": b"short"})
    with pytest.raises(ChecksumMismatchError, match="expected 258098431 bytes, got 5"):
        load_dataset("chmnist", root=tmp_path)


def test_offline_error_names_file_url_and_path(tmp_path, offline):
    with pytest.raises(DatasetUnavailableError) as e:
        load_dataset("cifar10", root=tmp_path)
    msg = str(e.value)
    target = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    assert isinstance(e.value, FileNotFoundError)
    assert "cifar-10-python.tar.gz" in msg and str(target) in msg
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in msg
    assert "Name or service not known" in msg
    assert f"{tmp_path / 'cifar10' / 'cifar-10-batches-py'} exists" in msg
    assert offline == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
    assert list((tmp_path / "cifar10").iterdir()) == []

    offline.clear()
    with pytest.raises(DatasetUnavailableError, match="not verified") as e:
        load_dataset("purchase100", root=tmp_path)
    assert len(offline) == 2  # canonical source, then the mirror
    assert str(tmp_path / "purchase100" / "dataset_purchase.tgz") in str(e.value)

    offline.clear()
    with pytest.raises(DatasetUnavailableError, match="download=False"):
        load_dataset("svhn", root=tmp_path, download=False)
    assert offline == []
