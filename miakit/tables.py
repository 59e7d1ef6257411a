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
from typing import Any

import numpy as np
import pandas as pd

from miakit.attacks import ATTACKS
from miakit.attacks.scores import AttackScores
from miakit.experiment import Experiment
from miakit.metrics import divergence_stats, results_frame
from miakit.prune import compaction_report
from miakit.variants import ORIGINAL, Variant

__all__ = [
    "accuracy_table",
    "attack_table",
    "class_gaps",
    "compaction",
    "divergence",
    "divergence_means",
    "model_columns",
    "ordered",
    "per_class",
    "roc",
    "variants_table",
]

VariantsArg = Variant | Sequence[Variant]


def _variants(victims: VariantsArg) -> list[Variant]:
    return [victims] if isinstance(victims, Variant) else list(victims)


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
    shadows: Variant | None = None,
    attacks: Sequence[str] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Attacks against one or several victim variants: one row per victim x attack.

    Args:
        exp: the experiment.
        victims: a variant or a list of them.
        shadows: the shadows' variant for every victim; ``None``: each victim's own (the
            paper's default, adaptive adversary).
        attacks: attack names (default: every attack of :data:`miakit.attacks.ATTACKS`).
        **options: attack options (e.g. SAMIA's ``use_sensitivity=False``); attacks that
            do not take them are an error, so pass them with a matching ``attacks``.
    """
    names = list(attacks) if attacks is not None else list(ATTACKS)
    results = []
    for victim in _variants(victims):
        model = model_columns(exp, victim)
        for name in names:
            results.append(exp.attack_scores(name, victim, shadows, **options).result(model))
    return ordered(results_frame(results))


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
    exp: Experiment, variants: VariantsArg, signal: str = "confidence"
) -> pd.DataFrame:
    """Member and non-member means of a signal, and their gap, per variant.

    One row per variant: the variant's columns, ``variant`` (display label),
    ``member_mean``, ``nonmember_mean``, ``gap`` (PAPER.md, "Prediction divergence":
    on CIFAR-10 DenseNet121 the confidence means go 0.81/0.67 -> 0.96/0.73).
    """
    rows = []
    for variant in _variants(variants):
        d = divergence(exp, variant)
        values, members = d[signal].to_numpy(), d["membership"].to_numpy() == 1
        m, n = float(values[members].mean()), float(values[~members].mean())
        rows.append(
            {
                **variant.columns("victim"),
                "variant": variant.label,
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

    One row: the variant's columns, parameters and MACs before and after, the measured
    inference speed-up (:func:`miakit.prune.compaction_report` on a copy).
    """
    model = exp.model(role, variant).model
    x = exp.data.x[:256]
    report = compaction_report(model, x)
    return pd.DataFrame([{**variant.columns("victim"), **report.as_dict()}])
