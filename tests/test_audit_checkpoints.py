"""Issue 15, item 2: users' checkpoints read without running code, fitted with one clear error."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from sklearn.datasets import load_digits

from miakit.audit import CheckpointError, load_weights, read_weights
from miakit.models import build_model
from miakit.prune import l1_unstructured
from miakit.prune.masks import make_permanent
from miakit.prune.sparsity import sparsity_report

SHAPE = (1, 8, 8)


def _fresh() -> torch.nn.Module:
    return build_model("small_cnn", num_classes=10, input_shape=SHAPE, seed=1)


@pytest.fixture(scope="module")
def pruned() -> tuple[torch.nn.Module, torch.Tensor]:
    """A small CNN trained briefly on the digits, then pruned to 50% (masks kept)."""
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1)[:512] / 16
    y = torch.tensor(digits.target)[:512]
    torch.manual_seed(0)
    model = _fresh()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    l1_unstructured(model, 0.5)
    return model.eval(), x[:64]


def _formats(model: torch.nn.Module, folder: Path) -> dict[str, Path]:
    masked = {k: v.clone() for k, v in model.state_dict().items()}
    assert any(k.endswith("weight_mask") for k in masked)
    plain = {}
    for key, value in masked.items():
        if key.endswith("_mask"):
            continue
        if key.endswith("_orig"):
            name = key[: -len("_orig")]
            plain[name] = value * masked[name + "_mask"]
        else:
            plain[key] = value
    files = {
        "state_dict": (plain, "plain.pt"),
        "masked": (masked, "masked.pt"),
        "wrapped state_dict": ({"state_dict": plain, "epoch": 3}, "wrapped.pt"),
        "wrapped model": ({"model": masked, "optimizer": {}}, "model.pth"),
        "dataparallel": ({f"module.{k}": v for k, v in plain.items()}, "dp.pt"),
    }
    out = {}
    for name, (data, filename) in files.items():
        torch.save(data, folder / filename)
        out[name] = folder / filename
    save_file({k: v.contiguous() for k, v in plain.items()}, str(folder / "w.safetensors"))
    out["safetensors"] = folder / "w.safetensors"
    return out


def test_every_format_loads_to_the_same_model(pruned, tmp_path) -> None:
    model, x = pruned
    want = model(x)
    report = sparsity_report(model, SHAPE)
    formats = {}
    for name, path in _formats(model, tmp_path).items():
        loaded = load_weights(path, _fresh(), "small_cnn")
        formats[name] = loaded.format
        torch.testing.assert_close(loaded.model(x), want, msg=name)
        got = sparsity_report(loaded.model, SHAPE)
        assert got.sparsity == pytest.approx(report.sparsity) and got.sparsity > 0.45
        assert got.layers["fraction_zero"].tolist() == report.layers["fraction_zero"].tolist()
        assert not loaded.model.training
    assert formats == {
        "state_dict": "state_dict",
        "masked": "state_dict",
        "wrapped state_dict": "state_dict in 'state_dict'",
        "wrapped model": "state_dict in 'model'",
        "dataparallel": "state_dict",
        "safetensors": "safetensors",
    }
    _, _, masked = read_weights(tmp_path / "masked.pt")
    assert set(masked) == {k[: -len("_mask")] for k in model.state_dict() if k.endswith("_mask")}


class _Planted:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.ones(1)}, "payload": _Planted(marker)}, path)
    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump(_Planted(marker), fh)
    for file in (path, tmp_path / "evil.pkl"):
        with pytest.raises(CheckpointError, match=r"refused: loading it would .*run code"):
            load_weights(file, _fresh())
    assert not marker.exists()


def test_a_checkpoint_of_another_shape_names_the_keys(pruned, tmp_path) -> None:
    model, _ = pruned
    wrong = build_model("small_cnn", num_classes=7, input_shape=SHAPE)
    path = tmp_path / "plain.pt"
    torch.save(make_permanent(_copy(model)).state_dict(), path)
    with pytest.raises(CheckpointError) as err:
        load_weights(path, wrong, "small_cnn")
    text = str(err.value)
    assert text.startswith(f"{path} does not fit small_cnn: ") and "mis-shaped" in text
    assert "(10,) vs (7,)" in text and "number of classes" in text
    other = build_model("mlp", num_classes=10, input_shape=(40,))
    with pytest.raises(CheckpointError, match=r"does not fit mlp: \d+ missing .*\d+ unexpected"):
        load_weights(path, other, "mlp")


def test_files_that_hold_no_state_dict_say_what_they_hold(tmp_path) -> None:
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.pt")
    with pytest.raises(CheckpointError, match=r"a dict with no state_dict in it \(keys 'epoch'"):
        read_weights(tmp_path / "meta.pt")
    torch.save([torch.ones(2)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=r"holds a list, not a state_dict"):
        read_weights(tmp_path / "list.pt")
    (tmp_path / "torn.pt").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(CheckpointError, match=r"not a readable torch checkpoint"):
        read_weights(tmp_path / "torn.pt")
    with pytest.raises(CheckpointError, match=r"no such checkpoint file"):
        read_weights(tmp_path / "absent.pt")


def _copy(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(model)
