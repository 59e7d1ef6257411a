"""Notebook 08's rendered conclusions follow the summarised tables' intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from miakit.contrasts import DEFENSE_CONTRASTS
from miakit.narrate import defenses

#: (defense, parameter, setting, test accuracy, epsilon, delta)
SETTINGS = [
    ("none", "none", "none", 0.53, np.nan, np.nan),
    ("ppb", "λ=4", "ppb λ=4", 0.43, np.nan, np.nan),
    ("dpsgd", "σ=1", "dpsgd σ=1", 0.52, 10.84, 1e-5),
]
ATTACKS = ["conf", "samia"]


def _summary() -> pd.DataFrame:
    rows = []
    for defense, parameter, setting, acc, eps, delta in SETTINGS:
        for adaptive in [True] if defense == "none" else [False, True]:
            for j, attack in enumerate(ATTACKS):
                auc = 0.8 - (0.05 if defense != "none" else 0.0) + 0.01 * adaptive + 0.001 * j
                rows.append(
                    {
                        "setting": setting,
                        "parameter": parameter,
                        "adaptive": adaptive,
                        "victim_defense": defense,
                        "attack": attack,
                        "auc": auc,
                        "auc_low": auc - 0.01,
                        "auc_high": auc + 0.01,
                        "victim_test_acc": acc,
                        "victim_test_acc_low": acc - 0.02,
                        "victim_test_acc_high": acc + 0.02,
                        "victim_realised_sparsity": 0.7,
                        "victim_epsilon": eps,
                        "victim_delta": delta,
                        "seeds": 3,
                    }
                )
    return pd.DataFrame(rows)


def _differences() -> pd.DataFrame:
    """Each defended setting x contrast x attack; the (low, high) bounds vary by row."""
    bounds = iter(
        [
            (-0.06, -0.04),
            (-0.02, 0.01),
            (-0.05, -0.03),
            (-0.01, 0.01),
            (0.01, 0.03),
            (-0.005, 0.004),
        ]
        + [(-0.03, -0.01), (-0.02, -0.01), (-0.04, 0.01), (-0.02, -0.01), (-0.004, 0.003)]
        + [(-0.002, 0.009)]
    )
    rows = []
    for defense, parameter, setting, *_ in SETTINGS[1:]:
        for contrast in DEFENSE_CONTRASTS:
            for attack in ATTACKS:
                low, high = next(bounds)
                rows.append(
                    {
                        "setting": setting,
                        "parameter": parameter,
                        "victim_defense": defense,
                        "contrast": contrast,
                        "attack": attack,
                        "baseline_attack": attack,
                        "auc": (low + high) / 2,
                        "auc_low": low,
                        "auc_high": high,
                        "seeds": 3,
                    }
                )
    return pd.DataFrame(rows)


def _word(row: pd.Series) -> str:
    return "higher" if row["auc_low"] > 0 else "lower" if row["auc_high"] < 0 else "not shown"


def test_epsilon_is_stated_with_its_delta():
    summary = _summary()
    dp = summary[summary["victim_defense"] == "dpsgd"].iloc[0]
    assert defenses.epsilon_text(dp) == "ε = 10.8 at δ = 1e-05"
    assert defenses.epsilon_text(summary.iloc[0]) == ""
    assert defenses.epsilon_text(dp.copy().replace({10.84: 2862.0})) == "ε = 2,862 at δ = 1e-05"
    assert defenses.setting_name(dp) == "DP-SGD σ=1"
    assert defenses.setting_name(summary.iloc[0]) == "no defense"


def test_costs_table_has_a_row_per_setting_with_its_paired_changes():
    summary, diffs = _summary(), _differences()
    lines = defenses.costs_table(summary, diffs, "samia").splitlines()
    assert len(lines) == 2 + len(SETTINGS)
    # Undefended: one row, the same AUC for both adversaries, no change to state.
    auc = summary.query("setting == 'none' and attack == 'samia'").iloc[0]
    both = f"{auc['auc']:.3f} [{auc['auc_low']:.3f}, {auc['auc_high']:.3f}]"
    assert lines[2] == f"| no defense | 0.530 [0.510, 0.550] | 0.700 |  | {both} | {both} | – | – |"
    for line, setting in zip(lines[3:], ["ppb λ=4", "dpsgd σ=1"], strict=True):
        for contrast in DEFENSE_CONTRASTS[:2]:
            pick = (diffs["setting"] == setting) & (diffs["contrast"] == contrast)
            r = diffs[pick & (diffs["attack"] == "samia")].iloc[0]
            assert f"{r['auc']:+.3f} [{r['auc_low']:+.3f}, {r['auc_high']:+.3f}] {_word(r)}" in line
    assert "ε = 10.8 at δ = 1e-05" in lines[-1]


def test_adaptive_sentence_names_only_the_pairs_told_apart():
    diffs = _differences()
    text = defenses.adaptive_sentence(diffs)
    for defense in ("ppb", "dpsgd"):
        gap = diffs[
            (diffs["victim_defense"] == defense) & (diffs["contrast"] == DEFENSE_CONTRASTS[2])
        ]
        apart = sum(_word(r) != "not shown" for _, r in gap.iterrows())
        assert f"told apart in {apart} of {len(gap)} pairs" in text
        assert f"largest |difference| {gap['auc'].abs().max():.3f}" in text


def test_reduction_sentence_counts_the_shown_changes():
    diffs = _differences()
    for contrast in DEFENSE_CONTRASTS[:2]:
        text = defenses.reduction_sentence(diffs, contrast)
        for defense, title in (("ppb", "PPB"), ("dpsgd", "DP-SGD")):
            rows = diffs[(diffs["victim_defense"] == defense) & (diffs["contrast"] == contrast)]
            words = [_word(r) for _, r in rows.iterrows()]
            assert f"{title} lowered it in {words.count('lower')} of {len(words)}" in text
            assert f"raised it in {words.count('higher')}" in text


def test_paragraph_states_the_undefended_model_epsilon_and_accuracy_kept():
    summary, diffs = _summary(), _differences()
    text = defenses.defenses_paragraph(summary, diffs, "samia")
    auc = summary.query("setting == 'none' and attack == 'samia'").iloc[0]
    both = f"{auc['auc']:.3f} [{auc['auc_low']:.3f}, {auc['auc_high']:.3f}]"
    assert f"test accuracy 0.530 [0.510, 0.550], SAMIA AUC {both}." in text
    assert "DP-SGD σ=1: ε = 10.8 at δ = 1e-05" in text
    # DP-SGD's accuracy interval reaches the undefended one's, PPB's does not.
    assert "(no accuracy loss shown): DP-SGD σ=1." in text
    assert defenses.costs_table(summary, diffs, "samia") in text
    short = defenses.defenses_paragraph(summary, diffs, "samia", with_table=False)
    assert "| setting |" not in short and "DP-SGD σ=1: ε = 10.8" in short
    with pytest.raises(ValueError, match="no 'lira' rows"):
        defenses.defenses_paragraph(summary, diffs, "lira")
