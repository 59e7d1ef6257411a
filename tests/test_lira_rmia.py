"""Tests of offline LiRA and RMIA (DESIGN.md, "Beyond the paper")."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from miakit.attacks.base import AttackInputs, ReferenceSignals
from miakit.attacks.lira import LiRA, inputs_phi, lira_offline, logit_confidence
from miakit.attacks.rmia import RMIA, offline_marginal, rmia_scores, true_label_probability


def _one_sided(z: float) -> float:
    """-ln P(Z >= z) for a standard normal Z, from math.erfc."""
    return -math.log(0.5 * math.erfc(z / math.sqrt(2.0)))


# --- logit-scaled confidence -------------------------------------------------------------


def test_logit_confidence_by_hand() -> None:
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 1.0]])
    phi = logit_confidence(logits, np.array([0, 1]), from_logits=True)
    np.testing.assert_allclose(phi, [2.0 - math.log(2.0), 3.0 - math.log(1.0 + math.e)])
    post = np.array([[0.8, 0.1, 0.1], [0.25, 0.5, 0.25]])
    phi = logit_confidence(post, np.array([0, 2]))
    np.testing.assert_allclose(phi, [math.log(4.0), -math.log(3.0)])


def test_logit_confidence_is_stable() -> None:
    # From logits it never saturates; from saturated posteriors it is clipped, not inf.
    assert logit_confidence(np.array([[100.0, 0.0]]), np.array([0]), from_logits=True)[0] == 100.0
    clipped = logit_confidence(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 0]))
    np.testing.assert_allclose(clipped, [math.log(1e30), -math.log(1e30)])
    # Near p_y = 1 the other classes' sum keeps precision that 1 - p_y would lose.
    z = np.random.default_rng(0).normal(scale=8.0, size=(50, 6))
    labels = np.arange(50) % 6
    p = torch.softmax(torch.from_numpy(z), 1).numpy()
    np.testing.assert_allclose(
        logit_confidence(p, labels), logit_confidence(z, labels, from_logits=True), atol=1e-9
    )
    with pytest.raises(ValueError, match="2 classes"):
        logit_confidence(np.ones((3, 1)), np.zeros(3, dtype=int))


def test_inputs_phi_prefers_logits() -> None:
    z = np.array([[3.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    p = torch.softmax(torch.from_numpy(z), 1).numpy()
    inputs = AttackInputs(posteriors=p, labels=np.array([0, 0]), logits=z)
    np.testing.assert_array_equal(inputs_phi(inputs), [3.0, -1.0])
    no_logits = AttackInputs(posteriors=p, labels=np.array([0, 0]))
    np.testing.assert_allclose(inputs_phi(no_logits), [3.0, -1.0], atol=1e-6)
    with pytest.raises(ValueError, match="logits=None"):
        inputs_phi(no_logits, use_logits=True)


# --- LiRA ------------------------------------------------------------------------------


def test_lira_offline_by_hand() -> None:
    ref = np.array([[0.0, 2.0], [2.0, 6.0]])  # OUT means (1, 4); per-sample variances (2, 8)
    target = np.array([1.0, 8.0])
    # Global variance: pooled (2 + 8) / 2 = 5.
    np.testing.assert_allclose(
        lira_offline(target, ref), [math.log(2.0), _one_sided(4.0 / math.sqrt(5.0))], rtol=1e-12
    )
    np.testing.assert_allclose(
        lira_offline(target, ref, fix_variance=False),
        [math.log(2.0), _one_sided(4.0 / math.sqrt(8.0))],
        rtol=1e-12,
    )
    # IN values are left out: a third reference that trained on both samples changes nothing.
    ref3 = np.vstack([ref, [100.0, -100.0]])
    ref_in = np.array([[False, False], [False, False], [True, True]])
    np.testing.assert_array_equal(lira_offline(target, ref3, ref_in), lira_offline(target, ref))


def test_lira_offline_edge_cases() -> None:
    # One OUT value per sample: the spread of all OUT values (std of [0, 2] = 1) is used.
    np.testing.assert_allclose(
        lira_offline(np.array([0.0, 4.0]), np.array([[0.0, 2.0]])),
        [math.log(2.0), _one_sided(2.0)],
        rtol=1e-12,
    )
    with pytest.raises(ValueError, match="fix_variance=True"):
        lira_offline(np.zeros(2), np.zeros((1, 2)), fix_variance=False)
    with pytest.raises(ValueError, match="1 of 2 samples have no OUT"):
        lira_offline(np.zeros(2), np.zeros((2, 2)), np.array([[True, False], [True, False]]))
    with pytest.raises(ValueError, match="same N samples"):
        lira_offline(np.zeros(3), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="finite"):
        lira_offline(np.array([np.inf, 0.0]), np.zeros((2, 2)))
    # Identical references: the floor on sigma keeps scores finite and ordered.
    s = lira_offline(np.array([0.0, 1.0]), np.zeros((3, 2)))
    assert np.isfinite(s).all() and s[1] > s[0] == pytest.approx(math.log(2.0))


def _gaussian_phi(n: int, s: int, shift: float, seed: int):
    """Per-sample difficulty mu_n ~ N(0, 3^2); models add N(0, 1); members shift up."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(scale=3.0, size=n)
    membership = rng.permutation(np.arange(n) % 2)
    reference = mu + rng.normal(size=(s, n))
    target = mu + rng.normal(size=n) + shift * membership
    return target, reference, membership


