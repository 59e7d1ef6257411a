"""Leakage against fine-tuning length: the fine-tune-only control and the pruned model.

PAPER.md, "Pruning" fine-tunes a pruned model for half the training epochs and keeps
the best-dev epoch; claim 1 reads the rise in attack success after that as the effect
of pruning. Fine-tuning alone re-trains on the members too, so the kit measures both
along the fine-tuning length (beyond the paper, issue 13): at each epoch count the
pruned variant and :data:`~miakit.variants.FINETUNED` (the same schedule, nothing
pruned) are fine-tuned from the same cached original and attacked. The original's
rows (``finetune_epochs == 0``) give the level both start from.

Only the ``finetune`` config changes between points, and the original models' cache
keys do not read it (:data:`miakit.keys.STEP_FIELDS`), so the originals train once.

Example:
    >>> frame = finetune_curve(exp, exp.variant(), [5, 25, 100], ["conf"])  # doctest: +SKIP
    >>> plots.finetune_lines(frame, metric="auc")                            # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from miakit import tables
from miakit.experiment import Experiment
from miakit.variants import FINETUNED_PRUNER, ORIGINAL, Variant

__all__ = ["finetune_curve"]


def finetune_curve(
    exp: Experiment,
    pruned: Variant,
    epochs: Sequence[int],
    attacks: Sequence[str],
    *,
    restore_best: bool = False,
    patience: int | None = 0,
    include_original: bool = True,
    paper_rule: bool = False,
) -> pd.DataFrame:
    """Attack success against fine-tune epochs, fine-tuned only and pruned.

    For each count in ``epochs`` the experiment's fine-tuning schedule
    (``ExperimentConfig.finetune_config``) is run for that many epochs, on the pruned
    variant and on the fine-tune-only control with the same defense
    (``Variant("finetuned", 0, pruned.defense)``; :data:`~miakit.variants.FINETUNED`
    when undefended), each with shadows treated alike (the adaptive adversary), and
    every attack runs against both (:func:`miakit.tables.attack_table`).

    Args:
        exp: the experiment; its ``finetune`` settings other than the epochs, the
            patience and ``restore_best`` are kept.
        pruned: the pruned variant (e.g. ``exp.variant()``).
        epochs: fine-tune epoch counts, each >= 1.
        attacks: attack names.
        restore_best: whether each fine-tune keeps its best-dev epoch (the paper's
            rule) or, ``False``, its last epoch (:attr:`miakit.train.TrainConfig.restore_best`):
            only then does the curve show what longer re-training on the members does.
        patience: the fine-tunes' early-stopping patience; ``0`` (the default) runs
            every epoch, ``None`` keeps the experiment's.
        include_original: add the original model's rows once, at ``finetune_epochs`` 0.
        paper_rule: add the experiment's own fine-tuning as one more point, the control
            and the pruned variant exactly as the other tables have them (PAPER.md,
            "Pruning": early stopping, best-dev epoch kept), at ``finetune_epochs`` =
            its epoch budget (``finetune_restore_best`` True unless the experiment says
            otherwise), so a figure sets the paper's rule beside the curve.

    Returns:
        One row per epoch count x variant x attack, the columns of
        :func:`~miakit.tables.attack_table` (``victim_pruner`` is ``"finetuned"`` for the
        control, ``victim_train_acc`` the members' accuracy) plus ``finetune_epochs``,
        ``finetune_restore_best`` and ``finetune_patience`` (the curve's settings, on the
        original's rows too). Epoch counts in the order given, the control first.

    Raises:
        ValueError: ``pruned`` prunes nothing, or ``epochs`` is empty or holds a count
            below 1 (or not an integer).
    """
    if not isinstance(pruned, Variant) or not pruned.prunes:
        raise ValueError(
            f"finetune_curve needs a pruned variant such as exp.variant(), got {pruned!r}; "
            "the fine-tune-only control is added for you"
        )
    counts = list(epochs)
    if not counts or any(isinstance(e, bool) or not isinstance(e, int) or e < 1 for e in counts):
        raise ValueError(
            f"finetune_curve needs fine-tune epoch counts, integers >= 1, got {epochs!r}"
        )
    control = Variant(FINETUNED_PRUNER, 0.0, pruned.defense)
    schedule = {"finetune.restore_best": restore_best}
    if patience is not None:
        schedule["finetune.patience"] = patience
    frames = []
    for count in counts:
        point = exp.with_overrides(**{**schedule, "finetune.epochs": count})
        table = tables.attack_table(point, [control, pruned], attacks=attacks)
        frames.append(_settings(table, count, point))
    if include_original:
        table = tables.attack_table(exp, ORIGINAL, attacks=attacks)
        frames.insert(0, _settings(table, 0, exp.with_overrides(**schedule)))
    if paper_rule:
        table = tables.attack_table(exp, [control, pruned], attacks=attacks)
        frames.append(_settings(table, exp.config.finetune_config.epochs, exp))
    return tables.ordered(pd.concat(frames, ignore_index=True))


def _settings(table: pd.DataFrame, count: int, point: Experiment) -> pd.DataFrame:
    cfg = point.config.finetune_config
    return table.assign(
        finetune_epochs=count,
        finetune_restore_best=cfg.restore_best,
        finetune_patience=cfg.patience,
    )
