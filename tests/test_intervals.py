"""Bootstrap and seed intervals (miakit.metrics.intervals)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from miakit.metrics import evaluate_attack
from miakit.metrics.intervals import (
    INTERVAL_METRICS,
    bootstrap_indices,
    bootstrap_metrics,
    seed_interval,
)


def _case(n_members=300, n_nonmembers=500, shift=0.6, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    m = np.r_[np.ones(n_members, int), np.zeros(n_nonmembers, int)]
    s = rng.normal(size=m.size) + shift * m
    if ties:
        s = np.round(s, 1)
    return m, s, (s >= 0.3).astype(int)


@pytest.mark.parametrize("ties", [False, True])
def test_identity_resample_equals_evaluate_attack(ties):
    m, s, d = _case(ties=ties)
    got = bootstrap_metrics(m, s, d, np.arange(m.size)[None])[0]
    ref = evaluate_attack("x", m, s, d).metrics()
    assert got == pytest.approx([ref[c] for c in INTERVAL_METRICS], abs=1e-12)


def test_each_resample_equals_evaluate_attack_on_the_resampled_set():
    m, s, d = _case(n_members=40, n_nonmembers=1200, ties=True, seed=3)
    idx = bootstrap_indices(m, 5, seed=1)
    got = bootstrap_metrics(m, s, d, idx)
    for b in range(5):
        ref = evaluate_attack("x", m[idx[b]], s[idx[b]], d[idx[b]]).metrics()
        assert got[b] == pytest.approx([ref[c] for c in INTERVAL_METRICS], abs=1e-12)


def test_resamples_are_stratified_and_deterministic():
    m, _, _ = _case()
    a = bootstrap_indices(m, 50, seed=4)
    assert (m[a].sum(axis=1) == m.sum()).all()
    assert np.array_equal(a, bootstrap_indices(m, 50, seed=4))
    assert not np.array_equal(a, bootstrap_indices(m, 50, seed=5))


def test_bootstrap_se_matches_the_spread_of_fresh_samples():
    # The bootstrap's standard error of the AUC estimates the spread of the AUC over
    # independent evaluation sets drawn from the same distributions.
    m, s, d = _case(seed=0)
    se = bootstrap_metrics(m, s, d, bootstrap_indices(m, 400, seed=0))[:, 1].std(ddof=1)
    fresh = [evaluate_attack("x", *_case(seed=k)).auc for k in range(1, 201)]
    assert se == pytest.approx(np.std(fresh, ddof=1), rel=0.25)


def test_paired_differences_are_tighter_than_unpaired():
    m, s, d = _case()
    rng = np.random.default_rng(9)
    s2 = s + 0.05 * m + 0.05 * rng.normal(size=s.size)  # a slightly stronger, correlated attack
    idx = bootstrap_indices(m, 300, seed=2)
    a = bootstrap_metrics(m, s, d, idx)[:, 1]
    b = bootstrap_metrics(m, s2, d, idx)[:, 1]
    paired = np.std(b - a, ddof=1)
    unpaired = np.sqrt(a.var(ddof=1) + b.var(ddof=1))
    assert paired < unpaired / 3


def test_seed_interval_uses_bootstrap_when_spread_is_small():
    iv = seed_interval([0.70, 0.701, 0.699], [0.01, 0.01, 0.01])
    assert not iv.spread_decides
    assert iv.se == pytest.approx(0.01 / np.sqrt(3))
    assert iv.high - iv.mean == pytest.approx(stats.norm.ppf(0.975) * iv.se)


def test_seed_interval_uses_t_when_spread_decides():
    x = [0.60, 0.70, 0.80]
    iv = seed_interval(x, [0.001] * 3)
    assert iv.spread_decides
    assert iv.se == pytest.approx(np.std(x, ddof=1) / np.sqrt(3))
    assert iv.high - iv.mean == pytest.approx(stats.t.ppf(0.975, 2) * iv.se)
    assert iv.excludes(0.4) and not iv.excludes(0.5)  # t(2) makes it wide: +-0.248


def test_seed_interval_edge_cases():
    one = seed_interval([0.7], [0.02])
    assert one.seeds == 1 and one.high - one.low == pytest.approx(2 * 1.959964 * 0.02, rel=1e-5)
    bare = seed_interval([0.7])
    assert np.isnan(bare.low) and bare.mean == 0.7
    empty = seed_interval([np.nan, np.nan], [0.1, 0.1])
    assert empty.seeds == 0 and np.isnan(empty.mean)
    with pytest.raises(ValueError, match="estimates but"):
        seed_interval([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_indices([1, 0], 1)


def test_interval_covers_the_truth_at_about_its_level():
    # 3 seeds, each with seed noise and sampling noise: the 95% interval should cover
    # the true mean about 95% of the time (the rule is conservative, never far below).
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(400):
        x = 0.7 + rng.normal(0, 0.01, 3) + rng.normal(0, 0.01, 3)
        hits += not seed_interval(x, [0.01] * 3).excludes(0.7)
    assert 0.9 <= hits / 400 <= 1.0