def test_lira_separates_shifted_members_and_calibrates_per_sample() -> None:
    target, reference, membership = _gaussian_phi(1000, 8, shift=3.0, seed=1)
    for fix in (True, False):
        auc = roc_auc_score(membership, lira_offline(target, reference, fix_variance=fix))
        assert auc > 0.9
    # Per-sample calibration is the point: the raw phi is much weaker.
    assert roc_auc_score(membership, lira_offline(target, reference)) > (
        roc_auc_score(membership, target) + 0.1
    )


def test_lira_is_chance_without_signal() -> None:
    target, reference, membership = _gaussian_phi(1000, 8, shift=0.0, seed=2)
    assert abs(roc_auc_score(membership, lira_offline(target, reference)) - 0.5) < 0.1


def _model_inputs(
    logits: np.ndarray, labels: np.ndarray, membership=None, ids=None
) -> AttackInputs:
    p = torch.softmax(torch.from_numpy(logits), 1).numpy()
    ids = np.arange(len(labels)) if ids is None else ids
    return AttackInputs(
        posteriors=p, labels=labels, logits=logits, membership=membership, sample_ids=ids
    )


def test_lira_class_matches_function() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 30)
    trained = rng.integers(0, 2, (4, 30))
    trained[0] = 0  # every sample keeps at least one OUT reference
    refs = [_model_inputs(rng.normal(size=(30, 4)), labels, m) for m in trained]
    target = _model_inputs(rng.normal(size=(30, 4)), labels)
    signals = ReferenceSignals.from_inputs(refs)
    assert signals.p_y.shape == signals.phi.shape == (30, 4) and signals.phi_from_logits
    attack = LiRA()
    assert attack.fit(None, signals) is attack and attack.num_references == 4
    ref_phi = np.stack([logit_confidence(r.logits, labels, from_logits=True) for r in refs])
    ref_in = np.stack([r.membership for r in refs]).astype(bool)
    np.testing.assert_array_equal(signals.is_in, ref_in.T)
    expected = lira_offline(
        logit_confidence(target.logits, labels, from_logits=True), ref_phi, ref_in
    )
    scored = attack.score(target)
    assert scored.attack == "lira"
    np.testing.assert_array_equal(scored.scores, expected)
    np.testing.assert_array_equal(LiRA().run(target, None, signals).scores, expected)
    # fit estimated the OUT mean once: the shared out_mean of the references.
    np.testing.assert_array_equal(attack.mu_, signals.out_mean(signals.phi))
    # Hard decision at alpha: member iff the one-sided p-value <= alpha.
    assert attack.threshold == pytest.approx(math.log(2.0))
    assert LiRA(alpha=0.05).threshold == pytest.approx(-math.log(0.05))
    np.testing.assert_array_equal(attack.decide(target), (expected >= math.log(2.0)).astype(int))
    # Without logits on every reference, all use posteriors.
    bare_refs = [
        AttackInputs(
            posteriors=r.posteriors, labels=labels, membership=r.membership, sample_ids=r.sample_ids
        )
        for r in refs
    ]
    bare_signals = ReferenceSignals.from_inputs(bare_refs)
    assert not bare_signals.phi_from_logits
    post_phi = np.stack([logit_confidence(r.posteriors, labels) for r in refs])
    np.testing.assert_array_equal(
        LiRA().fit(None, bare_signals).score(target).scores,
        lira_offline(logit_confidence(target.posteriors, labels), post_phi, ref_in),
    )


