"""Paired contrasts of the notebooks' comparisons, one row per seed (issue 13).

Each function pairs two settings of one experiment seed by seed on the same targets
(:func:`miakit.tables.difference`), so its intervals (:func:`miakit.tables.summarise`)
are those of the difference itself:

* :func:`pruning_differences`: pruned vs original vs fine-tuned only (claim 1 at three
  levels; PAPER.md, the claims at its top, and "Pruning");
* :func:`defense_differences`: defended vs undefended, adaptive vs non-adaptive
  (PAPER.md, "The defense (pair-based posterior balancing, PPB)");
* :func:`per_class_change`: the per-class AUC change of a pruned model (claim 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from miakit import tables
from miakit.defenses import DefenseParams, NoDefense
from miakit.experiment import Experiment
from miakit.sweep import as_defense, setting_names
from miakit.variants import FINETUNED, ORIGINAL, Variant

__all__ = [
    "DEFENSE_CONTRASTS",
    "defense_differences",
    "per_class_change",
    "pruning_differences",
]

#: The contrasts of :func:`defense_differences` (its ``contrast`` column), in order.
DEFENSE_CONTRASTS: tuple[str, ...] = (
    "non-adaptive - undefended",
    "adaptive - undefended",
    "adaptive - non-adaptive",
)


def _stage(variant: Variant) -> int:
    """0 for the original, 1 for the fine-tune-only control, 2 for a pruned variant."""
    return 0 if variant.is_original else 2 if variant.prunes else 1


def pruning_differences(
    exp: Experiment,
    victims: Sequence[Variant],
    attacks: Sequence[str],
    baselines: Sequence[Variant] = (ORIGINAL, FINETUNED),
) -> pd.DataFrame:
    """Paired per-seed differences of each victim against each baseline before it.

    Claim 1 at three levels: against the original, the fine-tune-only control and
    every pruned variant; against the control (:data:`~miakit.variants.FINETUNED`), the
    pruned variants only, so "pruned and fine-tuned" is told from "fine-tuned". Each
    model keeps its own matched shadows, as in :func:`miakit.sweep.pruning_grid`.

    Returns:
        The rows of :func:`miakit.tables.difference`, baseline by baseline
        (``baseline_pruner`` tells them apart: ``"none"``, ``"finetuned"``).

    Raises:
        ValueError: no victim comes after any baseline (e.g. only the original).
    """
    frames = []
    for base in baselines:
        later = [v for v in victims if _stage(v) > _stage(base)]
        if later:
            frames.append(tables.difference(exp, later, base, attacks))
    if not frames:
        raise ValueError(
            "pruning_differences: no victim to compare; give the fine-tune-only control "
            "(FINETUNED) or pruned variants besides the baselines"
        )
    return pd.concat(frames, ignore_index=True)


def per_class_change(
    exp: Experiment, attacks: Sequence[str], victim: Variant, baseline: Variant = ORIGINAL
) -> pd.DataFrame:
    """Each attack's per-class AUC change, ``victim - baseline``, paired by seed and class.

    PAPER.md, claim 1: pruning changes the risk differently for different classes
    (:func:`miakit.tables.per_class`, each model with its matched shadows).

    Returns:
        One row per seed x attack x class: ``attack``, ``baseline_attack`` (the same:
        the row is a difference), ``class``, both sides' ``_pruner`` / ``_sparsity``,
        ``seed`` and ``auc`` (the change). The interval :func:`miakit.tables.summarise`
        gives is the seeds' spread (no bootstrap error within a class; NaN with one seed).

    Raises:
        ValueError: ``victim`` and ``baseline`` are the same variant.
    """
    if victim == baseline:
        raise ValueError("per_class_change: compare two different variants (e.g. pruned, ORIGINAL)")
    frame = tables.per_class(exp, attacks, [baseline, victim])
    keys = ["seed", "attack", "class"]
    sides = [frame[_rows_of(frame, v)][[*keys, "auc"]] for v in (victim, baseline)]
    joined = sides[0].merge(sides[1], on=keys, suffixes=("_victim", "_baseline"))
    return pd.DataFrame(
        {
            "attack": joined["attack"],
            "baseline_attack": joined["attack"],
            "class": joined["class"],
            **{k: v for k, v in victim.columns("victim").items() if "defense" not in k},
            **{k: v for k, v in baseline.columns("baseline").items() if "defense" not in k},
            "seed": joined["seed"],
            "auc": joined["auc_victim"] - joined["auc_baseline"],
        }
    )


def _rows_of(frame: pd.DataFrame, variant: Variant) -> pd.Series:
    """The rows of a per-class table that belong to ``variant`` (its victim columns)."""
    mask = pd.Series(True, index=frame.index)
    for k, v in variant.columns("victim").items():
        if k in frame:
            mask &= frame[k] == v
    return mask


def defense_differences(
    exp: Experiment,
    settings: Iterable[DefenseParams | tuple[str, Mapping[str, Any]]],
    attacks: Sequence[str],
) -> pd.DataFrame:
    """Paired per-seed differences of each defended pruned model (PAPER.md, "The defense").

    For each setting of :func:`miakit.sweep.defense_grid` but ``NoDefense()``, three
    contrasts (the ``contrast`` column, :data:`DEFENSE_CONTRASTS`): the defended victim
    attacked non-adaptively (shadows without the defense) minus the undefended pruned
    victim; attacked adaptively (shadows with the same defense) minus the undefended;
    and adaptive minus non-adaptive on the defended victim (what knowing the defense is
    worth to the adversary).

    Returns:
        The rows of :func:`miakit.tables.difference` with ``contrast``, and ``parameter``
        and ``setting`` as in :func:`miakit.sweep.defense_grid`.

    Raises:
        ValueError: no setting but ``NoDefense()``.
    """
    pruned = exp.variant()
    frames = []
    for setting in settings:
        defense = as_defense(setting)
        if isinstance(defense, NoDefense):
            continue
        victim = exp.variant(defense=defense)
        sides = (  # (the victim's shadows, the baseline, the baseline's shadows)
            (pruned, pruned, pruned),
            (None, pruned, pruned),
            (None, victim, pruned),
        )
        for contrast, (shadows, base, base_shadows) in zip(DEFENSE_CONTRASTS, sides, strict=True):
            frame = tables.difference(
                exp, victim, base, attacks, shadows=shadows, baseline_shadows=base_shadows
            )
            frames.append(frame.assign(contrast=contrast, **setting_names(defense)))
    if not frames:
        raise ValueError("defense_differences: give at least one defense besides NoDefense()")
    return pd.concat(frames, ignore_index=True)
