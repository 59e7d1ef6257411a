"""Tests of miakit.attacks.threshold: signals by hand, threshold search against brute force."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction
from itertools import pairwise

import numpy as np
import pytest

from miakit import attacks
from miakit.attacks.base import AttackInputs, AttackScores
from miakit.attacks.threshold import (
    LOG_CLIP,
    Conf,
    Gap,
    MaxConf,
    Mentr,
    Top1Conf,
    Xent,
    best_threshold,
    correctness,
    entropy,
    modified_entropy,
    top1_confidence,
    true_class_confidence,
)
from miakit.metrics import balanced_accuracy

LN_CLIP = -math.log(LOG_CLIP)  # 30 ln 10, the clipped -log 0

# --------------------------------------------------------------------------------------------------
# brute-force references, O(n^2), written independently of the vectorised search
# --------------------------------------------------------------------------------------------------


def _exact_ba(flag: np.ndarray, m: np.ndarray) -> Fraction:
    p, n = int(m.sum()), int((1 - m).sum())
    tp, tn = int((flag & (m == 1)).sum()), int((~flag & (m == 0)).sum())
    return Fraction(tp, 2 * p) + Fraction(tn, 2 * n)


def reference_threshold(v: np.ndarray, m: np.ndarray, higher: bool) -> tuple[float, Fraction]:
    """Every documented candidate (flag-all, midpoints) scored exactly; ties -> most flagged."""
    u = sorted(set(v.tolist()))
    if higher:  # member iff v >= t; cut between a (non-member side) and b
        cands = [u[0]]
        for a, b in pairwise(u):
            t = a / 2 + b / 2
            cands.append(t if a < t else b)
    else:  # member iff v <= t; cut between a (member side) and b
        cands = [u[-1]]
        for a, b in pairwise(u):
            t = a / 2 + b / 2
            cands.append(t if t < b else a)
    best = None
    for t in cands:
        flag = v >= t if higher else v <= t
        key = (_exact_ba(flag, m), int(flag.sum()))
        if best is None or key > best[0]:
            best = (key, t)
    return best[1], best[0][0]


def authors_scan(v: np.ndarray, m: np.ndarray, higher: bool) -> Fraction:
    """The authors' search: every data value as threshold, "member iff value >= it"."""
    x = v if higher else -v
    return max(_exact_ba(x >= t, m) for t in x)