def test_lira_class_errors() -> None:
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 10)
    refs = [_model_inputs(rng.normal(size=(10, 3)), labels, np.zeros(10)) for _ in range(2)]
    shifted = _model_inputs(rng.normal(size=(10, 3)), labels, np.zeros(10), np.arange(1, 11))
    with pytest.raises(ValueError, match="different samples"):
        ReferenceSignals.from_inputs([refs[0], shifted])
    with pytest.raises(ValueError, match="non-empty list"):
        ReferenceSignals.from_inputs([])
    with pytest.raises(ValueError, match="alpha"):
        LiRA(alpha=0.0)
    with pytest.raises(ValueError, match="needs ReferenceSignals"):
        LiRA().fit(refs[0])
    with pytest.raises(ValueError, match="not fitted"):
        LiRA().score(refs[0])
    signals = ReferenceSignals.from_inputs(refs)
    other = _model_inputs(rng.normal(size=(12, 3)), rng.integers(0, 3, 12))
    with pytest.raises(ValueError, match="the 10 samples the references cover"):
        LiRA().fit(None, signals).score(other)


def test_lira_rejects_misaligned_sample_ids() -> None:
    """Same size and the same labels, but other samples: alignment is by identity."""
    rng = np.random.default_rng(5)
    labels = np.zeros(10, dtype=np.int64)  # equal labels, so a label check would pass
    refs = [_model_inputs(rng.normal(size=(10, 3)), labels, np.zeros(10)) for _ in range(2)]
    attack = LiRA().fit(None, ReferenceSignals.from_inputs(refs))
    moved = _model_inputs(rng.normal(size=(10, 3)), labels, ids=np.arange(10)[::-1])
    with pytest.raises(ValueError, match="sample_ids .* differ"):
        attack.score(moved)
    anonymous = AttackInputs(posteriors=moved.posteriors, labels=labels, logits=moved.logits)
    with pytest.raises(ValueError, match="sample_ids \\(none\\)"):
        attack.score(anonymous)
    assert attack.score(_model_inputs(moved.logits, labels)).scores.shape == (10,)


# --- RMIA ------------------------------------------------------------------------------


def test_offline_marginal() -> None:
    ref = np.array([[0.4, 0.2], [0.6, 0.2]])
    np.testing.assert_allclose(offline_marginal(ref, 0.3), [0.675, 0.5 * (1.3 * 0.2 + 0.7)])
    np.testing.assert_array_equal(offline_marginal(ref, 1.0), ref.mean(axis=0))
    out = np.array([[True, True], [False, True]])
    np.testing.assert_allclose(offline_marginal(ref, 1.0, out), [0.4, 0.2])


