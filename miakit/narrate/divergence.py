"""Rendered paragraphs on prediction divergence and what drives it (notebook 03).

PAPER.md, claim 1 and "Prediction divergence (the analysis)": after pruning and
fine-tuning, members and non-members drift apart in the model's predictions, and the
drift differs from class to class. Issue 13 adds the fine-tune-only control
(:data:`~miakit.variants.FINETUNED`) so each comparison has three levels (original,
fine-tuned only, pruned) and a curve of attack success against fine-tune epochs
(:func:`miakit.finetune_curve.finetune_curve`). Every function here builds Markdown
from the run's summarised tables (:func:`miakit.tables.summarise`), quoting the paper's
numbers from :mod:`miakit.reported`; two levels are called apart only when their 95%
intervals do not overlap, a paired difference *shown* only when its interval excludes 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from miakit import reported
from miakit.narrate.core import difference_sentence, interval, shown
from miakit.narrate.models import compare
from miakit.plots.style import display_name

__all__ = [
    "class_gap_paragraph",
    "curve_paragraph",
    "level_name",
    "levels_paragraph",
    "means_paragraph",
    "sensitivity_paragraph",
]

Row = Mapping[str, Any] | pd.Series

#: The three levels' ``victim_pruner`` values that are not a pruning method.
_ORIGINAL, _FINETUNED = "none", "finetuned"

_GAP_WORDS = {"higher": "wider than", "lower": "narrower than", "not told apart": ""}


def level_name(row: Row, prefix: str = "victim") -> str:
    """A level's words from its real columns: ``original``, ``fine-tuned only``,
    ``L1 unstructured at 0.7`` (``prefix`` ``"baseline"`` for a difference's other side)."""
    pruner = row[f"{prefix}_pruner"]
    if pruner in (_ORIGINAL, _FINETUNED):
        return display_name(pruner, "victim_pruner")
    return f"{display_name(pruner)} at {float(row[f'{prefix}_sparsity']):g}"


def _levels(frame: pd.DataFrame) -> tuple[pd.Series | None, pd.Series | None, pd.DataFrame]:
    original = frame[frame["victim_pruner"] == _ORIGINAL]
    tuned = frame[frame["victim_pruner"] == _FINETUNED]
    pruned = frame[~frame["victim_pruner"].isin([_ORIGINAL, _FINETUNED])]
    return (
        original.iloc[0] if len(original) else None,
        tuned.iloc[0] if len(tuned) else None,
        pruned,
    )


def _seeds(frame: pd.DataFrame) -> str:
    n = int(frame["seeds"].min()) if "seeds" in frame and len(frame) else 1
    return f"{n} seed{'s' if n != 1 else ''}"


def _gap_versus(row: Row, base: Row, name: str) -> str:
    word = compare(row, base, "gap")
    if word == "not told apart":
        return f"not told apart from the {name}'s (the intervals overlap)"
    return f"{_GAP_WORDS[word]} the {name}'s (the intervals do not overlap)"


def means_paragraph(means: pd.DataFrame, signal: str = "confidence") -> str:
    """Member and non-member means of a signal at each level, and how the gaps compare.

    Args:
        means: ``tables.summarise(tables.divergence_means(exp, levels, ...))``: one row
            per level x signal with ``victim_pruner``, ``victim_sparsity``, ``signal``,
            ``member_mean``, ``nonmember_mean``, ``gap`` (each with ``_low``/``_high``)
            and ``seeds``; the original's row is required.
        signal: the signal described.

    Returns:
        Markdown: one bullet per level; then the gap of the fine-tune-only control and
        of each pruned level against the original's, and each pruned level against the
        control (wider or narrower only when the intervals do not overlap); for the
        confidence, the paper's means (:data:`miakit.reported.DIVERGENCE_MEANS`).
    """
    rows = means[means["signal"] == signal]
    original, tuned, pruned = _levels(rows)
    if original is None:
        raise ValueError(f"means_paragraph needs the original model's {signal} row")
    lines = [f"**Mean {display_name(signal)}**, over {_seeds(rows)} (mean [95% interval]):", ""]
    for _, r in rows.iterrows():
        lines.append(
            f"- {level_name(r)}: members {interval(r, 'member_mean')}, non-members "
            f"{interval(r, 'nonmember_mean')}, gap {interval(r, 'gap')}."
        )
    lines.append("")
    said = []
    if tuned is not None:
        said.append(f"Fine-tuning alone leaves a gap {_gap_versus(tuned, original, 'original')}.")
    for _, r in pruned.iterrows():
        text = f"{level_name(r)}: gap {_gap_versus(r, original, 'original')}"
        if tuned is not None:
            text += f", and {_gap_versus(r, tuned, 'fine-tune-only model')}"
        said.append(text + ".")
    lines.append(" ".join(said))
    if signal == "confidence":
        paper = reported.DIVERGENCE_MEANS
        lines += [
            "",
            f"The paper (CIFAR-10 DenseNet121, L1 unstructured at 0.7): members "
            f"{paper['original', 'member'].value} vs non-members "
            f"{paper['original', 'non-member'].value} before pruning, "
            f"{paper['pruned', 'member'].value} vs {paper['pruned', 'non-member'].value} "
            "after: the gap widens, with members pushed towards certainty.",
        ]
    return "\n".join(lines)


def _range(values: pd.Series) -> str:
    return f"{float(values.min()):+.3f} to {float(values.max()):+.3f}"


def class_gap_paragraph(gaps: pd.DataFrame, signal: str = "confidence") -> str:
    """The per-class member - non-member gaps: their range per level, and where they grow.

    Args:
        gaps: :func:`miakit.tables.class_gaps` with ``names`` ``"original"``,
            ``"fine-tuned only"`` (optional) and ``"pruned"``: ``class`` and one column
            of gaps per level (one seed's models).
        signal: the signal of the gaps; for the confidence the paper's ranges are quoted
            (:data:`miakit.reported.CLASS_GAP_RANGE`).

    Returns:
        Markdown: each level's range over classes, the number of classes whose gap is
        larger after pruning than in the original (and than fine-tuned only), and the
        paper's ranges. One seed's models: a description, without intervals.
    """
    for col in ("class", "original", "pruned"):
        if col not in gaps:
            raise KeyError(f"class_gap_paragraph needs a {col!r} column (tables.class_gaps)")
    levels = [c for c in ("original", "fine-tuned only", "pruned") if c in gaps]
    n = len(gaps)
    parts = [f"{c} {_range(gaps[c])}" for c in levels]
    text = (
        f"**Per-class {display_name(signal)} gaps** (member - non-member mean per "
        f"ground-truth class, the first seed's models): " + "; ".join(parts) + ". "
    )
    wider = int((gaps["pruned"] > gaps["original"]).sum())
    text += f"After pruning the gap is larger than the original's in {wider} of {n} classes"
    if "fine-tuned only" in gaps:
        than_tuned = int((gaps["pruned"] > gaps["fine-tuned only"]).sum())
        text += f" and larger than fine-tuned only's in {than_tuned} of {n}"
    text += "."
    if signal == "confidence":
        paper = reported.CLASS_GAP_RANGE
        (a, b), (c, d) = paper["original"].value, paper["pruned"].value
        text += (
            f" The paper's per-class confidence gaps range over {a}-{b} before pruning and "
            f"{c}-{d} after."
        )
    return text


def sensitivity_paragraph(means: pd.DataFrame, gaps: pd.DataFrame) -> str:
    """The sensitivity signal: overall gaps per level and their per-class spread.

    Args:
        means: as for :func:`means_paragraph` (its ``"sensitivity"`` rows are used).
        gaps: :func:`miakit.tables.class_gaps` of the sensitivity (``original``,
            ``pruned``, optionally ``fine-tuned only``).

    Returns:
        Markdown: each level's overall gap with its interval (*shown* only when it
        excludes 0), the per-class range and how many classes have a positive gap, and
        where SAMIA's use of the signal is measured (its ablation, notebook 07).
    """
    rows = means[means["signal"] == "sensitivity"]
    if rows.empty:
        raise ValueError("sensitivity_paragraph needs the 'sensitivity' rows of the means")
    parts = []
    for _, r in rows.iterrows():
        word = shown(r, "gap")
        verdict = "0 is inside its interval" if word == "not shown" else f"{word} for members"
        parts.append(f"{level_name(r)} {interval(r, 'gap')} ({verdict})")
    text = "**Sensitivity** s_y, member - non-member gap overall: " + "; ".join(parts) + ". "
    levels = [c for c in ("original", "fine-tuned only", "pruned") if c in gaps]
    spread = "; ".join(
        f"{c} {_range(gaps[c])}, positive in {int((gaps[c] > 0).sum())} of {len(gaps)}"
        for c in levels
    )
    text += f"Per class (the first seed's models): {spread}. "
    text += (
        "Whether SAMIA gains anything from reading sensitivity beside the posterior is "
        "measured by its ablation (notebook 07), not here."
    )
    return text


def levels_paragraph(
    versus_original: pd.DataFrame, versus_finetuned: pd.DataFrame, metric: str = "auc"
) -> str:
    """Claim 1 at three levels under the paper's fine-tuning rule, as paired differences.

    Args:
        versus_original: ``summarise(difference(exp, [FINETUNED, pruned], ORIGINAL, ...))``.
        versus_finetuned: ``summarise(difference(exp, pruned, FINETUNED, ...))``: what
            pruning adds to the fine-tuning alone.

    Returns:
        Markdown: one sentence per difference and attack (:func:`difference_sentence`),
        then per attack a verdict on claim 1 (pruned - original *shown* higher) and on
        pruning's own part (pruned - fine-tuned only), by ``metric``.
    """
    lines = []
    for frame in (versus_original, versus_finetuned):
        for _, r in frame.iterrows():
            subject = f"{level_name(r)} - {level_name(r, 'baseline')}"
            lines.append(f"- {difference_sentence(r, subject, metric)}")
    verdicts = []
    pruned_rows = versus_original[~versus_original["victim_pruner"].isin([_ORIGINAL, _FINETUNED])]
    for _, r in pruned_rows.iterrows():
        own = versus_finetuned[
            (versus_finetuned["attack"] == r["attack"])
            & (versus_finetuned["victim_pruner"] == r["victim_pruner"])
        ]
        claim = {
            "higher": "more than the original (shown)",
            "lower": "less than the original (shown)",
            "not shown": "neither more nor less than the original, as far as shown",
        }[shown(r, metric)]
        text = f"{display_name(r['attack'])}: the pruned and fine-tuned model leaks {claim}"
        if len(own):
            part = shown(own.iloc[0], metric)
            text += "; pruning's own part (against the same fine-tuning without pruning) is " + (
                f"{part} (shown)" if part != "not shown" else "not shown"
            )
        verdicts.append(text + ".")
    out = "**Three levels, the paper's fine-tuning rule** (paired per seed):\n\n"
    out += "\n".join(lines)
    if verdicts:
        out += "\n\n" + " ".join(verdicts)
    return out


def curve_paragraph(curve: pd.DataFrame, metric: str = "auc") -> str:
    """Attack success against fine-tune epochs: a Markdown table per attack, then the reading.

    Args:
        curve: ``tables.summarise(finetune_curve(..., paper_rule=True))``: rows of the
            original (``finetune_epochs`` 0), of the control and the pruned variant at
            each length with ``finetune_restore_best`` False (the last weights kept),
            and the paper-rule point (``True``: best-dev epoch kept).
        metric: the metric described (with ``_low``/``_high``).

    Returns:
        Markdown: per attack, one table row per length and rule (fine-tuned only,
        pruned, and whether the pruned model is above or below the control: apart only
        when the intervals do not overlap), then the longest fine-tune against the
        original.
    """
    blocks = []
    for attack, part in curve.groupby("attack", sort=False):
        original = part[part["victim_pruner"] == _ORIGINAL]
        tuned = part[part["victim_pruner"] != _ORIGINAL]
        head = f"**{display_name(attack)} {display_name(metric)} against fine-tune epochs**"
        if len(original):
            head += f" (original: {interval(original.iloc[0], metric)})"
        rows = [
            "| fine-tune epochs | weights kept | fine-tuned only | pruned "
            "| pruned vs fine-tuned only |",
            "|---|---|---|---|---|",
        ]
        last_rows = []
        for (epochs, best), point in tuned.groupby(
            ["finetune_epochs", "finetune_restore_best"], sort=False
        ):
            control = point[point["victim_pruner"] == _FINETUNED]
            pruned = point[point["victim_pruner"] != _FINETUNED]
            if control.empty or pruned.empty:
                continue
            c, p = control.iloc[0], pruned.iloc[0]
            kept = "best dev epoch (the paper's rule)" if best else "last epoch"
            word = compare(p, c, metric)
            versus = "not told apart" if word == "not told apart" else word
            rows.append(
                f"| {int(epochs)} | {kept} | {interval(c, metric)} | {interval(p, metric)} "
                f"| {versus} |"
            )
            if not best:
                last_rows.append((int(epochs), c, p))
        text = head + "\n\n" + "\n".join(rows)
        if last_rows and len(original):
            epochs, c, p = max(last_rows, key=lambda t: t[0])
            base = original.iloc[0]
            text += (
                f"\n\nAfter the longest fine-tune ({epochs} epochs, last weights kept) the "
                f"fine-tune-only model is {_versus_original(c, base, metric)} and the "
                f"pruned one {_versus_original(p, base, metric)}. {_count(last_rows, metric)}"
            )
        blocks.append(text)
    return "\n\n".join(blocks)


def _versus_original(row: Row, base: Row, metric: str) -> str:
    word = compare(row, base, metric)
    if word == "not told apart":
        return "not told apart from the original"
    return f"{'above' if word == 'higher' else 'below'} the original"


def _count(points: list[tuple[int, Row, Row]], metric: str) -> str:
    words = [compare(p, c, metric) for _, c, p in points]
    n = len(words)
    return (
        f"Over the {n} fine-tune length{'s' if n != 1 else ''} with the last weights kept, "
        f"the pruned model is below the fine-tune-only model at {words.count('lower')}, "
        f"above it at {words.count('higher')} (intervals apart) and not told apart at "
        f"{words.count('not told apart')}."
    )
