"""DP-SGD fine-tuning with Opacus, a baseline defense (PAPER.md, "The defense").

Per-sample clipping (``max_grad_norm``, the paper's 1.0) and Gaussian noise
(``noise_multiplier``, swept over :data:`NOISE_MULTIPLIERS`) with Poisson sampling, the
halved schedule with early stopping, and epsilon from Opacus's RDP accountant for every
run. The authors' DP fine-tuning ran far too long, in eval mode, and never reported
epsilon; this one does not copy that.

Example:
    >>> res = DPSGDParams(noise_multiplier=1.0).finetune(pruned, train, dev, cfg)  # doctest: +SKIP
    >>> res.epsilon, res.delta  # doctest: +SKIP
    (7.9, 1e-05)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from miakit._util import resolve_device
from miakit.data import Data
from miakit.defenses._dp_loop import DPResult, dp_train
from miakit.defenses._masks import check_masks_kept, masked_names
from miakit.defenses.base import DefenseParams, DefenseResult, check_weight
from miakit.prune import reapply_masks, strip_masks
from miakit.train import TrainConfig, seed_everything

__all__ = [
    "NOISE_MULTIPLIERS",
    "DPResult",
    "DPSGDParams",
    "convert_for_opacus",
    "default_delta",
    "dp_finetune",
]

NOISE_MULTIPLIERS: tuple[float, ...] = (0.01, 0.1, 1.0)
"""DP-SGD's noise-multiplier sweep (PAPER.md, "The defense"); clip norm 1.0."""


@dataclass(frozen=True)
class DPSGDParams(DefenseParams):
    """DP-SGD's options (PAPER.md, "The defense").

    Attributes:
        noise_multiplier: sigma, finite and > 0 (sweep :data:`NOISE_MULTIPLIERS`).
        max_grad_norm: per-sample clipping norm C, finite and > 0 (paper: 1.0).
        delta: target delta, a float in (0, 1); ``None``: :func:`default_delta` of the
            training-set size.

    Raises:
        ValueError: at construction, on any invalid option.
    """

    name: ClassVar[str] = "dpsgd"
    title: ClassVar[str] = "DP-SGD"

    noise_multiplier: float = 1.0
    max_grad_norm: float = 1.0
    delta: float | None = None

    def __post_init__(self) -> None:
        nm = check_weight("noise_multiplier", self.noise_multiplier, positive=True)
        object.__setattr__(self, "noise_multiplier", nm)
        c = check_weight("max_grad_norm", self.max_grad_norm, positive=True)
        object.__setattr__(self, "max_grad_norm", c)
        d = self.delta
        if d is not None and not (isinstance(d, float) and 0.0 < d < 1.0):
            raise ValueError(f"delta={d!r} is invalid: expected None or a float in (0, 1)")

    def objective(self, dev: Data, num_classes: int) -> None:
        """Not available: DP-SGD changes the optimizer, not the loss.

        Raises:
            ValueError: always; fine-tune with :meth:`finetune` instead.
        """
        raise ValueError(
            "defense 'dpsgd' has no objective (it changes the optimizer, not the loss); "
            "run it with DPSGDParams.finetune or miakit.defenses.finetune"
        )

    def finetune(
        self,
        model: nn.Module,
        train: Data,
        dev: Data,
        cfg: TrainConfig,
        *,
        device: str | torch.device | None = None,
        progress: bool = False,
        checkpoint: str | Path | None = None,
    ) -> DefenseResult:
        """Fine-tune ``model`` with DP-SGD (:func:`dp_finetune`); pruned entries stay zero.

        Use ``result.model`` afterwards: a converted copy when Opacus had to replace
        BatchNorm (see :meth:`rebuild`); a mask on a replaced BatchNorm goes with it.
        ``checkpoint`` is :func:`dp_finetune`'s per-epoch checkpoint (resume after a kill).

        Raises:
            RuntimeError: if a mask was lost or a pruned entry became non-zero.
        """
        before = {(q, t): type(model.get_submodule(q)) for q, t in masked_names(model)}
        dp = dp_finetune(
            model,
            train,
            dev,
            cfg,
            device=device,
            progress=progress,
            checkpoint=checkpoint,
            **self.params(),
        )
        # a module Opacus replaced (a masked BatchNorm) takes its mask with it
        kept = {
            (q, t) for (q, t), kind in before.items() if type(dp.model.get_submodule(q)) is kind
        }
        check_masks_kept(dp.model, kept)
        return DefenseResult(
            name=self.name,
            params=self.params(),
            epochs_run=dp.epochs_run,
            best_dev_acc=dp.best_dev_acc,
            epsilon=dp.epsilon,
            delta=dp.delta,
            converted=list(dp.converted),
            best_epoch=dp.best_epoch,
            stopped_early=dp.stopped_early,
            history=dp.history,
            model=dp.model,
        )

    def rebuild(self, model: nn.Module) -> nn.Module:
        """``model`` as DP-SGD trains it: :func:`convert_for_opacus` (BatchNorm -> GroupNorm).

        A cached DP model's ``state_dict`` loads into the result; a model that needs no
        conversion is returned as is.
        """
        return convert_for_opacus(model)[0]


