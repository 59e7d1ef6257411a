"""One test per private helper of ``miakit._util``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from miakit import _util


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_write_replaces_whole_file_and_cleans_up_on_error(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.txt"
    _util.atomic_write(target, lambda p: p.write_text("one"))
    assert target.read_text() == "one"
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()

    def fail(p: Path) -> None:
        p.write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _util.atomic_write(target, fail)
    assert target.read_text() == "one"
    assert sorted(x.name for x in target.parent.iterdir()) == ["f.txt"]


def test_atomic_dir_renames_on_success_keeps_winner_and_discards_on_error(tmp_path: Path) -> None:
    final = tmp_path / "entry"
    with _util.atomic_dir(final) as tmp:
        (tmp / "a").write_text("first")
    assert (final / "a").read_text() == "first"
    assert final.stat().st_mode & 0o777 == 0o777 & ~_umask()
    with _util.atomic_dir(final) as tmp:  # a second writer loses the race quietly
        (tmp / "a").write_text("second")
    assert (final / "a").read_text() == "first"
    with pytest.raises(ValueError), _util.atomic_dir(tmp_path / "other") as tmp:
        (tmp / "a").write_text("x")
        raise ValueError
    assert sorted(x.name for x in tmp_path.iterdir()) == ["entry"]


def test_file_digest_matches_hashlib(tmp_path: Path) -> None:
    data = np.random.default_rng(0).bytes(3 << 20)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert _util.file_digest(path) == hashlib.sha256(data).hexdigest()
    assert _util.file_digest(path, "md5") == hashlib.md5(data).hexdigest()


def test_user_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIAKIT_X", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert _util.user_dir("MIAKIT_X", "data") == tmp_path / "home" / ".cache" / "miakit" / "data"
    monkeypatch.setenv("XDG_CACHE_HOME", "~/xdg")
    assert _util.user_dir("MIAKIT_X") == tmp_path / "home" / "xdg" / "miakit"
    monkeypatch.setenv("MIAKIT_X", "~/env")
    assert _util.user_dir("MIAKIT_X", "data") == tmp_path / "home" / "env"
    assert _util.user_dir("MIAKIT_X", explicit=tmp_path / "e") == tmp_path / "e"


@pytest.mark.parametrize("bad", [1.0, -0.1, True, "0.5", None, float("nan")])
def test_check_fraction_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match=r"sparsity must be a number in \[0, 1\)"):
        _util.check_fraction("sparsity", bad)


def test_check_fraction_accepts() -> None:
    assert _util.check_fraction("s", 0) == 0.0
    assert _util.check_fraction("s", np.float32(0.5)) == 0.5


def test_check_membership() -> None:
    out = _util.check_membership([True, False, True], 3)
    assert out.dtype == np.int64 and out.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="only 0"):
        _util.check_membership([0, 2])
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        _util.check_membership([0, 1], 3)
    with pytest.raises(ValueError, match="both members"):
        _util.check_membership([1, 1], both=True)
    with pytest.raises(ValueError, match="1-D"):
        _util.check_membership(np.zeros((2, 2)))


def test_seeded_is_reproducible_and_restores_outer_state() -> None:
    torch.manual_seed(123)
    expected_outer = torch.rand(1)
    torch.manual_seed(123)
    with _util.seeded(5):
        a = torch.rand(3)
    with _util.seeded(5):
        b = torch.rand(3)
    assert torch.equal(a, b)
    assert torch.equal(torch.rand(1), expected_outer)


def test_resolve_device() -> None:
    assert _util.resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert _util.resolve_device(None).type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            _util.resolve_device("cuda")


def test_model_device_and_as_model_input() -> None:
    assert _util.model_device(nn.Linear(2, 2)) == torch.device("cpu")
    assert _util.model_device(nn.ReLU()) == torch.device("cpu")
    img = _util.as_model_input(torch.zeros(2, 3, 4, 4), torch.device("cpu"))
    assert img.is_contiguous(memory_format=torch.channels_last)
    flat = _util.as_model_input(torch.zeros(2, 5), torch.device("cpu"))
    assert flat.is_contiguous()


def test_safe_log_and_true_class_prob() -> None:
    assert np.isfinite(_util.safe_log(np.array([0.0, 1.0]))).all()
    assert _util.safe_log(np.array([1.0]))[0] == 0.0
    p = np.array([[0.1, 0.9], [0.7, 0.3]])
    np.testing.assert_array_equal(_util.true_class_prob(p, np.array([1, 0])), [0.9, 0.7])
    with pytest.raises(ValueError, match=r"lie in \[0, 2\)"):
        _util.true_class_prob(p, np.array([2, 0]))


def test_num_threads_sets_and_restores() -> None:
    before = torch.get_num_threads()
    with _util.num_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with _util.num_threads(None):
        assert torch.get_num_threads() == before


def test_key_fields_leaves_out_marked_fields_at_their_default() -> None:
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Config:
        a: int = 1
        added: bool = dataclasses.field(default=True, metadata={_util.KEY_DEFAULT: True})
        plain: bool = True

    assert _util.key_fields(Config()) == {"a": 1, "plain": True}
    assert _util.key_fields(Config(added=False)) == {"a": 1, "added": False, "plain": True}
    assert _util.key_fields(Config(plain=False)) == {"a": 1, "plain": False}
