"""SAMIA's ablations as a grid (PAPER.md, "SAMIA", claim 2; notebook 07).

What attention and the sensitivity feature add to SAMIA: :func:`ablation_table` runs
SAMIA with and without each (:data:`SAMIA_ABLATIONS`) beside the neural baselines
(:data:`ABLATION_BASELINES`), and :func:`ablation_differences` pairs each against the
full SAMIA, seed by seed. Tidy frames with the columns of :mod:`miakit.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import pandas as pd

from miakit import tables
from miakit.attacks import ATTACKS
from miakit.experiment import Experiment
from miakit.plots.style import display_name
from miakit.variants import Variant

__all__ = ["ABLATION_BASELINES", "SAMIA_ABLATIONS", "ablation_differences", "ablation_table"]

#: The neural baselines SAMIA's ablations are compared with (notebook 07; PAPER.md,
#: attacks 6-8 less Top3-NN).
ABLATION_BASELINES: tuple[str, ...] = ("nn", "nncls")

#: SAMIA and its ablations (PAPER.md, "SAMIA"), as (display label, options).
SAMIA_ABLATIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("SAMIA", {}),
    ("SAMIA w/o sensitivity", {"use_sensitivity": False}),
    ("SAMIA with MLP", {"mlp": True}),
    ("SAMIA with MLP w/o sensitivity", {"use_sensitivity": False, "mlp": True}),
)

#: SAMIA's options that the ablations set, and their defaults.
_SAMIA_SHOWN: tuple[str, ...] = ("use_sensitivity", "mlp")
_SAMIA_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(ATTACKS["samia"])}


def ablation_table(
    exp: Experiment, variants: Sequence[Variant], baselines: Sequence[str] = ()
) -> pd.DataFrame:
    """SAMIA with and without the sensitivity feature, attention vs MLP, per variant.

    PAPER.md, "SAMIA" (claim 2): what attention and the sensitivity feature add. Per
    variant, one row per :data:`SAMIA_ABLATIONS` entry, then each ``baselines`` attack's
    row per variant (e.g. :data:`ABLATION_BASELINES`) for comparison. The SAMIA options
    are real columns (``attack_use_sensitivity``, ``attack_mlp``; SAMIA's defaults where
    an ablation leaves one unset, NaN on the baselines' rows). ``ablation`` (the label
    of :data:`SAMIA_ABLATIONS`, or a baseline attack's title) and ``victim_label``
    (:attr:`Variant.label`) are display columns.
    """
    frames = []
    for variant in variants:
        for label, options in SAMIA_ABLATIONS:
            frame = tables.attack_table(exp, variant, attacks=["samia"], **options)
            shown = {f"attack_{k}": options.get(k, _SAMIA_DEFAULTS[k]) for k in _SAMIA_SHOWN}
            frames.append(frame.assign(**shown, ablation=label, victim_label=variant.label))
    if baselines:
        for variant in variants:
            frame = tables.attack_table(exp, variant, attacks=baselines)
            frames.append(
                frame.assign(ablation=frame["attack"].map(display_name), victim_label=variant.label)
            )
    out = tables.ordered(pd.concat(frames, ignore_index=True))
    return out[["ablation", *[c for c in out.columns if c != "ablation"]]]


def ablation_differences(
    exp: Experiment, variants: Sequence[Variant], baselines: Sequence[str] = ()
) -> pd.DataFrame:
    """Each SAMIA ablation and each baseline minus the full SAMIA, paired per seed.

    PAPER.md, "SAMIA" (claim 2): what removing the sensitivity feature, attention, or
    both costs, and how far the ``baselines`` attacks (e.g. :data:`ABLATION_BASELINES`)
    are from SAMIA, on the same victim's targets (:func:`miakit.tables.difference` with
    ``against="samia"``). One row per seed x variant x ablation (the
    :data:`SAMIA_ABLATIONS` after the first, then each baseline), ``ablation`` and
    ``victim_label`` as in :func:`ablation_table`, the ablation's options as
    ``attack_use_sensitivity`` / ``attack_mlp`` (NaN on the baselines' rows). Negative:
    the ablation or baseline scores below SAMIA. Give it to
    :func:`miakit.tables.summarise` for the intervals.
    """
    frames = []
    for label, options in SAMIA_ABLATIONS[1:]:
        frame = tables.difference(exp, variants, attacks=["samia"], against="samia", **options)
        shown = {f"attack_{k}": options.get(k, _SAMIA_DEFAULTS[k]) for k in _SAMIA_SHOWN}
        frames.append(frame.assign(**shown, ablation=label))
    if baselines:
        frame = tables.difference(exp, variants, attacks=baselines, against="samia")
        frames.append(frame.assign(ablation=frame["attack"].map(display_name)))
    out = pd.concat(frames, ignore_index=True)
    out = out.assign(victim_label=tables.labels(out))
    return out[["ablation", *[c for c in out.columns if c != "ablation"]]]
