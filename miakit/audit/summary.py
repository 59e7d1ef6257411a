"""The audit in plain words: how exposed, compared with what, and what to try (issue 15).

:func:`plain_summary` turns an :class:`~miakit.audit.run.AuditResult` into a few
paragraphs a non-specialist can act on, every number rendered from the result. A change
is called a change only when its paired 95% interval excludes 0 (the kit's rule,
``README.md``); otherwise the text says it was not measurable.

The exposure words follow the strongest attack's AUC (0.5 is guessing): *not
distinguishable from guessing* when its interval reaches 0.5, then *slightly exposed*
below :data:`LEVELS`' first bound, *moderately*, *clearly* and *highly exposed*. They
are the kit's wording, not a standard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from miakit.plots.names import display_name

if TYPE_CHECKING:
    from miakit.audit.run import AuditResult

__all__ = ["LEVELS", "Summary", "exposure", "plain_summary"]

#: Upper AUC bounds of the exposure words, in order.
LEVELS: tuple[tuple[float, str], ...] = (
    (0.55, "slightly exposed"),
    (0.65, "moderately exposed"),
    (0.80, "clearly exposed"),
    (float("inf"), "highly exposed"),
)


@dataclass(frozen=True)
class Summary:
    """The summary's parts: a one-line ``verdict``, then paragraphs and advice."""

    verdict: str
    exposure: list[str]
    comparison: list[str]
    advice: list[str]
    caveat: str


def exposure(auc: float, auc_low: float) -> str:
    """The exposure words for an AUC and its interval's lower end."""
    if auc_low <= 0.5:
        return "not distinguishable from guessing"
    return next(word for bound, word in LEVELS if auc < bound)


def _interval(row: pd.Series | dict, metric: str, percent: bool = False) -> str:
    scale, unit = (100, "%") if percent else (1, "")
    fmt = "{:.1f}" if percent else "{:.3f}"
    lo, hi = (fmt.format(scale * row[f"{metric}_{end}"]) for end in ("low", "high"))
    return f"{fmt.format(scale * row[metric])}{unit} (95% interval {lo}{unit} to {hi}{unit})"


def _difference(result: AuditResult, of: str, versus: str, metric: str = "auc") -> pd.Series:
    d = result.differences
    rows = d[(d["of"] == of) & (d["versus"] == versus) & (d["metric"] == metric)]
    return rows.iloc[0]


def _signed(row: pd.Series) -> str:
    return f"{row['difference']:+.3f} (95% interval {row['low']:+.3f} to {row['high']:+.3f})"


def _shown(row: pd.Series) -> int:
    """+1 / -1 when the interval excludes 0 above / below, else 0."""
    return 1 if row["low"] > 0 else -1 if row["high"] < 0 else 0


