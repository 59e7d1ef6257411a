"""Tests of the artifact cache (miakit.store)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from miakit.store import CacheError, Store, config_key, default_cache_dir
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