def random_case(seed: int, n: int = 60, k: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    m = rng.integers(0, 2, n)
    values = rng.integers(0, 8, n) / 8 + 0.1 * m * rng.integers(0, 2, n)  # many ties
    return values, m, labels


# --------------------------------------------------------------------------------------------------
# best_threshold
# --------------------------------------------------------------------------------------------------


def test_best_threshold_hand_example_tie_goes_to_most_permissive() -> None:
    # Sorted: 0.6 (non), 0.8 (member and non), 0.9 (member).
    # t = 0.7 flags 3: TPR 1, TNR 1/2; t = 0.85 flags 1: TPR 1/2, TNR 1. Both 0.75: 0.7 wins.
    fit = best_threshold([0.9, 0.8, 0.6, 0.8], [1, 1, 0, 0])
    assert fit.thresholds.tolist() == [0.7]
    assert fit.balanced_accuracy.tolist() == [0.75]
    fit = best_threshold([0.9, 0.8, 0.6, 0.8], [1, 1, 0, 0], higher_is_member=False)
    # Now lower = member: t = 0.7 flags {0.6}: TPR 0, TNR 1/2; t = 0.85 flags all but 0.9:
    # TPR 1/2, TNR 0. Both 0.25, so flagging everything (t = 0.9, accuracy 0.5) wins.
    assert fit.thresholds.tolist() == [0.9] and fit.balanced_accuracy.tolist() == [0.5]


def test_best_threshold_adjacent_floats_keep_a_strict_cut() -> None:
    b = np.nextafter(1.0, 2.0)  # 1.0 / 2 + b / 2 rounds back to 1.0
    fit = best_threshold([1.0, b], [0, 1])
    assert fit.thresholds.tolist() == [b] and fit.balanced_accuracy.tolist() == [1.0]
    fit = best_threshold([1.0, b], [1, 0], higher_is_member=False)
    assert fit.thresholds.tolist() == [1.0] and fit.balanced_accuracy.tolist() == [1.0]


@pytest.mark.parametrize("higher", [True, False])
@pytest.mark.parametrize("seed", range(8))
def test_best_threshold_matches_brute_force(seed: int, higher: bool) -> None:
    values, m, labels = random_case(seed)
    m[labels == 3] = 1  # class 3: members only -> undefined
    fit = best_threshold(values, m, labels, higher_is_member=higher)
    assert fit.groups.tolist() == sorted(set(labels.tolist()))
    for i, g in enumerate(fit.groups):
        v, mg = values[labels == g], m[labels == g]
        assert fit.n_members[i] == mg.sum() and fit.n_nonmembers[i] == (1 - mg).sum()
        if g == 3:
            assert np.isnan(fit.thresholds[i]) and np.isnan(fit.balanced_accuracy[i])
            continue
        t, ba = reference_threshold(v, mg, higher)
        assert fit.thresholds[i] == t
        assert fit.balanced_accuracy[i] == float(ba)
        assert ba == authors_scan(v, mg, higher)  # same maximum as the authors' quadratic scan
        flag = fit.decide(v, np.full(v.size, g)).astype(bool)
        assert _exact_ba(flag, mg) == ba
    # Grouped search == one search per group.
    for i, g in enumerate(fit.groups[:3]):
        alone = best_threshold(values[labels == g], m[labels == g], higher_is_member=higher)
        assert alone.thresholds[0] == fit.thresholds[i]


def test_best_threshold_group_ids_of_any_dtype() -> None:
    values, m, labels = random_case(5)
    reference = best_threshold(values, m, labels)
    for ids in (
        np.array([-100, 100, 0, 7])[labels].astype(np.int8),
        np.array(list("dcba"))[labels],
    ):
        fit = best_threshold(values, m, ids)
        order = np.argsort(np.array([-100, 100, 0, 7]) if ids.dtype == np.int8 else [3, 2, 1, 0])
        assert fit.groups.tolist() == np.unique(ids).tolist()
        assert fit.thresholds.tolist() == reference.thresholds[order].tolist()


def test_best_threshold_errors() -> None:
    with pytest.raises(ValueError, match="shape"):
        best_threshold([0.1, 0.2], [1, 0, 1])
    with pytest.raises(ValueError, match="finite"):
        best_threshold([0.1, np.inf], [1, 0])
    with pytest.raises(ValueError, match="only 0"):
        best_threshold([0.1, 0.2], [1, 2])
    with pytest.raises(ValueError, match="groups"):
        best_threshold([0.1, 0.2], [1, 0], groups=[0])
    with pytest.raises(KeyError, match="not in the fitted data"):
        best_threshold([0.1, 0.2], [1, 0], groups=[0, 0]).decide([0.3], [1])


# --------------------------------------------------------------------------------------------------
# signals
# --------------------------------------------------------------------------------------------------

P = np.array(
    [
        [0.5, 0.25, 0.25],
        [0.5, 0.25, 0.25],
        [1.0, 0.0, 0.0],
        [1.0, 0.0, 0.0],
        [0.25, 0.25, 0.5],
    ]
)
Y = np.array([0, 1, 0, 1, 1])


def test_modified_entropy_by_hand() -> None:
    expected = [
        # y = 0: -(1 - 1/2) ln 1/2 - 2 * 1/4 ln 3/4
        0.5 * math.log(2) - 0.5 * math.log(0.75),
        # y = 1: -(3/4) ln 1/4 - 1/2 ln 1/2 - 1/4 ln 3/4
        -0.75 * math.log(0.25) - 0.5 * math.log(0.5) - 0.25 * math.log(0.75),
        0.0,  # confident and correct
        2 * LN_CLIP,  # confident and wrong: -(1) ln(clip) - 1 * ln(clip)
        -0.75 * math.log(0.25) - 0.25 * math.log(0.75) - 0.5 * math.log(0.5),
    ]
    np.testing.assert_allclose(modified_entropy(P, Y), expected, rtol=1e-15, atol=0)


def test_other_signals_by_hand() -> None:
    np.testing.assert_allclose(
        entropy(P),
        [1.5 * math.log(2), 1.5 * math.log(2), 0.0, 0.0, 1.5 * math.log(2)],
        rtol=1e-15,
        atol=0,
    )
    assert entropy(np.full((1, 4), 0.25))[0] == pytest.approx(math.log(4), rel=1e-15)
    assert true_class_confidence(P, Y).tolist() == [0.5, 0.25, 1.0, 0.0, 0.25]
    assert top1_confidence(P).tolist() == [0.5, 0.5, 1.0, 1.0, 0.5]
    assert correctness(P, Y).tolist() == [1, 0, 1, 0, 0]


# --------------------------------------------------------------------------------------------------
# attacks
# --------------------------------------------------------------------------------------------------


def random_inputs(seed: int, n: int = 80, k: int = 4, with_membership: bool = True) -> AttackInputs:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    m = rng.integers(0, 2, n)
    logits = np.round(rng.normal(size=(n, k)), 1)  # rounding gives tied signals
    logits[np.arange(n), labels] += 1.5 * m
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return AttackInputs(posteriors=p, labels=labels, membership=m if with_membership else None)


SIGNALS = {
    Conf: (lambda x: true_class_confidence(x.posteriors, x.labels), True),
    Xent: (lambda x: entropy(x.posteriors), False),
    Mentr: (lambda x: modified_entropy(x.posteriors, x.labels), False),
}


@pytest.mark.parametrize("cls", [Conf, Xent, Mentr])
@pytest.mark.parametrize("seed", range(4))
def test_class_wise_attacks_match_brute_force(cls, seed: int) -> None:
    shadow, target = random_inputs(seed), random_inputs(1000 + seed)
    signal, higher = SIGNALS[cls]
    attack = cls().fit(shadow)
    v, m = signal(shadow), shadow.membership
    decisions = np.zeros(v.size, dtype=bool)
    for c in range(shadow.num_classes):
        sel = shadow.labels == c
        t, ba = reference_threshold(v[sel], m[sel], higher)
        assert attack.class_thresholds[c] == t
        assert attack.shadow_fit.balanced_accuracy[c] == float(ba)
        decisions[sel] = v[sel] >= t if higher else v[sel] <= t
    # The attack's own decisions on shadow reproduce the class-wise rule.
    assert attack.decide(shadow).tolist() == decisions.astype(int).tolist()
    # And on unseen target data: score >= 0 is exactly "past the class threshold".
    tv, t_y = signal(target), attack.class_thresholds[target.labels]
    expected = tv >= t_y if higher else tv <= t_y
    assert attack.threshold == 0.0
    assert attack.decide(target).tolist() == expected.astype(int).tolist()
    assert balanced_accuracy(target.membership, attack.decide(target)) == balanced_accuracy(
        target.membership, expected
    )


def test_values_exactly_at_a_threshold_are_members() -> None:
    # Xent, one class: members uncertain (high entropy), non-members confident. No cut beats
    # chance, so the class gets the flag-all threshold: its largest entropy, a data value.
    p = np.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1], [0.8, 0.2]])
    labels, m = np.zeros(4, dtype=int), np.array([1, 1, 0, 0])
    shadow = AttackInputs(posteriors=p, labels=labels, membership=m)
    with pytest.warns(UserWarning, match=r"classes \[1\]"):  # class 1 has no shadow data
        attack = Xent().fit(shadow)
    assert attack.class_thresholds[0] == entropy(p).max()
    assert attack.shadow_fit.balanced_accuracy.tolist() == [0.5]
    assert attack.score(shadow).scores[:2].tolist() == [0.0, 0.0]
    assert attack.decide(shadow).tolist() == [1, 1, 1, 1]
    # Conf: target samples whose p_y equals their class threshold score exactly 0 -> member.
    fitted = Conf().fit(random_inputs(7))
    t, k = fitted.class_thresholds, fitted.class_thresholds.size
    q = np.repeat(((1 - t) / (k - 1))[:, None], k, axis=1)  # row c: p_c = t_c, rest uniform
    q[np.arange(k), np.arange(k)] = t
    on = AttackInputs(posteriors=q, labels=np.arange(k))
    assert fitted.score(on).scores.tolist() == [0.0] * t.size
    assert fitted.decide(on).tolist() == [1] * t.size


