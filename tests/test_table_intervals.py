"""Seeds and intervals in the tables: replicates, summarise, paired differences, ROC bands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from miakit import tables
from miakit.config import SEED_STRIDE
from miakit.experiment import ORIGINAL, Experiment, profile
from miakit.metrics.intervals import INTERVAL_METRICS, seed_interval
from miakit.store import Store

ATTACKS = ["gap", "conf"]  # nothing to train beyond the models: fast


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    config = profile("smoke", num_references=0)
    assert config.seeds == 2  # the smoke profile runs two seeds (issue 13)
    return Experiment(config, store=Store(tmp_path_factory.mktemp("cache")), device="cpu")


@pytest.fixture(scope="module")
def per_seed(exp):
    return tables.attack_table(exp, [ORIGINAL, exp.variant()], attacks=ATTACKS)


def test_replicates_are_seeded_apart_and_share_the_store(exp):
    reps = exp.replicates()
    assert [r.config.seed for r in reps] == [0, SEED_STRIDE]
    assert reps[0] is exp and all(r.store is exp.store for r in reps)
    assert exp.replicates() is reps  # memoised
    assert reps[1].replicates() == [reps[1]]  # a replicate is one run: tables do not nest
    seeds = {r.role_seed(role) for r in reps for role in r.roles()}
    assert len(seeds) == 2 * len(exp.roles())
    with pytest.raises(ValueError, match="range"):
        exp.config.replicate(2)


def test_attack_table_has_one_row_per_seed_with_bootstrap_errors(exp, per_seed):
    assert len(per_seed) == 2 * 2 * len(ATTACKS)
    assert sorted(per_seed["seed"].unique()) == [0, SEED_STRIDE]
    for m in INTERVAL_METRICS:
        se = per_seed[f"{m}_se"]
        assert (se >= 0).all() and se.notna().all()
    assert (per_seed["auc_se"] > 0).all()
    # The second seed trains other models: its victim differs.
    accs = per_seed.groupby("seed")["victim_train_acc"].first()
    assert accs.iloc[0] != accs.iloc[1]
    # Each row's standard error is that of its own scores' bootstrap.
    rep = exp.replicates()[1]
    scores = rep.attack_scores("conf", ORIGINAL)
    pick = (per_seed["seed"] == rep.config.seed) & (per_seed["attack"] == "conf")
    row = per_seed[pick & (per_seed["victim_pruner"] == "none")]
    boot = scores.bootstrap(seed=rep.config.seed)
    assert row["auc_se"].item() == pytest.approx(boot[:, 1].std(ddof=1))


def test_summarise_gives_the_seed_interval_of_each_setting(per_seed):
    summary = tables.summarise(per_seed)
    assert len(summary) == 2 * len(ATTACKS) and (summary["seeds"] == 2).all()
    assert "seed" not in summary and "victim_train_acc_low" in summary
    for _, row in summary.iterrows():
        part = per_seed[
            (per_seed["attack"] == row["attack"])
            & (per_seed["victim_pruner"] == row["victim_pruner"])
        ]
        iv = seed_interval(part["auc"], part["auc_se"])
        assert row["auc"] == pytest.approx(iv.mean)
        assert row["auc_low"] == pytest.approx(max(iv.low, 0.0))
        assert row["auc_high"] == pytest.approx(min(iv.high, 1.0))
        assert row["auc_low"] <= row["auc"] <= row["auc_high"]
    with pytest.raises(KeyError, match="seed"):
        tables.summarise(per_seed.drop(columns="seed"))


def test_difference_is_paired_per_seed_and_resample(exp, per_seed):
    pruned = exp.variant()
    diff = tables.difference(exp, pruned, attacks=ATTACKS)
    assert len(diff) == 2 * len(ATTACKS)
    assert (diff["baseline_pruner"] == "none").all()
    for _, row in diff.iterrows():
        pick = per_seed[(per_seed["seed"] == row["seed"]) & (per_seed["attack"] == row["attack"])]
        a = pick.query("victim_pruner != 'none'")["auc"].item()
        b = pick.query("victim_pruner == 'none'")["auc"].item()
        assert row["auc"] == pytest.approx(a - b)
        rep = next(r for r in exp.replicates() if r.config.seed == row["seed"])
        sa = rep.attack_scores(row["attack"], pruned).bootstrap(seed=rep.config.seed)
        sb = rep.attack_scores(row["attack"], ORIGINAL).bootstrap(seed=rep.config.seed)
        assert row["auc_se"] == pytest.approx((sa - sb)[:, 1].std(ddof=1))
        if row["attack"] == "conf":  # correlated scores: pairing removes the shared error
            ses = pick["auc_se"].to_numpy()
            assert row["auc_se"] < np.sqrt((ses**2).sum())
    summary = tables.summarise(diff)
    assert ((summary["auc_low"] >= -1) & (summary["auc_high"] <= 1)).all()
    against = tables.difference(exp, ORIGINAL, attacks=["gap"], against="conf")
    assert (against["baseline_attack"] == "conf").all() and (against["attack"] == "gap").all()


def test_roc_bands_span_the_grid_from_one_nonmember(exp):
    bands = tables.roc_bands(exp, ["conf"], ORIGINAL, points=20)
    n_neg = int((exp.attack_scores("conf").membership == 0).sum())
    assert bands["fpr"].min() == pytest.approx(1.0 / n_neg) and bands["fpr"].max() == 1.0
    assert (bands["seeds"] == 2).all()
    assert np.all(np.diff(bands["tpr"].to_numpy()) >= -1e-12)  # a mean of ROC curves rises
    assert bands["tpr"].iloc[-1] == 1.0
    # Each seed's point is tpr_at_fpr's rule at that budget.
    f = bands["fpr"].iloc[10]
    from miakit.metrics import tpr_at_fpr

    per_rep = [
        tpr_at_fpr(s.membership, s.scores, f).tpr
        for s in (r.attack_scores("conf") for r in exp.replicates())
    ]
    assert bands["tpr"].iloc[10] == pytest.approx(np.mean(per_rep))


def test_seeds_must_be_positive():
    with pytest.raises(ValueError, match="seeds must be"):
        profile("smoke", seeds=0)
    assert profile("paper").seeds == 1 and profile("quick").seeds >= 3
    assert isinstance(tables.summarise(pd.DataFrame({"seed": [0], "auc": [0.5]})), pd.DataFrame)
