"""Tests of online LiRA and online RMIA (DESIGN.md, "Beyond the paper"; issue 12 item 2).

Synthetic, seeded reference signals: each sample is IN for a random half of the
references, as for references trained on random halves of a candidate pool.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from miakit import attacks
from miakit.attacks.base import AttackInputs, ReferenceSignals
from miakit.attacks.lira import lira_offline, logit_confidence
from miakit.attacks.lira_online import LiRAOnline, lira_in_out_gaussians, lira_online
from miakit.attacks.rmia import rmia_scores
from miakit.attacks.rmia_online import RMIAOnline, rmia_online_fit, rmia_online_scores


def _halves(rng: np.random.Generator, s: int, n: int) -> np.ndarray:
    """``(S, N)`` bool: each sample IN for exactly half of ``s`` references (random which)."""
    return np.argsort(rng.random((s, n)), axis=0) < s // 2


def _by_hand(t, r, is_in, fix_variance):
    """Online LiRA straight from the definition, sample by sample, with scipy's log density."""
    n = r.shape[1]
    mu, std = {}, {}
    for w, m in (("in", is_in), ("out", ~is_in)):
        mu[w] = np.array([r[m[:, j], j].mean() for j in range(n)])
        if fix_variance:  # pooled within samples: squared deviations / (values - samples)
            sq = sum(((r[m[:, j], j] - mu[w][j]) ** 2).sum() for j in range(n))
            std[w] = math.sqrt(sq / (m.sum() - n))
        else:
            std[w] = np.array([r[m[:, j], j].std(ddof=1) for j in range(n)])
    scores = norm.logpdf(t, mu["in"], std["in"]) - norm.logpdf(t, mu["out"], std["out"])
    return scores, (mu["in"], std["in"], mu["out"], std["out"])


# --- online LiRA: the kernel --------------------------------------------------------------


