"""Reading a user's checkpoint into a miakit architecture, without executing its code.

Issue 15, item 2. :func:`read_weights` accepts the files people have:

* a safetensors file (by its header, whatever its suffix);
* a ``torch.save`` of a ``state_dict``, read with ``torch.load(weights_only=True)``, so a
  pickle that would build objects or run code is refused and runs nothing;
* a dict wrapping one (``{"state_dict": ...}``, ``{"model": ...}``, ``{"model_state_dict":
  ...}``, ``{"net": ...}``, ``{"weights": ...}``), as training scripts save them;
* the keys of ``torch.nn.utils.prune`` (``weight_orig`` and ``weight_mask``): the
  effective weight ``weight_orig * weight_mask`` is what is loaded;
* the prefixes of ``nn.DataParallel`` / DDP (``module.``) and ``torch.compile``
  (``_orig_mod.``), stripped when every key has them.

:func:`load_weights` fits them to a model. A file that does not fit is refused with one
message naming the missing, unexpected and mis-shaped keys. A structurally pruned model
whose layers were physically narrowed (Torch-Pruning) does not fit the dense architecture
and is refused the same way.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["WRAPPER_KEYS", "CheckpointError", "LoadedWeights", "load_weights", "read_weights"]

#: Keys under which training scripts keep the ``state_dict`` in a checkpoint dict.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")

_PREFIXES = ("module.", "_orig_mod.")
_SHOWN = 5  # keys named per kind of mismatch


class CheckpointError(ValueError):
    """A checkpoint that cannot be audited: one message naming the file and the problem."""


@dataclass(frozen=True)
class LoadedWeights:
    """A checkpoint fitted to a model.

    Attributes:
        model: the model, with the checkpoint's (effective) weights, in eval mode.
        path: the file read.
        format: how it was stored, e.g. ``"safetensors"`` or ``"state_dict in 'model'"``.
        masked: the tensors that carried a ``torch.nn.utils.prune`` mask.
    """

    model: nn.Module
    path: Path
    format: str
    masked: tuple[str, ...]


def _is_safetensors(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) < 9:
        return False
    (size,) = struct.unpack("<Q", head[:8])
    return 0 < size < 100_000_000 and head[8:9] == b"{"


def _tensors(data: object) -> bool:
    return (
        isinstance(data, Mapping)
        and bool(data)
        and all(isinstance(v, Tensor) for v in data.values())
    )


def read_weights(path: str | Path) -> tuple[dict[str, Tensor], str, tuple[str, ...]]:
    """The checkpoint's effective tensors by name, its format, and the masked names.

    Raises:
        CheckpointError: the file is missing, unreadable, needs code to load, or holds no
            ``state_dict`` (naming the keys it does hold).
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"{file}: no such checkpoint file")
    if _is_safetensors(file):
        from safetensors.torch import load_file

        try:
            raw, kind = dict(load_file(str(file), device="cpu")), "safetensors"
        except Exception as err:  # noqa: BLE001 - any safetensors failure: a bad file
            raise CheckpointError(f"{file}: not a readable safetensors file ({err})") from None
    else:
        raw, kind = _torch_file(file)
    state, masked = _unmask(_strip_prefixes(raw))
    return state, kind, masked


def _torch_file(file: Path) -> tuple[dict[str, Tensor], str]:
    try:
        data = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CheckpointError(
            f"{file}: refused: loading it would build Python objects or run code, and miakit "
            "reads checkpoints with torch.load(weights_only=True) only. Save the weights "
            "alone (torch.save(model.state_dict(), path), or safetensors) and audit that. "
            f"({first})"
        ) from None
    except Exception as err:  # noqa: BLE001 - torn, foreign or empty files
        raise CheckpointError(f"{file}: not a readable torch checkpoint ({err})") from None
    if _tensors(data):
        return dict(data), "state_dict"
    if isinstance(data, Mapping):
        for key in WRAPPER_KEYS:
            if _tensors(data.get(key)):
                return dict(data[key]), f"state_dict in {key!r}"
        keys = ", ".join(repr(k) for k in list(data)[:10])
        raise CheckpointError(
            f"{file}: a dict with no state_dict in it (keys {keys}); miakit looks for a "
            f"mapping of tensors at the top or under one of {', '.join(WRAPPER_KEYS)}"
        )
    raise CheckpointError(
        f"{file}: holds a {type(data).__name__}, not a state_dict; save model.state_dict() instead"
    )


def _strip_prefixes(state: dict[str, Tensor]) -> dict[str, Tensor]:
    for prefix in _PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _unmask(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], tuple[str, ...]]:
    """``<name>_orig * <name>_mask`` as ``<name>`` (torch.nn.utils.prune's keys)."""
    out, masked = {}, []
    for key, value in state.items():
        if key.endswith("_mask") and key[: -len("_mask")] + "_orig" in state:
            continue
        if key.endswith("_orig") and key[: -len("_orig")] + "_mask" in state:
            name = key[: -len("_orig")]
            mask = state[name + "_mask"]
            if mask.shape != value.shape:
                out[key] = value  # left for load_weights to name as mis-shaped
                continue
            out[name] = value * mask.to(value.dtype)
            masked.append(name)
        else:
            out[key] = value
    return out, tuple(masked)


def _mismatch(state: Mapping[str, Tensor], model: nn.Module) -> str | None:
    want = model.state_dict()
    optional = {k for k in want if k.endswith("num_batches_tracked")}
    missing = [k for k in want if k not in state and k not in optional]
    unexpected = [k for k in state if k not in want]
    shaped = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in want.items()
        if k in state and state[k].shape != v.shape
    ]
    parts = []
    for word, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shaped)):
        if keys:
            more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
            parts.append(f"{len(keys)} {word} ({', '.join(keys[:_SHOWN])}{more})")
    return "; ".join(parts) or None


def load_weights(path: str | Path, model: nn.Module, arch: str | None = None) -> LoadedWeights:
    """Load a checkpoint (see the module docstring) into ``model``; it is left in eval mode.

    Args:
        path: the checkpoint file.
        model: the architecture to fill (e.g. from :func:`miakit.models.build_model`).
        arch: the architecture's name, for the error message.

    Raises:
        CheckpointError: the file cannot be read (see :func:`read_weights`) or does not fit
            the model: the message names the missing, unexpected and mis-shaped keys.
    """
    file = Path(path)
    state, kind, masked = read_weights(file)
    problem = _mismatch(state, model)
    if problem is not None:
        name = arch or type(model).__name__
        raise CheckpointError(
            f"{file} does not fit {name}: {problem}. Is --arch right (and the dataset's "
            "number of classes)? A structurally pruned model with narrowed layers does not "
            "fit the dense architecture"
        )
    want = model.state_dict()
    fitted = {k: v.to(want[k].dtype) for k, v in state.items()}
    model.load_state_dict(fitted, strict=False)  # only num_batches_tracked may be left
    model.eval()
    return LoadedWeights(model, file, kind, masked)
