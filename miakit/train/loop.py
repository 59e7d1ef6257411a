"""The one training loop, :func:`fit`, with early stopping and resumable checkpoints.

Victims, shadows, post-pruning fine-tuning and the defenses all train through
:func:`fit` (PAPER.md, "Models and training"): Adam (lr 1e-3, weight decay 5e-4),
batch 128, early stopping on dev accuracy as the authors count it (patience 5: stop
after 6 epochs without improvement), the best-dev checkpoint restored at the end (never
the un-fine-tuned pruned model: ``keep_initial=False``). No LR schedule, no augmentation.

Speed (DESIGN.md, "Speed"): the whole dataset sits on the training device as tensors
and batches are gathered by index from a seeded permutation, so there are no DataLoader
workers and no per-sample Python. The step never calls ``.item()``; losses are
accumulated on the device and read once per epoch. On CUDA the forward runs under bf16
autocast and convnets use channels_last.

Resuming: with ``checkpoint=`` the whole training state is written after every epoch
(:func:`save_checkpoint`, atomic, tensors and plain containers only) and a killed run
continues from it (:func:`load_checkpoint`, ``torch.load(weights_only=True)``, never
unrestricted pickle), so a kill loses at most one epoch and the result is identical to
an uninterrupted run. An objective with state of its own (adversarial regularisation's
inference model) takes part through ``state_dict()`` / ``load_state_dict(state)``
(:class:`StatefulObjective`). DP-SGD's loop (:mod:`miakit.defenses`) uses the same
helpers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from miakit._util import as_model_input, progress_bar, resolve_device
from miakit.checkpoint import (
    check_same_run,
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)
from miakit.data import Data
from miakit.models import is_convnet
from miakit.train.config import Objective, TrainConfig, cross_entropy
from miakit.train.evaluate import autocast, dev_accuracy
from miakit.train.stopping import EarlyStopping

__all__ = [
    "EarlyStopping",
    "FitResult",
    "StatefulObjective",
    "batches",
    "check_same_run",
    "fit",
    "load_checkpoint",
    "make_optimizer",
    "prepare",
    "restore_rng_state",
    "rng_state",
    "save_checkpoint",
    "seed_everything",
    "train_epoch",
]


@dataclass
class FitResult:
    """What :func:`fit` did.

    Attributes:
        best_epoch: 1-based epoch whose weights were kept: the best-dev one, or the last
            one with ``TrainConfig.restore_best=False`` (0 = the initial ones, only
            possible with ``keep_initial=True``).
        best_dev_acc: dev accuracy of the kept weights.
        epochs_run: epochs actually trained before stopping.
        history: one dict per epoch: ``epoch``, ``train_loss``, ``dev_acc``.
        stopped_early: whether patience ran out before ``epochs``.
    """

    best_epoch: int
    best_dev_acc: float
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (dropout, init) and return a CPU generator for batch order."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def prepare(model: nn.Module, device: torch.device) -> nn.Module:
    """Move ``model`` to ``device``; convnets go channels_last.

    channels_last is the fast layout for cuDNN on CUDA and for oneDNN on the CPU too
    (measured: a small_cnn training step 1.5x faster on one CPU thread).
    """
    model.to(device)
    if is_convnet(model):
        model.to(memory_format=torch.channels_last)
    return model


def batches(
    n: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> Iterator[Tensor]:
    """Index tensors of one shuffled epoch (last partial batch kept), on ``device``."""
    perm = torch.randperm(n, generator=generator).to(device)
    yield from perm.split(batch_size)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam with the paper's settings (PAPER.md, "Models and training")."""
    params = [p for p in model.parameters() if p.requires_grad]
    # the fused kernel updates every parameter in one call (measured 10% faster per step
    # on the quick profile's MLP); same update rule as the default implementation
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


