"""The sweep grids over one cached experiment (smoke profile, a temporary store)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from miakit import ablation, sweep, tables
from miakit.defenses import NoDefense, PPBParams, make_defense
from miakit.experiment import ORIGINAL, Experiment, Variant, profile
from miakit.metrics import RESULT_COLUMNS
from miakit.store import Store

#: The section 4 columns every attack row of a sweep frame carries (ARCHITECTURE.md).
STRUCTURED = [
    "dataset",
    "arch",
    "seed",
    "split_seed",
    "victim_pruner",
    "victim_sparsity",
    "victim_realised_sparsity",
    "victim_defense",
    "victim_train_acc",
    "victim_test_acc",
    "victim_epsilon",
    "shadow_pruner",
    "shadow_sparsity",
    "shadow_defense",
    "adaptive",
    "attack",
    *RESULT_COLUMNS,
]


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("cache"))
    return Experiment(profile("smoke"), store=store, device="cpu")


def _first_seed(frame: pd.DataFrame, exp: Experiment) -> pd.DataFrame:
    """The rows of the experiment's own seed, after checking every replicate has its rows."""
    seeds = [r.config.seed for r in exp.replicates()]
    assert sorted(frame["seed"].unique()) == seeds and len(seeds) == exp.config.seeds
    counts = frame["seed"].value_counts()
    assert counts.nunique() == 1, "every seed has the same rows"
    return frame[frame["seed"] == exp.config.seed].reset_index(drop=True)


def _has_structured_columns(frame: pd.DataFrame) -> None:
    missing = [c for c in STRUCTURED if c not in frame.columns]
    assert not missing, f"missing columns {missing}"
    for old in ("victim", "shadows", "matched", "pruner", "sparsity", "test_acc"):
        assert old not in frame.columns, f"old label column {old!r} left in"


def test_pruning_grid_has_requested_and_realised_sparsity(exp):
    frame = sweep.pruning_grid(exp, ["l1_unstructured"], [0.7], ["conf"])
    _has_structured_columns(frame)
    reps = exp.replicates()
    # Per seed: the original, the fine-tune-only control, then the pruned model.
    assert frame["victim_pruner"].tolist() == ["none", "finetuned", "l1_unstructured"] * len(reps)
    assert frame["victim_sparsity"].tolist() == [0.0, 0.0, 0.7] * len(reps)
    realised = [r.model("victim", r.variant()).info["realised_sparsity"] for r in reps]
    assert frame["victim_realised_sparsity"].tolist() == [
        x for value in realised for x in (0.0, 0.0, value)
    ]
    assert frame["adaptive"].all()  # shadows pruned like the victim
    plain = sweep.pruning_grid(exp, ["l1_unstructured"], [0.7], ["conf"], include_finetuned=False)
    assert "finetuned" not in set(plain["victim_pruner"])


def test_knowledge_grid_crosses_victims_and_shadows(exp):
    pruned = exp.variant()
    frame = sweep.knowledge_grid(exp, [ORIGINAL, pruned], [ORIGINAL, pruned], ["conf"])
    frame = _first_seed(frame, exp)
    _has_structured_columns(frame)
    assert list(zip(frame["victim_pruner"], frame["shadow_pruner"], strict=True)) == [
        ("none", "none"),
        ("none", "l1_unstructured"),
        ("l1_unstructured", "none"),
        ("l1_unstructured", "l1_unstructured"),
    ]
    assert frame["adaptive"].tolist() == [True, False, False, True]
    assert frame["victim_label"].tolist() == ["original", "original", pruned.label, pruned.label]
    assert frame["shadow_label"].tolist() == ["original", pruned.label] * 2
    # The mismatched adversary really used other shadows: other scores, other AUC rows.
    summary = sweep.knowledge_summary(frame, pruned)
    assert summary.loc["matched shadows", "conf"] == frame["auc"].iloc[3]
    assert summary.loc["unpruned shadows", "conf"] == frame["auc"].iloc[2]


