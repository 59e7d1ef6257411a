"""Notebook 09's rendered conclusions follow the summarised tables' intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from miakit.narrate import beyond

ATTACKS = ["lira", "rmia", "samia", "conf"]
TPR = {"lira": 0.053, "rmia": 0.060, "samia": 0.037, "conf": 0.072}  # conf leads at 1% FPR


def _summary() -> pd.DataFrame:
    rows = []
    for pruner, shift in (("none", 0.0), ("l1_unstructured", 0.01)):
        for j, attack in enumerate(ATTACKS):
            tpr, auc = TPR[attack] + shift, 0.78 + 0.005 * j
            rows.append(
                {
                    "victim_pruner": pruner,
                    "attack": attack,
                    "auc": auc,
                    "auc_low": auc - 0.01,
                    "auc_high": auc + 0.01,
                    "tpr@1%fpr": tpr,
                    "tpr@1%fpr_low": tpr - 0.01,
                    "tpr@1%fpr_high": tpr + 0.01,
                    "tp@0.1%fpr": 4.0 + j,
                    "fp@0.1%fpr": float(j % 2),
                    "seeds": 3,
                }
            )
    return pd.DataFrame(rows)


def _versus(lead: str, apart: set[str]) -> pd.DataFrame:
    """Each attack minus ``lead`` on the pruned victim; intervals below 0 for ``apart``."""
    rows = []
    for attack in ATTACKS:
        d = TPR[attack] - TPR[lead]
        half = 0.005 if attack in apart else abs(d) + 0.01
        rows.append(
            {
                "victim_pruner": "l1_unstructured",
                "attack": attack,
                "baseline_attack": lead,
                "tpr@1%fpr": d,
                "tpr@1%fpr_low": d - half,
                "tpr@1%fpr_high": d + half if attack != lead else 0.0,
                "auc": 0.001,
                "auc_low": -0.01,
                "auc_high": 0.012,
                "seeds": 3,
            }
        )
    return pd.DataFrame(rows)


def test_leader_is_the_highest_mean_on_that_victim():
    summary = _summary()
    assert beyond.leader(summary, "tpr@1%fpr", "l1_unstructured") == "conf"
    assert beyond.leader(summary, "auc", "none") == ATTACKS[-1]


def test_leader_sentence_calls_it_strongest_only_against_shown_differences():
    summary = _summary()
    text = beyond.leader_sentence(summary, _versus("conf", set()), "tpr@1%fpr", "l1_unstructured")
    assert text.startswith("Highest TPR at 1% FPR: Conf, 0.082 [0.072, 0.092].")
    assert "none shown lower" in text and "not shown to be the strongest" in text
    apart = beyond.leader_sentence(
        summary, _versus("conf", {"samia"}), "tpr@1%fpr", "l1_unstructured"
    )
    assert "shown lower for SAMIA (-0.035" in apart
    assert "not told apart from LiRA (-0.019" in apart and "RMIA" in apart
    assert "not shown to be the strongest" not in apart
    assert "Conf (" not in apart  # the leader is not compared with itself


def test_low_fpr_paragraph_ranks_counts_and_changes():
    summary = _summary()
    change = _versus("conf", {"samia"}).assign(baseline_attack=lambda f: f["attack"])
    text = beyond.low_fpr_paragraph(summary, _versus("conf", set()), change, "l1_unstructured")
    assert "Over 3 seeds" in text
    ranked = summary[summary["victim_pruner"] == "l1_unstructured"].sort_values(
        "auc", ascending=False
    )
    first = ranked.iloc[0]
    head = f"Attack AUC against the pruned victim, highest first: Conf {first['auc']:.3f}"
    assert f"{head} [{first['auc_low']:.3f}" in text
    assert "found 4-7 members (mean over seeds) with 0-1 false positives" in text
    none = beyond.low_fpr_paragraph(
        summary.assign(**{"fp@0.1%fpr": 0.0}), _versus("conf", set()), change, "l1_unstructured"
    )
    assert "with 0 false positives" in none
    assert "TPR at 1% FPR, pruned - original: lower for SAMIA" in text
    assert "Attack AUC, pruned - original: not shown for LiRA +0.001 [-0.010, +0.012]" in text


def test_per_class_paragraph_counts_classes_and_handles_one_seed():
    change = pd.DataFrame(
        {
            "attack": ["lira"] * 3 + ["samia"] * 3,
            "baseline_attack": ["lira"] * 3 + ["samia"] * 3,
            "class": [0, 1, 2] * 2,
            "auc": [0.02, 0.01, -0.005, -0.03, -0.01, 0.0],
            "auc_low": [0.01, -0.01, -0.02, -0.05, -0.02, -0.01],
            "auc_high": [0.03, 0.03, 0.01, -0.01, 0.00, 0.01],
            "seeds": 3,
        }
    )
    text = beyond.per_class_paragraph(change)
    assert "LiRA: the mean change runs from -0.005 (class 2) to +0.020 (class 0)" in text
    assert "shown up in 1 of 3 classes (0), shown down in 0" in text
    assert "SAMIA" in text and "shown up in 0 of 3 classes, shown down in 1 (0)" in text
    one = change.assign(auc_low=np.nan, auc_high=np.nan, seeds=1)
    assert "one seed, so no class has an interval" in beyond.per_class_paragraph(one)
