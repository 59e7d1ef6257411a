"""What the paper reports, as constants the notebooks set beside their own measurements.

Every value here is a :class:`Reported`: the number (or list), what it measures, and the
PAPER.md section it comes from (one of :data:`SECTIONS`, the headings of PAPER.md). The
notebooks quote these instead of typing the paper's numbers into their cells, so a
number is written down once and can be traced to its section.

This module is a leaf: it imports nothing from the kit, so any layer may read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = [
    "CLASS_GAP_RANGE",
    "DIVERGENCE_MEANS",
    "PAPER_ATTACKS",
    "REPORTED",
    "SECTIONS",
    "Reported",
    "divergence_means",
]

#: The headings of PAPER.md (its title, under which the claims are listed, and every
#: ``##`` section), the only sections a :class:`Reported` value may cite.
SECTIONS: tuple[str, ...] = (
    "The paper this kit reproduces",
    "Data and splits",
    "Models and training",
    "Pruning",
    "The eight existing attacks",
    "SAMIA",
    "Prediction divergence (the analysis)",
    "The defense (pair-based posterior balancing, PPB)",
    "Reporting",
)


@dataclass(frozen=True)
class Reported:
    """A value the paper reports, with where it comes from.

    Attributes:
        value: the reported number, or a tuple of them (a range, a list of names).
        what: what it measures, in a few words.
        section: the PAPER.md section it is reported in (one of :data:`SECTIONS`).

    Raises:
        ValueError: ``section`` is not a heading of PAPER.md.
    """

    value: Any
    what: str
    section: str

    def __post_init__(self) -> None:
        if self.section not in SECTIONS:
            raise ValueError(
                f"unknown PAPER.md section {self.section!r} for {self.what!r}; "
                f"use one of: {', '.join(SECTIONS)}"
            )


_DIVERGENCE = "Prediction divergence (the analysis)"
_SETTING = "CIFAR-10 DenseNet121, L1 unstructured at 0.7"

#: Mean ground-truth-class confidence of members and non-members, before and after
#: pruning (PAPER.md, "Prediction divergence (the analysis)"), keyed by
#: ``(model, group)`` with model ``"original"`` or ``"pruned"`` and group ``"member"`` or
#: ``"non-member"``.
DIVERGENCE_MEANS: dict[tuple[str, str], Reported] = {
    ("original", "member"): Reported(
        0.81, f"member confidence, original ({_SETTING})", _DIVERGENCE
    ),
    ("original", "non-member"): Reported(
        0.67, f"non-member confidence, original ({_SETTING})", _DIVERGENCE
    ),
    ("pruned", "member"): Reported(0.96, f"member confidence, pruned ({_SETTING})", _DIVERGENCE),
    ("pruned", "non-member"): Reported(
        0.73, f"non-member confidence, pruned ({_SETTING})", _DIVERGENCE
    ),
}

#: The range (min, max) of the per-class member - non-member confidence gap, before and
#: after pruning (PAPER.md, "Prediction divergence (the analysis)").
CLASS_GAP_RANGE: dict[str, Reported] = {
    "original": Reported(
        (0.08, 0.18), f"per-class confidence gap, original ({_SETTING})", _DIVERGENCE
    ),
    "pruned": Reported((0.09, 0.37), f"per-class confidence gap, pruned ({_SETTING})", _DIVERGENCE),
}

#: The attacks the paper evaluates: its eight existing attacks, then SAMIA (PAPER.md,
#: "The eight existing attacks"; LiRA and RMIA are beyond the paper).
PAPER_ATTACKS = Reported(
    ("gap", "conf", "xent", "mentr", "top1_conf", "nn", "top3_nn", "nncls", "samia"),
    "the attacks the paper evaluates (its eight existing attacks and SAMIA)",
    "The eight existing attacks",
)

#: The pruning setting of the paper's divergence numbers, as result-table columns.
_DIVERGENCE_PRUNED = {"victim_pruner": "l1_unstructured", "victim_sparsity": 0.7}

#: Every reported value of this module, by name (for listing and tests).
REPORTED: dict[str, Reported] = {
    **{f"DIVERGENCE_MEANS[{m}, {g}]": r for (m, g), r in DIVERGENCE_MEANS.items()},
    **{f"CLASS_GAP_RANGE[{m}]": r for m, r in CLASS_GAP_RANGE.items()},
    "PAPER_ATTACKS": PAPER_ATTACKS,
}


def divergence_means() -> pd.DataFrame:
    """The paper's member / non-member confidence means as rows to merge on a results frame.

    PAPER.md, "Prediction divergence (the analysis)". One row per model, keyed by the
    real columns of :func:`miakit.tables.divergence_means` (``victim_pruner``,
    ``victim_sparsity``, ``signal``): the original (``victim_pruner == "none"``) and the
    paper's pruned model (L1 unstructured at 0.7), with ``paper_member_mean`` and
    ``paper_nonmember_mean``. Merge with ``how="left"``: rows of other settings get NaN.
    """
    models = {"original": {"victim_pruner": "none", "victim_sparsity": 0.0}}
    models["pruned"] = _DIVERGENCE_PRUNED
    return pd.DataFrame(
        [
            {
                **cols,
                "signal": "confidence",
                "paper_member_mean": DIVERGENCE_MEANS[model, "member"].value,
                "paper_nonmember_mean": DIVERGENCE_MEANS[model, "non-member"].value,
            }
            for model, cols in models.items()
        ]
    )
