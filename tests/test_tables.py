"""miakit.tables on the smoke profile: structured columns, stacking, and hand-checked values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from miakit import tables
from miakit.attacks import ATTACKS
from miakit.defenses import DPSGDParams, PPBParams
from miakit.experiment import ORIGINAL, Experiment, Variant, profile
from miakit.metrics import RESULT_COLUMNS
from miakit.splits import split_sizes
from miakit.store import Store
from miakit.train import accuracy

ATTACK_NAMES = ["gap", "conf"]  # no attack model to train: fast
EXPERIMENT_COLUMNS = ["dataset", "arch", "seed", "split_seed"]
VICTIM_COLUMNS = [
    "victim_pruner",
    "victim_sparsity",
    "victim_defense",
    "victim_realised_sparsity",
    "victim_train_acc",
    "victim_test_acc",
    "victim_epsilon",
]
SHADOW_COLUMNS = ["shadow_pruner", "shadow_sparsity", "shadow_defense"]
VARIANT_COLUMNS = [
    "model",
    "variant",
    "pruner",
    "sparsity",
    "defense",
    "realised_sparsity",
    "train_acc",
    "test_acc",
    "gap",
]


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("cache"))
    # One seed: these tests check values by hand; tests/test_table_intervals.py covers seeds.
    return Experiment(profile("smoke", seeds=1), store=store, device="cpu")


@pytest.fixture(scope="module")
def pruned(exp):
    return exp.variant()


def _has(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    assert not missing, f"missing columns {missing} in {list(frame.columns)}"


def test_attack_rows_carry_structured_columns(exp, pruned):
    frame = tables.attack_table(exp, [ORIGINAL, pruned], attacks=ATTACK_NAMES)
    _has(frame, [*EXPERIMENT_COLUMNS, *VICTIM_COLUMNS, *SHADOW_COLUMNS, "adaptive", "attack"])
    _has(frame, [c for c in RESULT_COLUMNS if c != "attack"])
    assert list(frame["attack"]) == ATTACK_NAMES * 2
    assert list(frame["victim_pruner"]) == ["none", "none", pruned.pruner, pruned.pruner]
    # requested and realised sparsity are two columns, the realised one measured
    assert list(frame["victim_sparsity"]) == [0.0, 0.0, 0.7, 0.7]
    info = exp.model("victim", pruned).info
    assert frame["victim_realised_sparsity"].iloc[2] == info["realised_sparsity"]
    assert frame["victim_realised_sparsity"].iloc[0] == 0.0
    assert frame["adaptive"].all()
    assert "victim" not in frame.columns and "model" not in frame.columns  # no label column


def test_attack_table_of_a_list_is_the_single_tables_stacked(exp, pruned):
    both = tables.attack_table(exp, [ORIGINAL, pruned], attacks=ATTACK_NAMES)
    stacked = pd.concat(
        [tables.attack_table(exp, v, attacks=ATTACK_NAMES) for v in (ORIGINAL, pruned)],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(both, stacked)


def test_attack_table_pairs_shadows_with_victims_and_names_rows(exp, pruned):
    paired = tables.attack_table(
        exp,
        [pruned, pruned],
        shadows=[ORIGINAL, None],
        attacks=ATTACK_NAMES,
        names=["unpruned shadows", "matched"],
    )
    assert list(paired.columns[:1]) == ["model"]
    assert list(paired["model"]) == ["unpruned shadows"] * 2 + ["matched"] * 2
    assert list(paired["adaptive"]) == [False, False, True, True]
    assert list(paired["shadow_pruner"]) == ["none", "none", pruned.pruner, pruned.pruner]
    mismatched = tables.attack_table(exp, pruned, shadows=ORIGINAL, attacks=ATTACK_NAMES)
    matched = tables.attack_table(exp, pruned, attacks=ATTACK_NAMES)
    body = paired.drop(columns="model")
    pd.testing.assert_frame_equal(body.iloc[:2].reset_index(drop=True), mismatched)
    pd.testing.assert_frame_equal(body.iloc[2:].reset_index(drop=True), matched)
    with pytest.raises(ValueError, match="2 victims but 1 shadows"):
        tables.attack_table(exp, [pruned, pruned], shadows=[ORIGINAL], attacks=ATTACK_NAMES)
    with pytest.raises(ValueError, match="2 victims but 3 names"):
        tables.attack_table(exp, [pruned, pruned], attacks=ATTACK_NAMES, names=["a", "b", "c"])


def test_variants_rows_carry_both_sparsities(exp, pruned):
    frame = tables.variants_table(exp, [ORIGINAL, pruned])
    _has(frame, [*EXPERIMENT_COLUMNS, *VARIANT_COLUMNS, "sparsity_all", "macs_fraction"])
    assert list(frame["model"]) == exp.roles() * 2
    victim = frame[(frame["model"] == "victim") & (frame["pruner"] == pruned.pruner)].iloc[0]
    info = exp.model("victim", pruned).info
    assert victim["sparsity"] == 0.7
    assert victim["realised_sparsity"] == info["realised_sparsity"]
    assert victim["gap"] == info["train_acc"] - info["test_acc"]
    assert list(frame["variant"].unique()) == ["original", pruned.label]


def test_labels_rebuild_variants_from_columns():
    variants = [
        ORIGINAL,
        Variant("l1_unstructured", 0.7),
        Variant("l1_structured", 0.5, PPBParams(lam=2.0)),
        Variant("l1_unstructured", 0.7, DPSGDParams(noise_multiplier=0.1)),
    ]
    frame = pd.DataFrame([v.columns("victim") for v in variants])  # options NaN elsewhere
    assert list(tables.labels(frame)) == [v.label for v in variants]
    assert tables.labels(frame).name == "victim"
    shadows = pd.DataFrame([v.columns("shadow") for v in variants])
    assert list(tables.labels(shadows, "shadow")) == [v.label for v in variants]
    with pytest.raises(KeyError, match="shadow_pruner"):
        tables.labels(frame, "shadow")


def test_split_table_matches_the_splits(exp):
    frame = tables.split_table(exp)
    _has(frame, [*EXPERIMENT_COLUMNS, "model", "train", "dev", "test"])
    assert list(frame["model"]) == exp.roles()
    victim = frame.iloc[0]
    assert (victim["train"], victim["dev"], victim["test"]) == split_sizes(len(exp.data))
    assert victim["train"] == len(exp.splits.victim.train)
    for row, split in zip(frame.iloc[1:].itertuples(), exp.splits.shadows, strict=True):
        assert (row.train, row.dev, row.test) == split.sizes()
        assert (row.train, row.dev, row.test) == split_sizes(len(exp.data), half="shadow")


def test_variant_grid_order_and_defaults(exp):
    grid = tables.variant_grid(exp, ["l1_unstructured", "l1_structured"], [0.5, 0.7])
    assert grid == [
        ORIGINAL,
        Variant("l1_unstructured", 0.5),
        Variant("l1_unstructured", 0.7),
        Variant("l1_structured", 0.5),
        Variant("l1_structured", 0.7),
    ]
    assert tables.variant_grid(exp) == [ORIGINAL, exp.variant()]
    assert tables.variant_grid(exp, sparsities=[0.5], include_original=False) == [
        exp.variant(sparsity=0.5)
    ]


def test_divergence_means_by_hand(exp, pruned):
    frame = tables.divergence_means(exp, [ORIGINAL, pruned], ["confidence", "sensitivity"])
    _has(frame, ["victim_pruner", "victim_sparsity", "victim_defense", "variant", "signal"])
    assert list(frame["signal"]) == ["confidence", "sensitivity"] * 2
    assert list(frame["variant"]) == ["original", "original", pruned.label, pruned.label]
    for i, v in enumerate((ORIGINAL, pruned)):
        sig = exp.signals("victim", v)
        members = sig.membership == 1
        sens = sig.sensitivity[np.arange(sig.num_samples), sig.labels]
        for j, values in enumerate((sig.p_y, sens)):
            row = frame.iloc[2 * i + j]
            assert row["member_mean"] == pytest.approx(float(np.mean(values[members])), abs=1e-7)
            assert row["nonmember_mean"] == pytest.approx(
                float(np.mean(values[~members])), abs=1e-7
            )
            assert row["gap"] == row["member_mean"] - row["nonmember_mean"]
    one = tables.divergence_means(exp, pruned)  # a single signal: confidence
    assert list(one["signal"]) == ["confidence"]
    assert one["gap"].iloc[0] == frame["gap"].iloc[2]


def test_sparsity_table_measures_the_cached_models(exp, pruned):
    frame = tables.sparsity_table(exp, [ORIGINAL, pruned])
    _has(frame, [*VARIANT_COLUMNS, "sparsity_all", "channel_sparsity", "macs_fraction"])
    assert list(frame["model"]) == ["victim", "victim"]
    info = exp.model("victim", pruned).info
    assert frame["realised_sparsity"].iloc[1] == info["realised_sparsity"]
    assert frame["sparsity_all"].iloc[1] == info["sparsity_all"]
    assert frame["macs_fraction"].iloc[1] == info["macs_fraction"]
    assert frame["realised_sparsity"].iloc[0] == 0.0 and frame["macs_fraction"].iloc[0] == 1.0
    assert "sparsity" in frame.columns and frame["sparsity"].iloc[1] == 0.7


def test_compaction_row(exp):
    pytest.importorskip("torch_pruning")
    variant = exp.variant("l1_structured", 0.5)
    frame = tables.compaction(exp, variant)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["victim_pruner"] == "l1_structured" and row["victim_sparsity"] == 0.5
    _has(frame, ["params_before", "params_after", "latency_before_ms", "speedup"])
    masked = exp.model("victim", variant).model
    assert row["params_before"] == sum(p.numel() for p in masked.parameters())
    assert row["params_after"] < row["params_before"]
    test = exp.role_data("victim")[2]
    assert row["test_acc_masked"] == accuracy(masked, test, device=exp.device)
    assert row["test_acc_compacted"] == pytest.approx(row["test_acc_masked"], abs=1e-9)


def test_roc_attacks_are_attacks():
    assert set(tables.ROC_ATTACKS) <= set(ATTACKS)