def test_knowledge_summary_hand_worked():
    victim = Variant("l1_unstructured", 0.7)

    def row(pruner, sparsity, shadow, adaptive, attack, auc):
        return {
            "victim_pruner": pruner,
            "victim_sparsity": sparsity,
            "victim_defense": "none",
            "shadow_pruner": shadow,
            "adaptive": adaptive,
            "attack": attack,
            "auc": auc,
        }

    rows = [
        row("none", 0.0, "none", True, "samia", 0.70),
        row("none", 0.0, "none", True, "conf", 0.60),
        row("none", 0.0, "l1_unstructured", False, "conf", 0.10),  # another victim
        row("l1_unstructured", 0.7, "none", False, "samia", 0.65),
        row("l1_unstructured", 0.7, "none", False, "conf", 0.55),
        row("l1_unstructured", 0.7, "l1_unstructured", True, "samia", 0.72),
        row("l1_unstructured", 0.7, "l1_unstructured", True, "conf", 0.62),
        row("l1_unstructured", 0.7, "l1_unstructured", False, "samia", 0.69),  # at 0.5
        row("l1_unstructured", 0.7, "l1_unstructured", False, "conf", 0.58),
        row("l1_unstructured", 0.7, "l1_unstructured", False, "samia", 0.66),  # at 0.9
        row("l1_unstructured", 0.7, "l1_unstructured", False, "conf", 0.61),
        row("l1_unstructured", 0.5, "l1_unstructured", False, "conf", 0.99),  # another victim
    ]
    got = sweep.knowledge_summary(pd.DataFrame(rows), victim)
    expected = pd.DataFrame(
        {"samia": [0.70, 0.72, 0.65, 0.69, 0.66], "conf": [0.60, 0.62, 0.55, 0.61, 0.58]},
        index=[
            "no pruning (original vs original)",
            "matched shadows",
            "unpruned shadows",
            "mismatched sparsity, best",
            "mismatched sparsity, worst",
        ],
    )
    expected.columns.name = "attack"  # as the old notebook's table: attacks name the columns
    pd.testing.assert_frame_equal(got.astype(float), expected)


def test_ablation_table_rows_carry_the_options(exp):
    pruned = exp.variant()
    frame = ablation.ablation_table(exp, [pruned], baselines=["conf"])
    frame = _first_seed(frame, exp)
    _has_structured_columns(frame)
    assert frame.columns[0] == "ablation"
    assert frame["ablation"].tolist() == [label for label, _ in ablation.SAMIA_ABLATIONS] + ["Conf"]
    assert frame["attack"].tolist() == ["samia"] * 4 + ["conf"]
    sens = frame["attack_use_sensitivity"].tolist()
    mlp = frame["attack_mlp"].tolist()
    assert sens[:4] == [True, False, True, False] and pd.isna(sens[4])
    assert mlp[:4] == [False, False, True, True] and pd.isna(mlp[4])
    assert (frame["victim_label"] == pruned.label).all()
    # Each ablation is its own fitted attack: the four SAMIA rows do not share scores.
    assert frame["auc"].iloc[:4].nunique() > 1


def test_knowledge_differences_are_mismatched_minus_matched_per_seed(exp):
    pruned = exp.variant()
    diff = sweep.knowledge_differences(exp, [ORIGINAL, pruned], [ORIGINAL, pruned], ["conf"])
    assert (
        list(zip(diff["victim_label"], diff["shadow_label"], strict=True))
        == [("original", pruned.label)] * exp.config.seeds
        + [(pruned.label, "original")] * exp.config.seeds
    )
    assert (
        diff["shadow_pruner"].tolist()
        == ["l1_unstructured"] * exp.config.seeds + ["none"] * exp.config.seeds
    )
    grid = sweep.knowledge_grid(exp, [pruned], [ORIGINAL, pruned], ["conf"])
    unaware = grid[grid["shadow_pruner"] == "none"]["auc"].to_numpy()
    matched = grid[grid["adaptive"]]["auc"].to_numpy()
    np.testing.assert_allclose(diff[diff["victim_pruner"] != "none"]["auc"], unaware - matched)
    assert (diff["auc_se"] > 0).all()
    summary = tables.summarise(diff)
    assert len(summary) == 2 and {"auc_low", "auc_high"} <= set(summary.columns)


def test_ablation_differences_are_each_ablation_minus_samia(exp):
    pruned = exp.variant()
    table = ablation.ablation_table(exp, [pruned], baselines=["conf"])
    diff = ablation.ablation_differences(exp, [pruned], baselines=["conf"])
    labels = [label for label, _ in ablation.SAMIA_ABLATIONS[1:]] + ["Conf"]
    assert list(dict.fromkeys(diff["ablation"])) == labels
    assert (diff["victim_label"] == pruned.label).all()
    samia = table[table["ablation"] == "SAMIA"].set_index("seed")["auc"]
    for label in labels:
        mine = table[table["ablation"] == label].set_index("seed")["auc"]
        got = diff[diff["ablation"] == label].set_index("seed")["auc"]
        np.testing.assert_allclose(got.sort_index(), (mine - samia).sort_index())
    sens = diff.drop_duplicates("ablation")["attack_use_sensitivity"].tolist()
    assert sens[:3] == [False, True, False] and np.isnan(sens[3])


