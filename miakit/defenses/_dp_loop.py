"""The DP-SGD training loop (Opacus) behind :func:`miakit.defenses.dpsgd.dp_finetune`.

PAPER.md, "The defense", DP-SGD baseline: Poisson sampling, per-sample clipping and
Gaussian noise through Opacus's ``PrivacyEngine``, early stopping on dev accuracy, and
epsilon from the RDP accountant after every epoch. With a checkpoint file every epoch's
end state is saved (with the accountant's history) and a killed run resumes exactly.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miakit.data import Data
from miakit.train import EarlyStopping, TrainConfig, dev_accuracy, make_optimizer
from miakit.train.loop import (
    check_same_run,
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)

__all__ = ["DPResult", "dp_train"]

#: RDP orders searched for the tightest (epsilon, delta) conversion: Opacus's defaults plus
#: orders near 1 (tight for small noise multipliers) and large ones (tight for large noise).
_RDP_ORDERS: list[float] = (
    [1.0 + x / 100.0 for x in range(1, 10)]
    + [1.0 + x / 10.0 for x in range(1, 100)]
    + [float(a) for a in range(12, 64)]
    + [64.0, 80.0, 96.0, 128.0, 192.0, 256.0]
)


@lru_cache(maxsize=64)
def _step_rdp(sample_rate: float, noise_multiplier: float) -> np.ndarray:
    """The RDP of one DP-SGD step at every order of :data:`_RDP_ORDERS` (Opacus).

    Opacus's ``compute_rdp`` is the one-step RDP times the steps, and its accountant
    recomputes it at every call: 0.12 s per epoch's epsilon, 40 s of the quick profile's
    defense notebook. Cached per (sample rate, noise), the epoch's epsilon is a product.
    """
    from opacus.accountants.analysis.rdp import compute_rdp

    one = compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=_RDP_ORDERS)
    return np.asarray(one, dtype=np.float64)


def rdp_epsilon(history: Sequence[tuple[float, float, int]], delta: float) -> float:
    """Epsilon at ``delta`` of an RDP accountant's ``(noise, sample rate, steps)`` history.

    What ``RDPAccountant.get_epsilon(delta, alphas=_RDP_ORDERS)`` returns, computed from
    the cached one-step RDP (:func:`_step_rdp`); 0 for an empty history.
    """
    from opacus.accountants.analysis.rdp import get_privacy_spent

    if not history:
        return 0.0
    rdp = sum(_step_rdp(float(q), float(sigma)) * steps for sigma, q, steps in history)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the")
        eps, _ = get_privacy_spent(orders=_RDP_ORDERS, rdp=rdp, delta=delta)
    return float(eps)


#: The columns of a DP run's history, in checkpoint order.
_HISTORY_KEYS = ("epoch", "train_loss", "dev_acc", "epsilon")


@dataclass
class DPResult:
    """What :func:`dp_finetune` did, with its privacy guarantee.

    Attributes:
        model: the trained model (the input object, trained in place).
        epsilon: epsilon of the whole DP fine-tuning run (every step taken, also those
            after the best epoch) at ``delta``, from Opacus's RDP accountant. It covers
            the DP fine-tuning only, not the non-private training and pruning before it.
        delta: the delta used.
        noise_multiplier: sigma of the Gaussian noise, in units of ``max_grad_norm``.
        max_grad_norm: per-sample gradient clipping norm.
        epochs_run: epochs trained before stopping.
        converted: BatchNorm layers frozen while training, as
            ``"name: BatchNorm2d(64) frozen"`` (see ``convert_for_opacus``).
        best_epoch: 1-based epoch whose weights were kept (never the initial ones; 0 only
            when no epoch ran).
        best_dev_acc: dev accuracy of the kept weights.
        history: one dict per epoch: ``epoch``, ``train_loss``, ``dev_acc``, ``epsilon``.
        stopped_early: whether patience ran out.
        steps: optimizer (noisy) steps taken.
        sample_rate: Poisson sampling rate ``q = 1 / ceil(n / batch_size)``.
        accountant: the privacy accountant (``"rdp"``).
    """

    model: nn.Module = field(repr=False)
    epsilon: float
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    epochs_run: int
    converted: list[str]
    best_epoch: int
    best_dev_acc: float
    history: list[dict[str, float]] = field(default_factory=list, repr=False)
    stopped_early: bool = False
    steps: int = 0
    sample_rate: float = 0.0
    accountant: str = "rdp"


def _generators(loader: Any, dp_opt: Any) -> dict[str, torch.Generator]:
    """The generators a DP run draws from, by checkpoint name.

    Opacus's ``DPDataLoader`` keeps the Poisson sampler's generator on its
    ``UniformWithReplacementSampler`` (``loader.batch_sampler.generator``); the loader's
    own ``generator`` seeds each epoch's iterator; the ``DPOptimizer`` keeps the noise
    generator as ``generator``. Here the first two are the same object, restored twice
    from the same state.
    """
    gens = {
        "sampler_generator": loader.batch_sampler.generator,
        "loader_generator": loader.generator,
        "noise_generator": dp_opt.generator,
    }
    missing = [name for name, g in gens.items() if g is None]
    if missing:  # an Opacus whose sampler draws from the global RNG: cannot resume exactly
        raise RuntimeError(f"DP-SGD checkpointing needs seeded generators, missing: {missing}")
    return gens


def dp_train(
    work: nn.Module,
    train: Data,
    dev: Data,
    cfg: TrainConfig,
    *,
    masks: Mapping[tuple[str, str], Tensor],
    converted: list[str],
    gen: torch.Generator,
    device: torch.device,
    noise_multiplier: float,
    max_grad_norm: float,
    delta: float,
    progress: bool,
    checkpoint: Path | None = None,
) -> DPResult:
    """Train ``work`` (masks stripped, on ``device``) with DP-SGD; see ``dp_finetune``.

    With ``checkpoint`` the state after every epoch is saved there (model, optimizer,
    generators, torch's RNG, early stopping, steps, history, the RDP accountant's
    ``(noise_multiplier, sample_rate, steps)`` history) and a run finding one resumes
    from it (one written by another run is refused); it is deleted once training has
    ended.
    """
    from opacus import GradSampleModule, PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    x, y = train.x.to(device), train.y.to(device)
    dx, dy = dev.x.to(device), dev.y.to(device)
    masked = [(getattr(work.get_submodule(q), t), m.to(device)) for (q, t), m in masks.items()]
    optimizer = make_optimizer(work, cfg)
    index_loader = DataLoader(
        TensorDataset(torch.arange(len(train))), batch_size=cfg.batch_size, generator=gen
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant="rdp")
    noise_gen = torch.Generator(device=device).manual_seed(cfg.seed)
    work.train()  # Opacus refuses eval-mode models (the pipeline hands over eval copies)
    # strict=False: the only buffers of trainable layers are frozen BatchNorm statistics,
    # constants that convert_for_opacus checked (make_private would refuse any buffer).
    gsm, dp_opt, poisson_loader = engine.make_private(
        module=GradSampleModule(work, strict=False),
        optimizer=optimizer,
        data_loader=index_loader,
        noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm,
        poisson_sampling=True,
        noise_generator=noise_gen,
    )
    generators = _generators(poisson_loader, dp_opt) if checkpoint is not None else {}

    def epsilon() -> float:
        return rdp_epsilon(engine.accountant.history, delta)

    # Never keep the un-fine-tuned pruned model (PAPER.md, "Pruning"): the initial
    # weights are no candidate (no update at epoch 0) and best_acc starts at -1, so the
    # first DP epoch is kept unless a later one beats it.
    stopper = EarlyStopping(cfg.patience, best_acc=-1.0, restore_best=cfg.restore_best)
    steps, start = 0, 0
    history: list[dict[str, float]] = []
    run = {
        **asdict(cfg),
        "n_train": len(train),
        "n_dev": len(dev),
        "noise_multiplier": noise_multiplier,
        "max_grad_norm": max_grad_norm,
        "delta": delta,
    }
    state = load_checkpoint(checkpoint) if checkpoint is not None else None
    if state is not None:
        check_same_run(checkpoint, state, run)
        work.load_state_dict(state["model"])
        dp_opt.load_state_dict(state["optimizer"])
        for name, g in generators.items():
            g.set_state(state[name])
        restore_rng_state(state, device)
        engine.accountant.load_state_dict(state["accountant"])
        start, steps = int(state["epoch"]), int(state["steps"])
        stopper = EarlyStopping(
            cfg.patience,
            best_acc=float(state["best_acc"]),
            best_epoch=int(state["best_epoch"]),
            stale=int(state["stale"]),
            best_state=state["best_model"],
            restore_best=cfg.restore_best,
        )
        history = [
            {**dict(zip(_HISTORY_KEYS, row, strict=True)), "epoch": int(row[0])}
            for row in state["history"].tolist()
        ]
    epoch = start
    stopped_early = False
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, initial=start, desc="dp-sgd", leave=False)
    try:
        with warnings.catch_warnings():
            # Opacus's full backward hook on the first layer; harmless (inputs need no grad).
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            for epoch in range(start + 1, cfg.epochs + 1):
                if stopper.should_stop:
                    stopped_early, epoch = True, epoch - 1
                    break
                gsm.train()
                total = torch.zeros((), device=device)
                for (idx,) in poisson_loader:  # Poisson-sampled training indices (CPU)
                    nb = idx.numel()
                    idx = idx.to(device, non_blocking=True)
                    out = gsm(x[idx])
                    # mean over the realised batch (Opacus rescales to per-sample grads);
                    # an empty batch still takes a noise-only step, as DP-SGD requires.
                    loss = F.cross_entropy(out, y[idx], reduction="sum") / max(nb, 1)
                    dp_opt.zero_grad(set_to_none=True)
                    loss.backward()
                    dp_opt.step()
                    with torch.no_grad():
                        for weight, mask in masked:
                            weight.mul_(mask)
                    total += loss.detach() * nb
                    steps += 1
                acc = float(dev_accuracy(work, dx, dy))
                history.append(
                    {
                        "epoch": epoch,
                        "train_loss": float(total) / len(train),
                        "dev_acc": acc,
                        "epsilon": epsilon(),
                    }
                )
                stopper.update(epoch, acc, work)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(dev_acc=f"{acc:.3f}", eps=f"{history[-1]['epsilon']:.3g}")
                if checkpoint is not None:
                    save_checkpoint(
                        checkpoint,
                        {
                            "run": run,
                            "model": work.state_dict(),
                            "optimizer": dp_opt.state_dict(),
                            **{name: g.get_state() for name, g in generators.items()},
                            **rng_state(device),
                            "accountant": engine.accountant.state_dict(),
                            "epoch": epoch,
                            "steps": steps,
                            "best_acc": stopper.best_acc,
                            "best_epoch": stopper.best_epoch,
                            "stale": stopper.stale,
                            "best_model": stopper.best_state,
                            "history": torch.tensor(
                                [[h[k] for k in _HISTORY_KEYS] for h in history],
                                dtype=torch.float64,
                            ),
                        },
                    )
    finally:
        if bar is not None:
            bar.close()
        gsm.to_standard_module()  # removes Opacus's hooks and per-sample attributes
    stopper.restore(work)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)  # a concurrent run of the same key may have won
    return DPResult(
        model=work,
        epsilon=epsilon(),
        delta=delta,
        noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm,
        epochs_run=epoch,
        converted=converted,
        best_epoch=stopper.kept(history)[0],
        best_dev_acc=stopper.kept(history)[1],
        history=history,
        stopped_early=stopped_early,
        steps=steps,
        sample_rate=float(poisson_loader.sample_rate),
    )