@pytest.mark.parametrize("fix_variance", [True, False])
def test_lira_online_equals_scipy_log_density_ratio(fix_variance: bool) -> None:
    rng = np.random.default_rng(0)
    s, n = 8, 60
    is_in = _halves(rng, s, n)
    r = rng.normal(size=(s, n)) * rng.uniform(0.5, 2.0, n) + 1.5 * is_in
    t = rng.normal(size=n) * 2.0
    expected, gaussians = _by_hand(t, r, is_in, fix_variance)
    got_all = lira_in_out_gaussians(r, is_in, fix_variance=fix_variance)
    for got, want in zip(got_all, gaussians, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(lira_online(t, r, is_in, fix_variance=fix_variance), expected)
    # IN and OUT are really told apart: swapping them negates the log likelihood ratio.
    np.testing.assert_allclose(
        lira_online(t, r, ~is_in, fix_variance=fix_variance), -expected, rtol=1e-12
    )


def test_lira_online_beats_offline_when_in_shifts_differ_per_sample() -> None:
    """A member's phi moves by its own amount, up for some samples and down for others.

    Offline LiRA only sees how far above the OUT mean the target lies; online LiRA knows
    from the IN references where each member's value goes."""
    rng = np.random.default_rng(1)
    s, n = 16, 2000
    base = rng.normal(scale=2.0, size=n)
    shift = rng.choice([-3.0, 3.0], n) * rng.uniform(0.5, 1.0, n)
    is_in = _halves(rng, s, n)
    r = base + shift * is_in + rng.normal(size=(s, n))
    member = rng.permutation(n) % 2
    t = base + shift * member + rng.normal(size=n)
    auc_online = roc_auc_score(member, lira_online(t, r, is_in))
    auc_offline = roc_auc_score(member, lira_offline(t, r, is_in))
    # Var(AUC) <= AUC (1 - AUC) / min(#members, #non-members) <= 1 / (4 min) (Birnbaum and
    # Klose 1957): four standard deviations of each estimate, at the worst.
    margin = 4 * 2 * math.sqrt(0.25 / min(member.sum(), n - member.sum()))
    assert auc_online - auc_offline > margin, (auc_online, auc_offline, margin)


def test_lira_online_needs_in_and_out_references() -> None:
    rng = np.random.default_rng(2)
    s, n = 6, 50
    r, t = rng.normal(size=(s, n)), rng.normal(size=n)
    is_in = _halves(rng, s, n)
    is_in[:, [3, 7]] = False  # two samples no reference trained on
    is_in[:, 9] = True  # one sample every reference trained on
    with pytest.raises(ValueError, match="of 50 samples, 2 have no IN and 1 no OUT") as err:
        lira_online(t, r, is_in)
    assert "more reference models" in str(err.value)
    with pytest.raises(ValueError, match="no IN"):
        lira_online(t, r, np.zeros((s, n), dtype=bool))  # offline-only references
    one_in = np.zeros((s, n), dtype=bool)
    one_in[0] = True  # one IN value per sample: no per-sample IN variance
    with pytest.raises(ValueError, match="at least 2 IN reference values"):
        lira_online(t, r, one_in, fix_variance=False)
    # ... but a global one: the spread of all IN values (no within-sample degrees of freedom)
    _, std_in, _, _ = lira_in_out_gaussians(r, one_in)
    assert std_in == pytest.approx(r[0].std())
    with pytest.raises(ValueError, match="same shape"):
        lira_online(t, r, is_in[:, :10])
    with pytest.raises(ValueError, match="same N samples"):
        lira_online(t[:10], r, is_in)
    with pytest.raises(ValueError, match="finite"):
        lira_online(np.full(n, np.nan), r, _halves(rng, s, n))


# --- online RMIA: the kernel --------------------------------------------------------------


def _rmia_arrays(rng, s=6, n=40, z=70):
    target = rng.uniform(0.01, 1.0, n)
    refs = rng.uniform(0.01, 1.0, (s, n))
    return target, refs, rng.uniform(0.01, 1.0, z), rng.uniform(0.01, 1.0, (s, z))


def test_rmia_online_is_the_pairwise_definition_over_all_references() -> None:
    rng = np.random.default_rng(3)
    t, r, pt, pr = _rmia_arrays(rng)
    for gamma in (0.5, 1.0, 2.0):
        # Pr(x): mean over every reference, IN or OUT; Pr(z): mean over every reference.
        lr = (t / r.mean(0))[:, None] / (pt / pr.mean(0))[None, :]
        np.testing.assert_array_equal(
            rmia_online_scores(t, r, pt, pr, gamma=gamma), (lr >= gamma).mean(1)
        )
    marginal_x, ratio_z = rmia_online_fit(r, pt, pr)
    np.testing.assert_allclose(marginal_x, r.mean(0), rtol=1e-15)
    assert (np.diff(ratio_z) >= 0).all()
    with pytest.raises(ValueError, match="gamma"):
        rmia_online_scores(t, r, pt, pr, gamma=0.0)
    with pytest.raises(ValueError, match="non-empty population"):
        rmia_online_scores(t, r, pt[:0], pr[:, :0])
    with pytest.raises(ValueError, match="population_reference_py"):
        rmia_online_scores(t, r, pt, pr[:3])


def test_rmia_online_with_out_references_only_is_offline_rmia_at_a_1() -> None:
    """Offline ``Pr(x) = ((1 + a) Pr_OUT(x) + (1 - a)) / 2`` is ``Pr_OUT(x)`` at ``a = 1``;
    online ``Pr(x)`` (mean over all references) is ``Pr_OUT(x)`` when every reference is
    OUT; the population's ``Pr(z)`` is the plain mean in both. Same ratios, same counts."""
    rng = np.random.default_rng(4)
    t, r, pt, pr = _rmia_arrays(rng)
    all_out = np.zeros(r.shape, dtype=bool)
    for gamma in (0.7, 1.0, 1.5):
        online = rmia_online_scores(t, r, pt, pr, gamma=gamma)
        np.testing.assert_array_equal(online, rmia_scores(t, r, pt, pr, a=1.0, gamma=gamma))
        np.testing.assert_array_equal(
            online, rmia_scores(t, r, pt, pr, a=1.0, gamma=gamma, reference_in=all_out)
        )
    # With IN references they differ: offline leaves the IN values out, online keeps them.
    is_in = _halves(rng, *r.shape)
    r_in = np.where(is_in, np.minimum(1.0, 3 * r), r)  # IN references are more confident
    assert not np.array_equal(
        rmia_online_scores(t, r_in, pt, pr), rmia_scores(t, r_in, pt, pr, a=1.0, reference_in=is_in)
    )


# --- the Attack classes -------------------------------------------------------------------


def _model(logits: np.ndarray, labels: np.ndarray, membership=None, ids=None) -> AttackInputs:
    p = torch.softmax(torch.from_numpy(logits), 1).numpy()
    ids = np.arange(len(labels)) if ids is None else ids
    return AttackInputs(
        posteriors=p, labels=labels, logits=logits, membership=membership, sample_ids=ids
    )


def _signals(rng, s=6, n=30, z=40, k=4):
    labels, pop_labels, pop_ids = rng.integers(0, k, n), rng.integers(0, k, z), np.arange(n, n + z)
    trained = _halves(rng, s, n).astype(np.int64)
    refs = [_model(rng.normal(size=(n, k)), labels, m) for m in trained]
    pop_refs = [_model(rng.normal(size=(z, k)), pop_labels, np.zeros(z), pop_ids) for _ in range(s)]
    target_pop = _model(rng.normal(size=(z, k)), pop_labels, ids=pop_ids)
    target = _model(rng.normal(size=(n, k)), labels, rng.integers(0, 2, n))
    return ReferenceSignals.from_inputs(refs, pop_refs, target_pop), refs, pop_refs, target


def test_lira_online_class_matches_kernel() -> None:
    signals, refs, _, target = _signals(np.random.default_rng(5))
    labels = target.labels
    ref_phi = np.stack([logit_confidence(r.logits, labels, from_logits=True) for r in refs])
    ref_in = np.stack([r.membership for r in refs]).astype(bool)
    t = logit_confidence(target.logits, labels, from_logits=True)
    for fix_variance in (True, False):
        attack = LiRAOnline(fix_variance=fix_variance)
        assert attack.fit(None, signals) is attack and attack.num_references == 6
        scored = attack.score(target)
        expected = lira_online(t, ref_phi, ref_in, fix_variance=fix_variance)
        assert scored.attack == "lira_online" and scored.threshold == 0.0
        np.testing.assert_array_equal(scored.scores, expected)
        np.testing.assert_array_equal(scored.sample_ids, target.sample_ids)
        np.testing.assert_array_equal(attack.decide(target), (expected >= 0).astype(int))
        again = LiRAOnline(fix_variance=fix_variance).run(target, None, signals)
        np.testing.assert_array_equal(again.scores, expected)
    # Alignment by sample identity, not by size.
    moved = _model(target.logits, labels, ids=np.arange(30)[::-1])
    with pytest.raises(ValueError, match="sample_ids .* differ"):
        LiRAOnline().fit(None, signals).score(moved)
    with pytest.raises(ValueError, match="logits=None"):
        LiRAOnline().fit(None, signals).score(
            AttackInputs(posteriors=target.posteriors, labels=labels, sample_ids=target.sample_ids)
        )
    with pytest.raises(ValueError, match="not fitted"):
        LiRAOnline().score(target)
    with pytest.raises(ValueError, match="needs ReferenceSignals"):
        LiRAOnline().fit(target)
    offline_only = ReferenceSignals.from_inputs(
        [_model(r.logits, labels, np.zeros(30)) for r in refs]
    )
    with pytest.raises(ValueError, match="of 30 samples, 30 have no IN"):
        LiRAOnline().fit(None, offline_only)


def test_rmia_online_class_matches_kernel() -> None:
    signals, refs, pop_refs, target = _signals(np.random.default_rng(6))
    py = lambda xs: np.stack([x.p_y for x in xs])  # noqa: E731
    attack = RMIAOnline(gamma=1.3, beta=0.4)
    assert attack.fit(None, signals) is attack and attack.threshold == 0.4
    expected = rmia_online_scores(
        target.p_y, py(refs), signals.target_population_p_y, py(pop_refs), gamma=1.3
    )
    scored = attack.score(target)
    assert scored.attack == "rmia_online"
    np.testing.assert_array_equal(scored.scores, expected)
    np.testing.assert_array_equal(scored.sample_ids, target.sample_ids)
    np.testing.assert_array_equal(attack.decide(target), (expected >= 0.4).astype(int))
    # Online keeps the IN references in Pr(x): not the offline marginal of the OUT ones.
    assert signals.is_in.any() and not np.allclose(
        attack.marginal_x_, signals.out_mean(signals.p_y)
    )
    np.testing.assert_allclose(attack.marginal_x_, signals.p_y.mean(1), rtol=1e-15)
    moved = _model(target.logits, target.labels, ids=np.arange(30) + 1)
    with pytest.raises(ValueError, match="sample_ids .* differ"):
        attack.score(moved)
    with pytest.raises(ValueError, match="RMIA \\(online\\) is not fitted"):
        RMIAOnline().score(target)
    with pytest.raises(ValueError, match="gamma"):
        RMIAOnline(gamma=-1.0)
    with pytest.raises(ValueError, match="non-empty population"):
        RMIAOnline().fit(None, ReferenceSignals.from_inputs(refs))


def test_online_attacks_are_registered_beside_the_offline_ones() -> None:
    assert attacks.ATTACKS["lira_online"] is LiRAOnline
    assert attacks.ATTACKS["rmia_online"] is RMIAOnline
    assert LiRAOnline.title == "LiRA (online)" and RMIAOnline.title == "RMIA (online)"
    assert attacks.family("reference") == ("lira", "lira_online", "rmia", "rmia_online")
    assert not {"lira_online", "rmia_online"} & set(attacks.BASELINES)
    for name in ("lira_online", "rmia_online"):
        cls = attacks.ATTACKS[name]
        # the same ReferenceSignals input, built from the reference models (IN and OUT)
        assert cls.uses == {"references", "reference_models"} and not cls.persist
        assert attacks.ATTACKS["lira"].uses == {"references"}
        assert attacks.make_attack(name).name == name
