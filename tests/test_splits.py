"""Tests of miakit.splits: the paper's victim/shadow split (PAPER.md, "Data and splits")."""

from __future__ import annotations

import numpy as np
import pytest

from miakit.splits import DEV_SIZE, TEST_SIZE, Split, Splits, paper_splits, split_sizes


def test_split_fractions_are_the_papers():
    assert (TEST_SIZE, DEV_SIZE) == (0.45, 0.1818)


def test_cifar10_split_sizes_from_arithmetic():
    assert split_sizes(60000) == split_sizes(60000, half="shadow") == (13500, 3000, 13500)
    assert split_sizes(8000) == (1800, 400, 1800)
    assert split_sizes(7) == (0, 1, 2) and split_sizes(7, half="shadow") == (1, 1, 2)
    with pytest.raises(ValueError, match="half"):
        split_sizes(10, half="attack")


def test_paper_splits_cifar10_sizes_and_disjointness():
    n = 60000
    s = paper_splits(n)
    assert s.victim.sizes() == (13500, 3000, 13500) and s.num_shadows == 5
    victim = np.concatenate([s.victim.train, s.victim.dev, s.victim.test])
    shadow_half = np.concatenate([s.shadows[0].train, s.shadows[0].dev, s.shadows[0].test])
    assert np.intersect1d(victim, shadow_half).size == 0
    assert np.array_equal(np.sort(np.concatenate([victim, shadow_half])), np.arange(n))
    for sh in s.shadows:
        assert sh.sizes() == (13500, 3000, 13500)
        half = np.sort(np.concatenate([sh.train, sh.dev, sh.test]))
        assert np.array_equal(half, np.sort(shadow_half))  # re-splits of the same half
        assert len(np.unique(half)) == 30000
    assert s.victim.train.dtype == np.int64
    assert s.victim.members is s.victim.train and s.victim.non_members is s.victim.test


def test_paper_splits_match_the_authors_sklearn_chain():
    from sklearn.model_selection import train_test_split

    n, seed = 1001, 7
    s = paper_splits(n, seed=seed, num_shadows=3)
    victim, shadow = train_test_split(list(range(n)), test_size=0.5, random_state=seed)
    v_train, v_test = train_test_split(victim, test_size=0.45, random_state=seed)
    v_train, v_dev = train_test_split(v_train, test_size=0.1818, random_state=seed)
    assert s.victim.train.tolist() == v_train
    assert s.victim.dev.tolist() == v_dev and s.victim.test.tolist() == v_test
    for i, sh in enumerate(s.shadows):
        a_train, a_test = train_test_split(shadow, test_size=0.45, random_state=seed + i)
        a_train, a_dev = train_test_split(a_train, test_size=0.1818, random_state=seed + i)
        assert (sh.train.tolist(), sh.dev.tolist(), sh.test.tolist()) == (a_train, a_dev, a_test)


def test_paper_splits_deterministic_and_shadows_differ():
    a, b, c = paper_splits(2000, seed=3), paper_splits(2000, seed=3), paper_splits(2000, seed=4)
    for x, y in zip([a.victim, *a.shadows], [b.victim, *b.shadows], strict=True):
        for part in ("train", "dev", "test"):
            assert np.array_equal(getattr(x, part), getattr(y, part))
    assert not np.array_equal(a.victim.train, c.victim.train)
    trains = [set(sh.train.tolist()) for sh in a.shadows]
    for i in range(len(trains)):
        for j in range(i + 1, len(trains)):
            assert trains[i] != trains[j]
            assert trains[i] & trains[j]  # shadow splits overlap each other


def test_paper_splits_validate_inputs():
    with pytest.raises(ValueError, match="at least 8"):
        paper_splits(7)
    assert paper_splits(8).victim.sizes() == (1, 1, 2)
    with pytest.raises(ValueError, match="0 <= seed"):
        paper_splits(100, seed=-1)
    with pytest.raises(ValueError, match="0 <= seed"):
        paper_splits(100, seed=2**32 - 2, num_shadows=5)
    with pytest.raises(ValueError, match="num_shadows must be at least 1"):
        paper_splits(100, num_shadows=0)
    with pytest.raises(TypeError, match="seed must be an int"):
        paper_splits(100, seed=True)


def test_split_validation():
    with pytest.raises(ValueError, match="disjoint"):
        Split(train=np.array([0, 1]), dev=np.array([2]), test=np.array([1]))
    with pytest.raises(ValueError, match="1-D integer"):
        Split(train=np.array([0.0]), dev=np.array([1]), test=np.array([2]))
    with pytest.raises(ValueError, match="at least one shadow"):
        Splits(victim=Split(np.array([0]), np.array([1]), np.array([2])), shadows=())
    s = Split(train=[3, 4], dev=[], test=[5])
    assert s.dev.dtype == np.int64 and s.sizes() == (2, 0, 1)
