"""The data, model and pruning-accuracy paragraphs carry their table's numbers, and the
words follow the intervals (notebooks 01 and 02)."""

from __future__ import annotations

import pandas as pd
import pytest

from miakit.narrate import models as nm
from miakit.narrate.core import interval


def _acc(model, train, test, half=0.01, seeds=3):
    return {
        "model": model,
        "train_acc": train,
        "train_acc_low": train - half,
        "train_acc_high": train + half,
        "test_acc": test,
        "test_acc_low": test - half,
        "test_acc_high": test + half,
        "gap": train - test,
        "seeds": seeds,
    }


def test_compare_says_higher_or_lower_only_when_the_intervals_are_apart():
    a = pd.Series({"m": 0.6, "m_low": 0.55, "m_high": 0.65})
    b = pd.Series({"m": 0.5, "m_low": 0.45, "m_high": 0.54})
    assert nm.compare(a, b, "m") == "higher"
    assert nm.compare(b, a, "m") == "lower"
    overlapping = b.copy()
    overlapping["m_high"] = 0.56
    assert nm.compare(a, overlapping, "m") == "not told apart"
    one = pd.Series({"m": 0.9, "m_low": float("nan"), "m_high": float("nan")})
    assert nm.compare(one, b, "m") == "not told apart"
    both = pd.Series({"x_low": 0.8, "x_high": 0.9, "y_low": 0.5, "y_high": 0.6})
    assert nm.compare(both, both, "x", "y") == "higher"


def test_split_sentence_gives_each_roles_sizes():
    roles = pd.DataFrame(
        {
            "model": ["victim", "shadow0", "shadow1"],
            "train": [1800, 1801, 1802],
            "dev": [400, 400, 400],
            "test": [1800, 1800, 1800],
        }
    )
    text = nm.split_sentence(roles, "mnist1d")
    assert "MNIST-1D victim half of 4000 samples" in text
    assert "1800 members (train), 400 dev and 1800 non-members" in text
    assert "each of the 2 shadows trains on 1801 to 1802, stops on 400" in text


def test_accuracy_paragraph_shows_an_overfit_only_when_the_intervals_are_apart():
    summary = pd.DataFrame(
        [_acc("victim", 0.9, 0.5), _acc("shadow0", 0.95, 0.52), _acc("shadow1", 0.97, 0.5)]
    )
    text = nm.accuracy_paragraph(summary, "mlp", "mnist1d")
    victim = summary.iloc[0]
    assert f"train accuracy {interval(victim, 'train_acc')}" in text
    assert f"test accuracy {interval(victim, 'test_acc')}" in text
    assert "a gap of 0.400" in text and "over 3 seeds" in text
    assert "intervals do not overlap" in text
    assert "train accuracy 0.950 to 0.970" in text and "gaps 0.430 to 0.470" in text
    assert "Every shadow's mean gap is above the victim's" in text
    close = pd.DataFrame([_acc("victim", 0.6, 0.58, half=0.05), _acc("shadow0", 0.6, 0.5)])
    text = nm.accuracy_paragraph(close, "mlp", "mnist1d")
    assert "the intervals overlap: an overfit is not shown" in text
    assert "below the victim's" not in text and "above the victim's" in text
    under = pd.DataFrame([_acc("victim", 0.5, 0.55)])
    assert "no better than its non-members" in nm.accuracy_paragraph(under, "mlp", "mnist1d")


def _variant(pruner, sparsity, train, test, realised=None, half=0.01, **extra):
    row = _acc("victim", train, test, half)
    row.pop("model")
    return {
        "model": "victim",
        "pruner": pruner,
        "sparsity": sparsity,
        "realised_sparsity": sparsity if realised is None else realised,
        **row,
        **extra,
    }


def test_sweep_paragraph_compares_each_level_with_the_original():
    summary = pd.DataFrame(
        [
            _variant("none", 0.0, 0.90, 0.51),
            _variant("finetuned", 0.0, 0.95, 0.51),
            _variant("l1_unstructured", 0.5, 0.93, 0.52),
            _variant("l1_unstructured", 0.9, 0.62, 0.44, realised=0.899),
            {**_variant("l1_unstructured", 0.5, 0.2, 0.2), "model": "shadow0"},  # not the victim
        ]
    )
    text = nm.sweep_paragraph(summary, default_sparsity=0.9)
    assert "train accuracy 0.950 [0.940, 0.960], higher than the original's" in text
    assert "**L1 unstructured at 0.5** (realised sparsity 0.500)" in text
    assert "test accuracy 0.520 [0.510, 0.530], not told apart from the original's" in text
    assert "(realised sparsity 0.899)" in text and "below the original's" in text
    assert "the pruned victim's gap (train - test) is 0.180, against 0.390" in text
    assert "0.200" not in text  # the shadow's row is left out