def test_conf_hand_example_and_margin_scores() -> None:
    # Class 0 as in the best_threshold hand example (t = 0.7); class 1 separable at t = 0.5.
    p_y = np.array([0.9, 0.8, 0.6, 0.8, 0.8, 0.2])
    labels = np.array([0, 0, 0, 0, 1, 1])
    p = np.zeros((6, 2))
    p[np.arange(6), labels] = p_y
    p[np.arange(6), 1 - labels] = 1 - p_y
    shadow = AttackInputs(posteriors=p, labels=labels, membership=np.array([1, 1, 0, 0, 1, 0]))
    attack = Conf().fit(shadow)
    assert attack.class_thresholds.tolist() == [0.7, 0.5]
    np.testing.assert_allclose(attack.score(shadow).scores, p_y - np.array([0.7] * 4 + [0.5] * 2))
    assert attack.decide(shadow).tolist() == [1, 1, 0, 1, 1, 0]


def test_class_missing_from_shadow_falls_back_to_global_threshold() -> None:
    shadow = random_inputs(3, k=5)
    keep = shadow.labels != 4
    shadow = shadow.subset(np.flatnonzero(keep))
    with pytest.warns(UserWarning, match=r"classes \[4\]"):
        attack = Conf().fit(shadow)
    glob, _ = reference_threshold(
        true_class_confidence(shadow.posteriors, shadow.labels), shadow.membership, True
    )
    assert attack.fallback_classes == (4,)
    assert attack.global_threshold == glob == attack.class_thresholds[4]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Conf().fit(random_inputs(3, k=5)).fallback_classes == ()


