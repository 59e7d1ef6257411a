"""Figures of paired differences mark 0 (no difference), not the 0.5 of a guessing attack."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from miakit import plots


def _frame(difference: bool) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "attack": ["conf", "conf", "samia", "samia"],
            "victim_sparsity": [0.5, 0.7, 0.5, 0.7],
            "seed": [0, 0, 0, 0],
            "auc": [0.02, -0.01, 0.03, 0.0],
            "auc_se": [0.01] * 4,
        }
    )
    return frame.assign(baseline_attack=frame["attack"]) if difference else frame


def _hlines(fig) -> set[float]:
    found = set()
    for ax in fig.axes:
        for line in ax.get_lines():
            y = line.get_ydata()
            if len(y) == 2 and y[0] == y[1] and line.get_xdata()[0] == 0:
                found.add(float(y[0]))
    return found


@pytest.mark.parametrize("difference", [False, True])
def test_lines_and_bars_draw_the_reference_their_table_needs(difference):
    want = 0.0 if difference else 0.5
    lines = plots.metric_lines(_frame(difference), x="victim_sparsity", y="auc", hue="attack")
    bars = plots.attack_bars(_frame(difference), metric="auc", by="victim_sparsity", hue="attack")
    for fig in (lines, bars):
        other = 0.5 if difference else 0.0
        assert want in _hlines(fig) and other not in _hlines(fig)
        plt.close(fig)