def test_methods_paragraph_names_what_collapsed_by_its_stated_rule():
    summary = pd.DataFrame(
        [
            _variant("none", 0.0, 0.98, 0.96),
            _variant("l1_unstructured", 0.7, 0.97, 0.95, channel_sparsity=0.0, macs_fraction=0.3),
            _variant("slimming", 0.7, 0.35, 0.33, realised=0.0, channel_sparsity=0.7)
            | {"macs_fraction": 0.007},
        ]
    )
    text = nm.methods_paragraph(summary, "signal_cnn", num_classes=10)
    assert "- **L1 unstructured at 0.7**: weight sparsity 0.700, channel sparsity 0.000" in text
    assert "30.0% of the MACs left; test accuracy 0.950 [0.940, 0.960], not told apart" in text
    assert "0.7% of the MACs left" in text
    floor = (0.1 + 0.96) / 2
    assert f"**Collapsed** (the whole 95% interval of the test accuracy below {floor:.3f}" in text
    assert "- **network slimming at 0.7**" in text and text.endswith(
        "): network slimming at 0.7. Attack results on a collapsed model describe a broken "
        "network, not a pruned one."
    )
    healthy = summary.iloc[:2]
    assert "No model collapses" in nm.methods_paragraph(healthy, "signal_cnn", 10)
    wide = summary.copy()
    wide.loc[2, "test_acc_high"] = floor + 0.01  # the interval reaches above the floor
    assert "No model collapses" in nm.methods_paragraph(wide, "signal_cnn", 10)


def test_compaction_sentence():
    row = pd.Series(
        {
            "victim_pruner": "l1_structured",
            "victim_sparsity": 0.5,
            "params_before": 1000,
            "params_after": 250,
            "test_acc_masked": 0.9,
            "test_acc_compacted": 0.9,
        }
    )
    text = nm.compaction_sentence(row)
    assert "removes 75% of its parameters (1000 → 250), with the same test accuracy (0.900)" in (
        text
    )
    changed = row.copy()
    changed["test_acc_compacted"] = 0.85
    assert "test accuracy 0.900 masked and 0.850 compacted" in nm.compaction_sentence(changed)


def test_a_missing_original_is_a_clear_error():
    with pytest.raises(ValueError, match="no row for the original"):
        nm.sweep_paragraph(pd.DataFrame([_variant("l1_unstructured", 0.5, 0.9, 0.5)]))


class _Rep:
    def __init__(self, seed):
        self.config = type("C", (), {"seed": seed})()


class _Exp:
    def replicates(self):
        return [_Rep(0), _Rep(1_000_000)]


def test_per_seed_runs_a_one_seed_table_on_every_replicate_and_summarise_measures_it():
    from miakit import sweep, tables

    def table(rep, offset):
        acc = 0.9 if rep.config.seed == 0 else 0.8
        return pd.DataFrame(
            {
                "model": ["victim"],
                "train_acc": [acc + offset],
                "test_acc": [0.5],
                "gap": [acc + offset - 0.5],
                "macs_fraction": [0.3 if rep.config.seed == 0 else 0.4],
                "best_epoch": [3 if rep.config.seed == 0 else 5],
            }
        )

    frame = sweep.per_seed(table, _Exp(), 0.05)
    assert frame["seed"].tolist() == [0, 1_000_000]
    assert frame["train_acc"].tolist() == pytest.approx([0.95, 0.85])
    summary = tables.summarise(frame)  # gap, macs_fraction, best_epoch are measured
    assert len(summary) == 1 and summary.loc[0, "seeds"] == 2
    assert summary.loc[0, "gap"] == pytest.approx(0.4)
    assert summary.loc[0, "macs_fraction"] == pytest.approx(0.35)
    assert summary.loc[0, "best_epoch"] == pytest.approx(4)
    assert summary.loc[0, "train_acc_low"] < 0.9 < summary.loc[0, "train_acc_high"]
