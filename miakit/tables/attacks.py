"""Tables of attacks: one row per victim x attack, ROC curves, per-class results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from miakit.attacks.scores import AttackScores
from miakit.defenses import make_defense
from miakit.experiment import Experiment
from miakit.metrics import results_frame
from miakit.metrics.intervals import seed_interval
from miakit.tables.intervals import standard_errors
from miakit.tables.models import VariantsArg, _variants, model_columns
from miakit.variants import NO_PRUNER, ORIGINAL, Variant

__all__ = ["ROC_ATTACKS", "attack_table", "labels", "ordered", "per_class", "roc", "roc_bands"]

#: The attacks whose ROC curves the notebooks draw by default: the strongest threshold
#: attacks (Conf, Mentr), the label-aware NN attack (NNCls), SAMIA, and LiRA (beyond the
#: paper). Eleven curves on one log-log panel cannot be told apart.
ROC_ATTACKS: tuple[str, ...] = ("conf", "mentr", "nncls", "samia", "lira")


def attack_table(
    exp: Experiment,
    victims: VariantsArg = ORIGINAL,
    shadows: Variant | Sequence[Variant | None] | None = None,
    attacks: Sequence[str] | None = None,
    *,
    names: Sequence[str] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Attacks against one or several victim variants: one row per seed x victim x attack.

    Rows come seed by seed (the experiment's
    :meth:`~miakit.experiment.Experiment.replicates`), victim by victim, each over
    ``attacks`` in order; each metric's bootstrap standard error within its seed is
    beside it (``auc_se``, ...). :func:`~miakit.tables.summarise` gives the intervals.

    Args:
        exp: the experiment.
        victims: a variant or a list of them.
        shadows: the shadows' variant for every victim, or a list with one per victim
            (paired by position, e.g. a defended victim attacked once with undefended and
            once with defended shadows); ``None`` (or a ``None`` in the list): the
            victim's own (the paper's default, adaptive adversary).
        attacks: attack names (default: :meth:`~miakit.experiment.Experiment.attack_names`,
            every attack the experiment can run).
        names: one display name per victim (e.g. ``"PPB, adaptive"``), put in a ``model``
            column first; for legends and pivots only.
        **options: attack options (e.g. SAMIA's ``use_sensitivity=False``); attacks that
            do not take them are an error, so pass them with a matching ``attacks``.

    Raises:
        ValueError: ``shadows`` or ``names`` is a list of another length than ``victims``.
    """
    attack_names = list(attacks) if attacks is not None else exp.attack_names()
    vs = _variants(victims)
    pools = [shadows] * len(vs) if shadows is None or isinstance(shadows, Variant) else shadows
    if len(pools) != len(vs):
        raise ValueError(
            f"attack_table got {len(vs)} victims but {len(pools)} shadows; give one shadow "
            "variant for all victims, or a list with one per victim"
        )
    if names is not None and len(names) != len(vs):
        raise ValueError(f"attack_table got {len(vs)} victims but {len(names)} names")
    results, models, errors = [], [], []
    for rep in exp.replicates():
        for i, (victim, pool) in enumerate(zip(vs, pools, strict=True)):
            model = model_columns(rep, victim)
            for name in attack_names:
                scores = rep.attack_scores(name, victim, pool, **options)
                results.append(scores.result(model))
                errors.append(standard_errors(scores, seed=rep.config.seed))
                models.append(None if names is None else names[i])
    frame = ordered(results_frame(results))
    frame = pd.concat([frame, pd.DataFrame(errors, index=frame.index)], axis=1)
    if names is not None:
        frame.insert(0, "model", models)
    return frame


