"""Tidy result tables over an :class:`~miakit.experiment.Experiment`.

Every function here takes an experiment and returns one ``pandas.DataFrame`` with real
columns (ARCHITECTURE.md, "Tidy, structured results"): the experiment's
(``dataset``, ``arch``, ``seed``, ``split_seed``), the victim's
(``victim_pruner`` — ``"none"`` for the original — ``victim_sparsity`` (requested),
``victim_realised_sparsity``, ``victim_defense``, ``victim_defense_<option>``,
``victim_train_acc``, ``victim_test_acc``, ``victim_epsilon``, ``victim_delta``), the shadows'
(``shadow_pruner``, ``shadow_sparsity``, ``shadow_defense``, ...), the attack's
(``attack``, ``attack_<option>``), ``adaptive`` (the shadows are the victim's
variant), then :data:`miakit.metrics.RESULT_COLUMNS`. A defense option the row's
defense does not have is NaN in a concatenated frame. Labels (``victim_label``) are for
display only; nothing parses them.

Every attack table holds one row per seed of the pipeline (``config.seeds``) with each
metric's bootstrap standard error (``auc_se``, ...); :func:`summarise` turns it into
means with 95% intervals, and :func:`difference` gives paired differences (pruned minus
original, attack A minus attack B) with their own intervals.

Notebooks call these once per table or figure instead of looping over variants.
"""

from miakit.tables.attacks import (
    ROC_ATTACKS,
    attack_table,
    labels,
    ordered,
    per_class,
    roc,
    roc_bands,
)
from miakit.tables.divergence import class_gaps, divergence, divergence_means
from miakit.tables.intervals import difference, standard_errors, summarise
from miakit.tables.models import (
    accuracy_table,
    compaction,
    model_columns,
    sparsity_table,
    split_table,
    variant_grid,
    variants_table,
)

__all__ = [
    "ROC_ATTACKS",
    "accuracy_table",
    "attack_table",
    "class_gaps",
    "compaction",
    "difference",
    "divergence",
    "divergence_means",
    "labels",
    "model_columns",
    "ordered",
    "per_class",
    "roc",
    "roc_bands",
    "sparsity_table",
    "split_table",
    "standard_errors",
    "summarise",
    "variant_grid",
    "variants_table",
]
