"""The attack MLP and the paper's attack-model schedule: build, train, and score a network.

PAPER.md, "The eight existing attacks": NN, Top3-NN and NNCls train the *attack
MLP* (:class:`AttackMLP`: in-512-256-128-2, ReLU, dropout 0.2 after the first two
layers) with :func:`train_attack_model`: SGD (momentum 0.9, lr 1e-3, weight decay
5e-4), batch 128, 100 epochs, learning rate x0.1 at epochs 50 and 75
(:func:`lr_milestones`), cross-entropy. SAMIA's network is trained the same way
(PAPER.md, "SAMIA"). Both networks start from the authors' Xavier-normal
initialisation (:func:`attack_init_`; PAPER.md, "Models and training").
:func:`member_probability` reads a trained network's P(member). The attacks
themselves are in :mod:`miakit.attacks.neural`.

Training can checkpoint every epoch and resume after a kill with an identical result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miakit._util import progress_bar, resolve_device, seeded
from miakit.checkpoint import (
    check_same_run,
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)

__all__ = [
    "ATTACK_MOMENTUM",
    "ATTACK_WEIGHT_DECAY",
    "AttackMLP",
    "FastDropout",
    "attack_init_",
    "lr_milestones",
    "member_probability",
    "train_attack_model",
]

#: SGD momentum of the attack-model schedule (PAPER.md, "The eight existing attacks").
ATTACK_MOMENTUM = 0.9
#: SGD weight decay of the attack-model schedule (PAPER.md, "The eight existing attacks").
ATTACK_WEIGHT_DECAY = 5e-4

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _init_module(module: nn.Module) -> None:
    """The authors' ``weight_init`` on one module (see :func:`attack_init_`)."""
    if type(module) is nn.Linear or type(module) in _CONV_TYPES:
        if module.bias is not None:
            nn.init.zeros_(module.bias)
        nn.init.xavier_normal_(module.weight)
    elif "Norm" in type(module).__name__:
        weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
        if isinstance(weight, Tensor):
            nn.init.ones_(weight)
        if isinstance(bias, Tensor):
            nn.init.zeros_(bias)


@torch.no_grad()
def attack_init_(net: nn.Module) -> nn.Module:
    """The authors' initialisation of an attack network, in place (draws from torch's RNG).

    PAPER.md, "Models and training": the authors apply their ``weight_init`` to
    the attack networks too (NN attacks and SAMIA) with ``net.apply``: every
    ``nn.Linear`` and convolution gets Xavier-normal weights and zero biases;
    every normalisation layer (BatchNorm, LayerNorm) weight 1 and bias 0. Like
    theirs, the rule matches the layer's exact class (the authors compare class
    names), so the attention blocks' output projection (a ``Linear`` subclass)
    and packed input projection (a bare parameter) keep PyTorch's own init
    (Xavier-uniform input projection, zero biases), as in the authors' SAMIA.
    ``AttackMLP`` and :class:`~miakit.attacks.samia.SAMIANet` call it when built.

    Returns:
        ``net``, for chaining.
    """
    return net.apply(_init_module)


#: Resolution of :class:`FastDropout`'s CPU mask: a drop probability ``p`` is realised as
#: ``round(p * 2**16) / 2**16`` (0.2 -> 0.19999695), the kept values scaled to match.
_MASK_LEVELS = 1 << 16


