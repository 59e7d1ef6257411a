"""Tests of the artifact cache (miakit.store)."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import time
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from miakit._util import file_digest
from miakit.cachetool import add_parser, cache_info, cache_prune, cache_verify
from miakit.store import (
    LOCK_TIMEOUT,
    CacheError,
    CacheUnwritable,
    CacheWarning,
    CorruptEntry,
    Store,
    config_key,
    default_cache_dir,
)
from miakit.train import TrainConfig


def test_key_is_stable_and_config_sensitive():
    a = config_key("model", {"x": 1, "train": TrainConfig(epochs=3)})
    b = config_key("model", {"train": TrainConfig(epochs=3), "x": 1})
    c = config_key("model", {"x": 1, "train": TrainConfig(epochs=4)})
    assert a == b != c
    assert config_key("pruned", {"x": 1}) != config_key("model", {"x": 1})


def test_get_or_create_computes_once(tmp_path):
    store, calls = Store(tmp_path), []

    def create():
        calls.append(1)
        return {"w": torch.arange(6.0).view(2, 3)}, {"acc": 0.5}

    t1, i1 = store.get_or_create("sig", {"a": 1}, create)
    t2, i2 = store.get_or_create("sig", {"a": 1}, create)
    assert len(calls) == 1 and i1 == i2 == {"acc": 0.5}
    assert torch.equal(t1["w"], t2["w"])


def test_model_roundtrip_without_pickle(tmp_path):
    store = Store(tmp_path)
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    store.save_model("model", {"k": 1}, m, {"note": "x"})
    m2 = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    assert store.load_model("model", {"k": 1}, m2) == {"note": "x"}
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])
    entry = store.path("model", {"k": 1})
    assert (entry / "tensors.safetensors").is_file()
    assert not list(entry.parent.glob(".*"))  # no temp folder left behind


def test_corrupt_payload_is_detected(tmp_path):
    store = Store(tmp_path)
    store.save_tensors("sig", {"a": 1}, {"w": torch.ones(100)})
    payload = store.path("sig", {"a": 1}) / "tensors.safetensors"
    data = bytearray(payload.read_bytes())
    data[-1] ^= 0xFF
    payload.write_bytes(bytes(data))
    with pytest.raises(CacheError, match="SHA-256"):
        store.load_tensors("sig", {"a": 1})


def test_mismatched_entry_is_detected(tmp_path):
    store = Store(tmp_path)
    store.save_tensors("sig", {"a": 1}, {"w": torch.ones(3)})
    meta = store.path("sig", {"a": 1}) / "meta.json"
    doc = json.loads(meta.read_text())
    doc["config"] = {"a": 2}
    meta.write_text(json.dumps(doc))
    with pytest.raises(CacheError, match="different config"):
        store.load_tensors("sig", {"a": 1})


def test_wrong_architecture_is_a_clear_error(tmp_path):
    store = Store(tmp_path)
    store.save_model("model", {"k": 1}, nn.Linear(3, 4))
    with pytest.raises(CacheError, match="do not fit"):
        store.load_model("model", {"k": 1}, nn.Linear(3, 5))


def test_missing_entry_is_keyerror(tmp_path):
    with pytest.raises(KeyError, match="no cached"):
        Store(tmp_path).load_tensors("sig", {"a": 1})


def test_default_cache_dir_respects_env(monkeypatch, tmp_path):
    monkeypatch.setenv("MIAKIT_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("MIAKIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "miakit"


def test_bad_kind_rejected(tmp_path):
    with pytest.raises(ValueError, match="plain name"):
        Store(tmp_path).path("../evil", {})


# --------------------------------------------------------------------------- healing


def _make(value: float):
    """A ``create`` that records its calls and returns tensors filled with ``value``."""
    calls: list[int] = []

    def create():
        calls.append(1)
        return {"w": torch.full((8,), value)}, {"value": value}

    return create, calls


def _quarantined(store: Store) -> list[Path]:
    return sorted(p for p in (store.root / "quarantine").glob("*/*"))


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _rewrite_meta(entry: Path, **changes) -> None:
    doc = json.loads((entry / "meta.json").read_text())
    doc.update(changes)
    (entry / "meta.json").write_text(json.dumps(doc))


#: ways to break an entry, and a word of the warning each must give
DAMAGE = {
    "no meta": (lambda e: (e / "meta.json").unlink(), "no meta.json"),
    "no payload": (lambda e: (e / "tensors.safetensors").unlink(), "missing its payload"),
    "garbage meta": (lambda e: (e / "meta.json").write_text("{not json"), "unreadable"),
    "meta not a dict": (lambda e: (e / "meta.json").write_text("[1]"), "not a JSON object"),
    "flipped byte": (lambda e: _flip_last_byte(e / "tensors.safetensors"), "SHA-256"),
    "other config": (lambda e: _rewrite_meta(e, config={"a": 2}), "different config"),
    "old format": (lambda e: _rewrite_meta(e, format=0), "format/kind"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_get_or_create_quarantines_and_recomputes_a_broken_entry(tmp_path, damage):
    store = Store(tmp_path)
    store.get_or_create("sig", {"a": 1}, _make(1.0)[0])
    entry = store.path("sig", {"a": 1})
    breaker, word = DAMAGE[damage]
    breaker(entry)
    create, calls = _make(2.0)
    with pytest.warns(CacheWarning) as record:
        tensors, info = store.get_or_create("sig", {"a": 1}, create)
    assert len(record) == 1
    msg = str(record[0].message)
    moved = _quarantined(store)
    assert len(moved) == 1 and word in msg and str(entry) in msg and str(moved[0]) in msg
    assert (
        calls == [1] and info == {"value": 2.0} and torch.equal(tensors["w"], torch.full((8,), 2.0))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # healed: the next request loads it quietly
        again, _ = store.get_or_create("sig", {"a": 1}, create)
    assert calls == [1] and torch.equal(again["w"], tensors["w"])


def test_the_stuck_cache_probe_heals_in_the_has_save_load_flow(tmp_path):
    """Issue 10's probe: meta.json deleted, recomputed, saved, loaded (steps.py's flow)."""
    store = Store(tmp_path)
    store.save_tensors("model", {"k": 1}, {"w": torch.zeros(3)})
    (store.path("model", {"k": 1}) / "meta.json").unlink()
    assert not store.has("model", {"k": 1})
    with pytest.warns(CacheWarning, match="incomplete"):
        store.save_tensors("model", {"k": 1}, {"w": torch.ones(3)})
    tensors, _ = store.load_tensors("model", {"k": 1})
    assert torch.equal(tensors["w"], torch.ones(3))


def test_load_tensors_on_a_corrupt_entry_raises_once_and_moves_it_aside(tmp_path):
    store = Store(tmp_path)
    store.save_tensors("sig", {"a": 1}, {"w": torch.ones(100)})
    _flip_last_byte(store.path("sig", {"a": 1}) / "tensors.safetensors")
    with pytest.raises(CorruptEntry, match="SHA-256") as err:
        store.load_tensors("sig", {"a": 1})
    (moved,) = _quarantined(store)
    assert str(moved) in str(err.value) and "\n" not in str(err.value)
    assert not store.path("sig", {"a": 1}).exists()
    with pytest.raises(KeyError):
        store.load_tensors("sig", {"a": 1})


def test_nested_get_or_create_inside_create(tmp_path):
    store = Store(tmp_path)

    def pruned():
        base, _ = store.get_or_create("model", {"b": 1}, _make(3.0)[0])
        with store.lock("pruned", {"p": 1}):  # the lock is re-entrant within a thread
            pass
        return {"w": base["w"] * 2}, {}

    tensors, _ = store.get_or_create("pruned", {"p": 1}, pruned)
    assert torch.equal(tensors["w"], torch.full((8,), 6.0))
    assert store.has("model", {"b": 1})
    assert not list(tmp_path.rglob("*.lock"))  # every lock released


def test_scratch_name_lock_is_reserved(tmp_path):
    with pytest.raises(ValueError, match="plain name"):
        Store(tmp_path).scratch("model", {"k": 1}, "lock")


# --------------------------------------------------------------------------- signed entries


def test_signed_entries_roundtrip_and_carry_an_hmac(tmp_path):
    store = Store(tmp_path, secret="s3cret")
    store.save_tensors("sig", {"a": 1}, {"w": torch.ones(3)}, {"n": 1})
    meta = json.loads((store.path("sig", {"a": 1}) / "meta.json").read_text())
    body = json.dumps(
        {k: v for k, v in meta.items() if k != "hmac"}, sort_keys=True, separators=(",", ":")
    )
    assert meta["hmac"] == hmac.new(b"s3cret", body.encode(), hashlib.sha256).hexdigest()
    assert store.load_tensors("sig", {"a": 1})[1] == {"n": 1}


def test_secret_defaults_to_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MIAKIT_CACHE_KEY", "k")
    assert Store(tmp_path).signed
    monkeypatch.setenv("MIAKIT_CACHE_KEY", "")
    assert not Store(tmp_path).signed


def _tamper(store: Store, kind: str, config, value: float) -> None:
    """What an attacker without the key can do: new payload, matching SHA-256 in meta."""
    from safetensors.torch import save_file

    entry = store.path(kind, config)
    save_file({"w": torch.full((3,), value)}, str(entry / "tensors.safetensors"))
    _rewrite_meta(entry, sha256={"tensors.safetensors": file_digest(entry / "tensors.safetensors")})


def test_checksum_alone_does_not_catch_a_deliberate_rewrite_but_the_hmac_does(tmp_path):
    plain = Store(tmp_path / "plain")
    plain.save_tensors("sig", {"a": 1}, {"w": torch.ones(3)})
    _tamper(plain, "sig", {"a": 1}, 9.0)
    assert torch.equal(plain.load_tensors("sig", {"a": 1})[0]["w"], torch.full((3,), 9.0))

    signed = Store(tmp_path / "signed", secret="k")
    signed.save_tensors("sig", {"a": 1}, {"w": torch.ones(3)})
    _tamper(signed, "sig", {"a": 1}, 9.0)
    create, calls = _make(1.0)
    with pytest.warns(CacheWarning, match="wrong HMAC"):
        tensors, _ = signed.get_or_create("sig", {"a": 1}, create)
    assert calls == [1] and torch.equal(tensors["w"], torch.ones(8))


@pytest.mark.parametrize(
    ("writer", "reader", "word"), [(None, "k", "not signed"), ("k1", "k2", "wrong HMAC")]
)
def test_unsigned_or_foreign_entries_are_untrusted(tmp_path, writer, reader, word):
    Store(tmp_path, secret=writer or "").save_tensors("sig", {"a": 1}, {"w": torch.ones(3)})
    with pytest.raises(CacheError, match=word):
        Store(tmp_path, secret=reader).load_tensors("sig", {"a": 1})


# --------------------------------------------------------------------------- writable


def test_check_writable_passes_on_a_writable_folder(tmp_path):
    store = Store(tmp_path / "new")
    store.check_writable()
    assert store.root.is_dir() and not list(store.root.iterdir())  # the probe is gone


def test_check_writable_names_the_folder_and_the_fix_when_it_is_not_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    store = Store(tmp_path / "file" / "cache")
    with pytest.raises(CacheUnwritable, match="not writable") as err:
        store.check_writable()
    assert str(store.root) in str(err.value) and "--cache DIR" in str(err.value)
    assert "MIAKIT_CACHE" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_check_writable_detects_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(CacheUnwritable, match="not writable"):
            Store(ro).check_writable()
    finally:
        ro.chmod(0o755)


def test_check_writable_detects_a_nearly_full_folder(tmp_path, monkeypatch):
    free_mib = shutil.disk_usage(tmp_path).free / 2**20
    monkeypatch.setenv("MIAKIT_CACHE_MIN_FREE_MB", str(int(free_mib * 2) + 1))
    with pytest.raises(CacheUnwritable, match="MiB free") as err:
        Store(tmp_path).check_writable()
    assert str(tmp_path) in str(err.value)
    monkeypatch.setenv("MIAKIT_CACHE_MIN_FREE_MB", "0")
    Store(tmp_path).check_writable()
    monkeypatch.setenv("MIAKIT_CACHE_MIN_FREE_MB", "lots")
    with pytest.raises(ValueError, match="MIAKIT_CACHE_MIN_FREE_MB"):
        Store(tmp_path).check_writable()


def test_lock_timeout_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MIAKIT_LOCK_TIMEOUT", "7.5")
    assert Store(tmp_path).lock_timeout == 7.5
    monkeypatch.setenv("MIAKIT_LOCK_TIMEOUT", "-1")
    with pytest.raises(ValueError, match="MIAKIT_LOCK_TIMEOUT"):
        Store(tmp_path)


def test_a_save_that_loses_to_an_entry_moved_aside_at_once_still_lands(tmp_path, monkeypatch):
    """The rename race: another writer's entry blocks ours, then vanishes (quarantined)."""
    from miakit import _util

    store, real_rename, calls = Store(tmp_path), os.rename, []
    final = store.path("sig", {"a": 1})

    def racing_rename(src, dst):
        calls.append(dst)
        if len(calls) == 1:  # a concurrent writer wins, then a reader moves its entry aside
            (Path(dst)).mkdir()
            (Path(dst) / "x").write_text("")
            try:
                real_rename(src, dst)
            finally:
                shutil.rmtree(dst)
        return real_rename(src, dst)

    monkeypatch.setattr(_util.os, "rename", racing_rename)
    store.save_tensors("sig", {"a": 1}, {"w": torch.ones(2)})
    monkeypatch.undo()
    assert len(calls) == 2 and torch.equal(
        store.load_tensors("sig", {"a": 1})[0]["w"], torch.ones(2)
    )
    assert final.is_dir()