def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns in reading order: experiment, victim, shadows, ``adaptive``, attack, metrics."""

    def group(col: str) -> int:
        if col in ("dataset", "arch", "seed", "split_seed"):
            return 0
        if col.startswith("victim_"):
            return 1
        if col.startswith("shadow_"):
            return 2
        if col == "adaptive":
            return 3
        if col == "attack":
            return 4
        if col.startswith("attack_"):
            return 5
        return 6

    cols = sorted(frame.columns, key=lambda c: (group(c), list(frame.columns).index(c)))
    return frame[cols]


def labels(frame: pd.DataFrame, prefix: str = "victim") -> pd.Series:
    """Each row's variant label (:attr:`Variant.label`), rebuilt from its real columns.

    For display only (a legend, a pivot's column names): the variant is rebuilt from
    ``<prefix>_pruner``, ``<prefix>_sparsity``, ``<prefix>_defense`` and the
    ``<prefix>_defense_<option>`` columns, never parsed from a label.

    Raises:
        KeyError: ``frame`` lacks the ``<prefix>_pruner`` / ``_sparsity`` / ``_defense``
            columns (e.g. ``prefix="shadow"`` on a table without shadows).
    """
    need = [f"{prefix}_pruner", f"{prefix}_sparsity", f"{prefix}_defense"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise KeyError(
            f"labels needs the columns {missing}; give the table's prefix (victim, shadow)"
        )
    head = f"{prefix}_defense_"
    options = [c for c in frame.columns if c.startswith(head)]

    def label(row: pd.Series) -> str:
        pruner = row[f"{prefix}_pruner"]
        if pruner == NO_PRUNER:
            return ORIGINAL.label
        given = {c.removeprefix(head): row[c] for c in options if not pd.isna(row[c])}
        defense = make_defense(row[f"{prefix}_defense"], **given)
        return Variant(pruner, float(row[f"{prefix}_sparsity"]), defense).label

    return frame.apply(label, axis=1).rename(prefix)


def roc(
    exp: Experiment,
    attacks: Sequence[str],
    victim: Variant = ORIGINAL,
    shadows: Variant | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{attack: (fpr, tpr)}`` ROC curves against one victim, for :func:`plots.roc_loglog`."""
    return {name: exp.attack_scores(name, victim, shadows).roc() for name in attacks}


def per_class(
    exp: Experiment,
    attacks: Sequence[str],
    victims: VariantsArg,
    shadows: Variant | None = None,
) -> pd.DataFrame:
    """Each attack's metrics per ground-truth class, for each victim variant."""
    frames = []
    for rep in exp.replicates():
        for victim in _variants(victims):
            model = model_columns(rep, victim)
            for name in attacks:
                scores: AttackScores = rep.attack_scores(name, victim, shadows)
                frames.append(scores.per_class(model))
    return pd.concat(frames, ignore_index=True)


def roc_bands(
    exp: Experiment,
    attacks: Sequence[str],
    victim: Variant = ORIGINAL,
    shadows: Variant | None = None,
    points: int = 60,
) -> pd.DataFrame:
    """ROC curves over seeds on a log grid of FPRs: mean TPR with its interval.

    At each FPR ``f`` of the grid (``1 / n_nonmembers`` to 1, log-spaced) a seed's TPR
    is the largest whose realised FPR is at most ``f`` (:func:`miakit.metrics.tpr_at_fpr`'s
    rule, nothing interpolated); the band is the seeds' interval
    (:func:`miakit.metrics.intervals.seed_interval`, seed spread only; NaN with one seed).

    Returns:
        Columns ``attack``, ``fpr``, ``tpr``, ``tpr_low``, ``tpr_high``, ``seeds``.
    """
    rows = []
    for name in attacks:
        curves = [rep.attack_scores(name, victim, shadows) for rep in exp.replicates()]
        n_neg = int((curves[0].membership == 0).sum())
        grid = np.unique(np.r_[np.geomspace(1.0 / n_neg, 1.0, points), 1.0])
        tprs = []
        for scores in curves:
            fpr, tpr = scores.roc()
            # fpr is non-decreasing: the last point within each budget has the largest TPR.
            at = np.searchsorted(fpr, grid * (1 + 1e-12), side="right") - 1
            tprs.append(tpr[at])
        stacked = np.vstack(tprs)
        for j, f in enumerate(grid):
            iv = seed_interval(stacked[:, j])
            rows.append(
                {"attack": name, "fpr": f, "tpr": iv.mean, "tpr_low": iv.low, "tpr_high": iv.high}
                | {"seeds": len(curves)}
            )
    return pd.DataFrame(rows)
