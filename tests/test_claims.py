"""The claims table: verdict rule, rows equal to the paired tables, generated Markdown."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from miakit import claims, tables
from miakit.experiment import ORIGINAL, Experiment, profile
from miakit.metrics.intervals import Interval, seed_interval
from miakit.store import Store


def _iv(low, high):
    mean = (low + high) / 2
    return Interval(mean=mean, low=low, high=high, se=0.1, seeds=3, spread_decides=False)


def test_verdict_rule():
    assert claims.verdict(_iv(0.01, 0.05)) == "holds"
    assert claims.verdict(_iv(-0.05, -0.01)) == "reversed"
    assert claims.verdict(_iv(-0.01, 0.05)) == "not shown"
    assert claims.verdict(_iv(-0.05, -0.01), direction=-1) == "holds"
    assert claims.verdict(_iv(-0.015, -0.005), margin=-0.02) == "holds"
    assert claims.verdict(_iv(-0.03, -0.005), margin=-0.02) == "reversed"
    assert claims.verdict(_iv(np.nan, np.nan)) == "not shown"
    with pytest.raises(ValueError, match="direction"):
        claims.verdict(_iv(0, 1), direction=0)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    config = profile("smoke", num_references=0)
    return Experiment(config, store=Store(tmp_path_factory.mktemp("cache")), device="cpu")


def test_claims_table_rows_are_the_paired_differences(smoke):
    table = claims.claims_table(smoke, sparsities=(0.5, 0.7))
    assert list(table.columns) == list(claims.CLAIMS_COLUMNS)
    assert sorted(set(table["claim"])) == [1, 2, 3, 4]
    assert set(table["verdict"]) <= set(claims.VERDICTS)
    assert (table["seeds"] == smoke.config.seeds).all()
    # Claim 1's AUC row is the summarised paired difference of tables.difference.
    diff = tables.difference(smoke, smoke.variant(), ORIGINAL, [claims.CLAIM_ATTACK])
    iv = seed_interval(diff["auc"], diff["auc_se"])
    row = table.iloc[0]
    assert row["kit"] == pytest.approx(iv.mean) and row["kit_low"] == pytest.approx(iv.low)
    assert row["verdict"] == claims.verdict(iv)
    # The gap row's paper figure comes from reported.DIVERGENCE_MEANS: 0.23 - 0.14.
    assert table.iloc[1]["paper"] == pytest.approx((0.96 - 0.73) - (0.81 - 0.67))
    # The gap change is the per-seed difference of the divergence tables' gaps.
    means = tables.divergence_means(smoke, [ORIGINAL, smoke.variant()])
    per_seed = means.pivot_table(index="seed", columns="victim_pruner", values="gap")
    expected = (per_seed["l1_unstructured"] - per_seed["none"]).mean()
    assert table.iloc[1]["kit"] == pytest.approx(expected)
    # Claim 3 compares the highest with the lowest sparsity given.
    assert "0.7 - 0.5" in table.query("claim == 3")["measure"].item()
    text = claims.claims_markdown(table)
    for _, r in table.iterrows():
        assert f"{r['kit']:+.3f}" in text and f"**{r['verdict']}**" in text
    assert text.count("\n|") == len(table) + 1


def test_claims_command_prints_and_writes_the_readme_block(tmp_path, capsys):
    from miakit.cli import main
    from miakit.plots import save_table

    table = pd.DataFrame(
        [
            {
                "claim": 1,
                "statement": "Pruning makes a model leak more",
                "measure": "Conf AUC, pruned - original",
                "paper": np.nan,
                "kit": 0.012,
                "kit_low": 0.004,
                "kit_high": 0.020,
                "seeds": 3,
                "rule": "holds if the 95% interval lies > 0",
                "verdict": "holds",
            }
        ]
    )
    save_table(table, "00_claims", profile="quick", root=tmp_path)
    assert main(["claims", "--figures", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "+0.012 [+0.004, +0.020]" in printed and "**holds**" in printed
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{claims.README_START}\nSTALE\n{claims.README_END}\nend\n")
    assert main(["claims", "--figures", str(tmp_path), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "STALE" not in text and "+0.012 [+0.004, +0.020]" in text and text.endswith("end\n")
    readme.write_text("no markers\n")
    assert main(["claims", "--figures", str(tmp_path), "--readme", str(readme)]) == 2
    assert "around its claims table" in capsys.readouterr().err
    assert main(["claims", "--figures", str(tmp_path / "none")]) == 2
    assert "notebook 00 writes it" in capsys.readouterr().err
