"""The conclusions of notebook 08: what each defense of the post-pruning fine-tuning buys.

PAPER.md, "The defense (pair-based posterior balancing, PPB)" and claim 4: PPB, and the
baselines adversarial regularisation and DP-SGD, applied while the pruned model is
fine-tuned. Every function takes summarised tables (:func:`miakit.tables.summarise` of
:func:`miakit.sweep.defense_grid` and of :func:`miakit.contrasts.defense_differences`)
and returns Markdown whose numbers are the tables'. A change is "higher" or "lower" only
when its paired interval excludes 0 (:func:`~miakit.narrate.core.shown`); every DP-SGD
setting states its epsilon and delta, which cover the DP fine-tuning only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from miakit.narrate.core import interval, shown
from miakit.plots.style import display_name

__all__ = [
    "adaptive_sentence",
    "costs_table",
    "defenses_paragraph",
    "epsilon_text",
    "reduction_sentence",
    "setting_name",
]

_NON, _ADA, _GAP = "non-adaptive - undefended", "adaptive - undefended", "adaptive - non-adaptive"


def epsilon_text(row: pd.Series) -> str:
    """``"ε = 10.8 at δ = 1e-05"`` for a DP-SGD row, ``""`` otherwise."""
    eps = pd.to_numeric(pd.Series([row.get("victim_epsilon")]), errors="coerce").iloc[0]
    if not np.isfinite(eps):
        return ""
    delta = pd.to_numeric(pd.Series([row.get("victim_delta")]), errors="coerce").iloc[0]
    shown_eps = f"{eps:,.0f}" if eps >= 100 else f"{eps:.3g}"
    return f"ε = {shown_eps}" + (f" at δ = {delta:g}" if np.isfinite(delta) else "")


def setting_name(row: pd.Series) -> str:
    """``"PPB λ=4"``, ``"DP-SGD σ=1"``, ``"no defense"``: a setting as the text shows it."""
    name = display_name(row["victim_defense"])
    parameter = str(row.get("parameter", row["victim_defense"]))
    return name if parameter == row["victim_defense"] else f"{name} {parameter}"


def _undefended(summary: pd.DataFrame) -> pd.DataFrame:
    rows = summary[summary["victim_defense"] == "none"]
    if rows.empty:
        raise ValueError("the summarised defense grid has no undefended row (NoDefense())")
    return rows


def _pick(frame: pd.DataFrame, **where: object) -> pd.Series | None:
    rows = frame
    for k, v in where.items():
        rows = rows[rows[k] == v]
    return None if rows.empty else rows.iloc[0]


def costs_table(
    summary: pd.DataFrame, differences: pd.DataFrame, focus: str, digits: int = 3
) -> str:
    """A Markdown table, one row per setting: test accuracy and realised sparsity, ε for
    DP-SGD, the ``focus`` attack's AUC against the non-adaptive and the adaptive
    adversary, and its paired change from the undefended pruned model."""
    head = ["setting", "test accuracy", "realised sparsity", "ε (DP fine-tuning)"]
    head += [f"{display_name(focus)} AUC, {w}" for w in ("non-adaptive", "adaptive")]
    head += [f"change, {w}" for w in ("non-adaptive", "adaptive")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    mine = summary[summary["attack"] == focus]
    for setting in dict.fromkeys(mine["setting"]):
        rows = mine[mine["setting"] == setting]
        first = rows.iloc[0]
        none = first["victim_defense"] == "none"
        non = _pick(rows, adaptive=False) if not none else first
        ada = _pick(rows, adaptive=True)
        cells = [
            setting_name(first),
            interval(first, "victim_test_acc", digits),
            f"{float(first['victim_realised_sparsity']):.{digits}f}",
            epsilon_text(first),
            "–" if non is None else interval(non, "auc", digits),
            "–" if ada is None else interval(ada, "auc", digits),
        ]
        for contrast in (_NON, _ADA):
            d = _pick(differences, setting=setting, attack=focus, contrast=contrast)
            cells.append("–" if d is None else f"{interval(d, 'auc', digits)} {shown(d, 'auc')}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def reduction_sentence(differences: pd.DataFrame, contrast: str, metric: str = "auc") -> str:
    """For one contrast (e.g. ``"adaptive - undefended"``): in how many (setting, attack)
    pairs the defense lowered, raised or did not shownly change ``metric``, per defense."""
    part = differences[differences["contrast"] == contrast]
    said = []
    for defense in dict.fromkeys(part["victim_defense"]):
        rows = part[part["victim_defense"] == defense]
        words = [shown(r, metric) for _, r in rows.iterrows()]
        said.append(
            f"{display_name(defense)} lowered it in {words.count('lower')} of {len(words)} "
            f"(setting, attack) pairs, raised it in {words.count('higher')}"
        )
    if not said:
        return ""
    return (
        f"{contrast[:1].upper()}{contrast[1:]} ({display_name(metric)}, paired by seed): "
        + "; ".join(said)
        + "."
    )


def adaptive_sentence(differences: pd.DataFrame, metric: str = "auc", digits: int = 3) -> str:
    """What knowing the defense is worth: adaptive minus non-adaptive, per defense, the
    pairs whose interval excludes 0 and the largest absolute mean difference."""
    part = differences[differences["contrast"] == _GAP]
    said = []
    for defense in dict.fromkeys(part["victim_defense"]):
        rows = part[part["victim_defense"] == defense]
        apart = [
            f"{display_name(r['attack'])} at {r['parameter']} ({interval(r, metric, digits)}, "
            f"{shown(r, metric)})"
            for _, r in rows.iterrows()
            if shown(r, metric) != "not shown"
        ]
        big = rows.loc[rows[metric].abs().idxmax()]
        text = f"{display_name(defense)}: told apart in {len(apart)} of {len(rows)} pairs"
        text += f" ({'; '.join(apart)})" if apart else ""
        text += (
            f", largest |difference| {abs(float(big[metric])):.{digits}f} "
            f"({display_name(big['attack'])} at {big['parameter']})"
        )
        said.append(text)
    if not said:
        return ""
    return (
        f"Adaptive minus non-adaptive adversary, {display_name(metric)}: " + "; ".join(said) + "."
    )


def defenses_paragraph(
    summary: pd.DataFrame,
    differences: pd.DataFrame,
    focus: str = "samia",
    digits: int = 3,
    *,
    with_table: bool = True,
) -> str:
    """Notebook 08's "what we measured": the undefended pruned model, every setting's
    cost and protection (:func:`costs_table`), how often each defense lowered the
    attacks (:func:`reduction_sentence`), what the adaptive adversary gains
    (:func:`adaptive_sentence`), and each DP-SGD setting's epsilon.

    Args:
        summary: :func:`miakit.tables.summarise` of :func:`miakit.sweep.defense_grid`.
        differences: :func:`miakit.tables.summarise` of
            :func:`miakit.contrasts.defense_differences` on the same settings.
        focus: the attack of the table (the paper's SAMIA by default).
        digits: decimals shown.
        with_table: include :func:`costs_table` (leave it out where it is shown already).
    """
    base = _undefended(summary)
    row = _pick(base, attack=focus)
    if row is None:
        raise ValueError(f"the defense grid has no {focus!r} rows; pass focus= one of its attacks")
    seeds = int(summary["seeds"].max())
    parts = [
        f"Over {seeds} seed{'s' if seeds != 1 else ''}; intervals are 95%, changes are paired "
        f"by seed. The undefended pruned victim: test accuracy "
        f"{interval(row, 'victim_test_acc', digits)}, {display_name(focus)} AUC "
        f"{interval(row, 'auc', digits)}.",
        costs_table(summary, differences, focus, digits) if with_table else "",
        reduction_sentence(differences, _NON),
        reduction_sentence(differences, _ADA),
        adaptive_sentence(differences, digits=digits),
    ]
    dp = summary[summary["victim_defense"] == "dpsgd"].drop_duplicates("setting")
    if not dp.empty:
        eps = "; ".join(f"{setting_name(r)}: {epsilon_text(r)}" for _, r in dp.iterrows())
        parts.append(
            f"DP-SGD's budgets ({eps}) cover the DP fine-tuning only: the victim was first "
            "trained without noise, so the deployed model has no DP guarantee as a whole."
        )
    low = float(base["victim_test_acc_low"].iloc[0]) if "victim_test_acc_low" in base else np.nan
    if np.isfinite(low):
        models = summary.drop_duplicates("setting")
        kept = models[
            (models["victim_defense"] != "none") & (models["victim_test_acc_high"] >= low)
        ]
        names = ", ".join(setting_name(r) for _, r in kept.iterrows()) or "none"
        parts.append(
            "Settings whose test accuracy interval reaches the undefended one's (no accuracy "
            f"loss shown): {names}."
        )
    return "\n\n".join(p for p in parts if p)