def default_delta(n_train: int) -> float:
    """The default DP delta: ``1/n_train`` rounded down to a power of ten, at most ``1e-5``.

    ``delta = min(1e-5, 10 ** -ceil(log10(n_train)))``: 1e-5 for the quick profile and
    CIFAR-10's 13500 training samples, 1e-6 from 100001 samples up. It is always
    ``<= 1/n_train``, the usual requirement for a meaningful guarantee.
    """
    if n_train < 1:
        raise ValueError(f"default_delta needs n_train >= 1, got {n_train}")
    return min(1e-5, 10.0 ** -math.ceil(math.log10(n_train)))


def convert_for_opacus(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """An Opacus-compatible version of ``model`` and the list of modules converted.

    BatchNorm cannot be trained with per-sample gradients; Opacus's
    ``ModuleValidator.fix`` replaces it by GroupNorm, as Opacus recommends. A model
    that needs nothing is returned as is (``[]``); otherwise a converted copy.
    """
    from opacus.validators import ModuleValidator

    was_training = model.training
    model.train()  # Opacus validates train-mode models only; an eval-mode one is not an error
    try:
        if ModuleValidator.is_valid(model):
            return model, []
        fixed = ModuleValidator.fix(model)
    finally:
        model.train(was_training)
    fixed.train()  # a copy: BatchNorm -> GroupNorm(gcd(32, C), C)
    before = dict(model.named_modules())
    converted = []
    for name, new in fixed.named_modules():
        old = before.get(name)
        if old is not None and type(old) is not type(new):
            desc = repr(new).split("\n")[0]
            desc = re.sub(r", eps=.*\)$", ")", desc)
            converted.append(f"{name}: {type(old).__name__} -> {desc}")
    errors = ModuleValidator.validate(fixed, strict=False)
    if errors:
        raise ValueError(
            f"Opacus cannot train this model even after ModuleValidator.fix: {errors}; "
            "replace the listed modules by DP-compatible ones (see opacus.validators)"
        )
    return fixed, converted


def dp_finetune(
    model: nn.Module,
    train: Data,
    dev: Data,
    cfg: TrainConfig,
    *,
    noise_multiplier: float,
    max_grad_norm: float = 1.0,
    delta: float | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    checkpoint: str | Path | None = None,
) -> DPResult:
    """Fine-tune a (pruned) model with DP-SGD (Opacus) and report its epsilon.

    PAPER.md, "The defense", DP-SGD baseline (clip 1.0, noise multiplier in
    :data:`NOISE_MULTIPLIERS`). Done properly, unlike the authors' version (which ran
    far too long, in eval mode, and never reported epsilon):

    - Opacus's ``PrivacyEngine.make_private`` with Poisson sampling (each training
      sample joins each step with probability ``q = 1/ceil(n/batch_size)``, so the
      expected batch is ``cfg.batch_size``), per-sample clipping to ``max_grad_norm``
      and Gaussian noise ``noise_multiplier * max_grad_norm``; the optimizer is Adam
      with ``cfg``'s lr and weight decay. The sampled batches are index tensors; the
      data stay on the device. Float32 throughout (no autocast).
    - The model is in train mode while training, eval mode for dev accuracy.
    - Early stopping on dev accuracy with ``cfg.patience``, best-dev weights kept, as
      :func:`miakit.train.fit` (``cfg`` is normally the halved fine-tuning schedule).
      Model selection on the dev split is post-processing of DP outputs.
    - epsilon at ``delta`` is computed with Opacus's RDP accountant (searching extra
      orders) over EVERY step run, after every epoch and at the end. The PRV accountant
      is not used: at the paper's small noise multipliers (0.1, 0.01) it overflows or
      tries to allocate tens of GiB. At 0.01 the RDP epsilon is astronomically large:
      such a run carries no meaningful formal guarantee, and the number says so.

    Models Opacus cannot train (BatchNorm) are converted with
    ``opacus.validators.ModuleValidator.fix`` (BatchNorm -> GroupNorm with
    ``gcd(32, C)`` groups and fresh affine parameters; running statistics are lost) and
    the conversions are listed in ``converted``. The converted model is a copy: the input
    is then left untouched and ``result.model`` is the one trained. Without conversion
    the input is trained in place (``result.model is model``).

    Pruned models: ``torch.nn.utils.prune`` reparametrisations (``weight_orig`` and
    ``weight_mask``) are made permanent for training, the masks are re-imposed on the
    weights after every optimizer step (the noisy gradient is dense), so pruned weights
    stay exactly zero, and the reparametrisation is re-installed at the end. Structurally
    pruned (smaller) models need nothing special.

    Args:
        model: the pruned model to fine-tune.
        train: the training set (the members; its size sets ``q`` and ``delta``).
        dev: dev data for early stopping.
        cfg: schedule and Adam settings; ``cfg.seed`` seeds the sampling and the noise
            (torch's PRNG, not a cryptographic one: a research setting).
        noise_multiplier: sigma, finite and > 0 (paper: 0.01, 0.1, 1).
        max_grad_norm: per-sample clipping norm C (paper: 1.0), finite and > 0.
        delta: target delta; default :func:`default_delta` of ``len(train)``.
        device: ``None``/``"auto"``, ``"cpu"``, ``"cuda"``...
        progress: show a tqdm bar over epochs.
        checkpoint: optional file; after every epoch the whole state is saved there
            (atomically, tensors and plain values only): the working model, the
            optimizer, the Poisson sampler's and the noise generators, torch's RNG,
            early stopping with the best weights, the step count, the history and the
            RDP accountant's history. A killed run resumes from it, losing at most one
            epoch, and ends with the same weights and the same epsilon as an
            uninterrupted run (on the same device). Deleted when training ends.

    Returns:
        A :class:`DPResult`; ``result.model`` is left in eval mode with the best-dev
        weights.

    Raises:
        ValueError: on a non-positive or non-finite noise multiplier, clip norm or
            delta, empty data, or a model Opacus cannot handle even after conversion.
        RuntimeError: if ``checkpoint`` is unreadable or was written by another run
            (other ``cfg``, data sizes or DP options; delete it to restart).
    """
    params = DPSGDParams(noise_multiplier, max_grad_norm, delta)
    noise_multiplier, max_grad_norm = params.noise_multiplier, params.max_grad_norm
    if len(train) == 0 or len(dev) == 0:
        raise ValueError(
            f"dp_finetune needs non-empty train and dev sets, got {len(train)} and {len(dev)}"
        )
    delta = default_delta(len(train)) if params.delta is None else params.delta

    dev_ = resolve_device(device)
    gen = seed_everything(cfg.seed)
    work, converted = convert_for_opacus(model)
    work.to(dev_)
    masks = strip_masks(work)  # on the copy when converted: the input stays intact
    try:
        return dp_train(
            work,
            train,
            dev,
            cfg,
            masks=masks,
            converted=converted,
            gen=gen,
            device=dev_,
            noise_multiplier=noise_multiplier,
            max_grad_norm=max_grad_norm,
            delta=delta,
            progress=progress,
            checkpoint=Path(checkpoint) if checkpoint is not None else None,
        )
    finally:
        reapply_masks(work, masks)
        work.eval()
