"""Training checkpoints: atomic writes, code-free reads, run identity and RNG state.

Every resumable loop (:func:`miakit.train.fit`, DP-SGD fine-tuning, the attack networks'
:func:`~miakit.attacks.attack_net.train_attack_model`) saves its state after each epoch
with :func:`save_checkpoint`, reads it back with :func:`load_checkpoint`
(``weights_only``: a planted file can hold no code), refuses another run's file with
:func:`check_same_run`, and carries torch's global RNG with :func:`rng_state` /
:func:`restore_rng_state`. This module imports only :mod:`miakit._util`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from miakit._util import atomic_write

__all__ = ["check_same_run", "load_checkpoint", "restore_rng_state", "rng_state", "save_checkpoint"]


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    """Write a training checkpoint atomically: readers see the old file or the whole new one.

    ``state`` holds tensors and plain containers only (see :func:`load_checkpoint`).
    """
    atomic_write(path, lambda tmp: torch.save(dict(state), tmp))


def load_checkpoint(path: Path, kind: str = "training checkpoint") -> dict[str, Any] | None:
    """A checkpoint written by :func:`save_checkpoint`, on the CPU; ``None`` if there is none.

    Read with ``torch.load(weights_only=True)``: a planted file can hold no code.
    ``kind`` names the file in the error (e.g. ``"attack-model checkpoint"``).

    Raises:
        RuntimeError: if the file is unreadable (torn, foreign or tampered with),
            naming it and saying to delete it.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        return None
    except Exception as err:  # a torn or foreign file: never silently used
        raise RuntimeError(
            f"{kind} {path} is unreadable ({err}); delete it to restart that run"
        ) from err


def check_same_run(
    path: Path,
    state: Mapping[str, Any],
    run: Mapping[str, Any],
    kind: str = "training checkpoint",
    other: str = "run",
) -> None:
    """Refuse a checkpoint that another training run wrote.

    ``run`` describes this run in plain values (its hyper-parameters, data sizes); a
    checkpoint stores it as ``"run"``. One without it (an older file) is accepted.
    ``kind`` and ``other`` name the file and the run in the message (e.g.
    ``"attack-model checkpoint"``, ``"training"``).

    Raises:
        RuntimeError: naming the file and both descriptions, saying to delete it.
    """
    saved = state.get("run")
    if saved is not None and dict(saved) != dict(run):
        raise RuntimeError(
            f"{kind} {path} was written by another {other} ({dict(saved)}, this "
            f"one is {dict(run)}); delete it to restart, or give each run its own file"
        )


def rng_state(device: torch.device) -> dict[str, Tensor]:
    """torch's global RNG state (dropout, init), as checkpoint entries.

    ``torch_rng`` is the CPU generator's state; ``cuda_rng`` that of ``device`` when it
    is a CUDA device (dropout on the GPU draws from it).
    """
    state = {"torch_rng": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    """Restore the entries :func:`rng_state` wrote (``cuda_rng`` only on a CUDA ``device``)."""
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