# --------------------------------------------------------------------------- maintenance


def _files_under(path: Path) -> tuple[int, int]:
    """(items, bytes) of a file or a folder tree, counted independently of cachetool."""
    if path.is_file():
        return 1, path.stat().st_size
    return 1, sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _stale_lock(store: Store, kind: str, config) -> Path:
    entry = store.path(kind, config)
    lock = entry.with_name(entry.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "t"}))
    _age_by(lock, max(store.lock_timeout, LOCK_TIMEOUT) + 60)  # stale under any timeout used
    return lock


def _age_by(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


@pytest.fixture
def messy(tmp_path):
    """A cache with current and old entries, scratch, locks, temp leftovers, quarantine."""
    store = Store(tmp_path / "cache", lock_timeout=30)
    old, new = {"step": "train", "version": 1}, {"step": "train", "version": 2}
    store.save_tensors("model", old, {"w": torch.ones(10)})
    store.save_tensors("model", new, {"w": torch.ones(20)})
    store.save_tensors("signals", {"step": "signals", "version": 2}, {"s": torch.ones(5)})
    store.save_tensors("signals", {"step": "signals", "version": 2, "x": 1}, {"s": torch.ones(5)})
    _flip_last_byte(
        store.path("signals", {"step": "signals", "version": 2, "x": 1}) / "tensors.safetensors"
    )
    store.save_tensors("model", {"no meta": 1}, {"w": torch.ones(4)})
    (store.path("model", {"no meta": 1}) / "meta.json").unlink()
    paths = {
        "done ckpt": store.scratch("model", new, "ckpt"),  # its entry is complete
        "old-entry ckpt": store.scratch("model", old, "ckpt"),  # its entry is pruned now
        "young ckpt": store.scratch("model", {"step": "train", "version": 2, "s": 1}, "ckpt"),
        "aged ckpt": store.scratch("model", {"step": "train", "version": 2, "s": 2}, "ckpt"),
        "aged busy ckpt": store.scratch("model", {"step": "train", "version": 2, "s": 3}, "ckpt"),
    }
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"c" * 100)
    for name in ("aged ckpt", "aged busy ckpt"):
        _age_by(paths[name], 30 * 86400)
    paths["stale lock"] = _stale_lock(store, "model", {"step": "train", "version": 2, "s": 9})
    shard = store.path("model", new).parent
    paths["old temp"] = shard / ".deadbeef.abc.tmp"
    paths["old temp"].mkdir()
    (paths["old temp"] / "tensors.safetensors").write_bytes(b"t" * 50)
    _age_by(paths["old temp"] / "tensors.safetensors", 7200)
    _age_by(paths["old temp"], 7200)
    paths["young temp"] = shard / ".cafe.ckpt.xyz.tmp"
    paths["young temp"].write_bytes(b"y" * 10)
    store.save_tensors("model", {"q": 1}, {"w": torch.ones(3)})
    store.quarantine(store.path("model", {"q": 1}), "is a test", warn=False)
    paths["quarantined"] = next((store.root / "quarantine" / "model").iterdir())
    return store, paths, old, new


