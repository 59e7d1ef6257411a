"""Issue 15: ``audit()`` end to end on the smoke profile, against the pipeline's numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from miakit.audit.run import audit
from miakit.variants import ORIGINAL


@pytest.fixture(scope="module")
def released(audit_release):
    return audit_release


def _audit(released, path, **options):
    exp, _, store, root = released
    return audit(
        root / path, exp.config.arch, exp.config.dataset, profile="smoke", store=store,
        device="cpu", progress=False, pruner=exp.config.pruner, sparsity=exp.config.sparsity,
        **options,
    )  # fmt: skip


FORMATS = {
    "plain.pt": "state_dict",
    "pruned.safetensors": "safetensors",
    "trainer.ckpt": "state_dict in 'state_dict'",
    "wrapped.pth": "state_dict in 'model'",
}


def test_the_audit_reproduces_the_pipeline_and_each_format_gives_the_same_numbers(released):
    exp, variant, _, root = released
    result = _audit(released, "pruned.pt", attacks=["conf", "samia"])
    assert result.format == "state_dict"
    for path, kind in FORMATS.items():
        again = _audit(released, path, attacks=["conf", "samia"])
        assert again.format == kind
        pd.testing.assert_frame_equal(result.attacks, again.attacks)
        pd.testing.assert_frame_equal(result.sparsity.layers, again.sparsity.layers)
    for name in ("conf", "samia"):
        row = result.attacks[result.attacks["attack"] == name].iloc[0]
        assert row["auc"] == pytest.approx(exp.attack(name, variant).auc)
        assert row["auc_low"] <= row["auc"] <= row["auc_high"]
    assert result.shadows == variant.label and not result.inferred
    assert result.sparsity.sparsity == pytest.approx(exp.config.sparsity, abs=0.01)
    assert result.membership.startswith("the paper's split at seed 7")
    assert set(result.roc) == {"pruned/conf", "pruned/samia"}


def test_a_dense_checkpoint_adds_the_dense_rows_the_pair_attack_and_the_exposed_members(released):
    exp, _, _, root = released
    dense = root / "dense.pth"
    result = _audit(released, "pruned.pt", attacks=["conf", "lira"], dense_checkpoint=dense)
    models = result.attacks.groupby("model")["attack"].apply(list).to_dict()
    pair = ["dense+pruned"]
    assert models == {"dense": ["conf", "lira"], "pair": pair, "pruned": ["conf", "lira"]}
    dense_conf = result.attacks.query("model == 'dense' and attack == 'conf'")["auc"].iloc[0]
    assert dense_conf == pytest.approx(exp.attack("conf", ORIGINAL).auc)
    assert len(result.exposed) == 20 and (result.exposed["rise"].diff().dropna() <= 0).all()
    members = set(exp.splits.victim.train.tolist())
    assert set(result.exposed["sample"].tolist()) <= members
    assert set(result.per_class["model"]) == {"pruned", "dense", "pair"}
    diff = result.differences
    assert len(diff) == 12 and set(diff["versus"]) <= {
        "pruned/conf",
        "pruned/lira",
        "dense/conf",
        "dense/lira",
    }
    best = result.strongest("pruned")["attack"]
    assert diff["of"].value_counts().to_dict() == {"pair/dense+pruned": 8, f"pruned/{best}": 4}
    auc = diff[diff["metric"] == "auc"]
    for _, row in auc.iterrows():
        of, versus = (name.split("/") for name in (row["of"], row["versus"]))
        a, b = (
            result.attacks.query("model == @m and attack == @x")["auc"].iloc[0]
            for m, x in (of, versus)
        )
        assert row["difference"] == pytest.approx(a - b)
        assert row["low"] <= row["high"]
    change = result.class_change
    assert set(change["attack"]) == {best} and change["change"].is_monotonic_decreasing
    victim = exp.splits.victim
    targets = (change["n_members"] + change["n_nonmembers"]).sum()
    assert targets == len(victim.train) + len(victim.test)
    assert (change["change"] == change["pruned_auc"] - change["dense_auc"]).all()


def test_a_members_file_leaves_out_the_reference_attacks_and_says_so(released):
    exp, _, _, root = released
    np.save(root / "members.npy", exp.splits.victim.train)
    result = _audit(released, "pruned.pt", attacks=["conf", "lira"], members=root / "members.npy")
    assert result.attacks["attack"].tolist() == ["conf"]
    assert any("left out lira" in note for note in result.notes)
    assert result.membership.startswith("members.npy (")


def test_the_command_line_prints_the_strongest_attacks_and_writes_every_number(
    released, capsys, monkeypatch
):
    import json

    from miakit.cli import main

    exp, _, store, root = released
    monkeypatch.setenv("MIAKIT_CACHE", str(store.root))
    base = ["audit", "--arch", exp.config.arch, "--dataset", exp.config.dataset]
    base += ["--profile", "smoke", "--device", "cpu", "--quiet", "--attacks", "conf,samia"]
    argv = [*base, "--checkpoint", str(root / "pruned.pt"), "--out", str(root / "out")]
    argv += ["--pruner", exp.config.pruner, "--sparsity", str(exp.config.sparsity)]
    assert main([*argv, "--dense-checkpoint", str(root / "dense.pth")]) == 0
    out = capsys.readouterr().out
    assert "  pruned: strongest attack" in out and "  pair: strongest attack dense+pruned" in out
    doc = json.loads((root / "out" / "audit.json").read_text())
    assert {r["model"] for r in doc["attacks"]} == {"pruned", "dense", "pair"}
    assert len(doc["layers"]) > 0 and doc["sparsity"]["sparsity"] > 0.6
    assert len(doc["exposed"]) == 20 and doc["format"] == "state_dict"
    assert doc["summary"]["verdict"] and len(doc["class_change"]) == exp.data.num_classes
    page = (root / "out" / "report.html").read_text()
    assert f"the report: {root / 'out' / 'report.html'}" in out
    assert doc["summary"]["verdict"].replace("'", "&#x27;") in page

    from miakit.models import build_model

    other = build_model(exp.config.arch, num_classes=7, input_shape=exp.data.x.shape[1:])
    torch.save(other.state_dict(), root / "seven.pt")
    wrong = [*base, "--checkpoint", str(root / "seven.pt"), "--out", str(root / "bad")]
    assert main(wrong) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"does not fit {exp.config.arch}" in err[0], err
    assert "mis-shaped" in err[0] and not (root / "bad" / "audit.json").exists()


def test_a_checkpoint_whose_load_would_run_code_is_refused_and_runs_nothing(released, tmp_path):
    import os
    import pickle

    from miakit.audit import CheckpointError

    planted = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {planted}",))

    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"state_dict": Payload()}, fh)
    with pytest.raises(CheckpointError, match="refused: loading it would build Python"):
        _audit(released, tmp_path / "evil.pt", attacks=["conf"])
    assert not planted.exists()
