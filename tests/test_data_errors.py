"""A bad dataset file gives one DataError line: the file, what is wrong, what to do.

Table-driven (issue 10, item 5): each case writes a corrupt, truncated, garbled or
wrong-format file where the real raw format lives under a fresh data root (a CIFAR
batch, an SVHN ``.mat``, a CHMNIST tile, a tabular text file, an archive, the pool
``.npz`` cache), calls the public :func:`miakit.data.load_dataset`, and checks the
error: a :class:`DataError` (so a ``ValueError``), one line, naming the file, never
numpy's advice to load a file "unsafely", and saying how to replace it. No test touches
the network.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import traceback
import urllib.error
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from miakit.data import DATASETS, ChecksumMismatchError, DataError, load_dataset
from miakit.data import download as dl

CIFAR10 = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
CHMNIST_CLASSES = [f"0{i}_CLASS" for i in range(1, 9)]
RNG_BYTES = np.random.default_rng(0).bytes(4096)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    def no_network(url, dest, *, timeout):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(dl, "download_file", no_network)


# ----------------------------------------------------------------------------------------
# Writers of the raw formats (good files, which each case then spoils)
# ----------------------------------------------------------------------------------------


def cifar_batch(n: int, label_key: str, k: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    return pickle.dumps({"data": data, label_key: rng.integers(0, k, n).tolist()}, 2)


def cifar10_folder(root: Path) -> Path:
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, f in enumerate(CIFAR10):
        (folder / f).write_bytes(cifar_batch(1, "labels", 10, seed=i))
    return folder


def tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def tabular_rows(n: int, f: int, k: int, *, label: bool = True) -> bytes:
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 2, (n, f))
    if label:
        rows = np.column_stack([rng.integers(1, k + 1, n), rows])
    return "".join(",".join(map(str, r)) + "\n" for r in rows.tolist()).encode()


def png_bytes(size: int = 8) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    pixels = np.random.default_rng(2).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def chmnist_folder(root: Path) -> Path:
    folder = root / "chmnist" / "Kather_texture_2016_image_tiles_5000"
    for cls in CHMNIST_CLASSES:
        (folder / cls).mkdir(parents=True)
        (folder / cls / "tile.png").write_bytes(png_bytes())
    return folder


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def svhn_mat(n: int) -> bytes:
    import scipy.io

    buf = io.BytesIO()
    x = np.zeros((32, 32, 3, n), dtype=np.uint8)
    scipy.io.savemat(buf, {"X": x, "y": np.ones((n, 1), dtype=np.uint8)})
    return buf.getvalue()


def trust(monkeypatch, name: str, payloads: dict[str, bytes]) -> None:
    """Point the entry's checksums at the test's files, so that their content is parsed."""
    info = DATASETS[name]
    files = tuple(
        replace(f, checksum="md5:" + hashlib.md5(payloads[f.filename]).hexdigest(), size=None)
        for f in info.files
    )
    monkeypatch.setitem(DATASETS, name, replace(info, files=files))


def place(path: Path, payload: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path


# ----------------------------------------------------------------------------------------
# The cases: each spoils one file and returns (dataset, the bad file, advice it must give)
# ----------------------------------------------------------------------------------------

Case = Callable[[Path, pytest.MonkeyPatch], tuple[str, Path, str]]


def cifar_batch_random_bytes(root, mp):
    bad = place(cifar10_folder(root) / "data_batch_3", RNG_BYTES)
    return "cifar10", bad, "load_dataset('cifar10') again to extract it afresh"


def cifar_batch_truncated(root, mp):
    folder = cifar10_folder(root)
    good = (folder / "test_batch").read_bytes()
    bad = place(folder / "test_batch", good[: len(good) // 2])
    return "cifar10", bad, str(folder)


def cifar_batch_empty(root, mp):
    return "cifar10", place(cifar10_folder(root) / "data_batch_1", b""), "it is empty"


def cifar_batch_not_a_dict(root, mp):
    folder = root / "cifar100" / "cifar-100-python"
    place(folder / "train", cifar_batch(2, "fine_labels", 100))
    bad = place(folder / "test", pickle.dumps([1, 2, 3], 2))
    return "cifar100", bad, "cifar-100-python.tar.gz"


def cifar_batch_wrong_shape(root, mp):
    folder = root / "cifar100" / "cifar-100-python"
    place(folder / "train", cifar_batch(2, "fine_labels", 100))
    payload = {"data": np.zeros((2, 100), np.uint8), "fine_labels": [0, 1]}
    return "cifar100", place(folder / "test", pickle.dumps(payload, 2)), "Delete"


def cifar_batch_labels_out_of_range(root, mp):
    payload = {"data": np.zeros((1, 3072), np.uint8), "labels": [10]}
    return "cifar10", place(cifar10_folder(root) / "data_batch_2", pickle.dumps(payload)), "Delete"


def cifar_archive_garbage_on_disk(root, mp):
    bad = place(root / "cifar10" / "cifar-10-python.tar.gz", RNG_BYTES)
    return "cifar10", bad, "md5 c58f30108f718f92721af3b95e74349a"


def purchase_archive_truncated(root, mp):
    archive = tar_gz({"dataset_purchase": tabular_rows(50, 600, 100)})
    bad = place(root / "purchase100" / "dataset_purchase.tgz", archive[: len(archive) // 2])
    return "purchase100", bad, "it is truncated. Delete it and call load_dataset"


def purchase_archive_random_bytes(root, mp):
    bad = place(root / "purchase100" / "dataset_purchase.tgz", RNG_BYTES)
    return "purchase100", bad, "no published checksum is known"


def purchase_download_is_html(root, mp):
    def html_page(url, dest, *, timeout):
        Path(dest).write_bytes(b"<html>rate limited</html>")

    mp.setattr(dl, "download_file", html_page)
    return "purchase100", root / "purchase100" / "dataset_purchase.tgz", "garbled"


def texas_archive_without_members(root, mp):
    archive = tar_gz({"texas/100/readme": b"hello"})
    bad = place(root / "texas100" / "dataset_texas.tgz", archive)
    return "texas100", bad, "Delete it (and the files it extracted)"


def location_archive_unsafe_path(root, mp):
    archive = tar_gz({"../escape": b"1,0\n", "bangkok": tabular_rows(2, 446, 30)})
    bad = place(root / "location" / "dataset_location.tgz", archive)
    return "location", bad, "download it again"


def location_text_wrong_columns(root, mp):
    return "location", place(root / "location" / "bangkok", tabular_rows(3, 10, 30)), "Delete"


def location_text_ragged(root, mp):
    payload = tabular_rows(3, 446, 30) + b"1,0,1\n"
    return "location", place(root / "location" / "bangkok", payload), "Delete"


def purchase_text_binary(root, mp):
    bad = place(root / "purchase100" / "dataset_purchase", RNG_BYTES)
    return "purchase100", bad, "dataset_purchase.tgz"


def purchase_text_empty(root, mp):
    return "purchase100", place(root / "purchase100" / "dataset_purchase", b""), "Delete"


def purchase_text_not_integers(root, mp):
    payload = tabular_rows(2, 600, 100) + b"1" + b",0.5" * 600 + b"\n"
    return "purchase100", place(root / "purchase100" / "dataset_purchase", payload), "Delete"


def texas_labels_wrong_count(root, mp):
    place(root / "texas100" / "texas" / "100" / "feats", tabular_rows(3, 6169, 0, label=False))
    bad = place(root / "texas100" / "texas" / "100" / "labels", b"1\n2\n")
    return "texas100", bad, str(root / "texas100" / "texas")


def texas_feats_wrong_columns(root, mp):
    bad = place(root / "texas100" / "texas" / "100" / "feats", tabular_rows(2, 7, 0, label=False))
    place(root / "texas100" / "texas" / "100" / "labels", b"1\n2\n")
    return "texas100", bad, "Delete"


def svhn_mat_garbage(root, mp):
    payloads = {"train_32x32.mat": svhn_mat(2), "test_32x32.mat": RNG_BYTES}
    trust(mp, "svhn", payloads)
    for name, payload in payloads.items():
        place(root / "svhn" / name, payload)
    return "svhn", root / "svhn" / "test_32x32.mat", "load_dataset('svhn') to download it again"


def svhn_mat_without_x(root, mp):
    import scipy.io

    buf = io.BytesIO()
    scipy.io.savemat(buf, {"y": np.ones((2, 1))})
    payloads = {"train_32x32.mat": buf.getvalue(), "test_32x32.mat": svhn_mat(1)}
    trust(mp, "svhn", payloads)
    for name, payload in payloads.items():
        place(root / "svhn" / name, payload)
    return "svhn", root / "svhn" / "train_32x32.mat", "Delete"


def svhn_mat_checksum_mismatch(root, mp):
    bad = place(root / "svhn" / "train_32x32.mat", svhn_mat(1))
    return "svhn", bad, "md5 e26dedcc434d2e4c54c9b2d4a06d8373"


def chmnist_tile_not_an_image(root, mp):
    bad = place(chmnist_folder(root) / CHMNIST_CLASSES[4] / "tile.png", RNG_BYTES)
    return "chmnist", bad, str(root / "chmnist" / "Kather_texture_2016_image_tiles_5000")


def chmnist_tile_truncated(root, mp):
    bad = place(chmnist_folder(root) / CHMNIST_CLASSES[0] / "tile.png", png_bytes()[:60])
    return "chmnist", bad, "Kather_texture_2016_image_tiles_5000.zip"


def chmnist_class_missing(root, mp):
    folder = chmnist_folder(root)
    for f in (folder / CHMNIST_CLASSES[7]).iterdir():
        f.unlink()
    (folder / CHMNIST_CLASSES[7]).rmdir()
    return "chmnist", folder, "Delete"


def chmnist_zip_truncated(root, mp):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for cls in CHMNIST_CLASSES:
            zf.writestr(f"Kather_texture_2016_image_tiles_5000/{cls}/t.png", png_bytes())
    payload = buf.getvalue()[:-30]
    trust(mp, "chmnist", {"Kather_texture_2016_image_tiles_5000.zip": payload})
    bad = place(root / "chmnist" / "Kather_texture_2016_image_tiles_5000.zip", payload)
    return "chmnist", bad, "download it again"


def pool(root: Path, name: str, payload: bytes) -> Path:
    return place(root / name / f"{name}-pool-v1.npz", payload)


def pool_random_bytes(root, mp):
    return "purchase100", pool(root, "purchase100", RNG_BYTES), "Delete it"


def pool_object_array(root, mp):
    payload = npz_bytes(x=np.array([None, 1], dtype=object), y=np.zeros(2, np.int64))
    return "cifar10", pool(root, "cifar10", payload), "raw files are parsed again"


def pool_truncated(root, mp):
    payload = npz_bytes(x=np.zeros((4, 3, 32, 32), np.uint8), y=np.zeros(4, np.int64))
    return "cifar10", pool(root, "cifar10", payload[: len(payload) // 2]), "Delete it"


def pool_damaged_member(root, mp):
    payload = bytearray(npz_bytes(x=np.zeros((4, 600), np.uint8), y=np.zeros(4, np.int64)))
    payload[200:210] = b"\xff" * 10  # inside x's data: the zip's CRC no longer matches
    return "purchase100", pool(root, "purchase100", bytes(payload)), "Delete it"


def pool_wrong_keys(root, mp):
    payload = npz_bytes(x=np.zeros((2, 446), np.uint8))
    return "location", pool(root, "location", payload), "Delete it"


def pool_wrong_shape(root, mp):
    payload = npz_bytes(x=np.zeros((2, 3, 8, 8), np.uint8), y=np.zeros(2, np.int64))
    return "svhn", pool(root, "svhn", payload), "Delete it"


def pool_labels_out_of_range(root, mp):
    payload = npz_bytes(x=np.zeros((2, 446), np.uint8), y=np.array([0, 30]))
    return "location", pool(root, "location", payload), "Delete it"


def pool_is_a_plain_npy(root, mp):
    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 446), np.uint8))
    return "location", pool(root, "location", buf.getvalue()), "Delete it"


CASES: list[Case] = [
    cifar_batch_random_bytes,
    cifar_batch_truncated,
    cifar_batch_empty,
    cifar_batch_not_a_dict,
    cifar_batch_wrong_shape,
    cifar_batch_labels_out_of_range,
    cifar_archive_garbage_on_disk,
    purchase_archive_truncated,
    purchase_archive_random_bytes,
    purchase_download_is_html,
    texas_archive_without_members,
    location_archive_unsafe_path,
    location_text_wrong_columns,
    location_text_ragged,
    purchase_text_binary,
    purchase_text_empty,
    purchase_text_not_integers,
    texas_labels_wrong_count,
    texas_feats_wrong_columns,
    svhn_mat_garbage,
    svhn_mat_without_x,
    svhn_mat_checksum_mismatch,
    chmnist_tile_not_an_image,
    chmnist_tile_truncated,
    chmnist_class_missing,
    chmnist_zip_truncated,
    pool_random_bytes,
    pool_object_array,
    pool_truncated,
    pool_damaged_member,
    pool_wrong_keys,
    pool_wrong_shape,
    pool_labels_out_of_range,
    pool_is_a_plain_npy,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_a_bad_file_is_one_data_error_line(case, tmp_path, monkeypatch):
    root = tmp_path / "data"
    name, bad, advice = case(root, monkeypatch)
    with pytest.raises(DataError) as e:
        load_dataset(name, root=root)
    msg = str(e.value)
    assert isinstance(e.value, ValueError)
    assert "\n" not in msg and msg.strip() == msg
    assert msg.startswith(f"{bad}: ") and e.value.path == bad
    assert advice in msg
    assert f"load_dataset({name!r})" in msg  # what to do, with the function to call
    shown = "".join(traceback.format_exception(e.value))  # what a notebook would print
    assert "allow_pickle" not in shown and "unsafely" not in shown


def test_checksum_mismatch_is_a_data_error_and_says_so(tmp_path):
    name, bad, _ = cifar_archive_garbage_on_disk(tmp_path, None)
    with pytest.raises(ChecksumMismatchError) as e:
        load_dataset(name, root=tmp_path)
    actual = hashlib.md5(RNG_BYTES).hexdigest()
    assert isinstance(e.value, DataError)
    assert "checksum mismatch for cifar-10-python.tar.gz (the file on disk)" in str(e.value)
    assert f"got {actual}" in str(e.value) and "was not used" in str(e.value)
    assert bad.read_bytes() == RNG_BYTES  # a copy placed by hand is left alone


def test_a_garbage_download_with_a_known_checksum_is_deleted(tmp_path, monkeypatch):
    def html_page(url, dest, *, timeout):
        Path(dest).write_bytes(b"<html>rate limited</html>")

    monkeypatch.setattr(dl, "download_file", html_page)
    with pytest.raises(ChecksumMismatchError) as e:
        load_dataset("cifar100", root=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "downloaded from https://www.cs.toronto.edu" in msg
    assert "md5 eb9058c3a382ffc7106e4002c42a8d85" in msg and "deleted and not used" in msg
    assert list((tmp_path / "cifar100").iterdir()) == []


def test_a_bad_archive_leaves_nothing_extracted(tmp_path):
    name, _, _ = location_archive_unsafe_path(tmp_path, None)
    with pytest.raises(DataError, match="unsafe member path"):
        load_dataset(name, root=tmp_path)
    assert sorted(p.name for p in (tmp_path / "location").iterdir()) == ["dataset_location.tgz"]
    assert not (tmp_path / "escape").exists()


def test_a_data_error_survives_pickling_for_worker_processes(tmp_path):
    err = DataError(tmp_path / "f", "is truncated", "Delete it.")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is DataError and str(back) == str(err) and back.path == err.path


@pytest.mark.parametrize("errno_", [5, None], ids=["io-fault", "decoder-complaint"])
def test_system_errors_are_not_data_errors(tmp_path, monkeypatch, errno_):
    """An operating-system fault while reading (errno set: EIO, EACCES) is not called a
    corrupt file; a decoder's own OSError (no errno, as Pillow raises) is."""
    import PIL.Image

    chmnist_folder(tmp_path)

    def failing_open(path, *args, **kwargs):
        raise OSError(errno_, "Input/output error") if errno_ else OSError("broken PNG")

    monkeypatch.setattr(PIL.Image, "open", failing_open)
    expected = OSError if errno_ else DataError
    with pytest.raises(expected) as e:
        load_dataset("chmnist", root=tmp_path)
    assert isinstance(e.value, DataError) == (errno_ is None)
