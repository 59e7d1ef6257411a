"""narrate.attacks: the words follow the intervals of small synthetic summarised tables."""

from __future__ import annotations

import pandas as pd
import pytest

from miakit.narrate import attacks as na
from miakit.narrate.core import interval

PRUNED = {"victim_pruner": "l1_unstructured", "victim_sparsity": 0.7, "victim_defense": "none"}
ORIG = {"victim_pruner": "none", "victim_sparsity": 0.0, "victim_defense": "none"}


def _row(victim, attack, auc, half=0.01, seeds=3, **more):
    row = {**victim, "attack": attack, "auc": auc, "auc_low": auc - half}
    row.update({"auc_high": auc + half, "seeds": seeds, **more})
    return row


def _diff(victim, attack, value, half=0.01, baseline="samia", base_victim=None, **more):
    base = base_victim or victim
    row = _row(victim, attack, value, half, baseline_attack=baseline, **more)
    row.update({f"baseline_{k.removeprefix('victim_')}": v for k, v in base.items()})
    return row


def _summary(victim):
    return pd.DataFrame(
        [
            _row(victim, "conf", 0.80),
            _row(victim, "nncls", 0.78),
            _row(victim, "samia", 0.82),
            _row(victim, "lira", 0.85),
        ]
    )


def test_samia_sentence_counts_follow_the_paired_intervals():
    versus = pd.DataFrame(
        [
            _diff(PRUNED, "conf", -0.03),  # SAMIA shown above Conf
            _diff(PRUNED, "nncls", -0.005),  # interval includes 0
            _diff(PRUNED, "lira", 0.04),  # LiRA shown above SAMIA
            _diff(PRUNED, "samia", 0.0, half=0.0),  # itself: ignored
        ]
    )
    text = na.samia_sentence(_summary(PRUNED), versus)
    # Conf is the strongest baseline in the summary; its difference is turned round.
    assert "SAMIA minus Conf" in text and f"{0.03:+.3f} [{0.02:+.3f}, {0.04:+.3f}]" in text
    assert "shown above 1 of the 3 other attacks" in text
    assert "below 1 (LiRA" in text and "not told apart from NNCls" in text
    assert "Claim 2" in text and "is not shown here" in text


def test_claim_2_holds_only_when_every_baseline_is_shown_below():
    versus = pd.DataFrame([_diff(PRUNED, "conf", -0.03), _diff(PRUNED, "nncls", -0.05)])
    assert "holds here" in na.samia_sentence(_summary(PRUNED), versus)
    reversed_ = pd.DataFrame([_diff(PRUNED, "conf", 0.03), _diff(PRUNED, "nncls", -0.05)])
    assert "is reversed here" in na.samia_sentence(_summary(PRUNED), reversed_)
    # No claim is stated on the original model (the claim is about pruned ones).
    assert "Claim 2" not in na.samia_sentence(_summary(ORIG), versus.assign(**ORIG))


def test_xent_reads_the_label_and_the_label_sentence_follows_overlap():
    assert "xent" not in na.LABEL_FREE and {"nn", "top3_nn", "max_conf"} == set(na.LABEL_FREE)
    rows = pd.DataFrame([_row(PRUNED, "xent", 0.75), _row(PRUNED, "nn", 0.65)])
    text = na.label_sentence(rows)
    assert "reads the true class, Xent 0.750" in text and "never does, NN 0.650" in text
    assert "are apart" in text
    close = pd.DataFrame([_row(PRUNED, "xent", 0.70), _row(PRUNED, "nn", 0.69)])
    assert "not told apart" in na.label_sentence(close)