def _is_current(kind: str, cfg: dict) -> bool:
    return cfg.get("version") == 2


def test_cache_info_counts_and_sizes_every_sort_of_item(messy):
    store, paths, _, _ = messy
    busy = store.scratch("model", {"step": "train", "version": 2, "s": 3}, "ckpt")
    with store.lock("model", {"step": "train", "version": 2, "s": 3}):
        rows = {(r.what, r.kind): (r.count, r.bytes) for r in cache_info(store)}
        live_lock = busy.with_name(busy.name.split(".")[0] + ".lock")
        assert rows["locks", "model"] == _files_under(live_lock)
    entries = [e for e in store.root.glob("*/??/*") if e.is_dir() and "." not in e.name]
    for kind in ("model", "signals"):
        mine = [_files_under(e) for e in entries if e.parent.parent.name == kind]
        assert rows["entries", kind] == (len(mine), sum(b for _, b in mine))
    scratch = [p for k, p in paths.items() if "ckpt" in k]
    assert rows["scratch", "model"] == (len(scratch), sum(p.stat().st_size for p in scratch))
    assert rows["stale locks", "model"] == _files_under(paths["stale lock"])
    temps = [_files_under(paths["old temp"]), _files_under(paths["young temp"])]
    assert rows["temp", "model"] == (2, sum(b for _, b in temps) - 0)
    assert rows["quarantine", "model"][0] == 1


