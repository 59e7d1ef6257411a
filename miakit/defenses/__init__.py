"""Defenses applied during post-pruning fine-tuning: PPB and the two baselines.

PAPER.md, "The defense": the pruned model is fine-tuned (the halved schedule,
:meth:`miakit.train.TrainConfig.halved`) under one of

- :class:`NoDefense` (``"none"``): plain fine-tuning with early stopping;
- :class:`PPBParams` (``"ppb"``): pair-based posterior balancing, the paper's defense
  (:func:`ppb_loss`, :class:`PPB`), lambda in :data:`LAMBDAS`, default 4;
- :class:`AdvRegParams` (``"advreg"``): adversarial regularisation (Nasr et al. 2018,
  :class:`AdversarialRegularization`), theta in :data:`THETAS`;
- :class:`DPSGDParams` (``"dpsgd"``): DP-SGD fine-tuning with Opacus
  (:func:`dp_finetune`), clip 1.0, noise multiplier in :data:`NOISE_MULTIPLIERS`, with
  epsilon reported for every run.

Each defense's options are a frozen dataclass, validated at construction
(:func:`make_defense` builds one from a name). :func:`finetune` is the one post-pruning
fine-tuning loop and returns a :class:`DefenseResult` for caching and tables.

The authors' versions of the two baselines have bugs that this package does not copy
(PAPER.md, "The defense"): their adversarial regularisation takes one classifier step on
one minibatch per epoch, after 7 inference-model steps, so the pruned classifier gets at
most 50 steps in all (here: every minibatch of every epoch, each after ``k`` = 7
inference-model steps); their DP fine-tuning clips per microbatch of 64, runs 100 passes
per epoch, in eval mode, and never reports epsilon (here: per-sample clipping, the
halved schedule with early stopping, train mode, pruned weights and channels kept
exactly zero, and epsilon from Opacus's RDP accountant for every run).

Example:
    >>> cfg = TrainConfig().halved()  # doctest: +SKIP
    >>> result = finetune(pruned, train, dev, cfg, PPBParams(lam=4.0))  # doctest: +SKIP
    >>> result.record()  # doctest: +SKIP
    {'defense': 'ppb', 'lam': 4.0, 'epochs_run': 12, 'best_dev_acc': 0.71, ...}
"""

from __future__ import annotations

from miakit.defenses.advreg import THETAS, AdversarialRegularization, AdvRegParams, InferenceModel
from miakit.defenses.base import DefenseParams, DefenseResult, NoDefense, check_weight
from miakit.defenses.dpsgd import (
    NOISE_MULTIPLIERS,
    DPResult,
    DPSGDParams,
    convert_for_opacus,
    default_delta,
    dp_finetune,
)
from miakit.defenses.ppb import LAMBDAS, PPB, PPBParams, ppb_divergence, ppb_loss
from miakit.defenses.registry import DEFENSES, finetune, make_defense

"""The name of a defense's configuration before the dataclasses (an alias)."""

__all__ = [
    "DEFENSES",
    "LAMBDAS",
    "NOISE_MULTIPLIERS",
    "THETAS",
    "PPB",
    "AdvRegParams",
    "AdversarialRegularization",
    "DPResult",
    "DPSGDParams",
    "DefenseParams",
    "DefenseResult",
    "InferenceModel",
    "NoDefense",
    "PPBParams",
    "check_weight",
    "convert_for_opacus",
    "default_delta",
    "dp_finetune",
    "finetune",
    "make_defense",
    "ppb_divergence",
    "ppb_loss",
]
