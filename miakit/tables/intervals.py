"""Intervals over seeds: :func:`summarise` a per-seed table, :func:`difference` two settings.

Every attack table holds one row per seed of the pipeline (the experiment's
:meth:`~miakit.experiment.Experiment.replicates`) with each metric's bootstrap standard
error beside it (``auc_se``, ...). :func:`summarise` collapses the seeds into one row per
setting with the mean and its interval (``auc``, ``auc_low``, ``auc_high``, ``auc_se``,
``seeds``), by the rule of :func:`miakit.metrics.intervals.seed_interval`.
:func:`difference` pairs two settings seed by seed and resample by resample (pruned minus
original, defended minus undefended, attack A minus attack B), so its intervals are those
of the difference itself, far tighter than two overlapping intervals suggest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from miakit.experiment import Experiment
from miakit.metrics import RESULT_COLUMNS
from miakit.metrics.intervals import INTERVAL_METRICS, seed_interval
from miakit.tables.models import VariantsArg, _variants
from miakit.variants import ORIGINAL, Variant

__all__ = [
    "INTERVAL_COLUMNS",
    "SE",
    "difference",
    "interval_columns",
    "measured_columns",
    "standard_errors",
    "summarise",
]

#: The suffix of a per-seed bootstrap standard error column (``auc_se``).
SE = "_se"

#: Every interval metric's columns in a summarised table, in order.
INTERVAL_COLUMNS: tuple[str, ...] = tuple(
    f"{m}{part}" for m in INTERVAL_METRICS for part in ("", "_low", "_high", SE)
)

# Columns that are measured per seed (averaged by summarise), not part of a setting.
_MEASURED_ENDINGS = (
    "_acc",
    "gap",
    "realised_sparsity",
    "sparsity_all",
    "_epsilon",
    "channel_sparsity",
    "macs_left",
    "macs_fraction",
    "best_epoch",
)
_COUNTS = tuple(c for c in RESULT_COLUMNS if c not in ("attack", *INTERVAL_METRICS))


def standard_errors(scores: Any, *, seed: int = 0) -> dict[str, float]:
    """Each interval metric's bootstrap standard error, as ``{"auc_se": ..., ...}``."""
    boot = scores.bootstrap(seed=seed)
    spread = boot.std(0, ddof=1)
    return {f"{m}{SE}": float(v) for m, v in zip(INTERVAL_METRICS, spread, strict=True)}


def measured_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of ``frame`` measured per seed: metrics, their errors, accuracies, counts."""
    out = []
    for col in frame.columns:
        if col == "seed" or col in INTERVAL_METRICS or col in _COUNTS or col.endswith(SE):
            out.append(col)
        elif f"{col}{SE}" in frame:
            out.append(col)
        elif col.endswith(_MEASURED_ENDINGS):
            out.append(col)
    return out


def interval_columns(frame: pd.DataFrame) -> list[str]:
    """The metrics of ``frame`` that carry an interval (``<m>_low`` and ``<m>_high``)."""
    return [c for c in frame.columns if f"{c}_low" in frame and f"{c}_high" in frame]


def summarise(frame: pd.DataFrame, by: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per setting: each metric's mean over seeds with its interval.

    Args:
        frame: a per-seed table (:func:`~miakit.tables.attack_table`, :func:`difference`,
            a sweep), with ``seed`` and the ``<metric>_se`` columns.
        by: the columns that name a setting; default every column that is not measured
            (:func:`measured_columns`), e.g. victim, shadows, attack and their options.

    Returns:
        The setting columns, then for each column ``m`` with a ``m_se`` beside it (the
        interval metrics, a divergence gap, ...): ``m`` (mean), ``m_low``, ``m_high``,
        ``m_se`` (of the mean); then every other measured column's
        mean (accuracies also with ``_low``/``_high`` over seeds), and ``seeds``.
        Settings keep their first order of appearance. Interval ends are clipped to
        the range of the rates of :data:`~miakit.metrics.intervals.INTERVAL_METRICS`
        ([0, 1]; [-1, 1] for a :func:`difference`).

    Raises:
        KeyError: ``frame`` lacks ``seed`` or a ``by`` column.
    """
    if "seed" not in frame:
        raise KeyError("summarise needs a per-seed table with a 'seed' column (attack_table)")
    measured = measured_columns(frame)
    keys = [c for c in frame.columns if c not in measured] if by is None else list(by)
    missing = [c for c in keys if c not in frame]
    if missing:
        raise KeyError(f"summarise: no columns {missing} in the table")
    metrics = [c for c in frame.columns if f"{c}{SE}" in frame and c not in keys]
    metrics += [m for m in INTERVAL_METRICS if m in frame and m not in metrics]
    # Every summarised metric is a rate; a difference of two rates lies in [-1, 1].
    lo, hi = (-1.0, 1.0) if "baseline_attack" in frame else (0.0, 1.0)
    others = [c for c in measured if c != "seed" and c not in metrics and not c.endswith(SE)]
    rows = []
    groups = frame.groupby(keys, dropna=False, sort=False) if keys else [((), frame)]
    for key, part in groups:
        values = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(keys, values, strict=True))
        for m in metrics:
            se = part[f"{m}{SE}"] if f"{m}{SE}" in part else None
            iv = seed_interval(part[m].to_numpy(), None if se is None else se.to_numpy())
            low, high = iv.low, iv.high
            if m in INTERVAL_METRICS:  # a rate (or a difference of two): clip to its range
                low, high = max(low, lo), min(high, hi)  # NaN stays NaN
            row.update({m: iv.mean, f"{m}_low": low, f"{m}_high": high, f"{m}{SE}": iv.se})
        for col in others:
            values = pd.to_numeric(part[col], errors="coerce").to_numpy(dtype=float)
            row[col] = float(np.nanmean(values)) if np.isfinite(values).any() else np.nan
            if col.endswith("_acc"):
                iv = seed_interval(values)
                row[f"{col}_low"], row[f"{col}_high"] = max(iv.low, 0.0), min(iv.high, 1.0)
        row["seeds"] = int(part["seed"].nunique())
        rows.append(row)
    return pd.DataFrame(rows)


