"""Paired comparisons of an audit's attacks: one attack's scores against another's.

Every comparison is on the same targets, so a bootstrap resample draws the same samples
for both sides (:meth:`~miakit.attacks.AttackScores.bootstrap`) and the 95% interval of
the difference is paired (the standard of ``README.md``: a claim is shown only when its
interval excludes 0). Three are drawn from an audit with a dense checkpoint:

* :func:`versus`: the dense-plus-pruned attack minus the strongest attack on each model
  alone, and the pruned model minus the dense one under the same attack (what pruning
  did to the leak);
* :func:`class_change`: that same attack's per-class AUC on the pruned model minus on
  the dense one (which classes became more exposed).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from miakit.attacks import AttackScores
from miakit.metrics import results_frame
from miakit.metrics.intervals import INTERVAL_METRICS

__all__ = ["class_change", "label", "versus"]

#: The interval's level, as percentiles of the bootstrap differences.
LEVEL = (2.5, 97.5)


def label(scores: AttackScores) -> str:
    """``"<model>/<attack>"``, the name of a tagged score in the audit's tables."""
    return f"{scores.columns['model']}/{scores.attack}"


def _point(scores: AttackScores) -> pd.Series:
    return results_frame([scores.result()]).iloc[0]


def versus(pairs: list[tuple[AttackScores, AttackScores]], seed: int) -> pd.DataFrame:
    """``a - b`` per metric for each ``(a, b)``, with paired bootstrap 95% intervals.

    Returns:
        One row per pair and metric of
        :data:`~miakit.metrics.intervals.INTERVAL_METRICS`: ``of`` (``a``'s label),
        ``versus`` (``b``'s), ``metric``, ``difference``, ``low``, ``high``.
    """
    rows = []
    for a, b in pairs:
        diff = a.bootstrap(seed=seed) - b.bootstrap(seed=seed)
        point_a, point_b = _point(a), _point(b)
        for j, metric in enumerate(INTERVAL_METRICS):
            low, high = np.nanpercentile(diff[:, j], LEVEL)
            rows.append(
                {
                    "of": label(a),
                    "versus": label(b),
                    "metric": metric,
                    "difference": float(point_a[metric] - point_b[metric]),
                    "low": float(low),
                    "high": float(high),
                }
            )
    return pd.DataFrame(rows)


def _within(scores: AttackScores, keep: np.ndarray) -> AttackScores:
    """The same scores on the samples ``keep`` selects."""
    picked = {
        name: None if getattr(scores, name) is None else getattr(scores, name)[keep]
        for name in ("scores", "membership", "labels", "sample_ids")
    }
    return dataclasses.replace(scores, **picked)


def class_change(dense: AttackScores, pruned: AttackScores, seed: int) -> pd.DataFrame:
    """Per class: the attack's AUC on the pruned model minus on the dense one.

    Both are the same attack on the same targets. A class with fewer than two members
    or non-members among the targets gets NaN.

    Returns:
        One row per class, most exposed first: ``class``, ``attack``, ``n_members``,
        ``n_nonmembers``, ``dense_auc``, ``pruned_auc``, ``change`` and its paired
        bootstrap 95% interval ``low`` / ``high``.
    """
    if dense.attack != pruned.attack or not np.array_equal(dense.labels, pruned.labels):
        raise ValueError("class_change compares one attack on the same targets, two models")
    truth = pruned.membership
    rows = []
    for cls in np.unique(pruned.labels):
        keep = pruned.labels == cls
        members = int(truth[keep].sum())
        row = {
            "class": int(cls),
            "attack": pruned.attack,
            "n_members": members,
            "n_nonmembers": int(keep.sum() - members),
        }
        if min(members, row["n_nonmembers"]) < 2:
            rows.append(row | dict.fromkeys(("dense_auc", "pruned_auc", "change"), np.nan))
            continue
        a, b = _within(pruned, keep), _within(dense, keep)
        j = INTERVAL_METRICS.index("auc")
        diff = a.bootstrap(seed=seed)[:, j] - b.bootstrap(seed=seed)[:, j]
        low, high = np.nanpercentile(diff, LEVEL)
        auc_a, auc_b = float(_point(a)["auc"]), float(_point(b)["auc"])
        rows.append(
            row
            | {
                "dense_auc": auc_b,
                "pruned_auc": auc_a,
                "change": auc_a - auc_b,
                "low": float(low),
                "high": float(high),
            }
        )
    frame = pd.DataFrame(rows)
    return frame.sort_values("change", ascending=False, kind="stable", ignore_index=True)
