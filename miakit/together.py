"""Many models of the pipeline trained at once: the :class:`TrainTogether` mixin.

Mixed into :class:`miakit.steps.ModelSteps` (whose data, roles, keys and store it uses):
:meth:`TrainTogether.prefetch` trains the missing models of several roles, the victim,
shadows and reference models and their pruned or defended copies, in one
:func:`miakit.train.fit_many` step (or
:meth:`~miakit.defenses.DefenseParams.finetune_many`), and caches each under the key
one-at-a-time training would give it, so the two paths share one cache. The results
equal one at a time up to float rounding (``tests/test_many.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from miakit.train import ModelData, batch_groups, batching_pays, fit_many
from miakit.variants import ORIGINAL, Variant

__all__ = ["TrainTogether"]


class TrainTogether:
    """Batched training of a :class:`~miakit.steps.ModelSteps`' models (a mixin).

    Attributes it reads from the steps: ``batch`` (``"auto"``, ``True`` or ``False``),
    ``trace``, ``store``, ``device``, ``progress``, ``config``, ``data``.
    """

    batch: bool | str
    trace: Any
    store: Any
    device: torch.device
    progress: bool
    config: Any
    data: Any

    def prefetch(self, roles: Sequence[str], variant: Variant = ORIGINAL) -> None:
        """Train the roles' missing models in ``variant`` together, when that pays.

        :func:`miakit.train.fit_many` trains them in one step, each then cached under its
        own key (results equal one at a time up to float rounding), when :attr:`batch`
        is True, or "auto" and :func:`~miakit.train.batching_pays`. A defense that
        cannot batch is left to :meth:`model`; nothing happens under a :attr:`trace`.
        The sparsity-trained base of a slimming variant (``ModelSteps.base``) trains one
        at a time (its penalty reads the BatchNorm modules, which ``fit_many`` stacks);
        the fine-tuning of the slimmed copies still batches.
        """
        if self.batch is False or self.trace is not None:
            return
        missing = [r for r in roles if not self.store.has("model", self._model_key(r, variant))]
        if len(missing) < 2:
            return
        if not variant.is_original:
            if not self._sparsity_trained(variant):  # slimming's L1-on-gamma base cannot
                self.prefetch(missing, ORIGINAL)  # batch: ``_pruned_start`` trains it alone
            train, dev, _ = self.role_data(missing[0])
            if not variant.defense.can_batch(train, dev):
                return
        if self.batch == "auto" and not batching_pays(self.new_model(), self.device, len(missing)):
            return
        splits = [self._split(r) for r in missing]  # sizes without copying the data
        sizes = [(len(s.train), len(s.dev)) for s in splits]
        for group in batch_groups(sizes):
            if len(group) > 1:
                self._train_together([missing[i] for i in group], variant)

    def _train_together(self, roles: list[str], variant: Variant) -> None:
        """One :func:`fit_many` (or ``finetune_many``) over ``roles``, each model then cached."""
        keys = [self._model_key(r, variant) for r in roles]
        data = [self.role_data(r) for r in roles]
        seeds = [self.role_seed(r) for r in roles]
        ckpt = self.store.scratch("model", {"together": keys}, "ckpt")
        desc = f"{'train' if variant.is_original else 'finetune'} {len(roles)} models"
        common = dict(device=self.device, progress=self.progress, checkpoint=ckpt, desc=desc)
        models = []
        for role, seed in zip(roles, seeds, strict=True):
            if variant.is_original:
                torch.manual_seed(seed)  # as _trained initialises it
                models.append(self.new_model())
            else:
                models.append(self._pruned_start(role, variant))
        splits = [self._split(r) for r in roles]
        rows = ModelData(
            self.data,
            *(torch.as_tensor(np.stack([getattr(s, p) for s in splits])) for p in ("train", "dev")),
        )
        if variant.is_original:
            results: list[Any] = fit_many(models, rows, self.config.train, seeds, **common)
        else:
            cfg = self.config.finetune_config
            results = variant.defense.finetune_many(models, rows, cfg, seeds, **common)
        infos = [
            self._info(m, r, d[0], d[2]) for m, r, d in zip(models, results, data, strict=True)
        ]
        for key, model, info in zip(keys, models, infos, strict=True):
            state = model.cpu().state_dict()
            self._cached("model", key, lambda s=state, i=info: (s, i))
