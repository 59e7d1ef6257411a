"""Sentences built from summarised tables carry the table's numbers, and only those."""

from __future__ import annotations

import pandas as pd
import pytest

from miakit import narrate
from miakit.plots import display_name

AUC = display_name("auc")


def _summary():
    return pd.DataFrame(
        {
            "attack": ["conf", "samia", "gap"],
            "auc": [0.78, 0.80, 0.55],
            "auc_low": [0.77, 0.79, 0.54],
            "auc_high": [0.79, 0.815, 0.56],
            "seeds": [3, 3, 3],
        }
    )


def test_interval_and_ranking_use_the_table():
    s = _summary()
    assert narrate.interval(s.iloc[0], "auc") == "0.780 [0.770, 0.790]"
    text = narrate.ranking_sentence(s, top=2)
    assert text.startswith(f"Highest {AUC}: SAMIA 0.800 [0.790, 0.815]; Conf 0.780")
    assert "not told apart" in text
    s.loc[1, "auc_low"] = 0.795
    assert "are apart" in narrate.ranking_sentence(s, top=2)
    one = s.assign(auc_low=float("nan"), auc_high=float("nan"))
    assert narrate.interval(one.iloc[0], "auc") == "0.780 (one run)"
    with pytest.raises(ValueError, match="non-empty"):
        narrate.ranking_sentence(s.iloc[:0])


@pytest.mark.parametrize(
    ("low", "high", "word"),
    [(0.004, 0.02, "higher"), (-0.02, -0.004, "lower"), (-0.01, 0.02, "not shown")],
)
def test_difference_sentence_says_what_the_interval_says(low, high, word):
    row = pd.Series(
        {"attack": "conf", "baseline_attack": "conf", "auc": (low + high) / 2}
        | {"auc_low": low, "auc_high": high, "seeds": 3}
    )
    text = narrate.difference_sentence(row, "pruned - original")
    assert text.startswith(f"Conf {AUC}, pruned - original: ")
    assert f"[{low:+.3f}, {high:+.3f}]" in text and "over 3 seeds" in text
    assert word in text


def test_markdown_table_formats_every_row():
    text = narrate.markdown_table(_summary(), ["attack"], ["auc"])
    lines = text.splitlines()
    assert lines[0] == f"| {display_name('attack')} | {AUC} |" and len(lines) == 2 + 3
    assert "| SAMIA | 0.800 [0.790, 0.815] |" in lines


def test_interval_pivot_and_accuracy_sentence():
    s = _summary().assign(model=["a", "a", "b"])
    table = narrate.interval_pivot(s, "attack", "model")
    assert table.loc["SAMIA", "a"] == "0.800 [0.790, 0.815]"
    assert pd.isna(table.loc["Gap", "a"]) and table.loc["Gap", "b"].startswith("0.550")
    models = pd.DataFrame(
        {
            "model": ["victim", "shadow0"],
            "variant": ["original", "original"],
            "train_acc": [0.9, 0.8],
            "train_acc_low": [0.88, 0.7],
            "train_acc_high": [0.92, 0.9],
            "test_acc": [0.5, 0.5],
            "test_acc_low": [0.48, 0.4],
            "test_acc_high": [0.52, 0.6],
            "seeds": [3, 3],
        }
    )
    text = narrate.accuracy_sentence(models)
    assert "over 3 seeds" in text and "0.900 [0.880, 0.920] / 0.500 [0.480, 0.520]" in text
    assert "0.800" not in text  # shadows are not the victim
