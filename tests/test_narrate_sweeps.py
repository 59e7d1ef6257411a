"""Notebook 05's rendered conclusions follow the summarised tables' intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from miakit.narrate import sweeps
from miakit.plots import display_name

LEVELS = [("none", 0.0), ("finetuned", 0.0), ("l1_unstructured", 0.5), ("l1_unstructured", 0.7)]
ATTACKS = ["conf", "samia"]


def _summary(channels: bool = False) -> pd.DataFrame:
    rows = []
    for i, (pruner, sparsity) in enumerate(LEVELS):
        test = 0.60 - 0.1 * i  # every later level lies below the original
        for attack in ATTACKS:
            row = {
                "victim_pruner": pruner,
                "victim_sparsity": sparsity,
                "attack": attack,
                "auc": 0.7 + 0.01 * i,
                "auc_low": 0.69 + 0.01 * i,
                "auc_high": 0.71 + 0.01 * i,
                "victim_train_acc": 0.9,
                "victim_train_acc_low": 0.88,
                "victim_train_acc_high": 0.92,
                "victim_test_acc": test,
                "victim_test_acc_low": test - 0.02,
                "victim_test_acc_high": test + 0.02,
                "victim_realised_sparsity": sparsity,
                "seeds": 3,
            }
            if channels:
                row["victim_channel_sparsity"] = 0.25 * i
                row["victim_macs_left"] = 1.0 - 0.2 * i
            rows.append(row)
    return pd.DataFrame(rows)


def _differences() -> pd.DataFrame:
    """Paired differences: vs the original for the control and both pruned levels, vs the
    control for the pruned levels; the intervals are chosen per row below."""
    pairs = [
        ("finetuned", 0.0, "none"),
        ("l1_unstructured", 0.5, "none"),
        ("l1_unstructured", 0.7, "none"),
        ("l1_unstructured", 0.5, "finetuned"),
        ("l1_unstructured", 0.7, "finetuned"),
    ]
    # (low, high) per row, two attacks per pair: above 0, across 0, below 0, ...
    bounds = [(0.01, 0.03), (-0.01, 0.02), (0.02, 0.06), (-0.02, -0.005), (-0.01, 0.01)]
    bounds += [(0.004, 0.01), (-0.03, 0.01), (-0.05, -0.01), (-0.004, 0.006), (0.001, 0.003)]
    rows = []
    for k, ((pruner, sparsity, base), attack) in enumerate((p, a) for p in pairs for a in ATTACKS):
        low, high = bounds[k]
        rows.append(
            {
                "victim_pruner": pruner,
                "victim_sparsity": sparsity,
                "baseline_pruner": base,
                "baseline_sparsity": 0.0,
                "attack": attack,
                "baseline_attack": attack,
                "auc": (low + high) / 2,
                "auc_low": low,
                "auc_high": high,
                "tpr@1%fpr": -(low + high) / 2,
                "tpr@1%fpr_low": -high,
                "tpr@1%fpr_high": -low,
                "seeds": 3,
            }
        )
    return pd.DataFrame(rows)


def _word(low: float, high: float) -> str:
    return "higher" if low > 0 else "lower" if high < 0 else "not shown"


def test_level_names():
    assert sweeps.level_name({"victim_pruner": "none", "victim_sparsity": 0.0}) == "original"
    row = {"victim_pruner": "finetuned", "victim_sparsity": 0.0}
    assert sweeps.level_name(row) == "fine-tuned only"
    row = {"baseline_pruner": "slimming", "baseline_sparsity": 0.7}
    assert sweeps.level_name(row, "baseline") == f"{display_name('slimming')} at 0.7"


def test_verdict_sentence_counts_what_the_intervals_say():
    diffs = _differences()
    for base in ("none", "finetuned"):
        part = diffs[(diffs["baseline_pruner"] == base) & (diffs["victim_pruner"] != "finetuned")]
        words = [_word(lo, hi) for lo, hi in zip(part["auc_low"], part["auc_high"], strict=True)]
        text = sweeps.verdict_sentence(diffs, base, "auc")
        n = len(words)
        assert f"higher (interval above 0) in {words.count('higher')} of {n}" in text
        assert f"lower (interval below 0) in {words.count('lower')}," in text
        assert f"not shown in {words.count('not shown')}." in text
        top = part.loc[part["auc"].idxmax()]
        assert f"Highest difference: {top['auc']:+.3f} [{top['auc_low']:+.3f}, " in text
    # The control's own rows count only when asked.
    with_control = sweeps.verdict_sentence(diffs, "none", "auc", pruned_only=False)
    assert "of 6 (model, attack) pairs" in with_control
    assert sweeps.verdict_sentence(diffs.iloc[:0], "none") == ""


def test_differences_table_says_each_rows_verdict():
    diffs = _differences()
    lines = sweeps.differences_table(diffs, ("auc",)).splitlines()
    assert len(lines) == 2 + len(diffs)
    for line, (_, r) in zip(lines[2:], diffs.iterrows(), strict=True):
        assert line.endswith(f"{_word(r['auc_low'], r['auc_high'])} |")
        assert f"[{r['auc_low']:+.3f}, {r['auc_high']:+.3f}]" in line
    # Moving an interval across 0 changes the word.
    flipped = diffs.assign(auc_low=diffs["auc_low"].abs() + 0.001, auc_high=1.0)
    assert all("higher" in x for x in sweeps.differences_table(flipped, ("auc",)).splitlines()[2:])


def test_utility_table_has_channel_columns_only_when_measured():
    plain = sweeps.utility_table(_summary())
    assert "channel sparsity" not in plain and len(plain.splitlines()) == 2 + len(LEVELS)
    assert "| original | 0.900 [0.880, 0.920] | 0.600 [0.580, 0.620] | 0.000 |" in plain
    slimmed = _summary(channels=True)
    table = sweeps.utility_table(slimmed)
    assert "| channel sparsity | MACs left |" in table.splitlines()[0]
    last = slimmed.iloc[-1]
    assert table.splitlines()[-1].endswith(
        f"| {last['victim_channel_sparsity']:.3f} | {last['victim_macs_left']:.3f} |"
    )
    nan = slimmed.assign(victim_channel_sparsity=np.nan, victim_macs_left=np.nan)
    assert "channel sparsity" not in sweeps.utility_table(nan)


def test_paragraph_follows_the_intervals():
    summary, diffs = _summary(), _differences()
    text = sweeps.sparsity_paragraph(summary, diffs)
    assert "Over 3 seeds" in text
    # The control's AUC rows: conf's interval is above 0, samia's includes it.
    control = diffs[diffs["victim_pruner"] == "finetuned"]
    conf, samia = control.iloc[0], control.iloc[1]
    assert f"higher for Conf {conf['auc']:+.3f}" in text
    assert f"not shown for SAMIA {samia['auc']:+.3f}" in text
    # Levels whose test accuracy interval lies below the original's are named.
    assert "below the original's 0.600 [0.580, 0.620]" in text
    assert "L1 unstructured at 0.7 (0.300" in text and "fine-tuned only (0.500" in text
    assert sweeps.methods_paragraph(summary, diffs) == text
    one = summary.assign(victim_test_acc_low=np.nan, victim_test_acc_high=np.nan)
    assert "one seed" in sweeps.sparsity_paragraph(one, diffs)
