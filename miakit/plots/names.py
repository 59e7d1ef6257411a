"""Display names: the paper's words for column names, registry keys and levels.

Every text a figure draws goes through :func:`display_name` (or :func:`readable`, which
also turns a leftover ``snake_case`` id into words), so no internal id such as
``l1_unstructured``, ``tpr@1%fpr`` or ``victim_pruner`` reaches a title, label or legend
(issue 13, item 7; PAPER.md, "Reporting"). :func:`setting_text` names the dataset and the
architecture a figure compares methods on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "ARCH_NAMES",
    "DISPLAY_NAMES",
    "LEVEL_NAMES",
    "display_name",
    "readable",
    "setting_text",
]

DISPLAY_NAMES: dict[str, str] = {
    # Column names of results_frame and the Experiment tables (the paper's words).
    "auc": "attack AUC",
    "balanced_accuracy": "attack accuracy",
    "tpr@0.1%fpr": "TPR at 0.1% FPR",
    "tpr@1%fpr": "TPR at 1% FPR",
    "test_acc": "test accuracy",
    "train_acc": "train accuracy",
    "sparsity": "sparsity",
    "epsilon": "ε (DP-SGD)",
    "lam": "λ",
    "lambda": "λ",
    "theta": "θ",
    "noise_multiplier": "noise multiplier",
    "pruner": "pruning method",
    "defense": "defense",
    "attack": "attack",
    "victim": "victim",
    "shadows": "shadows",
    # The structured columns of the miakit.tables / miakit.sweep frames.
    "victim_pruner": "pruning method",
    "victim_sparsity": "sparsity",
    "victim_realised_sparsity": "realised sparsity",
    "victim_defense": "defense",
    "victim_train_acc": "train accuracy",
    "victim_test_acc": "test accuracy",
    "victim_epsilon": "ε (DP-SGD)",
    "victim_delta": "δ (DP-SGD)",
    "victim_label": "victim",
    "shadow_pruner": "shadow pruning method",
    "shadow_sparsity": "shadow sparsity",
    "shadow_defense": "shadow defense",
    "shadow_label": "shadows",
    # Metric columns of other tables (finetune_curve, per-class changes, accuracy tables).
    "tpr_at_1pct_fpr": "TPR at 1% FPR",
    "tpr_at_0_1pct_fpr": "TPR at 0.1% FPR",
    "accuracy": "accuracy",
    "finetune_epochs": "fine-tune epochs",
    "realised_sparsity": "realised sparsity",
    "dataset": "dataset",
    "arch": "architecture",
}
"""Names shown on axes and legends for column names (the paper's words).

Column titles only: attacks, pruning methods, defenses and datasets take their text from
the ``title`` of their registry entry (:func:`display_name`). Unknown values are shown as
they are; a notebook may add entries.
"""


LEVEL_NAMES: dict[str, dict[Any, str]] = {
    "victim_pruner": {"none": "original", "finetuned": "fine-tuned only"},
    "shadow_pruner": {"none": "original", "finetuned": "fine-tuned only"},
    "adaptive": {False: "non-adaptive attack", True: "adaptive attack"},
}
"""Texts of particular values of particular columns: ``display_name(value, column)``.

A pruner column's ``"none"`` is the original (unpruned) model, not the defense of that
name; ``adaptive`` tells the two adversaries of PAPER.md, "The defense" apart.
"""


def _registry_title(key: str) -> str | None:
    """The ``title`` of the registry entry called ``key``, if any registry has one.

    The registries are imported here, not at module level: they sit in lower layers
    (attacks, pruning, defenses, data) and pull in torch, and only their titles are
    needed. Attacks come first, then pruning methods, defenses and datasets.
    """
    from miakit.attacks import ATTACKS
    from miakit.data import DATASETS
    from miakit.defenses import DEFENSES
    from miakit.prune import PRUNERS

    registries: tuple[Mapping[str, Any], ...] = (ATTACKS, PRUNERS, DEFENSES, DATASETS)
    for registry in registries:
        title = getattr(registry.get(key), "title", None)
        if isinstance(title, str) and title:
            return title
    return None


def _title(key: str) -> str | None:
    """A registry entry's title, else its :data:`DISPLAY_NAMES` or :data:`ARCH_NAMES` text."""
    title = _registry_title(key)
    if title is not None:
        return title
    return DISPLAY_NAMES.get(key, ARCH_NAMES.get(key))


def display_name(value: Any, column: str | None = None) -> str:
    """The text shown for a column name or a category level.

    Args:
        value: a column name (``"auc"``), a registry key (an attack ``"samia"``, a pruning
            method ``"l1_unstructured"``, a defense ``"ppb"``, a dataset ``"cifar10"``) or
            a number.
        column: the column ``value`` comes from, when it is a level: values listed for
            that column in :data:`LEVEL_NAMES` get their text there (``"none"`` of
            ``victim_pruner`` is ``"original"``, ``True`` of ``adaptive`` is
            ``"adaptive attack"``).

    Returns:
        The :data:`LEVEL_NAMES` text of ``(column, value)``, if any. Else, for a string:
        the ``title`` of its registry entry (``ATTACKS``, ``PRUNERS``, ``DEFENSES``,
        ``DATASETS``), else its :data:`DISPLAY_NAMES` entry; a variant label such as
        ``"l1_unstructured@0.7"`` shows its pruner's title (``"L1 unstructured@0.7"``);
        any other string as it is. ``f"{value:g}"`` for a real number, else ``str(value)``.
    """
    named = LEVEL_NAMES.get(column, {}) if column is not None else {}
    if isinstance(value, (str, bool, np.bool_)) and value in named:
        return named[value]
    if isinstance(value, str):
        title = _title(value)
        if title is not None:
            return title
        # Variant labels ("l1_unstructured@0.7+ppb(...)"), the values of the display
        # columns victim_label / shadow_label (Variant.label): only the text is changed.
        head, at, tail = value.partition("@")
        if at:
            title = _title(head)
            if title is not None:
                return f"{title}@{tail}"
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{value:g}"
    return str(value)


ARCH_NAMES: dict[str, str] = {
    "resnet18": "ResNet18",
    "densenet121": "DenseNet121",
    "vgg16_bn": "VGG16 (BN)",
    "mobilenetv2": "MobileNetV2",
    "fc": "FC net",
    "mlp": "MLP",
    "signal_cnn": "signal CNN",
    "small_cnn": "small CNN",
}
"""Display names of the architectures of :data:`miakit.models.ARCHS` (PAPER.md, "Models
and training"); the registry has no titles, so they live here (a test checks that every
architecture has one)."""

_SNAKE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+")


def readable(value: Any, column: str | None = None) -> str:
    """:func:`display_name`, with any ``snake_case`` id left in it turned into words.

    A name no table knows (``"auc_change"``, ``"my_metric"``) would otherwise reach the
    figure as it is: each of its ``_``-separated parts is shown by :func:`display_name`
    and the parts are joined by spaces (``"auc_change"`` -> ``"attack AUC change"``).

    Example:
        >>> readable("auc_change"), readable("l1_unstructured"), readable("tpr@1%fpr")
        ('attack AUC change', 'L1 unstructured', 'TPR at 1% FPR')
    """
    text = display_name(value, column)

    def words(match: re.Match[str]) -> str:
        return " ".join(display_name(part) for part in match.group(0).split("_"))

    return _SNAKE.sub(words, text)


def setting_text(frame: pd.DataFrame) -> str | None:
    """The dataset(s) and architecture(s) of a table, e.g. ``"CIFAR-10, DenseNet121"``.

    Read from the ``dataset`` and ``arch`` columns (every result row has them,
    ``Experiment.columns``), in order of first appearance, as display names; several
    settings are joined by ``"; "``. ``None`` when the table has neither column.
    """
    cols = [c for c in ("dataset", "arch") if c in frame.columns]
    if not cols:
        return None
    pairs = dict.fromkeys(zip(*(frame[c] for c in cols), strict=True))
    texts = [", ".join(readable(v, c) for v, c in zip(pair, cols, strict=True)) for pair in pairs]
    return "; ".join(texts)
