"""DP-SGD fine-tuning with Opacus, a baseline defense (PAPER.md, "The defense").

Per-sample clipping (``max_grad_norm``, the paper's 1.0) and Gaussian noise
(``noise_multiplier``, swept over :data:`NOISE_MULTIPLIERS`) with Poisson sampling, the
halved schedule with early stopping, and epsilon from Opacus's RDP accountant for every
run. The authors' DP fine-tuning ran far too long, in eval mode, and never reported
epsilon; this one does not copy that. BatchNorm is frozen during DP fine-tuning
(:func:`convert_for_opacus`), so every pruned weight and channel stays exactly zero.

Example:
    >>> res = DPSGDParams(noise_multiplier=1.0).finetune(pruned, train, dev, cfg)  # doctest: +SKIP
    >>> res.epsilon, res.delta  # doctest: +SKIP
    (7.9, 1e-05)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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
    "FrozenBatchNorm1d",
    "FrozenBatchNorm2d",
    "FrozenBatchNorm3d",
    "convert_for_opacus",
    "default_delta",
    "dp_finetune",
    "unfreeze_batchnorm",
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
        """Fine-tune ``model`` in place with DP-SGD (:func:`dp_finetune`); pruned entries stay zero.

        ``result.model`` is ``model``, structure unchanged; ``checkpoint``: see there.

        Raises:
            RuntimeError: if a mask was lost or a pruned entry became non-zero.
        """
        before = masked_names(model)
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
        check_masks_kept(dp.model, before)
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
        """``model`` as is: BatchNorm is frozen only while DP-SGD trains, so a cached DP
        model's ``state_dict`` loads into a fresh model (after ``restore_masks``)."""
        return model


def default_delta(n_train: int) -> float:
    """The default DP delta: ``1/n_train`` rounded down to a power of ten, at most ``1e-5``.

    ``delta = min(1e-5, 10 ** -ceil(log10(n_train)))``: 1e-5 for the quick profile and
    CIFAR-10's 13500 training samples, 1e-6 from 100001 samples up. It is always
    ``<= 1/n_train``, the usual requirement for a meaningful guarantee.
    """
    if n_train < 1:
        raise ValueError(f"default_delta needs n_train >= 1, got {n_train}")
    return min(1e-5, 10.0 ** -math.ceil(math.log10(n_train)))


def _frozen_forward(self: nn.modules.batchnorm._BatchNorm, x: Tensor) -> Tensor:
    """Eval-mode BatchNorm whatever ``self.training``: running statistics, never updated."""
    self._check_input_dim(x)
    return F.batch_norm(
        x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
    )


class FrozenBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` with frozen statistics: :func:`convert_for_opacus`."""

    forward = _frozen_forward


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with frozen statistics: :func:`convert_for_opacus`."""

    forward = _frozen_forward


class FrozenBatchNorm3d(nn.BatchNorm3d):
    """``nn.BatchNorm3d`` with frozen statistics: :func:`convert_for_opacus`."""

    forward = _frozen_forward


_FROZEN: dict[type[nn.Module], type[nn.Module]] = {
    nn.BatchNorm1d: FrozenBatchNorm1d,
    nn.BatchNorm2d: FrozenBatchNorm2d,
    nn.BatchNorm3d: FrozenBatchNorm3d,
}
_THAWED = {frozen: plain for plain, frozen in _FROZEN.items()}


def _frozen_grad_sample(
    layer: nn.modules.batchnorm._BatchNorm, activations: list[Tensor], backprops: Tensor
) -> dict[nn.Parameter, Tensor]:
    """Per-sample gradients of a frozen BatchNorm's ``gamma`` and ``beta`` (for Opacus).

    ``y = gamma * x_hat + beta`` per channel with ``x_hat = (x - mean) / sqrt(var + eps)``
    from the running statistics: ``dL/dgamma_i = sum(g * x_hat)``, ``dL/dbeta_i = sum(g)``
    over sample ``i``'s positions.
    """
    x = activations[0]
    shape = (1, -1) + (1,) * (x.dim() - 2)
    mean, var = layer.running_mean.view(shape), layer.running_var.view(shape)
    out: dict[nn.Parameter, Tensor] = {}
    if layer.weight is not None and layer.weight.requires_grad:
        x_hat = (x - mean) * torch.rsqrt(var + layer.eps)
        out[layer.weight] = torch.einsum("ni...->ni", x_hat * backprops)
    if layer.bias is not None and layer.bias.requires_grad:
        out[layer.bias] = torch.einsum("ni...->ni", backprops)
    return out


@functools.cache
def _register_grad_sampler() -> None:
    from opacus.grad_sample import register_grad_sampler

    register_grad_sampler(list(_THAWED))(_frozen_grad_sample)


def unfreeze_batchnorm(model: nn.Module) -> nn.Module:
    """Undo :func:`convert_for_opacus` in place: every frozen BatchNorm is a plain one again."""
    for module in model.modules():
        plain = _THAWED.get(type(module))
        if plain is not None:
            module.__class__ = plain
    return model


def convert_for_opacus(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """Make ``model`` trainable by Opacus in place: freeze its BatchNorm layers.

    Returns ``model`` and one line per frozen layer (``[]`` when there is none);
    :func:`unfreeze_batchnorm` undoes it. BatchNorm in train mode mixes the samples of
    a batch, which per-sample clipping cannot bound. Each ``nn.BatchNorm1d/2d/3d``
    becomes, by a class swap that keeps its parameters, buffers, masks and
    ``state_dict``, a ``FrozenBatchNorm*d``: eval-mode BatchNorm in every mode,
    ``y = gamma * (x - mean) / sqrt(var + eps) + beta`` with the running statistics of
    the (non-private) training before, never updated; ``gamma`` and ``beta`` are
    trained with per-sample gradients (a grad sampler registered with Opacus).

    Why not Opacus's ``ModuleValidator.fix`` (BatchNorm -> ``GroupNorm(gcd(32, C), C)``
    with fresh ``gamma = 1``, ``beta = 0``): GroupNorm normalises a group of channels
    together and drops BatchNorm's learned affine, so a pruned channel (zero filter, or
    ``gamma = beta = 0`` after slimming) comes back as ``-mean_g / std_g`` of its group:
    after slimming no channel stayed zero, after filter pruning only the channels whose
    whole group was pruned did, and the swap also changed the function being fine-tuned.
    Folding BatchNorm into the conv before it would keep filter masks, but not the
    pre-activation BatchNorm of DenseNet (after a concatenation) nor slimming's masks on
    ``gamma``/``beta``. A frozen BatchNorm keeps every channel separate: a masked
    ``gamma``/``beta`` stays a zero channel, a zero filter stays zero, each mask stays on
    its tensor under its name, DP fine-tuning starts from exactly the pruned model's
    function, and the model keeps its structure, so a cached DP model loads into a fresh
    one (PAPER.md, "The defense": "a BatchNorm-to-GroupNorm swap must not revive pruned
    channels"). The frozen statistics are part of the non-private model before DP
    fine-tuning, which epsilon does not cover anyway.

    Raises:
        ValueError: a BatchNorm without running statistics (``track_running_stats=False``),
            or a module Opacus cannot train (the message lists them); ``model`` is then
            left as it was.
    """
    from opacus.utils.module_utils import trainable_modules
    from opacus.validators import ModuleValidator

    converted = []
    for name, module in model.named_modules():
        frozen = _FROZEN.get(type(module))
        if frozen is None:
            continue
        if module.running_mean is None or module.running_var is None:
            unfreeze_batchnorm(model)
            raise ValueError(
                f"DP-SGD freezes BatchNorm at its running statistics, but {name or 'the model'} "
                f"({type(module).__name__}) has none (track_running_stats=False); train the "
                "model with track_running_stats=True or replace that layer by GroupNorm"
            )
        converted.append(f"{name}: {type(module).__name__}({module.num_features}) frozen")
        module.__class__ = frozen
    _register_grad_sampler()
    was_training = model.training
    model.train()  # Opacus validates train-mode models only; an eval-mode one is not an error
    try:
        errors = [str(e) for e in ModuleValidator.validate(model, strict=False)]
    finally:
        model.train(was_training)
    # Opacus refuses trainable layers with buffers (state a private batch could update);
    # a frozen BatchNorm's statistics are constants, every other such layer is refused.
    constants = {id(b) for m in model.modules() if type(m) in _THAWED for b in m.buffers()}
    errors += [
        f"{name or 'the model'} ({type(m).__name__}) is trainable and holds buffers"
        for name, m in trainable_modules(model)
        if any(id(b) not in constants for b in m.buffers())
    ]
    if errors:
        unfreeze_batchnorm(model)
        raise ValueError(
            f"Opacus cannot train this model: {errors}; replace the listed modules by "
            "DP-compatible ones (see opacus.validators), and fold pruning masks in first "
            "(miakit.prune.strip_masks, as dp_finetune does)"
        )
    return model, converted


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
      epsilon covers this fine-tuning only, not the non-private training before it.

    BatchNorm is frozen while DP-SGD trains (:func:`convert_for_opacus`), listed in
    ``converted``; the model is trained in place, structure unchanged.

    Pruned models (every method of :data:`miakit.prune.PRUNERS`): the masks (on
    Conv/Linear weights and biases, BatchNorm ``gamma``/``beta``) are folded in for
    training, re-imposed after every optimizer step (the noisy gradient is dense), so
    pruned weights and channels stay exactly zero, and re-installed at the end.

    Post-pruning fine-tuning never keeps the un-fine-tuned pruned model (PAPER.md,
    "Pruning": the authors start from ``best_acc = 0``): the initial weights are not a
    candidate, the first DP epoch is always kept unless a later one beats it.

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
        A :class:`DPResult`; ``result.model`` (``model``) is left in eval mode with the
        best-dev weights.

    Raises:
        ValueError: on a non-positive or non-finite noise multiplier, clip norm or
            delta, empty data, or a model Opacus cannot handle (see
            :func:`convert_for_opacus`).
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
    work = model.to(dev_)
    masks = strip_masks(work)  # Opacus trains plain tensors; the masks are re-imposed
    try:
        work, converted = convert_for_opacus(work)
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
            unfreeze_batchnorm(work)
    finally:
        reapply_masks(work, masks)
        work.eval()