def test_cache_verify_lists_bad_entries_and_can_quarantine_them(messy):
    store, *_ = messy
    report = cache_verify(store)
    assert report.checked == 5 and not report.ok
    bad = {b.path: b.reason for b in report.bad}
    corrupt = store.path("signals", {"step": "signals", "version": 2, "x": 1})
    assert bad == {
        corrupt: bad[corrupt],
        store.path("model", {"no meta": 1}): bad[store.path("model", {"no meta": 1})],
    }
    assert "SHA-256" in bad[corrupt] and "no meta.json" in bad[store.path("model", {"no meta": 1})]
    assert all(p.is_dir() for p in bad)  # only listed
    report = cache_verify(store, quarantine=True)
    assert len(report.quarantined) == 2 and not any(p.exists() for p in bad)
    assert cache_verify(store).ok


def test_cache_verify_checks_hmacs_when_signed(tmp_path):
    Store(tmp_path).save_tensors("sig", {"a": 1}, {"w": torch.ones(3)})
    assert cache_verify(Store(tmp_path)).ok
    report = cache_verify(Store(tmp_path, secret="k"))
    assert [b.reason for b in report.bad] == ["is not signed, so untrusted under MIAKIT_CACHE_KEY"]


def test_cache_prune_removes_exactly_what_its_rules_say(messy):
    store, paths, old, new = messy
    busy = {"step": "train", "version": 2, "s": 3}
    corrupt = store.path("signals", {"step": "signals", "version": 2, "x": 1})
    no_meta = store.path("model", {"no meta": 1})
    expect_gone = {
        no_meta,
        store.path("model", old),
        paths["done ckpt"],
        paths["old-entry ckpt"],
        paths["aged ckpt"],
        paths["stale lock"],
        paths["old temp"],
        paths["quarantined"],
    }
    expect_kept = [
        store.path("model", new),
        store.path("signals", {"step": "signals", "version": 2}),
        paths["young ckpt"],
        paths["aged busy ckpt"],
        paths["young temp"],
    ]
    with store.lock("model", busy):
        dry = cache_prune(store, _is_current, dry_run=True)
        assert all(p.exists() for p in expect_gone)  # dry: nothing removed
        report = cache_prune(store, _is_current)
        assert (
            store.path("model", busy).with_name(store.path("model", busy).name + ".lock").exists()
        )
    removed = {f.path for f in report.removed}
    assert removed == {f.path for f in dry.removed} == expect_gone
    assert not any(p.exists() for p in removed)
    assert all(p.exists() for p in expect_kept)
    assert corrupt.exists()  # prune reads metas only; payload checksums are verify's job
    assert report.kept == 3 and report.bytes == dry.bytes > 0
    reasons = {f.path: f.reason for f in report.removed}
    assert "no meta.json" in reasons[no_meta]
    assert "current" in reasons[store.path("model", old)]
    after = cache_prune(store, _is_current)  # its job gone, the aged checkpoint is an orphan
    assert [f.path for f in after.removed] == [paths["aged busy ckpt"]]
    assert cache_prune(store, _is_current).removed == []  # nothing left to prune