def test_defense_grid_skips_the_duplicate_undefended_row(exp):
    frame = sweep.defense_grid(exp, [NoDefense(), PPBParams(lam=4.0)], ["conf"])
    frame = _first_seed(frame, exp)
    _has_structured_columns(frame)
    assert frame["victim_defense"].tolist() == ["none", "ppb", "ppb"]
    assert frame["adaptive"].tolist() == [True, False, True]
    assert frame["shadow_defense"].tolist() == ["none", "none", "ppb"]
    assert frame["parameter"].tolist() == ["none", "λ=4", "λ=4"]
    assert frame["setting"].tolist() == ["none", "ppb λ=4", "ppb λ=4"]
    assert np.isnan(frame["victim_defense_lam"].iloc[0])
    assert frame["victim_defense_lam"].iloc[1:].tolist() == [4.0, 4.0]
    realised = exp.model("victim", exp.variant(defense="ppb", lam=4.0)).info["realised_sparsity"]
    assert frame["victim_realised_sparsity"].iloc[1] == realised
    assert (frame["victim_sparsity"] == 0.7).all()
    # Only the non-adaptive adversary: the undefended row stays (it is that adversary too).
    one = sweep.defense_grid(exp, [NoDefense(), ("ppb", {"lam": 4.0})], ["conf"], adaptive=(False,))
    one = _first_seed(one, exp)
    assert one["victim_defense"].tolist() == ["none", "ppb"]
    assert one["auc"].iloc[1] == frame["auc"].iloc[1]


def test_methods_arch_picks_an_architecture_for_every_pruner(exp):
    quick = SimpleNamespace(config=profile("quick"))
    assert quick.config.arch == "mlp"
    assert sweep.methods_arch(quick) == "signal_cnn"
    assert sweep.methods_arch(exp) == "small_cnn"
    assert sweep.methods_experiment(exp) is exp
    mlp = Experiment(profile("quick"), store=exp.store, device="cpu")
    other = sweep.methods_experiment(mlp)
    assert other.config.arch == "signal_cnn" and other.store is exp.store
    assert other.config == profile("quick", arch="signal_cnn")


def test_variant_lists(exp):
    assert sweep.sparsity_variants(exp, [0.9, 0.5]) == [
        ORIGINAL,
        Variant("l1_unstructured", 0.5),
        Variant("l1_unstructured", 0.7),  # the experiment's own sparsity is added
        Variant("l1_unstructured", 0.9),
    ]
    assert sweep.sparsity_variants(exp, [0.7]) == [ORIGINAL, Variant("l1_unstructured", 0.7)]
    assert sweep.method_variants(exp, ["slimming", "l1_structured"]) == [
        ORIGINAL,
        Variant("slimming", 0.7),
        Variant("l1_structured", 0.7),
    ]


def test_defense_settings_start_with_no_defense():
    grid = sweep.grid("smoke")
    settings = sweep.defense_settings(grid)
    assert settings == [NoDefense(), *grid.defenses()]
    assert [s.name for s in settings] == ["none", "ppb", "advreg", "dpsgd"]
    chosen = sweep.defense_settings(grid, lambdas=[1, 2], noise_multipliers=())
    assert chosen == [
        NoDefense(),
        make_defense("ppb", lam=1.0),
        make_defense("ppb", lam=2.0),
        *[make_defense("advreg", theta=t) for t in grid.thetas],
    ]


def test_accuracy_and_variants_tables_stack_experiments(exp):
    acc = sweep.accuracy_tables([exp, exp])
    seeds = exp.config.seeds  # every table holds each replicate's rows
    assert len(acc) == 2 * seeds * len(exp.roles()) and set(acc["arch"]) == {"small_cnn"}
    table = sweep.variants_tables([(exp, [ORIGINAL]), (exp, [exp.variant()])])
    table = table[table["seed"] == exp.config.seed]
    assert table["variant"].tolist() == ["original"] * 3 + [exp.variant().label] * 3
    assert table["sparsity"].tolist() == [0.0] * 3 + [0.7] * 3
    assert "realised_sparsity" in table.columns