def train_epoch(
    model: nn.Module,
    objective: Objective,
    opt: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    order: Iterable[Tensor],
) -> Tensor:
    """One epoch of :func:`fit`'s step over the index batches ``order``; no host sync.

    Per batch: gather ``x[idx], y[idx]`` on the device, the objective under
    :func:`~miakit.train.evaluate.autocast` (bf16 on CUDA), backward, optimizer step.
    Returns the summed (not averaged) loss over the epoch as a 0-d float32 tensor on
    ``y``'s device, for the caller to read once. ``model`` may be a compiled wrapper
    of the module (``benchmarks/gpu_resnet18.py`` times it both ways).
    """
    device = y.device
    model.train()
    total = torch.zeros((), device=device)
    for idx in order:
        with autocast(device):
            loss = objective(model, x[idx], y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach().float() * idx.numel()
    return total


@runtime_checkable
class StatefulObjective(Protocol):
    """An objective whose own state must survive a resumed :func:`fit`.

    Besides being an :class:`~miakit.train.Objective`, it returns its state (tensors,
    numbers, strings, ``None`` and containers of them: what ``weights_only`` loading
    reads) and takes it back; :func:`fit` checkpoints it, e.g. adversarial
    regularisation's game (:class:`miakit.defenses.AdversarialRegularization`).
    """

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


# the name fit calls (tests interrupt a run by patching it)
_save_checkpoint = save_checkpoint


_HISTORY_KEYS = ("epoch", "train_loss", "dev_acc")


def fit(
    model: nn.Module,
    train: Data,
    dev: Data,
    cfg: TrainConfig,
    *,
    objective: Objective | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    checkpoint: str | Path | None = None,
    optimizer_factory: Callable[[nn.Module, TrainConfig], torch.optim.Optimizer] | None = None,
    desc: str = "train",
    keep_initial: bool = True,
) -> FitResult:
    """Train ``model`` in place with early stopping; keep the best-dev (or last) weights.

    PAPER.md, "Models and training": Adam lr 1e-3, weight decay 5e-4, batch
    128, early stopping on dev accuracy (stop once the non-improving epochs
    exceed ``cfg.patience``: :class:`EarlyStopping`), keep the best dev
    checkpoint, no LR schedule, no augmentation. The same loop fine-tunes
    pruned models (pruning masks are forward pre-hooks, so they stay applied;
    ``keep_initial=False``) and runs the defenses through ``objective``.

    Args:
        model: the network; trained in place and left in eval mode holding the
            best-dev weights (the last epoch's with ``cfg.restore_best=False``).
        train: training data (moved whole to ``device``).
        dev: dev data for early stopping.
        cfg: hyper-parameters.
        objective: loss ``(model, x, y) -> scalar``; cross-entropy by default. A
            :class:`StatefulObjective` has its state checkpointed too.
        device: ``"auto"``/``None`` (CUDA if available), ``"cpu"``, ``"cuda"``...
        progress: show a tqdm bar over epochs.
        checkpoint: optional file; the full training state (weights, optimizer,
            batch-order generator, torch's RNG (and CUDA's on CUDA), early-stopping
            state with the best weights, history, and a stateful objective's state)
            is saved there after every epoch, atomically and as tensors only, and a
            killed run resumes from it: at most one epoch is lost and, on the same
            device, the result is identical to an uninterrupted run. It is deleted
            when training ends (a concurrent run may have deleted it already).
        optimizer_factory: replaces the Adam optimizer (e.g. for tests).
        desc: label of the progress bar.
        keep_initial: whether the initial weights count as epoch 0. ``False`` for
            post-pruning fine-tuning (PAPER.md, "Pruning": a fine-tuned epoch is always
            kept, never the un-fine-tuned pruned model). A checkpoint records it.

    Returns:
        A :class:`FitResult`.

    Raises:
        ValueError: if ``train`` or ``dev`` is empty.
        RuntimeError: if ``checkpoint`` is unreadable, was written by a run with
            another ``cfg`` or data size, or lacks the state of a stateful
            ``objective`` (delete it to restart).

    Example:
        >>> result = fit(model, train, dev, TrainConfig(epochs=30))  # doctest: +SKIP
    """
    if len(train) == 0 or len(dev) == 0:
        raise ValueError(f"fit needs non-empty train and dev sets, got {len(train)} and {len(dev)}")
    dev_ = resolve_device(device)
    objective = objective or cross_entropy
    stateful = isinstance(objective, StatefulObjective)
    gen = seed_everything(cfg.seed)
    prepare(model, dev_)
    x, y = as_model_input(train.x, dev_), train.y.to(dev_)
    dx, dy = as_model_input(dev.x, dev_), dev.y.to(dev_)
    opt = (optimizer_factory or make_optimizer)(model, cfg)

    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    stopper = EarlyStopping(cfg.patience, keep_initial=keep_initial, restore_best=cfg.restore_best)
    start_epoch = 0
    history: list[dict[str, float]] = []
    run = {**asdict(cfg), "n_train": len(train), "n_dev": len(dev)}
    run["keep_initial"] = keep_initial
    state = load_checkpoint(ckpt_path) if ckpt_path is not None else None
    if state is not None:
        check_same_run(ckpt_path, state, run)
        if stateful and state.get("objective") is None:
            raise RuntimeError(
                f"training checkpoint {ckpt_path} holds no state of the objective "
                f"{objective!r}, so the run cannot resume exactly; delete it to restart that run"
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        restore_rng_state(state, dev_)
        if stateful:
            objective.load_state_dict(state["objective"])
        start_epoch = int(state["epoch"])
        stopper = EarlyStopping.from_state(cfg.patience, state, cfg.restore_best)
        history = [
            {**dict(zip(_HISTORY_KEYS, row, strict=True)), "epoch": int(row[0])}
            for row in state["history"].tolist()
        ]
    elif keep_initial:
        stopper.update(0, float(dev_accuracy(model, dx, dy)), model)

    bar = progress_bar(progress, cfg.epochs, start_epoch, desc)
    stopped_early = False
    epoch = start_epoch
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        if stopper.should_stop:
            stopped_early, epoch = True, epoch - 1
            break
        total = train_epoch(
            model, objective, opt, x, y, batches(len(train), cfg.batch_size, gen, dev_)
        )
        acc = float(dev_accuracy(model, dx, dy))  # one host sync per epoch
        history.append({"epoch": epoch, "train_loss": float(total) / len(train), "dev_acc": acc})
        stopper.update(epoch, acc, model)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(dev_acc=f"{acc:.3f}", best=f"{stopper.best_acc:.3f}")
        if ckpt_path is not None:
            _save_checkpoint(
                ckpt_path,
                {
                    "run": run,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "generator": gen.get_state(),
                    **rng_state(dev_),
                    "objective": objective.state_dict() if stateful else None,
                    "epoch": epoch,
                    **stopper.state(),
                    "history": torch.tensor(
                        [[h[k] for k in _HISTORY_KEYS] for h in history], dtype=torch.float64
                    ),
                },
            )
    if bar is not None:
        bar.close()
    stopper.restore(model)
    if ckpt_path is not None:
        ckpt_path.unlink(missing_ok=True)  # a concurrent run of the same key may have won
    return FitResult(*stopper.kept(history), epoch, history, stopped_early)
