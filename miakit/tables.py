"""Tidy result tables over an :class:`~miakit.experiment.Experiment`.

Every function here takes an experiment and returns one ``pandas.DataFrame`` with real
columns (ARCHITECTURE.md, "Tidy, structured results"): the experiment's
(``dataset``, ``arch``, ``seed``, ``split_seed``), the victim's
(``victim_pruner`` — ``"none"`` for the original — ``victim_sparsity`` (requested),
``victim_realised_sparsity``, ``victim_defense``, ``victim_defense_<option>``,
``victim_train_acc``, ``victim_test_acc``, ``victim_epsilon``), the shadows'
(``shadow_pruner``, ``shadow_sparsity``, ``shadow_defense``, ...), the attack's
(``attack``, ``attack_<option>``), ``adaptive`` (the shadows are the victim's
variant), then :data:`miakit.metrics.RESULT_COLUMNS`. A defense option the row's
defense does not have is NaN in a concatenated frame. Labels (``victim_label``) are for
display only; nothing parses them.

Notebooks call these once per table or figure instead of looping over variants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from miakit.attacks import ATTACKS
from miakit.attacks.scores import AttackScores
from miakit.defenses import make_defense
from miakit.experiment import Experiment
from miakit.metrics import divergence_stats, results_frame
from miakit.prune import compact, compaction_report, sparsity_report
from miakit.train import accuracy
from miakit.variants import NO_PRUNER, ORIGINAL, Variant

__all__ = [
    "ROC_ATTACKS",
    "accuracy_table",
    "attack_table",
    "class_gaps",
    "compaction",
    "divergence",
    "divergence_means",
    "labels",
    "model_columns",
    "ordered",
    "per_class",
    "roc",
    "sparsity_table",
    "split_table",
    "variant_grid",
    "variants_table",
]

VariantsArg = Variant | Sequence[Variant]

#: The attacks whose ROC curves the notebooks draw by default: the strongest threshold
#: attacks (Conf, Mentr), the label-aware NN attack (NNCls), SAMIA, and LiRA (beyond the
#: paper). Eleven curves on one log-log panel cannot be told apart.
ROC_ATTACKS: tuple[str, ...] = ("conf", "mentr", "nncls", "samia", "lira")


def _variants(victims: VariantsArg) -> list[Variant]:
    return [victims] if isinstance(victims, Variant) else list(victims)


def variant_grid(
    exp: Experiment,
    pruners: Sequence[str] | None = None,
    sparsities: Sequence[float] | None = None,
    *,
    include_original: bool = True,
) -> list[Variant]:
    """The variants of every pruning method x sparsity, the original first.

    PAPER.md, "Pruning": the methods and sparsity levels a table compares. ``None`` takes
    the experiment's own pruning method (or sparsity); variants come method by method,
    each over ``sparsities`` in order (the order of :func:`miakit.sweep.pruning_grid`).

    Example:
        >>> variant_grid(exp, sparsities=[0.5, 0.7])  # doctest: +SKIP
        [Variant(None, 0.0, ...), Variant('l1_unstructured', 0.5, ...), ...]
    """
    methods = [exp.config.pruner] if pruners is None else list(pruners)
    levels = [exp.config.sparsity] if sparsities is None else list(sparsities)
    out = [ORIGINAL] if include_original else []
    return out + [exp.variant(p, s) for p in methods for s in levels]


def split_table(exp: Experiment) -> pd.DataFrame:
    """The split sizes of the victim and every shadow: one row per role.

    PAPER.md, "Data and splits": ``train`` (the role's members), ``dev`` (early stopping
    only) and ``test`` (its non-members), after the experiment's columns and ``model``
    (the role).
    """
    splits = [exp.splits.victim, *exp.splits.shadows]
    rows = []
    for role, split in zip(exp.roles(), splits, strict=True):
        train, dev, test = split.sizes()
        rows.append({**exp.columns(), "model": role, "train": train, "dev": dev, "test": test})
    return pd.DataFrame(rows)


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


def model_columns(exp: Experiment, variant: Variant, role: str = "victim") -> dict[str, Any]:
    """A model's columns: its variant, realised sparsity, accuracy and DP epsilon.

    Column names start with ``victim_`` for the victim and ``shadow_`` for a shadow.
    """
    prefix = "victim" if role == "victim" else "shadow"
    info = exp.model(role, variant).info
    return {
        **variant.columns(prefix),
        f"{prefix}_realised_sparsity": info.get("realised_sparsity", 0.0),
        f"{prefix}_train_acc": info["train_acc"],
        f"{prefix}_test_acc": info["test_acc"],
        f"{prefix}_epsilon": info.get("defense_epsilon"),
    }


def accuracy_table(exp: Experiment) -> pd.DataFrame:
    """Train/test accuracy, their gap and the best epoch of the victim and every shadow."""
    rows = []
    for role in exp.roles():
        info = exp.trained(role).info
        rows.append(
            {
                **exp.columns(),
                "model": role,
                "train_acc": info["train_acc"],
                "test_acc": info["test_acc"],
                "gap": info["train_acc"] - info["test_acc"],
                "best_epoch": info["best_epoch"],
            }
        )
    return pd.DataFrame(rows)


def variants_table(exp: Experiment, variants: VariantsArg) -> pd.DataFrame:
    """Accuracy, sparsity and epsilon of the victim and every shadow in each variant.

    One row per variant x model: ``model`` (the role), ``variant`` (display label),
    ``pruner``, ``sparsity`` (requested), ``realised_sparsity``, ``sparsity_all`` (over
    every parameter), ``macs_fraction``, ``defense`` and its options, ``train_acc``,
    ``test_acc``, ``gap``, ``epsilon``.
    """
    rows = []
    for variant in _variants(variants):
        for role in exp.roles():
            info = exp.model(role, variant).info
            cols = {k.removeprefix("m_"): v for k, v in variant.columns("m").items()}
            rows.append(
                {
                    **exp.columns(),
                    "model": role,
                    "variant": variant.label,
                    **cols,
                    "realised_sparsity": info.get("realised_sparsity", 0.0),
                    "sparsity_all": info.get("sparsity_all", 0.0),
                    "macs_fraction": info.get("macs_fraction", 1.0),
                    "train_acc": info["train_acc"],
                    "test_acc": info["test_acc"],
                    "gap": info["train_acc"] - info["test_acc"],
                    "epsilon": info.get("defense_epsilon"),
                }
            )
    return pd.DataFrame(rows)


def attack_table(
    exp: Experiment,
    victims: VariantsArg = ORIGINAL,
    shadows: Variant | Sequence[Variant | None] | None = None,
    attacks: Sequence[str] | None = None,
    *,
    names: Sequence[str] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Attacks against one or several victim variants: one row per victim x attack.

    Rows come victim by victim, each over ``attacks`` in order.

    Args:
        exp: the experiment.
        victims: a variant or a list of them.
        shadows: the shadows' variant for every victim, or a list with one per victim
            (paired by position, e.g. a defended victim attacked once with undefended and
            once with defended shadows); ``None`` (or a ``None`` in the list): the
            victim's own (the paper's default, adaptive adversary).
        attacks: attack names (default: every attack of :data:`miakit.attacks.ATTACKS`).
        names: one display name per victim (e.g. ``"PPB, adaptive"``), put in a ``model``
            column first; for legends and pivots only.
        **options: attack options (e.g. SAMIA's ``use_sensitivity=False``); attacks that
            do not take them are an error, so pass them with a matching ``attacks``.

    Raises:
        ValueError: ``shadows`` or ``names`` is a list of another length than ``victims``.
    """
    attack_names = list(attacks) if attacks is not None else list(ATTACKS)
    vs = _variants(victims)
    pools = [shadows] * len(vs) if shadows is None or isinstance(shadows, Variant) else shadows
    if len(pools) != len(vs):
        raise ValueError(
            f"attack_table got {len(vs)} victims but {len(pools)} shadows; give one shadow "
            "variant for all victims, or a list with one per victim"
        )
    if names is not None and len(names) != len(vs):
        raise ValueError(f"attack_table got {len(vs)} victims but {len(names)} names")
    results, models = [], []
    for i, (victim, pool) in enumerate(zip(vs, pools, strict=True)):
        model = model_columns(exp, victim)
        for name in attack_names:
            results.append(exp.attack_scores(name, victim, pool, **options).result(model))
            models.append(None if names is None else names[i])
    frame = ordered(results_frame(results))
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
    for victim in _variants(victims):
        model = model_columns(exp, victim)
        for name in attacks:
            scores: AttackScores = exp.attack_scores(name, victim, shadows)
            frames.append(scores.per_class(model))
    return pd.concat(frames, ignore_index=True)


