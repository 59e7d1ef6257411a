"""The authors' own data files: ``load_dataset(name, source="authors")``.

PAPER.md, "Data and splits": the authors read Purchase100 from ``purchase100.txt``
(``np.loadtxt(..., delimiter=",")``, features then the 0-based label in the last column)
and Location / Texas100 from MemGuard's ``data_complete.npz`` (arrays ``x`` and 1-based
``y``, minus 1). Every test writes tiny files in exactly those formats and checks that
the records come back in the file's order with the authors' labels (read here with the
authors' own recipe), that the source is an explicit choice with its own pool cache, and
that a bad authors' file is one DataError line. No test touches the network.
"""

from __future__ import annotations

import io
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

from miakit.data import DATASETS, DataError, DatasetUnavailableError, load_dataset, paper_splits
from miakit.data.authors import parse_authors_purchase, parse_memguard_npz

TABULAR = ["purchase100", "location", "texas100"]


#: No test here reaches the network: every download fails as offline (``conftest.py``).
pytestmark = pytest.mark.usefixtures("offline")


# ----------------------------------------------------------------------------------------
# Writers of the authors' formats, and the authors' own way of reading them
# ----------------------------------------------------------------------------------------


def records(seed: int, n: int, f: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` records of 0/1 features and 0-based labels, both label ends included."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, (n, f))
    y = rng.integers(0, k, n)
    y[0], y[-1] = 0, k - 1
    return x, y


def purchase_txt(x: np.ndarray, y: np.ndarray, *, fmt: str = "%.18e") -> bytes:
    """The authors' ``purchase100.txt``: ``f1,...,fF,label`` (np.savetxt's default
    ``%.18e`` unless ``fmt`` says otherwise)."""
    buf = io.StringIO()
    np.savetxt(buf, np.column_stack([x, y]), delimiter=",", fmt=fmt)
    return buf.getvalue().encode()


def memguard_npz(x: np.ndarray, y_one_based: np.ndarray) -> bytes:
    """MemGuard's ``data_complete.npz``: ``np.savez(path, x=..., y=...)``."""
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y_one_based)
    return buf.getvalue()


def authors_read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The pool as the authors' ``get_dataset`` builds it (datasets.py)."""
    if path.suffix == ".txt":
        table = np.loadtxt(path, delimiter=",")
        return table[:, :-1].astype(np.float32), table[:, -1].astype(np.int64)
    z = np.load(path)
    return z["x"].astype(np.float32), (z["y"] - 1).astype(np.int64)


def place(path: Path, payload: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path


def authors_file(root: Path, name: str, seed: int = 0, n: int = 7) -> Path:
    """A good authors' file for ``name`` under ``root`` (features in float64 for npz, as
    MemGuard's are floats, labels 1-based)."""
    info = DATASETS[name]
    (f,), k = info.input_shape, info.num_classes
    x, y = records(seed, n, f, k)
    path = root / name / str(info.authors_file)
    if path.suffix == ".txt":
        return place(path, purchase_txt(x, y))
    return place(path, memguard_npz(x.astype(np.float64), (y + 1).astype(np.float64)))


def shokri_text(x: np.ndarray, y: np.ndarray) -> bytes:
    """Shokri et al.'s release: ``label,f1,...,fF`` with a 1-based label."""
    rows = np.column_stack([y + 1, x]).tolist()
    return "".join(",".join(map(str, r)) + "\n" for r in rows).encode()


# ----------------------------------------------------------------------------------------
# The parsers
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["%.18e", "%d"], ids=["savetxt-default", "integers"])
def test_purchase_txt_label_last_zero_based_in_file_order(tmp_path, fmt):
    x, y = records(1, 9, 600, 100)
    path = place(tmp_path / "purchase100.txt", purchase_txt(x, y, fmt=fmt))
    got_x, got_y = parse_authors_purchase(path, num_features=600, num_classes=100)
    assert got_x.dtype == np.uint8 and got_y.dtype == np.int64
    assert np.array_equal(got_x, x) and got_y.tolist() == y.tolist()
    ax, ay = authors_read(path)
    assert np.array_equal(got_x, ax) and np.array_equal(got_y, ay)


def test_purchase_txt_is_read_in_chunks_across_boundaries(tmp_path, monkeypatch):
    import miakit.data.authors as authors

    monkeypatch.setattr(authors, "_ROWS_PER_CHUNK", 3)
    x, y = records(2, 8, 5, 4)
    path = place(tmp_path / "purchase100.txt", purchase_txt(x, y))
    got_x, got_y = parse_authors_purchase(path, num_features=5, num_classes=4)
    assert np.array_equal(got_x, x) and got_y.tolist() == y.tolist()
    bad = x.copy()
    bad[6, 1] = 3  # record 7, in the third chunk
    place(path, purchase_txt(bad, y))
    with pytest.raises(DataError, match=r"found 3.0 in record 7 \(feature 2\)"):
        parse_authors_purchase(path, num_features=5, num_classes=4)


@pytest.mark.parametrize(
    ("x_dtype", "y_dtype"),
    [(np.float64, np.float64), (np.int64, np.int64), (np.uint8, np.int32), (bool, np.float32)],
)
def test_memguard_npz_x_and_one_based_y_in_file_order(tmp_path, x_dtype, y_dtype):
    x, y = records(3, 11, 446, 30)
    path = place(
        tmp_path / "data_complete.npz", memguard_npz(x.astype(x_dtype), (y + 1).astype(y_dtype))
    )
    got_x, got_y = parse_memguard_npz(path, num_features=446, num_classes=30)
    assert got_x.dtype == np.uint8 and np.array_equal(got_x, x)
    assert got_y.dtype == np.int64 and got_y.tolist() == y.tolist()
    ax, ay = authors_read(path)
    assert np.array_equal(got_x, ax) and np.array_equal(got_y, ay)


# ----------------------------------------------------------------------------------------
# load_dataset(name, source="authors")
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TABULAR)
def test_source_authors_gives_the_authors_records_in_their_order(tmp_path, name, offline):
    path = authors_file(tmp_path, name, seed=4, n=40)
    with pytest.warns(UserWarning, match="pool has 40"):
        pool = load_dataset(name, root=tmp_path, source="authors")
    ax, ay = authors_read(path)
    assert pool.x.dtype == torch.float32 and torch.equal(pool.x, torch.from_numpy(ax))
    assert (
        torch.equal(pool.y, torch.from_numpy(ay)) and pool.num_classes == DATASETS[name].num_classes
    )
    # Row order decides which records the paper's split picks: the authors' records.
    victim_train = paper_splits(len(pool), seed=7).victim.train
    assert torch.equal(pool.x[victim_train], torch.from_numpy(ax[victim_train]))
    assert offline == []  # the authors' files are never downloaded
    cache = tmp_path / name / f"{name}-authors-pool-v1.npz"
    assert cache.is_file() and not (tmp_path / name / f"{name}-pool-v1.npz").exists()
    path.unlink()  # later loads read the authors' own cache
    with pytest.warns(UserWarning, match="pool has 40"):
        again = load_dataset(name, root=tmp_path, source="authors")
    assert torch.equal(again.x, pool.x) and torch.equal(again.y, pool.y)


def test_both_sources_present_each_is_read_only_when_chosen(tmp_path):
    """The default never reads the authors' file even when it is there; each source has
    its own pool cache, so a cached pool of one is never served for the other."""
    folder = tmp_path / "location"
    x_release, y_release = records(5, 6, 446, 30)
    x_authors, y_authors = records(6, 9, 446, 30)
    place(folder / "bangkok", shokri_text(x_release, y_release))
    place(folder / "data_complete.npz", memguard_npz(x_authors, y_authors + 1))
    for _ in range(2):  # parse, then each from its own cache
        with pytest.warns(UserWarning, match="pool has 6"):
            release = load_dataset("location", root=tmp_path)
        with pytest.warns(UserWarning, match="pool has 9"):
            authors = load_dataset("location", root=tmp_path, source="authors")
        with pytest.warns(UserWarning, match="pool has 6"):
            explicit = load_dataset("location", root=tmp_path, source="privacytrustlab")
        assert release.y.tolist() == explicit.y.tolist() == y_release.tolist()
        assert torch.equal(release.x, torch.from_numpy(x_release).float())
        assert authors.y.tolist() == y_authors.tolist()
        assert torch.equal(authors.x, torch.from_numpy(x_authors).float())
    assert (folder / "location-pool-v1.npz").is_file()
    assert (folder / "location-authors-pool-v1.npz").is_file()


def test_source_authors_never_falls_back_to_the_release(tmp_path, offline):
    x, y = records(7, 3, 600, 100)
    place(tmp_path / "purchase100" / "dataset_purchase", shokri_text(x, y))
    with pytest.raises(DatasetUnavailableError) as e:
        load_dataset("purchase100", root=tmp_path, source="authors")
    msg = str(e.value)
    assert str(tmp_path / "purchase100" / "purchase100.txt") in msg
    assert "does not download it" in msg and "without source='authors'" in msg
    assert offline == [] and not list((tmp_path / "purchase100").glob("*pool*"))


def test_default_source_missing_says_the_authors_file_is_there(tmp_path, offline):
    authors_file(tmp_path, "texas100")
    with pytest.raises(DatasetUnavailableError) as e:
        load_dataset("texas100", root=tmp_path)
    assert offline  # the default source tried to download its release
    assert f"authors' file {tmp_path / 'texas100' / 'data_complete.npz'} is there" in str(e.value)
    assert "pass source='authors'" in str(e.value)
    with pytest.raises(DatasetUnavailableError) as e:  # without the authors' file: no hint
        load_dataset("location", root=tmp_path)
    assert "source='authors'" not in str(e.value)


def test_unknown_source_and_datasets_without_one():
    with pytest.raises(ValueError, match=r"source='memguard'.*'privacytrustlab', 'authors'"):
        load_dataset("location", source="memguard")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['source'\]"):
        load_dataset("cifar10", source="authors")
    with pytest.raises(TypeError, match="accepts: source"):
        load_dataset("texas100", sorce="authors")
    assert {k: v.authors_file for k, v in DATASETS.items() if v.authors_file} == {
        "purchase100": "purchase100.txt",
        "location": "data_complete.npz",
        "texas100": "data_complete.npz",
    }


# ----------------------------------------------------------------------------------------
# A bad authors' file: one DataError line naming it and what to do
# ----------------------------------------------------------------------------------------

RNG_BYTES = np.random.default_rng(0).bytes(4096)


def _txt(x, y, **kw):
    return purchase_txt(x, y, **kw)


def purchase_one_based_labels(root):
    x, y = records(8, 4, 600, 100)
    return (
        "purchase100",
        place(root / "purchase100" / "purchase100.txt", _txt(x, y + 1)),
        ("labels must be 0-based integers in 0..99 as the authors' loader reads them, found 100"),
    )


def purchase_label_first(root):  # Shokri's file renamed: the label lands in feature 1
    x, y = records(9, 4, 600, 100)
    y[0] = 7
    table = np.column_stack([y + 1, x[:, :-1], x[:, -1]])
    payload = purchase_txt(table[:, :-1], table[:, -1], fmt="%d")
    bad = place(root / "purchase100" / "purchase100.txt", payload)
    return "purchase100", bad, "features must be binary 0/1, found 8.0 in record 1 (feature 1)"


def purchase_wrong_columns(root):
    x, y = records(10, 3, 599, 100)
    return (
        "purchase100",
        place(root / "purchase100" / "purchase100.txt", _txt(x, y)),
        ("expected 601 columns (600 features, then the label), found 600"),
    )


def purchase_short_record(root):
    x, y = records(11, 3, 600, 100)
    payload = _txt(x, y) + b"1,0,5\n"
    bad = place(root / "purchase100" / "purchase100.txt", payload)
    return "purchase100", bad, "record 4 has an empty field or fewer than 601 values"


def purchase_not_a_number(root):
    x, y = records(12, 2, 600, 100)
    payload = _txt(x, y) + b"x" + b",0" * 600 + b"\n"
    bad = place(root / "purchase100" / "purchase100.txt", payload)
    return "purchase100", bad, "could not parse it as 'f1,...,f600,label' records"


def purchase_fractional_label(root):
    x, y = records(13, 2, 600, 100)
    bad = place(root / "purchase100" / "purchase100.txt", _txt(x, y + 0.5, fmt="%.2f"))
    return "purchase100", bad, "found 0.5 in record 1"


def purchase_binary(root):
    bad = place(root / "purchase100" / "purchase100.txt", RNG_BYTES)
    return "purchase100", bad, "not text"


def purchase_empty(root):
    return "purchase100", place(root / "purchase100" / "purchase100.txt", b""), "could not parse"


def npz_random_bytes(root):
    bad = place(root / "location" / "data_complete.npz", RNG_BYTES)
    return "location", bad, "does not start like a zip file"


def npz_truncated(root):
    x, y = records(14, 5, 446, 30)
    payload = memguard_npz(x, y + 1)
    bad = place(root / "location" / "data_complete.npz", payload[: len(payload) // 2])
    return "location", bad, "it is truncated or damaged"


def npz_without_y(root):
    buf = io.BytesIO()
    np.savez(buf, x=np.zeros((2, 6169)), labels=np.ones(2))
    bad = place(root / "texas100" / "data_complete.npz", buf.getvalue())
    return "texas100", bad, "holds the arrays ['labels', 'x'] but not ['y']"


def npz_object_array(root):
    buf = io.BytesIO()
    np.savez(buf, x=np.array([None, 1], dtype=object), y=np.ones(2))
    bad = place(root / "location" / "data_complete.npz", buf.getvalue())
    return "location", bad, "holds an object array"


def npz_wrong_width(root):
    x, y = records(15, 3, 445, 30)
    bad = place(root / "location" / "data_complete.npz", memguard_npz(x, y + 1))
    return "location", bad, "expected x of shape (N, 446) and y of shape (N,), got x (3, 445)"


def npz_labels_zero_based(root):
    x, y = records(16, 3, 6169, 100)
    bad = place(root / "texas100" / "data_complete.npz", memguard_npz(x, y))
    return "texas100", bad, "labels must be 1-based integers in 1..100"


def npz_features_not_binary(root):
    x, y = records(17, 3, 446, 30)
    x = x.astype(np.float64)
    x[2, 9] = 0.25
    bad = place(root / "location" / "data_complete.npz", memguard_npz(x, y + 1))
    return "location", bad, "found 0.25 in record 3 (feature 10)"


def authors_pool_cache_garbled(root):
    bad = place(root / "location" / "location-authors-pool-v1.npz", RNG_BYTES)
    return "location", bad, "Delete it and call load_dataset('location', source='authors') again"


CASES = [
    purchase_one_based_labels,
    purchase_label_first,
    purchase_wrong_columns,
    purchase_short_record,
    purchase_not_a_number,
    purchase_fractional_label,
    purchase_binary,
    purchase_empty,
    npz_random_bytes,
    npz_truncated,
    npz_without_y,
    npz_object_array,
    npz_wrong_width,
    npz_labels_zero_based,
    npz_features_not_binary,
    authors_pool_cache_garbled,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_a_bad_authors_file_is_one_data_error_line(case, tmp_path):
    name, bad, problem = case(tmp_path)
    with pytest.raises(DataError) as e:
        load_dataset(name, root=tmp_path, source="authors")
    msg = str(e.value)
    assert isinstance(e.value, ValueError) and e.value.path == bad
    assert "\n" not in msg and msg.startswith(f"{bad}: ")
    assert problem in msg
    if case is not authors_pool_cache_garbled:
        assert f"Replace it with the {bad.name} the paper's authors' code reads" in msg
        assert f"load_dataset({name!r}) without source='authors'" in msg
    shown = "".join(traceback.format_exception(e.value))
    assert "allow_pickle" not in shown and "unsafely" not in shown
    assert not (tmp_path / name / f"{name}-authors-pool-v1.npz").exists() or (
        case is authors_pool_cache_garbled
    )