def difference(
    exp: Experiment,
    victims: VariantsArg,
    baseline: Variant = ORIGINAL,
    attacks: Sequence[str] | None = None,
    *,
    shadows: Variant | None = None,
    baseline_shadows: Variant | None = None,
    against: str | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Paired differences, one row per seed x victim x attack: ``victim - baseline``.

    Each victim variant is compared with ``baseline`` under the same attack (pruned
    minus original, defended minus undefended), or, with ``against``, each attack with
    the attack ``against`` on the same victim (SAMIA minus Conf). Both sides are scored
    on the same targets of the same seed and resampled by the same bootstrap rows, so
    ``auc_se`` is the standard error of the difference itself.

    Args:
        exp: the experiment (its :meth:`~miakit.experiment.Experiment.replicates`).
        victims: the variant(s) compared.
        baseline: what they are compared with (default the original model); with
            ``against``, ignored: the victim is its own baseline.
        attacks: attack names (default every attack the experiment runs).
        shadows, baseline_shadows: each side's shadows (default: its own variant).
        against: compare attacks instead of variants (the baseline attack's name).
        **options: attack options of the compared side.

    Returns:
        The experiment and victim columns, ``baseline_pruner`` / ``_sparsity`` /
        ``_defense`` (and options), ``attack``, ``baseline_attack``, the differences of
        :data:`~miakit.metrics.intervals.INTERVAL_METRICS` and their ``_se``. Give it to
        :func:`summarise` for the intervals.

    Raises:
        ValueError: the two sides were scored on different targets.
    """
    names = list(attacks) if attacks is not None else exp.attack_names()
    rows = []
    for rep in exp.replicates():
        for victim in _variants(victims):
            base = victim if against is not None else baseline
            for name in names:
                a = rep.attack_scores(name, victim, shadows, **options)
                b_shadows = shadows if against is not None else baseline_shadows
                b = rep.attack_scores(against or name, base, b_shadows)
                if not np.array_equal(a.membership, b.membership) or (
                    a.sample_ids is not None
                    and b.sample_ids is not None
                    and not np.array_equal(a.sample_ids, b.sample_ids)
                ):
                    raise ValueError(
                        f"difference: {name!r} on {victim.label} and {against or name!r} on "
                        f"{base.label} were scored on different targets; compare settings "
                        "of one experiment"
                    )
                seed = rep.config.seed
                point_a, point_b = a.result().metrics(), b.result().metrics()
                diff = a.bootstrap(seed=seed) - b.bootstrap(seed=seed)
                row: dict[str, Any] = {**rep.columns(), **victim.columns("victim")}
                row.update(base.columns("baseline"))
                row.update({"attack": name, "baseline_attack": against or name})
                for j, m in enumerate(INTERVAL_METRICS):
                    row[m] = point_a[m] - point_b[m]
                    row[f"{m}{SE}"] = float(diff[:, j].std(ddof=1))
                rows.append(row)
    return pd.DataFrame(rows)
