"""narrate.knowledge: grids of intervals and mismatch sentences from synthetic summaries."""

from __future__ import annotations

import pandas as pd
import pytest

from miakit.narrate import knowledge as nk
from miakit.narrate.core import interval

LEVELS = {"original": 0.0, "l1_unstructured@0.5": 0.5, "l1_unstructured@0.7": 0.7}


def _cell(attack, victim, shadow, auc, half=0.01, **more):
    return {
        "attack": attack,
        "victim_label": victim,
        "shadow_label": shadow,
        "victim_sparsity": LEVELS[victim],
        "shadow_sparsity": LEVELS[shadow],
        "shadow_pruner": "none" if shadow == "original" else "l1_unstructured",
        "adaptive": victim == shadow,
        "auc": auc,
        "auc_low": auc - half,
        "auc_high": auc + half,
        "seeds": 3,
        **more,
    }


def test_interval_grid_is_square_with_each_rows_interval():
    rows = [
        _cell("conf", "l1_unstructured@0.7", "original", 0.70),
        _cell("conf", "original", "l1_unstructured@0.7", 0.60),
        _cell("conf", "original", "original", 0.65),
    ]
    grid = nk.interval_grid(pd.DataFrame(rows))
    # Columns follow the rows' order, so the grid is square; a missing cell is empty.
    assert list(grid.columns) == ["L1 unstructured@0.7", "original"]
    assert grid.loc[("Conf", "original"), "original"] == interval(rows[2], "auc")
    assert grid.loc[("Conf", "L1 unstructured@0.7"), "L1 unstructured@0.7"] == ""


def test_leakage_sentence_spans_the_matched_cells_only():
    frame = pd.DataFrame(
        [
            _cell("conf", "original", "original", 0.62),
            _cell("samia", "l1_unstructured@0.7", "l1_unstructured@0.7", 0.71),
            _cell("samia", "original", "l1_unstructured@0.7", 0.99),  # mismatched: ignored
        ]
    )
    text = nk.leakage_sentence(frame)
    assert "from 0.620 [0.610, 0.630] (Conf against original)" in text
    assert "to 0.710 [0.700, 0.720] (SAMIA against L1 unstructured@0.7)" in text


def _diff(attack, victim, shadow, value, half=0.01):
    return _cell(attack, victim, shadow, value, half, baseline_attack=attack)


def test_mismatch_markdown_counts_by_direction_and_names_the_losses():
    frame = pd.DataFrame(
        [
            _diff("samia", "l1_unstructured@0.7", "original", -0.002),  # unaware, not shown
            _diff("samia", "l1_unstructured@0.7", "l1_unstructured@0.5", 0.0),
            _diff("samia", "original", "l1_unstructured@0.7", -0.05),  # harder: shown lower
            _diff("samia", "l1_unstructured@0.5", "l1_unstructured@0.7", -0.04),  # harder
            _diff("samia", "original", "l1_unstructured@0.5", 0.03),  # shown higher
            _diff("conf", "original", "l1_unstructured@0.7", -0.001),
        ]
    )
    text = nk.mismatch_markdown(frame, victim="l1_unstructured@0.7")
    samia, conf = (line for line in text.splitlines() if line.startswith("- "))
    assert "unaware of the pruning) against L1 unstructured@0.7: -0.002" in samia
    assert "not shown" in samia.split(";")[0]
    assert "of 5 mismatched pairs, 2 shown lower and 1 shown higher" in samia
    assert "shadows pruned harder than the victim: 2 of 3 shown lower" in samia
    assert f"original / L1 unstructured@0.7 {interval(frame.iloc[2], 'auc')}" in samia
    assert "shadows pruned less than the victim: 0 of 2 shown lower" in samia
    assert "of 1 mismatched pairs, 0 shown lower" in conf and "unaware" not in conf


def test_mismatch_markdown_needs_rows():
    with pytest.raises(ValueError, match="non-empty"):
        nk.mismatch_markdown(pd.DataFrame(columns=["attack", "victim_label", "shadow_label"]))
