"""The one fast training loop, plus prediction and input sensitivity.

Victims, shadows, post-pruning fine-tuning and the defenses all train through
:func:`fit` (PAPER.md, "Models and training"): Adam (lr 1e-3, weight decay
5e-4), batch 128, early stopping on dev accuracy with patience 5, and the
best-dev checkpoint restored at the end (the last epoch's with
``TrainConfig.restore_best=False``). No learning-rate schedule and no data augmentation.

Speed notes (DESIGN.md, "Speed") are in :mod:`miakit.train.loop`.

Modules: :mod:`~miakit.train.config` (``TrainConfig``, ``Objective``, ``cross_entropy``),
:mod:`~miakit.train.loop` (``fit``, ``FitResult``, batches, optimizer, checkpoints),
:mod:`~miakit.train.stopping` (``EarlyStopping``: best-dev or last weights),
:mod:`~miakit.train.many` (``fit_many``: N models in one step) and
:mod:`~miakit.train.evaluate` (``logits``, ``predict``, ``accuracy``, ``sensitivity``,
``dev_accuracy``, ``eval_batch_size``). ``resolve_device`` is
re-exported from :mod:`miakit._util`.
"""

from __future__ import annotations

from miakit._util import resolve_device
from miakit.train.config import Objective, TrainConfig, cross_entropy
from miakit.train.evaluate import (
    accuracy,
    dev_accuracy,
    eval_batch_size,
    logits,
    predict,
    sensitivity,
)
from miakit.train.groups import random_draws
from miakit.train.loop import (
    EarlyStopping,
    FitResult,
    batches,
    fit,
    make_optimizer,
    prepare,
    seed_everything,
)
from miakit.train.many import ModelData, batch_groups, batching_pays, fit_many

__all__ = [
    "EarlyStopping",
    "FitResult",
    "ModelData",
    "Objective",
    "TrainConfig",
    "accuracy",
    "batch_groups",
    "random_draws",
    "batches",
    "batching_pays",
    "cross_entropy",
    "dev_accuracy",
    "eval_batch_size",
    "fit",
    "fit_many",
    "logits",
    "make_optimizer",
    "predict",
    "prepare",
    "resolve_device",
    "seed_everything",
    "sensitivity",
]