def test_rmia_by_hand() -> None:
    # a = 1: Pr(x) is the plain OUT mean. Ratios: x -> (1, 2); population z -> (1, 2, 3).
    args = (
        np.array([0.5, 0.5]),
        np.array([[0.5, 0.25]]),
        np.array([0.25, 0.5, 0.75]),
        np.array([[0.25, 0.25, 0.25]]),
    )
    np.testing.assert_array_equal(rmia_scores(*args, a=1.0), [1 / 3, 2 / 3])  # ties count
    np.testing.assert_array_equal(rmia_scores(*args, a=1.0, gamma=0.5), [2 / 3, 1.0])
    np.testing.assert_array_equal(rmia_scores(*args, a=1.0, gamma=4.0), [0.0, 0.0])
    # a = 0: Pr(.) = (Pr_OUT + 1) / 2. x -> (2/3, 0.8); z -> (0.4, 0.8, 1.2).
    np.testing.assert_array_equal(rmia_scores(*args, a=0.0), [1 / 3, 2 / 3])
    np.testing.assert_array_equal(rmia_scores(*args, a=0.0, gamma=2.0), [0.0, 1 / 3])


def _brute_force(t, r, pt, pr, a, gamma, reference_in=None) -> np.ndarray:
    out = None if reference_in is None else ~reference_in
    ratio_x = t / offline_marginal(r, a, out)
    ratio_z = pt / offline_marginal(pr, a)
    scores = np.zeros(len(ratio_x))
    for i in range(len(ratio_x)):
        hits = 0
        for j in range(len(ratio_z)):
            hits += bool(ratio_x[i] / ratio_z[j] >= gamma)
        scores[i] = hits / len(ratio_z)
    return scores


def test_rmia_vectorised_equals_brute_force_exactly() -> None:
    rng = np.random.default_rng(5)
    n, z, s = 40, 60, 3
    t, r = rng.uniform(size=n), rng.uniform(size=(s, n))
    pt, pr = rng.uniform(size=z), rng.uniform(size=(s, z))
    # Exact ties: some population samples are copies of target samples, some are repeated.
    pt[:10], pr[:, :10] = t[:10], r[:, :10]
    pt[10:20], pr[:, 10:20] = pt[20:30], pr[:, 20:30]
    ref_in = rng.uniform(size=(s, n)) < 0.3
    ref_in[0] = False
    for a in (0.0, 0.3, 1.0):
        for gamma in (1.0, 0.5, 2.0, 1.3, 0.77, 3.0):
            for inside in (None, ref_in):
                got = rmia_scores(t, r, pt, pr, a=a, gamma=gamma, reference_in=inside)
                np.testing.assert_array_equal(got, _brute_force(t, r, pt, pr, a, gamma, inside))


def test_rmia_exact_at_floating_point_boundaries() -> None:
    """Population ratios one ulp either side of ratio_x / gamma: division decides, not search."""
    rng = np.random.default_rng(6)
    rx = rng.uniform(0.1, 1.0, size=30)
    ones = np.ones((1, 30))
    total = 0
    for gamma in (3.0, 1.3, 0.7, 10.0 / 3.0):
        centre = rx / gamma
        pz = np.concatenate([np.nextafter(centre, 0.0), centre, np.nextafter(centre, 2.0)])
        # a = 1 and references all 1.0 make the ratios the raw p_y values exactly.
        got = rmia_scores(rx, ones, pz, np.ones((1, pz.size)), a=1.0, gamma=gamma)
        expected = _brute_force(rx, ones, pz, np.ones((1, pz.size)), 1.0, gamma)
        np.testing.assert_array_equal(got, expected)
        naive = np.searchsorted(np.sort(pz), rx / gamma, side="right") / pz.size
        total += int((naive != expected).sum())
    assert total > 0  # the case the fix-up exists for does occur here


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def _rmia_synthetic(n: int, z: int, s: int, shift: float, seed: int):
    """p_y = sigmoid(difficulty + noise); members of the target shift up by ``shift``."""
    rng = np.random.default_rng(seed)
    mu, mu_z = rng.normal(scale=2.0, size=n), rng.normal(scale=2.0, size=z)
    membership = rng.permutation(np.arange(n) % 2)
    t = _sigmoid(mu + shift * membership + rng.normal(scale=0.5, size=n))
    r = _sigmoid(mu + rng.normal(scale=0.5, size=(s, n)))
    pt = _sigmoid(mu_z + rng.normal(scale=0.5, size=z))
    pr = _sigmoid(mu_z + rng.normal(scale=0.5, size=(s, z)))
    return (t, r, pt, pr), membership


