"""``miakit collect``: a sweep's attack tables merged, with each run's parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from miakit.cli import main
from miakit.collect import collect


def _sweep(root: Path) -> None:
    """Two finished runs and a failed one, as miakit sweep leaves them."""
    runs = []
    for run_id, sparsity, state in (("a", 0.5, "done"), ("b", 0.9, "done"), ("c", 0.7, "failed")):
        folder = root / run_id
        (folder / "figures" / "quick").mkdir(parents=True)
        (folder / "state.json").write_text(json.dumps({"state": state}))
        attacks = pd.DataFrame({"attack": ["conf", "samia"], "auc": [0.6, sparsity]})
        attacks.to_csv(folder / "figures" / "quick" / "04_attack_results.csv", index=False)
        pd.DataFrame({"model": ["victim"], "test_acc": [0.4]}).to_csv(
            folder / "figures" / "quick" / "04_models.csv", index=False
        )  # not an attack table
        runs.append(
            {
                "run_id": run_id,
                "notebook": "04_attacks_on_pruned_models.ipynb",
                "parameters": {"profile": "quick", "sparsity": sparsity, "attacks": ["conf"]},
                "settings": {"seeds": 1},
                "state": state,
            }
        )
    (root / "manifest.json").write_text(json.dumps({"grid": "g.yaml", "runs": runs}))


def test_one_row_per_finished_run_and_attack_with_the_runs_parameters(tmp_path, capsys):
    _sweep(tmp_path)
    frame = collect(tmp_path)
    assert list(frame.columns[:7]) == [
        "run_id",
        "notebook",
        "table",
        "param_profile",
        "param_sparsity",
        "param_attacks",
        "setting_seeds",
    ]
    assert list(zip(frame["run_id"], frame["attack"], strict=True)) == [
        ("a", "conf"),
        ("a", "samia"),
        ("b", "conf"),
        ("b", "samia"),
    ]  # the failed run and the non-attack table are left out
    assert (
        frame.loc[frame["attack"] == "samia", "auc"].tolist()
        == frame.loc[frame["attack"] == "samia", "param_sparsity"].tolist()
    )
    assert set(frame["param_attacks"]) == {'["conf"]'} and set(frame["setting_seeds"]) == {1}
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "collected.parquet"), frame)
    assert len(pd.read_csv(tmp_path / "collected.csv")) == 4
    assert main(["collect", str(tmp_path)]) == 0
    assert "collected 4 rows from 2 run(s)" in capsys.readouterr().out


def test_collect_needs_a_sweeps_folder_with_finished_attack_tables(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="holds no manifest.json"):
        collect(tmp_path)
    assert main(["collect", str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    (tmp_path / "manifest.json").write_text(json.dumps({"runs": []}))
    with pytest.raises(ValueError, match="no finished run"):
        collect(tmp_path)


def _attack_rows(seed: int, sparsity: float, pruner: str) -> pd.DataFrame:
    rows = []
    for attack, base in (("conf", 0.6), ("samia", 0.7)):
        auc = base + sparsity / 10 + seed / 100
        rows.append(
            {
                "dataset": "mnist1d",
                "arch": "mlp",
                "victim_pruner": pruner,
                "victim_sparsity": sparsity,
                "victim_defense": "none",
                "shadow_pruner": pruner,
                "shadow_sparsity": sparsity,
                "attack": attack,
                "auc": auc,
                "auc_low": auc - 0.02,
                "auc_high": auc + 0.02,
                "auc_se": 0.01,
                "tpr@1%fpr": auc / 10,
                "tpr@1%fpr_low": auc / 10 - 0.01,
                "tpr@1%fpr_high": auc / 10 + 0.01,
                "tpr@1%fpr_se": 0.005,
            }
        )
    return pd.DataFrame(rows)


def _sparsity_sweep(root: Path) -> None:
    """Runs at sparsity 0.5 and 0.9 for seeds 0 and 1; each run's two attack tables both
    hold its original victim, with a fine-tune-only control and a mismatched shadow in one,
    and a table of differences."""
    runs = []
    for seed in (0, 1):
        for sparsity in (0.5, 0.9):
            run_id = f"s{seed}-{sparsity}"
            folder = root / run_id / "figures" / "quick"
            folder.mkdir(parents=True)
            (root / run_id / "state.json").write_text(json.dumps({"state": "done"}))
            original = _attack_rows(seed, 0.0, "none")
            pruned = _attack_rows(seed, sparsity, "l1_unstructured")
            pd.concat([original, pruned]).to_csv(folder / "04_attack_results.csv", index=False)
            control = _attack_rows(seed, 0.0, "finetuned")
            wrong_shadow = pruned.assign(shadow_sparsity=0.3, auc=0.99)
            pd.concat([original, control, pruned, wrong_shadow]).to_csv(
                folder / "04_finetune_control.csv", index=False
            )
            pruned.assign(baseline_attack="conf", auc=0.01).to_csv(
                folder / "04_pruned_minus_original.csv", index=False
            )
            runs.append(
                {
                    "run_id": run_id,
                    "notebook": "04_attacks_on_pruned_models.ipynb",
                    "parameters": {"profile": "quick", "sparsity": sparsity, "seed": seed},
                    "settings": {},
                }
            )
    (root / "manifest.json").write_text(json.dumps({"grid": "g.yaml", "runs": runs}))


def test_report_draws_each_model_once_against_sparsity_into_the_grids_folder(
    tmp_path, capsys
) -> None:
    from miakit.collect import report, sparsity_rows

    runs = tmp_path / "runs" / "mygrid"
    _sparsity_sweep(runs)
    rows = sparsity_rows(collect(runs))
    # per seed: the original once (not once per run and table), each sparsity once
    counts = rows.groupby(["param_seed", "victim_sparsity"]).size().to_dict()
    assert counts == {(0, 0.0): 2, (0, 0.5): 2, (0, 0.9): 2, (1, 0.0): 2, (1, 0.5): 2, (1, 0.9): 2}
    assert set(rows["victim_pruner"]) == {"none", "l1_unstructured"}  # no fine-tune control
    assert rows["auc"].max() < 0.9  # neither the mismatched shadow nor the differences

    written = report(runs, tmp_path / "figures")
    names = sorted(p.name for p in written)
    assert names == [
        "mnist1d_mlp_vs_sparsity.pdf",
        "mnist1d_mlp_vs_sparsity.png",
        "vs_sparsity.csv",
    ]
    assert all(
        p.parent == tmp_path / "figures" / "mygrid" and p.stat().st_size > 0 for p in written
    )
    assert len(pd.read_csv(tmp_path / "figures" / "mygrid" / "vs_sparsity.csv")) == 12
    only = report(runs, tmp_path / "only", attacks=["samia"])
    assert set(pd.read_csv(only[0])["attack"]) == {"samia"}
    with pytest.raises(ValueError, match=r"no attack \['lira'\]"):
        report(runs, tmp_path / "x", attacks=["lira"])

    profile_named = tmp_path / "runs" / "quick"
    _sparsity_sweep(profile_named)
    with pytest.raises(ValueError, match=r"figures/quick/, the quick profile's figures"):
        report(profile_named, tmp_path / "figures")

    argv = ["report", str(runs), "--figures", str(tmp_path / "cli"), "--attacks", "conf"]
    assert main(argv) == 0
    assert f"wrote 3 file(s) into {tmp_path / 'cli' / 'mygrid'}" in capsys.readouterr().out