def plain_summary(result: AuditResult) -> Summary:
    """The plain-language summary of an audit (see the module docstring)."""
    best = result.strongest("pruned")
    name = display_name(best["attack"])
    level = exposure(best["auc"], best["auc_low"])
    attacks = int((result.attacks["model"] == "pruned").sum())
    ratio = best["tpr@1%fpr"] / max(best["realised_fpr@1%fpr"], 1e-12)
    shown_above = best["tpr@1%fpr_low"] > best["realised_fpr@1%fpr"]  # beats guessing
    verdict = f"This model is {level}: its training samples can be told apart from unseen ones."
    if level == "not distinguishable from guessing":
        verdict = "No attack tells this model's training samples apart from unseen ones."
    found = (
        f"Tuned to wrongly accuse only {100 * best['realised_fpr@1%fpr']:.1f}% of the samples it "
        f"never saw, it still identifies {_interval(best, 'tpr@1%fpr', percent=True)} of "
        f"its training samples"
        + (f", {ratio:.1f} times what guessing would find." if shown_above else ".")
    )
    paragraphs = [
        f"The strongest of {attacks} membership-inference attacks, {name}, separates the "
        f"model's training samples from samples it never saw with an AUC of "
        f"{_interval(best, 'auc')}; 0.5 is guessing, 1.0 never wrong.",
        found,
    ]
    comparison, raised = [], 0
    acc = result.accuracy
    gap = 100 * (acc["members"] - acc["nonmembers"])
    comparison.append(
        f"The model is right on {100 * acc['members']:.1f}% of its training samples and on "
        f"{100 * acc['nonmembers']:.1f}% of held-out ones: a gap of {gap:.1f} points, the "
        "difference most attacks feed on."
    )
    if result.differences is not None:
        change = _difference(result, f"pruned/{best['attack']}", f"dense/{best['attack']}")
        raised = _shown(change)
        what = {
            1: "raised the leak",
            -1: "lowered the leak",
            0: "did not measurably change the leak",
        }[raised]
        comparison.append(
            f"Against the dense original, pruning {what}: under {name}, the pruned model's "
            f"AUC minus the dense model's is {_signed(change)}."
        )
        pair = _difference(result, "pair/dense+pruned", f"pruned/{best['attack']}")
        better = {
            1: "beats",
            -1: "does worse than",
            0: "does not measurably differ from",
        }[_shown(pair)]
        comparison.append(
            f"An attacker holding both models and comparing them (the dense-plus-pruned "
            f"attack) {better} {name} on the pruned model alone: AUC difference "
            f"{_signed(pair)}."
        )
        more = result.class_change
        up = more[more["low"] > 0]["class"].tolist() if more is not None else []
        comparison.append(
            f"Classes measurably more exposed after pruning: {', '.join(map(str, up))}."
            if up
            else "No class became measurably more exposed after pruning."
        )
    else:
        comparison.append(
            "To see what pruning itself changed, audit again with the dense original "
            "(--dense-checkpoint)."
        )
    advice = _advice(result, level, raised)
    caveat = (
        "The attacks here are fitted on shadow models the kit trains to mimic yours, and "
        "the intervals cover the sampling of the audited samples, not retraining: a "
        "stronger attacker may do better, so read these numbers as a lower bound."
    )
    return Summary(verdict, paragraphs, comparison, advice, caveat)


def _advice(result: AuditResult, level: str, raised: int) -> list[str]:
    if level in ("not distinguishable from guessing", "slightly exposed"):
        return [
            "At this level no defense is needed against these attacks; audit again after "
            "retraining or pruning further."
        ]
    ppb = (
        "Fine-tune the pruned model with PPB, the paper's defense: a KL-divergence term "
        "that keeps the model's predictions on members close to those on non-members "
        "while it recovers accuracy (miakit.defenses; notebook 08 measures its cost in "
        "accuracy)."
    )
    dpsgd = (
        "Train and fine-tune with DP-SGD (miakit.defenses, via Opacus) for a formal bound "
        "on what any attack can learn, at a cost in accuracy."
    )
    less = (
        f"Prune less, or fine-tune for fewer epochs after pruning: this model is at "
        f"sparsity {result.sparsity.sparsity:.2f}, and on the kit's own quick-profile "
        "measurements the extra leak of pruned models comes from fine-tuning on the "
        "members again, not from the zeros; `miakit sweep` measures the leak against "
        "sparsity for your architecture."
    )
    if raised == 1:
        return ["Pruning made it worse, so start with the fine-tuning after pruning. " + ppb,
                less, dpsgd]  # fmt: skip
    if result.differences is not None:
        gap = 100 * (result.accuracy["members"] - result.accuracy["nonmembers"])
        return [
            "The leak is already in the dense original and pruning did not measurably add "
            "to it, so defend the training itself. " + dpsgd,
            f"Close the {gap:.1f}-point gap between training and held-out accuracy: "
            "stronger regularisation, data augmentation or earlier stopping.",
            ppb,
        ]
    return [ppb, dpsgd, less]