def test_rmia_separates_shifted_members() -> None:
    args, membership = _rmia_synthetic(1000, 1000, 4, shift=3.0, seed=7)
    assert roc_auc_score(membership, rmia_scores(*args)) > 0.9


def test_rmia_is_chance_without_signal() -> None:
    args, membership = _rmia_synthetic(1000, 1000, 4, shift=0.0, seed=8)
    assert abs(roc_auc_score(membership, rmia_scores(*args)) - 0.5) < 0.1


def test_rmia_validates() -> None:
    good = (np.full(2, 0.5), np.full((1, 2), 0.5), np.full(3, 0.5), np.full((1, 3), 0.5))
    with pytest.raises(ValueError, match="a must lie"):
        rmia_scores(*good, a=1.5)
    with pytest.raises(ValueError, match="gamma"):
        rmia_scores(*good, gamma=0.0)
    with pytest.raises(ValueError, match="non-empty population"):
        rmia_scores(good[0], good[1], np.zeros(0), np.zeros((1, 0)))
    with pytest.raises(ValueError, match="population_reference_py"):
        rmia_scores(good[0], good[1], good[2], np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="probabilities"):
        rmia_scores(-good[0], *good[1:])
    with pytest.raises(ValueError, match="no OUT"):
        rmia_scores(*good, reference_in=np.array([[True, False]]))


def test_rmia_class_matches_function() -> None:
    rng = np.random.default_rng(9)
    labels, pop_labels = rng.integers(0, 5, 25), rng.integers(0, 5, 35)
    pop_ids = np.arange(100, 135)
    trained = rng.integers(0, 2, (3, 25))
    trained[0] = 0
    refs = [_model_inputs(rng.normal(size=(25, 5)), labels, m) for m in trained]
    pop_refs = [
        _model_inputs(rng.normal(size=(35, 5)), pop_labels, np.zeros(35), pop_ids) for _ in range(3)
    ]
    population = _model_inputs(rng.normal(size=(35, 5)), pop_labels, ids=pop_ids)
    target = _model_inputs(rng.normal(size=(25, 5)), labels)
    signals = ReferenceSignals.from_inputs(refs, pop_refs, population)
    attack = RMIA(a=0.5, gamma=1.2, beta=0.6)
    assert attack.fit(None, signals) is attack and attack.threshold == 0.6
    py = lambda xs: np.stack([true_label_probability(x) for x in xs])  # noqa: E731
    np.testing.assert_array_equal(signals.p_y, py(refs).T)
    np.testing.assert_array_equal(signals.population_p_y, py(pop_refs).T)
    ref_in = np.stack([r.membership for r in refs]).astype(bool)
    expected = rmia_scores(
        true_label_probability(target),
        py(refs),
        true_label_probability(population),
        py(pop_refs),
        a=0.5,
        gamma=1.2,
        reference_in=ref_in,
    )
    np.testing.assert_array_equal(attack.score(target).scores, expected)
    np.testing.assert_array_equal(attack.decide(target), (expected >= 0.6).astype(int))
    # The marginal uses the one OUT-mean of the references (offline formula, a = 0.5).
    np.testing.assert_array_equal(
        attack.marginal_x_, 0.5 * (1.5 * signals.out_mean(signals.p_y) + 0.5)
    )
    with pytest.raises(ValueError, match="a must lie"):
        RMIA(a=2.0)
    with pytest.raises(ValueError, match="target_population"):
        ReferenceSignals.from_inputs(refs, pop_refs, target)
    with pytest.raises(ValueError, match="non-empty population"):
        RMIA().fit(None, ReferenceSignals.from_inputs(refs))
    with pytest.raises(ValueError, match="the 25 samples the references cover"):
        attack.score(population)
