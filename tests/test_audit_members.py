"""Issue 15, item 3: the audited model's members, from a file or the paper's split."""

from __future__ import annotations

import numpy as np
import pytest

from miakit.audit import membership, read_index_file
from miakit.splits import paper_splits

POOL = 1000


def test_text_and_npy_members_files_read_the_same(tmp_path) -> None:
    (tmp_path / "m.txt").write_text("# members of my run\n3, 5 8\n13\n\n21 # last\n")
    np.save(tmp_path / "m.npy", np.array([3, 5, 8, 13, 21], dtype=np.int32))
    for name in ("m.txt", "m.npy"):
        assert read_index_file(tmp_path / name, POOL).tolist() == [3, 5, 8, 13, 21]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 2\nx3\n", r"line 2: 'x3' is not a sample index"),
        ("1 -2\n", r"line 1: '-2' is not a sample index"),
        ("# nothing\n", r"lists no index"),
        ("1 1000\n", r"index 1000 is outside the pool of 1000 samples \(0 .. 999\)"),
        ("4 7 4\n", r"index 4 is listed 2 times"),
    ],
)
def test_bad_members_files_name_the_file_and_entry(tmp_path, text, message) -> None:
    path = tmp_path / "m.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        read_index_file(path, POOL)
    assert str(err.value).startswith(f"--members {path}")


def test_a_npy_of_floats_or_objects_is_refused(tmp_path) -> None:
    np.save(tmp_path / "f.npy", np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"needs a 1-D integer array, got float64"):
        read_index_file(tmp_path / "f.npy", POOL)
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"not a plain .npy integer array"):
        read_index_file(tmp_path / "o.npy", POOL)


def test_without_a_file_the_paper_split_is_assumed_and_said() -> None:
    splits = paper_splits(POOL, seed=3)
    got = membership(splits, POOL, seed=3)
    assert got.members.tolist() == splits.victim.train.tolist()  # the split's own order
    assert got.nonmembers.tolist() == splits.victim.test.tolist()
    assert got.source.startswith("the paper's split at seed 3")
    n, m = len(got.members), len(got.nonmembers)
    assert got.labels.tolist() == [1] * n + [0] * m and len(got.targets) == n + m


def test_with_a_file_nonmembers_avoid_members_and_every_shadows_data(tmp_path) -> None:
    splits = paper_splits(POOL, seed=7)
    shadow = set(np.concatenate([np.concatenate([s.train, s.dev, s.test]) for s in splits.shadows]))
    members = np.arange(0, POOL, 4)  # 250 members, some in the shadows' half
    np.save(tmp_path / "m.npy", members)
    got = membership(splits, POOL, tmp_path / "m.npy", seed=7)
    assert not set(got.nonmembers) & (set(members) | shadow)
    assert len(got.members) == len(got.nonmembers) > 0 and set(got.members) <= set(members)
    again = membership(splits, POOL, tmp_path / "m.npy", seed=7)
    assert got.nonmembers.tolist() == again.nonmembers.tolist()  # the seed fixes the draw
    every = np.setdiff1d(np.arange(POOL), np.fromiter(shadow, int))
    np.save(tmp_path / "all.npy", every)
    with pytest.raises(ValueError, match="no pool sample is left to serve as a non-member"):
        membership(splits, POOL, tmp_path / "all.npy")
