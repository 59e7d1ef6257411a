"""Pruning methods, mask bookkeeping, sparsity accounting and compaction.

PAPER.md, "Pruning": one-shot pruning of the best checkpoint with one of four methods,
then fine-tuning on the same training data for half the training epochs (same optimizer,
early stopping); default sparsity 0.7, sweeps over roughly 0.5-0.9.

Every method is a plain function ``method(model, sparsity, ...) -> model`` that prunes
``model`` in place with :mod:`torch.nn.utils.prune` masks, like ``prune.l1_unstructured``:
each pruned tensor ``w`` becomes a parameter ``w_orig``, a buffer ``w_mask`` and a forward
pre-hook that recomputes ``w = w_orig * w_mask`` before every forward. Pruned entries are
therefore exactly zero during and after fine-tuning, whatever the optimizer does to
``w_orig``, and the ``state_dict`` carries the masks.

    >>> model = build_model("resnet18", 10, (3, 32, 32))  # doctest: +SKIP
    >>> prune_model(model, "l1_unstructured", 0.7)        # doctest: +SKIP
    >>> finetune(model, train, dev, train_cfg.halved())   # doctest: +SKIP
    >>> round(sparsity_report(model, (3, 32, 32)).sparsity, 3)  # doctest: +SKIP
    0.7

Methods (:data:`PRUNERS`):

- ``l1_unstructured``: magnitude pruning, the same sparsity in every Conv/Linear weight
  (layer-wise, the paper's default) or one global threshold (``scope="global"``).
- ``l1_structured`` / ``l2_structured``: filter pruning of every ``nn.Conv2d`` by the
  L1/L2 norm of each output filter (Li et al. 2017).
- ``slimming``: network slimming (Liu et al. 2017), channels ranked by ``|gamma|`` of the
  BatchNorm layers, globally across layers. The pipeline prunes a model trained with
  :func:`slimming_penalty` and Liu et al.'s optimizer first (:func:`sparsity_training`,
  ``ExperimentConfig.slimming_lambda``; 0: the paper's plain model, which can collapse).

Rounding and the realised sparsity: a layer of ``n`` weights (filters, channels) loses
``min(round(s * n), n - 1)`` of them, ``round`` being Python's (half to even), as in
``torch.nn.utils.prune``; at least one weight, filter or channel survives in every layer
so that no layer becomes constant. The realised sparsity thus differs from the requested
``s`` only by rounding, which bounds it per method (``N`` = weights or channels of the
smallest layer unless said otherwise):

- ``l1_unstructured`` (layer): every layer exactly ``round(s * n) / n``, so
  ``|realised - s| <= 0.5 / N`` for each layer and over all Conv/Linear weights.
- ``l1_unstructured`` (global): exactly ``round(s * N_total)`` zero weights.
- ``l1_structured``/``l2_structured``: every conv exactly ``round(s * C)`` zero filters,
  so the fraction of zero conv weights is within ``0.5 / C_min`` of ``s``. The final
  classifier (a ``Linear``) is not pruned, so the fraction over *all* Conv/Linear
  weights is below ``s`` by the classifier's share.
- ``slimming`` (global): exactly ``round(s * C_total)`` zero channels over all BatchNorm
  layers (fewer only when keeping one channel per layer forbids it).

The kit's choices where the authors' code (NNI 2.x pruners) differs, each documented at
the function: filter pruning also masks the BatchNorm channel that normalises a pruned
filter (``mask_bn=True``), so a pruned filter's feature map is exactly zero, as when the
filter is physically removed; NNI masked only the conv (``mask_bn=False`` reproduces it)
and rounded the count down instead of to nearest.

Beyond the paper: :func:`compact` removes the zeroed filters and channels physically
(Torch-Pruning's ``DependencyGraph``), and :func:`compaction_report` measures the gain.

Where things live (one concept per module):

- :mod:`miakit.prune.methods`: the magnitude methods (L1 unstructured, L1/L2
  structured), each a masks function (the :class:`Pruner` protocol) under an in-place
  function; :func:`check_sparsity`.
- :mod:`miakit.prune.slimming`: network slimming and :func:`slimming_penalty`.
- :mod:`miakit.prune.registry`: :data:`PRUNERS` and :func:`prune_model`.
- :mod:`miakit.prune.masks`: :func:`is_pruned`, :func:`apply_masks`,
  :func:`make_permanent`, :func:`restore_masks`, :func:`strip_masks`,
  :func:`reapply_masks` and reading a masked model.
- :mod:`miakit.prune.sparsity`: :class:`SparsityReport`, :func:`sparsity_report`.
- :mod:`miakit.prune.channels`: :func:`channel_sparsity`, :func:`macs`,
  :func:`macs_left` and :func:`structured_sparsity` (channels and MACs left, which
  weight sparsity misses for filter pruning and slimming).
- :mod:`miakit.prune.compact`: :func:`compact`, :class:`CompactionReport`,
  :func:`compaction_report`.

Post-pruning fine-tuning (plain or defended) is :func:`miakit.defenses.finetune`.

Note:
    After a forward pass with autograd on, a masked module's ``weight`` is a non-leaf
    tensor, and ``copy.deepcopy`` of the model fails (a ``torch.nn.utils.prune``
    limitation). ``defenses.finetune`` and :func:`compact` refresh the masked tensors without
    autograd, which makes the model deep-copyable again.
"""

from __future__ import annotations

from miakit.prune.channels import channel_sparsity, macs, macs_left, structured_sparsity
from miakit.prune.compact import CompactionReport, compact, compaction_report
from miakit.prune.masks import (
    Masks,
    apply_masks,
    effective_parameters,
    effective_tensor,
    is_pruned,
    make_permanent,
    masked_tensors,
    reapply_masks,
    refresh_masked_tensors,
    restore_masks,
    strip_masks,
)
from miakit.prune.methods import (
    Pruner,
    check_sparsity,
    l1_structured,
    l1_structured_masks,
    l1_unstructured,
    l1_unstructured_masks,
    l2_structured,
    l2_structured_masks,
)
from miakit.prune.registry import PRUNERS, PrunerSpec, prune_model
from miakit.prune.slimming import (
    LiuSGD,
    SlimmingPenalty,
    slimming,
    slimming_masks,
    slimming_penalty,
    sparsity_training,
)
from miakit.prune.sparsity import SparsityReport, sparsity_report

__all__ = [
    "PRUNERS",
    "CompactionReport",
    "Masks",
    "Pruner",
    "PrunerSpec",
    "SlimmingPenalty",
    "SparsityReport",
    "apply_masks",
    "channel_sparsity",
    "check_sparsity",
    "compact",
    "compaction_report",
    "effective_parameters",
    "effective_tensor",
    "is_pruned",
    "l1_structured",
    "l1_structured_masks",
    "l1_unstructured",
    "l1_unstructured_masks",
    "l2_structured",
    "l2_structured_masks",
    "macs",
    "macs_left",
    "make_permanent",
    "masked_tensors",
    "LiuSGD",
    "prune_model",
    "reapply_masks",
    "refresh_masked_tensors",
    "restore_masks",
    "slimming",
    "slimming_masks",
    "slimming_penalty",
    "sparsity_report",
    "sparsity_training",
    "strip_masks",
    "structured_sparsity",
]