def test_top1_conf_is_one_global_threshold_on_p_y() -> None:
    """The paper's Top1-conf (the authors' code): one threshold, for all classes, on p_y."""
    shadow, target = random_inputs(11), random_inputs(12)
    attack = Top1Conf().fit(shadow)
    p_y = true_class_confidence(shadow.posteriors, shadow.labels)
    t, ba = reference_threshold(p_y, shadow.membership, True)
    assert attack.threshold == t
    assert attack.shadow_fit.balanced_accuracy[0] == float(ba)
    target_p_y = true_class_confidence(target.posteriors, target.labels)
    assert attack.score(target).scores.tolist() == target_p_y.tolist()
    assert attack.decide(target).tolist() == (target_p_y >= t).tolist()
    # not the largest probability: on these inputs the two signals give other thresholds
    assert MaxConf().fit(shadow).threshold != t


def test_max_conf_uses_one_global_threshold_on_the_largest_posterior() -> None:
    shadow, target = random_inputs(11), random_inputs(12)
    attack = MaxConf().fit(shadow)
    t, ba = reference_threshold(top1_confidence(shadow.posteriors), shadow.membership, True)
    assert attack.threshold == t
    assert attack.shadow_fit.balanced_accuracy[0] == float(ba)
    assert attack.score(target).scores.tolist() == top1_confidence(target.posteriors).tolist()
    assert attack.decide(target).tolist() == (top1_confidence(target.posteriors) >= t).tolist()
    # label-free: permuting the labels changes nothing
    relabelled = AttackInputs(
        posteriors=target.posteriors,
        labels=np.roll(target.labels, 1),
        membership=target.membership,
    )
    assert attack.score(relabelled).scores.tolist() == attack.score(target).scores.tolist()


def test_max_conf_is_registered_but_not_a_baseline() -> None:
    assert attacks.ATTACKS["max_conf"] is MaxConf and MaxConf.title == "Max-conf"
    assert "max_conf" not in attacks.BASELINES
    assert attacks.BASELINES == (
        "gap",
        "conf",
        "xent",
        "mentr",
        "top1_conf",
        "nn",
        "top3_nn",
        "nncls",
    )
    assert attacks.ATTACKS["top1_conf"] is Top1Conf
    assert list(attacks.ATTACKS)[: len(attacks.BASELINES)] == list(attacks.BASELINES)


def test_gap_is_member_iff_correct() -> None:
    target = AttackInputs(posteriors=P, labels=Y, membership=np.array([1, 0, 1, 1, 0]))
    attack = Gap().fit(target)
    assert attack.score(target).scores.tolist() == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert attack.decide(target).tolist() == [1, 0, 1, 0, 0]
    unlabelled = AttackInputs(posteriors=P, labels=Y)  # no membership needed
    assert Gap().fit(unlabelled).decide(unlabelled).tolist() == [1, 0, 1, 0, 0]


def test_names() -> None:
    assert [a.name for a in (Gap, Conf, Xent, Mentr, Top1Conf, MaxConf)] == [
        "gap",
        "conf",
        "xent",
        "mentr",
        "top1_conf",
        "max_conf",
    ]