def test_cache_prune_without_a_predicate_keeps_every_sound_entry(messy):
    store, paths, old, _ = messy
    sound = [m.parent for m in store.root.glob("*/??/*/meta.json")]
    report = cache_prune(store)
    assert all(e.exists() for e in sound) and report.kept == len(sound)
    assert paths["old-entry ckpt"].exists() is False  # its entry is complete: kept
    assert not paths["quarantined"].exists()


def test_cache_subcommands(messy, capsys):
    store, paths, old, _ = messy
    parser = argparse.ArgumentParser(prog="miakit")
    add_parser(parser.add_subparsers(dest="command"), is_current=_is_current)

    def run(*argv: str) -> tuple[int, str]:
        args = parser.parse_args(["cache", *argv, "--cache", str(store.root)])
        code = args.func(args)
        return code, capsys.readouterr().out

    code, out = run("info")
    assert code == 0 and "entries" in out and "signals" in out and "quarantine" in out
    code, out = run("verify")
    assert code == 1 and "BAD" in out and "SHA-256" in out
    n = len(cache_prune(store, _is_current, dry_run=True).removed)
    code, out = run("prune", "--dry-run")
    assert code == 0 and f"would remove {n} " in out and store.path("model", old).exists()
    assert out.count("\n") == n + 1  # a header and one line per item
    code, out = run("prune")
    assert code == 0 and f"removed {n} " in out and not store.path("model", old).exists()
    code, out = run("verify", "--quarantine")  # prune left the SHA-256 failure to verify
    assert code == 1 and "moved 1" in out
    assert run("verify")[0] == 0