def divergence(exp: Experiment, variants: VariantsArg, role: str = "victim") -> pd.DataFrame:
    """Per-sample true-class confidence and sensitivity, members vs non-members.

    PAPER.md, "Prediction divergence (the analysis)": the signals behind the
    histograms. One row per sample and variant: the variant's columns
    (``victim_pruner``, ...), ``variant`` (display label), ``membership``, ``label``,
    ``confidence`` (p_y) and ``sensitivity`` (s_y).
    """
    frames = []
    for variant in _variants(variants):
        sig = exp.signals(role, variant)
        rows = np.arange(sig.num_samples)
        frame = pd.DataFrame(
            {
                "membership": sig.membership,
                "label": sig.labels,
                "confidence": sig.p_y,
                "sensitivity": sig.sensitivity[rows, sig.labels],
            }
        )
        for i, (k, v) in enumerate({**variant.columns("victim"), "variant": variant.label}.items()):
            frame.insert(i, k, v)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def divergence_means(
    exp: Experiment, variants: VariantsArg, signal: str | Sequence[str] = "confidence"
) -> pd.DataFrame:
    """Member and non-member means of a signal, and their gap, per variant.

    PAPER.md, "Prediction divergence (the analysis)" (on CIFAR-10 DenseNet121 the
    confidence means go 0.81/0.67 -> 0.96/0.73: :data:`miakit.reported.DIVERGENCE_MEANS`).
    One row per variant x signal (variant by variant): the variant's columns
    (``victim_pruner``, ...), ``variant`` (display label), ``signal`` (``"confidence"``
    or ``"sensitivity"``, the columns of :func:`divergence`), ``member_mean``,
    ``nonmember_mean`` and ``gap`` (member - non-member).
    """
    signals = [signal] if isinstance(signal, str) else list(signal)
    rows = []
    for variant in _variants(variants):
        d = divergence(exp, variant)
        members = d["membership"].to_numpy() == 1
        for name in signals:
            values = d[name].to_numpy()
            m, n = float(values[members].mean()), float(values[~members].mean())
            rows.append(
                {
                    **variant.columns("victim"),
                    "variant": variant.label,
                    "signal": name,
                    "member_mean": m,
                    "nonmember_mean": n,
                    "gap": m - n,
                }
            )
    return pd.DataFrame(rows)


