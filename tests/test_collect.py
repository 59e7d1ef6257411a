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