@pytest.mark.parametrize("cls", [Conf, Xent, Mentr, Top1Conf, MaxConf])
def test_attack_errors(cls) -> None:
    with pytest.raises(ValueError, match="fit"):
        cls().score(random_inputs(0))
    with pytest.raises(ValueError, match="membership"):
        cls().fit(random_inputs(0, with_membership=False))
    members_only = random_inputs(0)
    members_only = AttackInputs(
        posteriors=members_only.posteriors,
        labels=members_only.labels,
        membership=np.ones_like(members_only.membership),
    )
    with pytest.raises(ValueError, match="both members and non-members"):
        cls().fit(members_only)


def test_class_count_mismatch_is_an_error() -> None:
    attack = Conf().fit(random_inputs(0, k=4))
    with pytest.raises(ValueError, match="4 classes"):
        attack.score(random_inputs(1, k=5))


# --------------------------------------------------------------------------------------------------
# the protocol: AttackScores, families, titles, p_y
# --------------------------------------------------------------------------------------------------


def test_attack_scores_reject_nan_and_inf_naming_the_attack() -> None:
    labels = np.array([0, 1, 0])
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="attack 'samia' produced 1 NaN or infinite"):
            AttackScores("samia", np.array([0.1, bad, 0.3]), 0.5, np.array([1, 0, 1]), labels)

    class Broken(Conf):
        name = "broken"

        def score_values(self, target):
            return np.full(target.num_samples, np.nan)

    shadow = random_inputs(0)
    with pytest.raises(ValueError, match="attack 'broken' produced"):
        Broken().fit(shadow).score(shadow)


def test_attack_scores_decisions_and_result() -> None:
    s = AttackScores(
        "conf",
        [0.2, -0.1, 0.0, 0.5],
        0.0,
        [1, 0, 0, 1],
        np.zeros(4, int),
        columns={"victim": "original"},
    )
    assert s.scores.dtype == np.float64
    assert s.decisions().tolist() == [1, 0, 1, 1]
    r = s.result()
    assert r.tags == {"victim": "original"} and r.auc == 1.0 and r.balanced_accuracy == 0.75
    assert s.result({"shadows": "x"}).tags == {"victim": "original", "shadows": "x"}
    assert list(s.per_class().columns[:2]) == ["attack", "victim"]
    with pytest.raises(ValueError, match="only 0"):
        AttackScores("conf", [0.1, 0.2], 0.0, [1, 2], np.zeros(2, int))
    unknown = AttackScores("conf", [0.1, 0.2], 0.0, None, np.zeros(2, int))
    with pytest.raises(ValueError, match="no membership truth"):
        unknown.result()


def test_families_and_titles_come_from_the_classes() -> None:
    assert attacks.family("threshold") == (
        "gap",
        "conf",
        "xent",
        "mentr",
        "top1_conf",
        "max_conf",
    )
    assert attacks.family("neural") == ("nn", "top3_nn", "nncls", "samia")
    assert attacks.family("reference") == ("lira", "lira_online", "rmia", "rmia_online")
    assert sorted(sum((attacks.family(f) for f in attacks.FAMILIES), ())) == sorted(attacks.ATTACKS)
    with pytest.raises(ValueError, match="unknown attack family"):
        attacks.family("oracle")
    assert Top1Conf.title == "Top1-conf" and attacks.ATTACKS["nncls"].title == "NNCls"
    assert {c.uses for c in attacks.ATTACKS.values()} == {
        frozenset(),
        frozenset({"shadows"}),
        frozenset({"references"}),
        frozenset({"references", "reference_models"}),  # the online LiRA and RMIA
    }
    assert [n for n, c in attacks.ATTACKS.items() if c.persist] == list(attacks.family("neural"))


def test_p_y_and_membership_checks() -> None:
    inputs = AttackInputs(posteriors=P, labels=Y, membership=np.array([True, False, True, 1, 0]))
    assert (
        inputs.p_y.tolist() == true_class_confidence(P, Y).tolist() == [0.5, 0.25, 1.0, 0.0, 0.25]
    )
    assert inputs.membership.dtype == np.int64
    with pytest.raises(ValueError, match="only 0"):
        AttackInputs(posteriors=P, labels=Y, membership=np.array([0, 1, 2, 0, 1]))
    with pytest.raises(ValueError, match="sample_ids"):
        AttackInputs(posteriors=P, labels=Y, sample_ids=np.arange(4))
