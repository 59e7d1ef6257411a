"""Tables of models: splits, accuracy, requested and realised sparsity, compaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import pandas as pd

from miakit.experiment import Experiment
from miakit.prune import compact, compaction_report, sparsity_report, structured_sparsity
from miakit.train import accuracy
from miakit.variants import ORIGINAL, Variant

__all__ = [
    "accuracy_table",
    "compaction",
    "model_columns",
    "sparsity_table",
    "split_table",
    "variant_grid",
    "variants_table",
]

VariantsArg = Variant | Sequence[Variant]


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


def model_columns(exp: Experiment, variant: Variant, role: str = "victim") -> dict[str, Any]:
    """A model's columns: its variant, realised sparsity, accuracy, DP epsilon and delta.

    Beside the weight sparsity, ``<prefix>_channel_sparsity`` (zeroed BatchNorm channels
    or conv filters; NaN for a network without either) and ``<prefix>_macs_left`` (the
    fraction of multiply-accumulates a compacted model keeps): structured pruning such as
    network slimming zeroes few weights but whole channels
    (:func:`miakit.prune.structured_sparsity`).

    Column names start with ``victim_`` for the victim and ``shadow_`` for a shadow.
    ``<prefix>_epsilon`` and ``<prefix>_delta`` are a DP-SGD model's guarantee (of its
    DP fine-tuning only, not of the non-private training before it); ``None`` otherwise.
    """
    prefix = "victim" if role == "victim" else "shadow"
    trained = exp.model(role, variant)
    info = trained.info
    structured = structured_sparsity(trained.model, tuple(exp.data.x.shape[1:]))
    return {
        **variant.columns(prefix),
        f"{prefix}_realised_sparsity": info.get("realised_sparsity", 0.0),
        **{f"{prefix}_{k}": v for k, v in structured.items()},
        f"{prefix}_train_acc": info["train_acc"],
        f"{prefix}_test_acc": info["test_acc"],
        f"{prefix}_epsilon": info.get("defense_epsilon"),
        f"{prefix}_delta": info.get("defense_delta"),
    }


def accuracy_table(exp: Experiment) -> pd.DataFrame:
    """Train/test accuracy, their gap and the best epoch of the victim and every shadow.

    One row per seed (the experiment's replicates) x role; :func:`~miakit.tables.summarise`
    averages the seeds.
    """
    rows = []
    for rep in exp.replicates():
        for role in rep.roles():
            info = rep.trained(role).info
            rows.append(
                {
                    **rep.columns(),
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
    ``test_acc``, ``gap``, ``epsilon`` and ``delta`` (a DP-SGD model's guarantee, of its
    DP fine-tuning only; ``None`` for other models), for every seed (``seed``; the
    experiment's replicates).
    """
    rows = []
    for rep in exp.replicates():
        for variant in _variants(variants):
            rep.prefetch(rep.roles(), variant)  # victim and shadows together, when that pays
            for role in rep.roles():
                rows.append({**rep.columns(), "model": role, **_variant_row(rep, role, variant)})
    return pd.DataFrame(rows)


def _variant_row(exp: Experiment, role: str, variant: Variant) -> dict[str, Any]:
    info = exp.model(role, variant).info
    cols = {k.removeprefix("m_"): v for k, v in variant.columns("m").items()}
    return {
        "variant": variant.label,
        **cols,
        "realised_sparsity": info.get("realised_sparsity", 0.0),
        "sparsity_all": info.get("sparsity_all", 0.0),
        "macs_fraction": info.get("macs_fraction", 1.0),
        "train_acc": info["train_acc"],
        "test_acc": info["test_acc"],
        "gap": info["train_acc"] - info["test_acc"],
        "epsilon": info.get("defense_epsilon"),
        "delta": info.get("defense_delta"),
    }


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
    not hold), ``macs_fraction`` and the counts behind them, then ``epsilon`` and
    ``delta`` (a DP-SGD model's guarantee; ``None`` for other models).
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
                "epsilon": info.get("defense_epsilon"),
                "delta": info.get("defense_delta"),
            }
        )
    return pd.DataFrame(rows)
