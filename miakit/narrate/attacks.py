"""Rendered conclusions on attacks: which is strongest, what pruning and fine-tuning change,
and what SAMIA's ingredients add (notebooks 04 and 07).

Every function takes summarised tables (:func:`miakit.tables.summarise` of a per-seed
attack table or of :func:`miakit.tables.difference`) and returns Markdown whose numbers
are those tables' means and 95% intervals. A paired difference is called higher or lower
only when its interval excludes 0 (:func:`~miakit.narrate.core.shown`); two unpaired
settings are told apart only when their intervals do not overlap. Claim 2 (PAPER.md, the
claims at its top, and "SAMIA") is stated to hold on a pruned victim only when SAMIA is
shown above every one of the paper's eight baselines there (PAPER.md, "The eight
existing attacks").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from miakit.attacks import BASELINES
from miakit.narrate._victims import (
    by_victim,
    is_pruned,
    names_with_intervals,
    negated,
    seeds_text,
    split_by_verdict,
    verdict_text,
    victim_name,
)
from miakit.narrate.core import interval, ranking_sentence, shown
from miakit.plots.style import display_name

__all__ = [
    "LABEL_FREE",
    "SAMIA",
    "ablation_markdown",
    "change_markdown",
    "control_markdown",
    "findings_markdown",
    "label_sentence",
    "low_fpr_sentence",
    "samia_sentence",
]

#: The paper's attack (PAPER.md, "SAMIA"), the one the others are compared with.
SAMIA = "samia"

#: The attacks that never read the true class y: NN and Top3-NN (attack networks on the
#: posterior alone) and Max-conf (one global threshold on the largest probability).
#: Xent is not among them: its signal, the prediction entropy, ignores y, but its
#: threshold is chosen per ground-truth class (PAPER.md, "The eight existing attacks", 3).
LABEL_FREE: tuple[str, ...] = ("nn", "top3_nn", "max_conf")


def _overlap_text(a: pd.Series, b: pd.Series, metric: str) -> str:
    low, high = a.get(f"{metric}_low", np.nan), b.get(f"{metric}_high", np.nan)
    if not (np.isfinite(low) and np.isfinite(high)):
        return "one run each, not told apart"
    if low > high or b.get(f"{metric}_low", np.nan) > a.get(f"{metric}_high", np.nan):
        return "apart (the intervals do not overlap)"
    return "not told apart (the intervals overlap)"


def samia_sentence(rows: pd.DataFrame, versus: pd.DataFrame, metric: str = "auc") -> str:
    """SAMIA against every other attack on one victim, paired per seed.

    Args:
        rows: one victim's rows of a summarised attack table (for the strongest baseline).
        versus: the same victim's rows of ``summarise(difference(..., against="samia"))``
            (each attack minus SAMIA).
        metric: the metric compared.
    """
    others = versus[versus["attack"] != versus["baseline_attack"]]
    if others.empty:
        return ""
    parts = []
    baselines = rows[rows["attack"].isin(BASELINES)]
    if not baselines.empty:
        best = baselines.loc[baselines[metric].idxmax(), "attack"]
        match = others[others["attack"] == best]
        if not match.empty:
            row = negated(match.iloc[0], metric)
            parts.append(
                f"SAMIA minus {display_name(best)} (the strongest of the paper's baselines "
                f"here): {interval(row, metric)}, {verdict_text(row, metric)}."
            )
    split = split_by_verdict(others, metric)
    below, above, tied = split["lower"], split["higher"], split["not shown"]
    text = f"SAMIA is shown above {len(below)} of the {len(others)} other attacks"
    if len(above):
        text += f" and below {len(above)} ({names_with_intervals(above, 'attack', metric)})"
    if len(tied):
        names = ", ".join(display_name(a) for a in tied["attack"])
        text += f"; not told apart from {names}"
    parts.append(text + f" (each attack minus SAMIA, paired per seed, {display_name(metric)}).")
    if is_pruned(rows):
        mine = others[others["attack"].isin(BASELINES)]
        verdicts = split_by_verdict(mine, metric)
        if len(mine) and len(verdicts["lower"]) == len(mine):
            word = "holds here: SAMIA is shown above every baseline run"
        elif len(verdicts["higher"]):
            word = "is reversed here: a baseline is shown above SAMIA"
        else:
            word = "is not shown here: SAMIA is not shown above every baseline run"
        parts.append(f"Claim 2 (SAMIA beats the existing attacks on a pruned model) {word}.")
    return " ".join(parts)


def label_sentence(rows: pd.DataFrame, metric: str = "auc") -> str:
    """The best attack that never reads the true class (:data:`LABEL_FREE`) vs the best
    that does, on one victim (unpaired: their intervals overlap or not)."""
    free = rows[rows["attack"].isin(LABEL_FREE)]
    aware = rows[~rows["attack"].isin(LABEL_FREE)]
    if free.empty or aware.empty:
        return ""
    f, a = free.loc[free[metric].idxmax()], aware.loc[aware[metric].idxmax()]
    return (
        f"The best attack that reads the true class, {display_name(a['attack'])} "
        f"{interval(a, metric)}, and the best that never does, "
        f"{display_name(f['attack'])} {interval(f, metric)}, are {_overlap_text(a, f, metric)}."
    )


def low_fpr_sentence(rows: pd.DataFrame) -> str:
    """The highest TPR at 1% and at 0.1% FPR on one victim, with the counts behind the
    latter, and whether the attack with the highest AUC is also the best at 1% FPR."""
    one, tenth = "tpr@1%fpr", "tpr@0.1%fpr"
    b1, b01 = rows.loc[rows[one].idxmax()], rows.loc[rows[tenth].idxmax()]
    text = (
        f"Highest TPR at 1% FPR: {display_name(b1['attack'])} {interval(b1, one)}; "
        f"at 0.1% FPR: {display_name(b01['attack'])} {interval(b01, tenth)}"
    )
    if {"tp@0.1%fpr", "fp@0.1%fpr", "n_members"} <= set(rows.columns):
        text += (
            f" ({b01['tp@0.1%fpr']:.3g} members found for {b01['fp@0.1%fpr']:.3g} "
            f"non-members accused, of {b01['n_members']:.0f} members; means over seeds)"
        )
    text += "."
    top = rows.loc[rows["auc"].idxmax()]
    if top["attack"] != b1["attack"]:
        text += (
            f" The attack with the highest AUC, {display_name(top['attack'])}, has TPR "
            f"{interval(top, one)} at 1% FPR."
        )
    return text


def change_markdown(change: pd.DataFrame, metric: str = "auc") -> str:
    """One line per victim of ``summarise(difference(exp, victims, baseline, attacks))``:
    the attacks whose ``metric`` is shown higher or lower than on the baseline, and how
    many are not shown either way."""
    lines = []
    for _, name, rows in by_victim(change):
        base = victim_name(
            {
                "victim_pruner": rows["baseline_pruner"].iloc[0],
                "victim_sparsity": rows["baseline_sparsity"].iloc[0],
                "victim_defense": rows.get("baseline_defense", pd.Series(["none"])).iloc[0],
            }
        )
        lines.append(
            f"- {name} minus {base}, {display_name(metric)}, attack by attack (paired, "
            f"{seeds_text(rows)}): {_verdicts(rows, metric)}."
        )
    return "\n".join(lines)


def _verdicts(rows: pd.DataFrame, metric: str) -> str:
    """``"higher for A [..]; lower for B [..]; not shown either way for 3 of 5"``."""
    split = split_by_verdict(rows, metric)
    parts = [
        f"{word} for {names_with_intervals(split[word], 'attack', metric)}"
        for word in ("higher", "lower")
        if len(split[word])
    ]
    parts.append(f"not shown either way for {len(split['not shown'])} of {len(rows)}")
    return "; ".join(parts)


def control_markdown(
    finetuning: pd.DataFrame, pruning: pd.DataFrame, metrics: tuple[str, ...] = ("auc",)
) -> str:
    """Claim 1 at three levels: what fine-tuning alone changes (fine-tuned only minus
    original) and what pruning adds beyond it (pruned minus fine-tuned only), per attack.

    Args:
        finetuning: ``summarise(difference(exp, FINETUNED, ORIGINAL, attacks))``.
        pruning: ``summarise(difference(exp, pruned, FINETUNED, attacks))``.
        metrics: the metrics reported.
    """
    lines = []
    for metric in metrics:
        for title, frame in (
            ("Fine-tuning alone (fine-tuned only minus original)", finetuning),
            ("Pruning beyond fine-tuning (pruned minus fine-tuned only)", pruning),
        ):
            lines.append(
                f"- {title}, {display_name(metric)} ({seeds_text(frame)}): "
                f"{_verdicts(frame, metric)}."
            )
    return "\n".join(lines)


def findings_markdown(
    summary: pd.DataFrame, versus: pd.DataFrame, change: pd.DataFrame, metric: str = "auc"
) -> str:
    """Notebook 04's "what we measured": the ranking and SAMIA against the others per
    victim, the label's role, pruned minus original, and the low-FPR regime.

    Args:
        summary: ``summarise(attack_table(exp, victims, attacks=...))``.
        versus: ``summarise(difference(exp, victims, attacks=..., against="samia"))``.
        change: ``summarise(difference(exp, pruned, ORIGINAL, attacks))``.
        metric: the metric ranked (default AUC).
    """
    versus_of = {key: rows for key, _, rows in by_victim(versus)}
    rank, label, fpr = [], [], []
    for key, name, rows in by_victim(summary):
        vs = versus_of.get(key, versus.iloc[0:0])
        rank.append(
            f"- **{name}**: {ranking_sentence(rows, metric)} {samia_sentence(rows, vs, metric)}"
        )
        label.append(f"- **{name}**: {label_sentence(rows, metric)}")
        fpr.append(f"- **{name}**: {low_fpr_sentence(rows)}")
    return "\n\n".join(
        [
            f"Means with 95% intervals over {seeds_text(summary)}.",
            "**Which attack is strongest.**\n" + "\n".join(rank),
            "**Does the attack need the true class?**\n" + "\n".join(label),
            "**Pruned vs original.**\n" + change_markdown(change, metric),
            "**At low false-positive rates.**\n" + "\n".join(fpr),
        ]
    )


#: The ablation that sees exactly NNCls's information through NNCls's network.
_SAME_INFORMATION = "SAMIA with MLP w/o sensitivity"

#: What removing each ingredient of SAMIA means, by the ablation's label.
_ABLATION_MEANING = {
    "SAMIA w/o sensitivity": "removing the sensitivity feature",
    "SAMIA with MLP": "replacing attention with an MLP",
    "SAMIA with MLP w/o sensitivity": "removing both",
}


def ablation_markdown(summary: pd.DataFrame, differences: pd.DataFrame, metric: str = "auc") -> str:
    """Notebook 07's "what we measured": what each of SAMIA's ingredients adds, per victim.

    Args:
        summary: ``summarise(ablation.ablation_table(...))`` (``ablation``, ``victim_label``).
        differences: ``summarise(ablation.ablation_differences(...))`` (each ablation or
            baseline minus SAMIA, paired per seed).
        metric: the metric compared (default AUC).
    """
    lines = [f"Paired differences with 95% intervals over {seeds_text(differences)}."]
    below: dict[str, list[str]] = {}
    above: dict[str, list[str]] = {}
    summary_of = {key: rows for key, _, rows in by_victim(summary)}
    victims = by_victim(differences)
    for key, name, rows in victims:
        items = []
        for _, r in rows.iterrows():
            what = _ABLATION_MEANING.get(r["ablation"], f"{r['ablation']} instead of SAMIA")
            items.append(
                f"{what} ({r['ablation']} minus SAMIA): {interval(r, metric)}, "
                f"{verdict_text(r, metric)}"
            )
            below.setdefault(r["ablation"], [])
            above.setdefault(r["ablation"], [])
            word = shown(r, metric)
            if word != "not shown":
                (below if word == "lower" else above)[r["ablation"]].append(name)
        lines.append(f"- **{name}**: " + "; ".join(items) + ".")
        same = summary_of.get(key, summary.iloc[0:0]).set_index("ablation")
        if {_SAME_INFORMATION, "NNCls"} <= set(same.index):
            a, b = same.loc[_SAME_INFORMATION], same.loc["NNCls"]
            lines.append(
                f"- **{name}**, same information through the same network ("
                f"{_SAME_INFORMATION} {interval(a, metric)}, NNCls {interval(b, metric)}): "
                f"{_overlap_text(a, b, metric)}, a measure of how much attack training "
                "alone moves the numbers."
            )
    n = len(victims)
    found = [
        f"{_ABLATION_MEANING.get(label, label)} lowers {display_name(metric)} on "
        f"{len(names)} of {n} victims"
        + (f" ({', '.join(names)})" if names else "")
        + (f" and raises it on {len(above[label])}" if above[label] else "")
        for label, names in below.items()
        if label in _ABLATION_MEANING
    ]
    ahead = [
        f"{label} is shown below SAMIA on {len(names)} of {n}"
        + (f" and above it on {len(above[label])}" if above[label] else "")
        for label, names in below.items()
        if label not in _ABLATION_MEANING
    ]
    lines.append(
        "\n**Against the paper.** The paper credits SAMIA's advantage to the sensitivity "
        "feature and to attention over class tokens. Shown here (paired intervals "
        "excluding 0): " + "; ".join(found + ahead) + "."
    )
    return "\n".join(lines)