class FastDropout(nn.Module):
    """Inverted dropout, as :class:`torch.nn.Dropout`, with a mask drawn 4x cheaper on the CPU.

    ``torch.nn.Dropout`` draws one 32-bit Mersenne-Twister number per element; on the
    CPU that drawing was a fifth of the quick profile's attack-training time (notebook
    00 under ``cProfile``: 49 s of 236 s). This layer draws 64 random bits per four
    elements (``random_`` over the whole int64 range, read as int16) and keeps an
    element when its 16 bits are at or above ``round(p * 2**16)`` of the 2**16 levels:
    drop probability ``round(p * 2**16) / 2**16`` (for 0.2, 0.19999695), kept values
    scaled by ``1 / (1 - that)``, so the expectation is exact. It draws from torch's
    global generator, so :func:`train_attack_model`'s forked, seeded, checkpointed RNG
    covers it. On other devices (CUDA) it is ``F.dropout``; in eval mode the identity.

    Args:
        p: drop probability, in [0, 1).
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p!r}")
        self.p = p

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        cut = min(round(self.p * _MASK_LEVELS), _MASK_LEVELS - 1)
        words = torch.empty((x.numel() + 3) // 4, dtype=torch.int64)
        words.random_(-(1 << 63), (1 << 63) - 1)  # from = int64 min: every bit uniform
        bits = words.view(torch.int16)[: x.numel()].view(x.shape)
        keep = bits >= cut - _MASK_LEVELS // 2  # int16 runs from -2**15
        return x * keep.to(x.dtype).mul_(_MASK_LEVELS / (_MASK_LEVELS - cut))


class AttackMLP(nn.Sequential):
    """The attack MLP: in-512-256-128-2, ReLU, dropout 0.2 after the first two layers.

    PAPER.md, "The eight existing attacks" (the network behind NN, Top3-NN and
    NNCls; SAMIA's ``mlp=True`` ablation uses it too). Initialised as the authors
    do (:func:`attack_init_`: Xavier-normal weights, zero biases), drawing from
    torch's global RNG (the attacks build it under their ``seed``).

    Args:
        in_features: Length of the per-sample feature vector.
        dropout: Dropout probability after the first two hidden layers.
    """

    def __init__(self, in_features: int, dropout: float = 0.2) -> None:
        if in_features < 1:
            raise ValueError(f"AttackMLP needs in_features >= 1, got {in_features}")
        super().__init__(
            nn.Linear(in_features, 512),
            nn.ReLU(),
            FastDropout(dropout),
            nn.Linear(512, 256),
            nn.ReLU(),
            FastDropout(dropout),
            nn.Linear(256, 128),
            nn.ReLU(),
            nn.Linear(128, 2),
        )
        attack_init_(self)


def lr_milestones(epochs: int) -> list[int]:
    """Epochs at which the attack-model learning rate drops x0.1.

    The paper's schedule is 100 epochs with drops at 50 and 75; shorter runs
    (the kit's smoke/quick profiles) keep the same shape, dropping at half and
    three quarters of ``epochs``. ``lr_milestones(100) == [50, 75]``.
    """
    return [m for m in sorted({round(epochs * 0.5), round(epochs * 0.75)}) if 0 < m < epochs]


def _as_float_tensor(features: Tensor | np.ndarray) -> Tensor:
    x = torch.as_tensor(features)
    if not torch.is_floating_point(x):
        x = x.float()
    return x.to(torch.float32)


def train_attack_model(
    net: nn.Module,
    features: Tensor | np.ndarray,
    membership: Tensor | np.ndarray,
    *,
    epochs: int = 100,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device | None = None,
    history: list[float] | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = False,
    desc: str = "fit attack",
) -> nn.Module:
    """Train a binary membership classifier with the paper's attack-model schedule.

    PAPER.md, "The eight existing attacks": SGD (momentum 0.9, weight decay
    5e-4), learning rate ``lr`` (1e-3) multiplied by 0.1 at epochs 50 and 75 of
    100 (:func:`lr_milestones` scales them for other ``epochs``), batch 128,
    cross-entropy on two logits (0 = non-member, 1 = member). SAMIA is trained
    the same way (PAPER.md, "SAMIA").

    The whole feature matrix lives on the device; each epoch's batches are
    gathered by index from a permutation drawn from a CPU generator seeded with
    ``seed`` (so the batch order is the same on every device), and the step
    never synchronises with the host. Dropout runs under a forked RNG seeded
    with ``seed``: on the CPU, the same inputs and seed give identical weights.
    A final batch of a single sample (``N % batch_size == 1``) is skipped,
    since BatchNorm (SAMIA) cannot train on one sample; the sample is in a
    different batch the next epoch.

    Args:
        net: The model to train, mapping ``(B, F)`` features to ``(B, 2)`` logits.
            Trained in place and moved to ``device``.
        features: ``(N, F)`` float features, one row per sample.
        membership: ``(N,)`` 0/1 labels, 1 = member.
        epochs: Number of passes over the data (paper: 100).
        batch_size: Minibatch size (paper: 128).
        lr: Initial SGD learning rate (paper: 1e-3).
        seed: Seeds the batch order and dropout.
        device: ``None``/``"auto"`` = CUDA when available, else CPU.
        history: If given, the mean training loss of each epoch is appended
            (read from the device once, after training).
        checkpoint: Optional file. After every epoch the training state (weights,
            SGD momentum, the LR scheduler, the batch-order generator, the forked
            dropout RNG, the epoch losses) is saved there atomically, tensors and
            plain values only; a call that finds it resumes from it, so a kill
            loses at most one epoch and, on the same device, the trained network
            is identical to an uninterrupted run's. Deleted when training ends.
            One written by a call with other data shapes or hyper-parameters is
            refused. Saving reads the state from the device once per epoch.
        progress: show a tqdm bar over the epochs, labelled ``desc``, with the
            epoch's mean loss as its postfix (read from the device once per epoch,
            only while the bar is shown).
        desc: the bar's label, e.g. ``"fit samia (l1_unstructured@0.7)"``.

    Returns:
        ``net``, trained, on ``device``, in eval mode.

    Raises:
        ValueError: If shapes disagree, labels are not 0/1, features are not
            finite, there are fewer than two samples, or ``batch_size < 2``.
        RuntimeError: If ``checkpoint`` is unreadable or from another training
            (delete it to restart).
    """
    if epochs < 0 or batch_size < 2 or not lr > 0:
        raise ValueError(
            f"need epochs >= 0, batch_size >= 2 and lr > 0; got {epochs}, {batch_size}, {lr}"
        )
    dev = resolve_device(device)
    x = _as_float_tensor(features)
    y = torch.as_tensor(membership).to(torch.int64)
    if x.dim() != 2 or y.shape != (x.shape[0],):
        raise ValueError(
            f"features must be (N, F) and membership (N,); got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"training an attack model needs at least 2 samples, got {n}")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("membership must hold only 0 (non-member) and 1 (member)")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("attack features contain NaN or inf; check the posteriors/sensitivity")
    x = x.to(dev)
    y = y.to(dev)
    net.to(dev).train()
    opt = torch.optim.SGD(
        net.parameters(), lr=lr, momentum=ATTACK_MOMENTUM, weight_decay=ATTACK_WEIGHT_DECAY
    )
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=lr_milestones(epochs), gamma=0.1)
    order = torch.Generator(device="cpu").manual_seed(seed)
    used = n - 1 if (n % batch_size == 1) else n
    epoch_losses: list[Tensor] = []
    ckpt = Path(checkpoint) if checkpoint is not None else None
    kind = "attack-model checkpoint"
    state = load_checkpoint(ckpt, kind) if ckpt is not None else None
    run = {
        "shape": tuple(x.shape),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
    }
    start = 0
    if state is not None:
        check_same_run(ckpt, state, run, kind, other="training")
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        order.set_state(state["order"])
        epoch_losses = list(state["losses"].to(dev).unbind())
        start = int(state["epoch"])
    # redrawn every epoch (mininterval=0): an epoch is long enough to show each one
    bar = progress_bar(progress, epochs, start, desc, unit="epoch", mininterval=0)
    with seeded(seed, dev):
        if state is not None:  # the forked RNG (dropout) as it was after epoch `start`
            restore_rng_state(state, dev)
        for epoch in range(start + 1, epochs + 1):
            perm = torch.randperm(n, generator=order).to(dev, non_blocking=True)
            total = torch.zeros((), device=dev)
            for idx in perm.split(batch_size):
                if idx.numel() < 2:
                    continue
                loss = F.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total = total + loss.detach() * idx.numel()
            sched.step()
            epoch_losses.append(total / used)
            if bar is not None:
                bar.set_postfix(loss=f"{float(epoch_losses[-1]):.4f}", refresh=False)
                bar.update(1)
            if ckpt is not None:
                _save_state(ckpt, run, epoch, net, opt, sched, order, epoch_losses, dev)
    if bar is not None:
        bar.close()
    net.eval()
    if ckpt is not None:
        ckpt.unlink(missing_ok=True)  # a concurrent run of the same key may have won
    if history is not None and epoch_losses:
        history.extend(torch.stack(epoch_losses).cpu().tolist())
    return net


def _save_state(
    path: Path,
    run: dict[str, Any],
    epoch: int,
    net: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    order: torch.Generator,
    losses: list[Tensor],
    dev: torch.device,
) -> None:
    """Write :func:`train_attack_model`'s state after ``epoch`` (1-based), atomically."""
    state = {
        "run": run,
        "epoch": epoch,
        "net": net.state_dict(),
        "optimizer": opt.state_dict(),
        # the milestones (a Counter) are rebuilt from `epochs`; the rest is plain values
        "scheduler": {k: v for k, v in sched.state_dict().items() if k != "milestones"},
        "order": order.get_state(),
        **rng_state(dev),
        "losses": torch.stack(losses).cpu(),
    }
    save_checkpoint(path, state)


@torch.inference_mode()
def member_probability(
    net: nn.Module,
    features: Tensor | np.ndarray,
    *,
    batch_size: int = 8192,
    progress: bool = False,
    desc: str = "score attack",
) -> np.ndarray:
    """Predicted P(member) of a trained attack model, as float64 numpy.

    The probability is the softmax of the two logits, computed in float64 from
    the logit difference so that confident scores stay distinct (matters for
    TPR at low FPR). The model is put in eval mode and run on its own device.

    Args:
        net: A trained attack model mapping ``(B, F)`` to ``(B, 2)`` logits.
        features: ``(N, F)`` features.
        batch_size: Rows per forward pass.
        progress: show a tqdm bar over the forward passes, labelled ``desc``.
        desc: the bar's label, e.g. ``"score samia (original)"``.

    Returns:
        ``(N,)`` float64 array in ``[0, 1]``.
    """
    net.eval()
    param = next(iter(net.parameters()), None)
    dev = param.device if param is not None else torch.device("cpu")
    x = _as_float_tensor(features)
    chunks = x.split(batch_size)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc=desc, unit="batch", leave=False)
    outs = [net(xb.to(dev)).double() for xb in chunks]
    if not outs:
        return np.zeros(0, dtype=np.float64)
    logits = torch.cat(outs)
    return torch.sigmoid(logits[:, 1] - logits[:, 0]).cpu().numpy()