def test_low_fpr_sentence_names_the_best_and_the_counts():
    rows = pd.DataFrame(
        [
            _row(PRUNED, "conf", 0.80, **{"tpr@1%fpr": 0.09, "tpr@0.1%fpr": 0.01}),
            _row(PRUNED, "samia", 0.82, **{"tpr@1%fpr": 0.04, "tpr@0.1%fpr": 0.02}),
        ]
    ).assign(**{"tp@0.1%fpr": [18.0, 36.0], "fp@0.1%fpr": [1.0, 2.0], "n_members": 1800})
    text = na.low_fpr_sentence(rows)
    assert "1% FPR: Conf 0.090 (one run)" in text and "0.1% FPR: SAMIA 0.020" in text
    assert "36 members found for 2 non-members accused, of 1800" in text
    assert "highest AUC, SAMIA, has TPR 0.040" in text


def test_change_and_control_list_only_the_shown_differences():
    change = pd.DataFrame(
        [
            _diff(PRUNED, "lira", 0.03, baseline="lira", base_victim=ORIG),
            _diff(PRUNED, "nn", -0.02, baseline="nn", base_victim=ORIG),
            _diff(PRUNED, "conf", 0.005, baseline="conf", base_victim=ORIG),
        ]
    )
    text = na.change_markdown(change)
    assert "L1 unstructured@0.7 minus original" in text
    assert f"higher for LiRA {interval(change.iloc[0], 'auc')}" in text
    assert f"lower for NN {interval(change.iloc[1], 'auc')}" in text
    assert "not shown either way for 1 of 3" in text
    text = na.control_markdown(change, change.assign(auc_low=-1.0, auc_high=1.0))
    first, second = text.splitlines()
    assert first.startswith("- Fine-tuning alone") and "higher for LiRA" in first
    assert "not shown either way for 3 of 3" in second


def test_findings_markdown_has_every_victim_and_section():
    summary = pd.concat([_summary(ORIG), _summary(PRUNED)], ignore_index=True)
    summary = summary.assign(**{"tpr@1%fpr": 0.05, "tpr@0.1%fpr": 0.01})
    versus = pd.DataFrame([_diff(ORIG, "conf", -0.03), _diff(PRUNED, "conf", -0.03)])
    change = pd.DataFrame([_diff(PRUNED, "conf", 0.0, baseline="conf", base_victim=ORIG)])
    text = na.findings_markdown(summary, versus, change)
    for part in ("**original**", "**L1 unstructured@0.7**", "over 3 seeds", "low false-pos"):
        assert part in text
    assert text.count("SAMIA minus Conf") == 2


def _ablation(victim, label, value, half=0.01):
    return {**_diff(victim, "samia", value, half), "ablation": label}


def test_ablation_markdown_says_lower_only_where_the_interval_excludes_0():
    differences = pd.DataFrame(
        [
            _ablation(ORIG, "SAMIA w/o sensitivity", -0.005),  # includes 0
            _ablation(PRUNED, "SAMIA w/o sensitivity", -0.03),  # shown lower
            _ablation(ORIG, "SAMIA with MLP", 0.02),  # shown higher
            _ablation(PRUNED, "SAMIA with MLP", 0.0),
            _ablation(PRUNED, "NNCls", -0.04),
        ]
    )
    summary = pd.DataFrame(
        [
            {**_row(PRUNED, "samia", 0.70), "ablation": "SAMIA with MLP w/o sensitivity"},
            {**_row(PRUNED, "nncls", 0.75), "ablation": "NNCls"},
        ]
    )
    text = na.ablation_markdown(summary, differences)
    assert "removing the sensitivity feature lowers attack AUC on 1 of 2 victims " in text
    assert "(L1 unstructured@0.7)" in text
    assert "replacing attention with an MLP lowers attack AUC on 0 of 2 victims and raises" in text
    assert "NNCls is shown below SAMIA on 1 of 2" in text
    assert "same information through the same network" in text and "are apart" not in text
    assert "apart (the intervals do not overlap)" in text  # 0.70 +/- 0.01 vs 0.75 +/- 0.01


@pytest.mark.parametrize("missing", ["victim_pruner", "victim_sparsity"])
def test_a_table_without_victim_columns_is_a_clear_error(missing):
    with pytest.raises(KeyError, match="victim_pruner and victim_sparsity"):
        na.change_markdown(pd.DataFrame([_diff(PRUNED, "conf", 0.0)]).drop(columns=missing))
