"""Tests of miakit.metrics: exact values on hand-worked examples, sklearn agreement, errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics

from miakit.metrics import (
    RESULT_COLUMNS,
    AttackResult,
    TprAtFpr,
    balanced_accuracy,
    divergence_stats,
    evaluate_attack,
    per_class_results,
    results_frame,
    roc_auc,
    roc_curve,
    summary,
    tpr_at_fpr,
)

# A 6-sample example worked out by hand.
#   members     scores 0.9, 0.8, 0.4
#   non-members scores 0.8, 0.3, 0.1
# Distinct scores, highest first, with cumulative (tp, fp):
#   0.9 -> (1, 0)   0.8 -> (2, 1) [a member and a non-member tie]   0.4 -> (3, 1)
#   0.3 -> (3, 2)   0.1 -> (3, 3)
# Pairs (member, non-member): 0.9 beats all 3; 0.8 ties 0.8 and beats 2; 0.4 beats 2 -> 7.5 / 9.
M6 = np.array([1, 1, 1, 0, 0, 0])
S6 = np.array([0.9, 0.8, 0.4, 0.8, 0.3, 0.1])


def test_roc_curve_hand_example() -> None:
    fpr, tpr, thr = roc_curve(M6, S6)
    np.testing.assert_array_equal(fpr, np.array([0, 0, 1, 1, 2, 3]) / 3)
    np.testing.assert_array_equal(tpr, np.array([0, 1, 2, 3, 3, 3]) / 3)
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.8, 0.4, 0.3, 0.1])


def test_roc_auc_hand_example_counts_ties_half() -> None:
    assert roc_auc(M6, S6) == 7.5 / 9
    # Reversing the scores swaps ordered and reversed pairs; the tie still counts 1/2.
    assert roc_auc(M6, -S6) == 1.5 / 9
    assert roc_auc(M6, np.zeros(6)) == 0.5


@pytest.mark.parametrize(
    ("target", "tpr", "realised", "threshold", "tp", "fp"),
    [
        (0.0, 1 / 3, 0.0, 0.9, 1, 0),
        (0.001, 1 / 3, 0.0, 0.9, 1, 0),  # 3 non-members: 0.1% allows no false positive
        (0.3, 1 / 3, 0.0, 0.9, 1, 0),
        (1 / 3, 1.0, 1 / 3, 0.4, 3, 1),  # two points at FPR 1/3: the larger TPR wins
        (0.5, 1.0, 1 / 3, 0.4, 3, 1),
        (1.0, 1.0, 1 / 3, 0.4, 3, 1),  # TPR 1 first reached at FPR 1/3, not at 1
    ],
)
def test_tpr_at_fpr_hand_example(
    target: float, tpr: float, realised: float, threshold: float, tp: int, fp: int
) -> None:
    r = tpr_at_fpr(M6, S6, target)
    assert r == TprAtFpr(
        tpr=tpr,
        fpr_target=target,
        fpr_realised=realised,
        threshold=threshold,
        tp=tp,
        fp=fp,
        n_members=3,
        n_nonmembers=3,
    )
    # The threshold really achieves the counts.
    assert tp == int(((S6 >= threshold) & (M6 == 1)).sum())
    assert fp == int(((S6 >= threshold) & (M6 == 0)).sum())


def test_tpr_at_fpr_nothing_within_budget_is_the_empty_decision() -> None:
    # The highest score is a non-member: only "flag nothing" has FPR 0.
    r = tpr_at_fpr([0, 1, 1], [0.9, 0.5, 0.4], 0.1)
    assert (r.tpr, r.fpr_realised, r.threshold, r.tp, r.fp) == (0.0, 0.0, math.inf, 0, 0)


def test_balanced_accuracy_hand_example() -> None:
    decisions = (S6 >= 0.5).astype(int)  # [1, 1, 0, 1, 0, 0]: TPR 2/3, TNR 2/3
    assert balanced_accuracy(M6, decisions) == 2 / 3
    # Unbalanced: 1 member found of 1, 1 of 3 non-members rejected -> (1 + 1/3) / 2.
    assert balanced_accuracy([1, 0, 0, 0], [1, 1, 1, 0]) == 2 / 3
    assert balanced_accuracy([True, False], [True, False]) == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_sklearn_on_seeded_scores_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    m = rng.integers(0, 2, n)
    scores = np.round(rng.normal(size=n) + 0.7 * m, 1)  # rounding makes many ties
    fpr, tpr, thr = roc_curve(m, scores)
    fpr_sk, tpr_sk, thr_sk = sklearn.metrics.roc_curve(m, scores, drop_intermediate=False)
    np.testing.assert_array_equal(fpr, fpr_sk)
    np.testing.assert_array_equal(tpr, tpr_sk)
    np.testing.assert_array_equal(thr, thr_sk)
    # Ours is an exact integer trapezoid; sklearn integrates float rates.
    assert roc_auc(m, scores) == pytest.approx(
        sklearn.metrics.roc_auc_score(m, scores), rel=1e-12, abs=0
    )
    d = (scores >= 0.3).astype(int)
    assert balanced_accuracy(m, d) == pytest.approx(
        sklearn.metrics.balanced_accuracy_score(m, d), rel=1e-12, abs=0
    )


@pytest.mark.parametrize("seed", range(3))
def test_tpr_at_fpr_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    m = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(size=300) + m, 1)
    for target in (0.0, 0.001, 0.01, 0.05, 0.2, 1.0):
        best = (-1, 0, math.inf)  # (tp, -fp, threshold): largest TPR, then lowest FPR
        for t in [math.inf, *np.unique(scores)]:
            flag = scores >= t
            tp, fp = int((flag & (m == 1)).sum()), int((flag & (m == 0)).sum())
            if fp / (m == 0).sum() <= target and (tp, -fp) > best[:2]:
                best = (tp, -fp, t)
        r = tpr_at_fpr(m, scores, target)
        assert (r.tp, -r.fp, r.threshold) == best


def test_evaluate_attack_and_results_frame() -> None:
    tags = {"dataset": "mnist1d", "sparsity": 0.7}
    r = evaluate_attack("conf", M6, S6, (S6 >= 0.5).astype(int), tags=tags)
    tags["sparsity"] = 0.9  # the result keeps its own copy
    assert isinstance(r, AttackResult)
    assert (r.attack, r.balanced_accuracy, r.auc) == ("conf", 2 / 3, 7.5 / 9)
    assert (r.n_members, r.n_nonmembers) == (3, 3)
    assert r.tags == {"dataset": "mnist1d", "sparsity": 0.7}
    assert r.at_fpr_0_1pct == tpr_at_fpr(M6, S6, 0.001)
    assert r.at_fpr_1pct == tpr_at_fpr(M6, S6, 0.01)
    assert r.tpr_at_0_1pct_fpr == r.tpr_at_1pct_fpr == 1 / 3

    other = evaluate_attack("gap", M6, S6 > 0.35, S6 > 0.35, tags={"dataset": "digits", "x": 1})
    df = results_frame([r, other])
    assert list(df.columns) == ["dataset", "sparsity", "x", *RESULT_COLUMNS]
    assert df["attack"].tolist() == ["conf", "gap"]
    assert df.loc[0, "tpr@0.1%fpr"] == 1 / 3
    assert df.loc[0, "realised_fpr@1%fpr"] == 0.0
    assert df.loc[0, "tp@1%fpr"] == 1 and df.loc[0, "fp@1%fpr"] == 0
    assert pd.isna(df.loc[1, "sparsity"]) and pd.isna(df.loc[0, "x"])
    assert list(results_frame(r).columns) == ["dataset", "sparsity", *RESULT_COLUMNS]
    assert list(results_frame([]).columns) == list(RESULT_COLUMNS)


def test_per_class_results_hand_example() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    m = np.array([1, 1, 0, 0, 1, 0, 1, 1])
    scores = np.array([0.9, 0.2, 0.4, 0.1, 0.3, 0.8, 0.5, 0.5])
    decisions = (scores >= 0.35).astype(int)
    df = per_class_results(m, scores, decisions, labels)
    assert df["class"].tolist() == [0, 1, 2]
    assert df["n_members"].tolist() == [2, 1, 2]
    assert df["n_nonmembers"].tolist() == [2, 1, 0]
    # Class 0: members 0.9, 0.2 vs non-members 0.4, 0.1 -> 3 of 4 pairs; decisions TPR 1/2, TNR 1/2.
    assert df.loc[0, "auc"] == 0.75 and df.loc[0, "balanced_accuracy"] == 0.5
    # Class 1: the member scores below the non-member.
    assert df.loc[1, "auc"] == 0.0 and df.loc[1, "balanced_accuracy"] == 0.0
    # Class 2 has no non-members: counts, but no metrics.
    assert np.isnan(df.loc[2, "auc"]) and np.isnan(df.loc[2, "balanced_accuracy"])


def test_divergence_stats_hand_example() -> None:
    values = np.array([1.0, 0.5, 0.25, 0.25, 0.75, 0.5, 0.5])
    m = np.array([1, 1, 0, 0, 1, 0, 1])
    labels = np.array([3, 3, 3, 3, 5, 5, 7])
    df = divergence_stats(values, m, labels)
    assert list(df.columns) == [
        "class",
        "n_members",
        "n_nonmembers",
        "member_mean",
        "nonmember_mean",
        "gap",
    ]
    assert df["class"].tolist() == [3, 5, 7]
    assert df["n_members"].tolist() == [2, 1, 1]
    assert df["n_nonmembers"].tolist() == [2, 1, 0]
    assert df["member_mean"].tolist() == [0.75, 0.75, 0.5]
    assert df["nonmember_mean"].tolist()[:2] == [0.25, 0.5]
    assert df["gap"].tolist()[:2] == [0.5, 0.25]
    assert np.isnan(df.loc[2, "nonmember_mean"]) and np.isnan(df.loc[2, "gap"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: roc_auc([1, 0, 1], [0.1, 0.2]), "one entry per sample"),
        (lambda: roc_auc([[1, 0]], [[0.1, 0.2]]), "1-D"),
        (lambda: roc_auc([1, 0, 2], [0.1, 0.2, 0.3]), "only 0"),
        (lambda: roc_auc([1, 1], [0.1, 0.2]), "both members and non-members"),
        (lambda: roc_curve([0, 0], [0.1, 0.2]), "both members and non-members"),
        (lambda: roc_auc([1, 0], [0.1, np.nan]), "finite"),
        (lambda: tpr_at_fpr([1, 0], [0.1, 0.2], 1.5), r"\[0, 1\]"),
        (lambda: balanced_accuracy([1, 0], [1, 0.5]), "decisions must hold only 0"),
        (lambda: balanced_accuracy([1, 0], [1]), "one entry per sample"),
        (lambda: evaluate_attack("a", [1, 0], [1, 0], [1, 0], tags={"auc": 1}), "clash"),
        (lambda: divergence_stats([0.1, 0.2], [1, 0], [0]), "labels"),
        (lambda: per_class_results([1, 1], [0.1, 0.2], [1, 1], [0, 1]), "both members"),
        (lambda: results_frame(["not a result"]), "AttackResult"),
    ],
)
def test_bad_inputs_raise_clear_value_errors(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_summary_names_each_row_and_the_best() -> None:
    m = np.array([1, 1, 0, 0])
    a = evaluate_attack("conf", m, np.array([0.9, 0.8, 0.2, 0.1]), np.array([1, 1, 0, 0]))
    b = evaluate_attack("gap", m, np.array([1.0, 0.0, 1.0, 0.0]), np.array([1, 0, 1, 0]))
    frame = results_frame([a, b]).assign(victim_pruner="none")
    text = summary(frame, by=("victim_pruner",))
    lines = text.splitlines()
    assert lines[0].startswith("conf") and "victim_pruner=none" in lines[0]
    assert "AUC 1.000" in lines[0] and "acc 0.500" in lines[1]
    assert lines[-1] == "best AUC: conf (1.000)"
    with pytest.raises(KeyError, match="auc"):
        summary(frame.drop(columns="auc"))
