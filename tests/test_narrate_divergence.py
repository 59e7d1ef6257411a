"""Notebook 03's paragraphs carry their table's numbers, and the words follow the intervals:
three levels (original, fine-tuned only, pruned) and the fine-tune-epochs curve."""

from __future__ import annotations

import pandas as pd
import pytest

from miakit import reported
from miakit.narrate import divergence as nd
from miakit.narrate.core import interval

LEVELS = [("none", 0.0), ("finetuned", 0.0), ("l1_unstructured", 0.7)]


def _means(gaps, signal="confidence", half=0.01):
    rows = []
    for (pruner, sparsity), gap in zip(LEVELS, gaps, strict=True):
        member = 0.5 + gap
        rows.append(
            {
                "victim_pruner": pruner,
                "victim_sparsity": sparsity,
                "signal": signal,
                "member_mean": member,
                "member_mean_low": member - half,
                "member_mean_high": member + half,
                "nonmember_mean": 0.5,
                "nonmember_mean_low": 0.5 - half,
                "nonmember_mean_high": 0.5 + half,
                "gap": gap,
                "gap_low": gap - half,
                "gap_high": gap + half,
                "seeds": 3,
            }
        )
    return pd.DataFrame(rows)


def test_level_names_come_from_the_real_columns():
    row = {"victim_pruner": "l1_unstructured", "victim_sparsity": 0.7, "baseline_pruner": "none"}
    assert nd.level_name(row) == "L1 unstructured at 0.7"
    assert nd.level_name(row, "baseline") == "original"
    assert nd.level_name({"victim_pruner": "finetuned"}) == "fine-tuned only"


def test_means_paragraph_compares_the_three_levels_by_their_intervals():
    means = _means([0.10, 0.20, 0.11])
    text = nd.means_paragraph(means)
    assert f"members {interval(means.iloc[0], 'member_mean')}" in text
    assert f"gap {interval(means.iloc[2], 'gap')}" in text and "over 3 seeds" in text
    assert "Fine-tuning alone leaves a gap wider than the original's (the intervals do not" in text
    assert "L1 unstructured at 0.7: gap not told apart from the original's" in text
    assert "narrower than the fine-tune-only model's" in text
    paper = reported.DIVERGENCE_MEANS
    assert f"members {paper['original', 'member'].value} vs non-members" in text
    assert f"{paper['pruned', 'member'].value} vs {paper['pruned', 'non-member'].value}" in text
    sens = nd.means_paragraph(_means([0.0, 0.0, 0.0], "sensitivity"), "sensitivity")
    assert "paper" not in sens  # the paper reports no mean sensitivities
    with pytest.raises(ValueError, match="original"):
        nd.means_paragraph(means.iloc[1:])


def _gaps():
    return pd.DataFrame(
        {
            "class": [0, 1, 2],
            "original": [0.10, 0.20, 0.15],
            "fine-tuned only": [0.30, 0.10, 0.12],
            "pruned": [0.12, 0.18, 0.30],
        }
    )


def test_class_gap_paragraph_counts_the_classes_and_quotes_the_paper():
    text = nd.class_gap_paragraph(_gaps())
    assert "original +0.100 to +0.200; fine-tuned only +0.100 to +0.300" in text
    assert "larger than the original's in 2 of 3 classes" in text
    assert "larger than fine-tuned only's in 2 of 3" in text
    (a, b) = reported.CLASS_GAP_RANGE["original"].value
    assert f"{a}-{b} before pruning" in text
    with pytest.raises(KeyError, match="pruned"):
        nd.class_gap_paragraph(_gaps().drop(columns="pruned"))


def test_sensitivity_paragraph_says_shown_only_when_0_is_outside():
    means = _means([0.05, -0.0, -0.05], "sensitivity")
    text = nd.sensitivity_paragraph(means, _gaps() - [0, 0.15, 0.15, 0.15])
    assert "original +0.050 [+0.040, +0.060] (higher for members)" not in text  # not a diff
    assert "original 0.050 [0.040, 0.060] (higher for members)" in text
    assert "fine-tuned only -0.000 [-0.010, 0.010] (0 is inside its interval)" in text
    assert "(lower for members)" in text
    assert "positive in 2 of 3" in text and "notebook 07" in text
    with pytest.raises(ValueError, match="sensitivity"):
        nd.sensitivity_paragraph(_means([0, 0, 0]), _gaps())


def _diff(victim, baseline, auc, low, high):
    pruner, sparsity = victim
    return {
        "victim_pruner": pruner,
        "victim_sparsity": sparsity,
        "baseline_pruner": baseline[0],
        "baseline_sparsity": baseline[1],
        "attack": "conf",
        "baseline_attack": "conf",
        "auc": auc,
        "auc_low": low,
        "auc_high": high,
        "seeds": 3,
    }


def test_levels_paragraph_gives_both_verdicts_of_claim_1():
    versus_original = pd.DataFrame(
        [
            _diff(LEVELS[1], LEVELS[0], 0.06, 0.04, 0.08),
            _diff(LEVELS[2], LEVELS[0], 0.02, 0.005, 0.035),
        ]
    )
    versus_finetuned = pd.DataFrame([_diff(LEVELS[2], LEVELS[1], -0.04, -0.06, -0.02)])
    text = nd.levels_paragraph(versus_original, versus_finetuned)
    assert "fine-tuned only - original: +0.060 [+0.040, +0.080] over 3 seeds, higher" in text
    assert "L1 unstructured at 0.7 - fine-tuned only: -0.040 [-0.060, -0.020]" in text
    assert "leaks more than the original (shown)" in text
    assert "pruning's own part (against the same fine-tuning without pruning) is lower" in text
    versus_finetuned.loc[0, "auc_high"] = 0.01
    assert "own part (against the same fine-tuning without pruning) is not shown" in (
        nd.levels_paragraph(versus_original, versus_finetuned)
    )


def _point(pruner, epochs, best, auc, half=0.01):
    return {
        "attack": "conf",
        "victim_pruner": pruner,
        "victim_sparsity": 0.7 if pruner == "l1_unstructured" else 0.0,
        "finetune_epochs": epochs,
        "finetune_restore_best": best,
        "auc": auc,
        "auc_low": auc - half,
        "auc_high": auc + half,
        "seeds": 3,
    }


def test_curve_paragraph_tabulates_each_length_and_reads_the_longest():
    curve = pd.DataFrame(
        [
            _point("none", 0, False, 0.70),
            _point("finetuned", 5, False, 0.72),
            _point("l1_unstructured", 5, False, 0.715),
            _point("finetuned", 60, False, 0.85),
            _point("l1_unstructured", 60, False, 0.78),
            _point("finetuned", 30, True, 0.71),
            _point("l1_unstructured", 30, True, 0.705),
        ]
    )
    text = nd.curve_paragraph(curve)
    assert "(original: 0.700 [0.690, 0.710])" in text
    assert "| 5 | last epoch | 0.720 [0.710, 0.730] | 0.715 [0.705, 0.725] | not told apart |" in (
        text
    )
    assert "| 60 | last epoch | 0.850 [0.840, 0.860] | 0.780 [0.770, 0.790] | lower |" in text
    assert "| 30 | best dev epoch (the paper's rule) | 0.710" in text
    assert "After the longest fine-tune (60 epochs, last weights kept) the fine-tune-only" in text
    assert "model is above the original and the pruned one above the original" in text
    assert "below the fine-tune-only model at 1, above it at 0" in text
    assert "not told apart at 1" in text