def class_gaps(
    exp: Experiment,
    variants: VariantsArg,
    signal: str = "confidence",
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-class member - non-member mean of a signal, one column per variant.

    PAPER.md, "Prediction divergence": the per-class gap bar charts. Columns:
    ``class`` and one per variant, named by ``names`` (default: the display labels),
    e.g. ``names=("original", "pruned")`` for :func:`miakit.plots.class_gap_bars`.
    """
    vs = _variants(variants)
    names = list(names) if names is not None else [v.label for v in vs]
    if len(names) != len(vs):
        raise ValueError(f"class_gaps got {len(vs)} variants but {len(names)} names")
    out = None
    for v, name in zip(vs, names, strict=True):
        d = divergence(exp, v)
        stats = divergence_stats(d[signal].to_numpy(), d["membership"], d["label"])
        col = stats[["class", "gap"]].rename(columns={"gap": name})
        out = col if out is None else out.merge(col, on="class")
    return out


def compaction(exp: Experiment, variant: Variant, role: str = "victim") -> pd.DataFrame:
    """What physically removing a pruned model's zeroed filters gains (beyond the paper).

    PAPER.md, "Pruning" keeps the masks; :func:`miakit.prune.compact` removes the dead
    filters and channels (checking that the outputs are unchanged). One row: the
    variant's columns, :func:`miakit.prune.compaction_report` on a batch of 128 samples
    (parameters before and after, median forward latency and speed-up, which vary from
    run to run), and the role's test accuracy with the masked and the compacted model.
    """
    masked = exp.model(role, variant).model
    example = exp.data.x[:1].to(exp.device)
    compacted = compact(masked, example)
    batch = exp.data.x[:128].to(exp.device)
    report = asdict(compaction_report(masked, compacted, batch))
    test = exp.role_data(role)[2]
    return pd.DataFrame(
        [
            {
                **variant.columns("victim"),
                **report,
                "test_acc_masked": accuracy(masked, test, device=exp.device),
                "test_acc_compacted": accuracy(compacted, test, device=exp.device),
            }
        ]
    )


def sparsity_table(exp: Experiment, variants: VariantsArg, role: str = "victim") -> pd.DataFrame:
    """Accuracy and the full sparsity report of one role's model in each variant.

    PAPER.md, "Pruning". One row per variant, like :func:`variants_table` (``model``,
    ``variant``, ``pruner``, ``sparsity`` requested, ``defense``...,  ``train_acc``,
    ``test_acc``, ``gap``) with :meth:`miakit.prune.SparsityReport.summary` measured on
    the model: ``realised_sparsity`` (its ``sparsity``: zero Conv/Linear weights),
    ``sparsity_all``, ``channel_sparsity`` (zero BatchNorm channels, which the cache does
    not hold), ``macs_fraction`` and the counts behind them.
    """
    rows = []
    for variant in _variants(variants):
        trained = exp.model(role, variant)
        summary = sparsity_report(trained.model, exp.data.input_shape).summary()
        info = trained.info
        cols = {k.removeprefix("m_"): v for k, v in variant.columns("m").items()}
        rows.append(
            {
                **exp.columns(),
                "model": role,
                "variant": variant.label,
                **cols,
                "train_acc": info["train_acc"],
                "test_acc": info["test_acc"],
                "gap": info["train_acc"] - info["test_acc"],
                "realised_sparsity": summary.pop("sparsity"),
                **summary,
            }
        )
    return pd.DataFrame(rows)
