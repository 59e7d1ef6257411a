"""Private helpers shared across miakit's layers; this module imports only :mod:`miakit.threads`.

Each helper exists once here (ARCHITECTURE.md, "One home per fact") and has its own
test in ``tests/test_util.py``. Nothing here is part of the public API; the public
modules re-export what users need (``miakit.train.resolve_device``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import os
import shutil
import sys
import tempfile
import threading
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from miakit.threads import current_budget

__all__ = [
    "KEY_DEFAULT",
    "LOG_CLIP",
    "as_model_input",
    "atomic_dir",
    "atomic_write",
    "check_fraction",
    "check_membership",
    "check_types",
    "file_digest",
    "key_fields",
    "model_device",
    "num_threads",
    "resolve_device",
    "safe_log",
    "seeded",
    "true_class_prob",
    "user_dir",
]

#: Floor applied before a logarithm of a probability, so ``p = 0`` gives a finite value.
LOG_CLIP: float = 1e-30

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- files


def atomic_write(path: PathLike, write: Callable[[Path], Any]) -> Path:
    """Write a file so that readers see either the old file or the whole new one.

    ``write`` receives a temporary path in the same folder and must write the full
    content there; the temporary file then replaces ``path`` with ``os.replace``
    (atomic on POSIX and Windows). A failure in ``write`` leaves ``path`` untouched
    and removes the temporary file.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a plain file's mode instead
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    with _UMASK_GUARD:  # os.umask can only be read by setting it: never let threads interleave
        mask = os.umask(0)
        os.umask(mask)
    return mask


_UMASK_GUARD = threading.Lock()
#: errno values of a rename onto a folder that already exists (POSIX allows either)
_EXISTS = {errno.ENOTEMPTY, errno.EEXIST}


@contextlib.contextmanager
def atomic_dir(final: PathLike) -> Iterator[Path]:
    """Build a folder under a temporary name and rename it to ``final`` on success.

    Yields the temporary folder (a sibling of ``final``). On a clean exit it is
    renamed to ``final``; if ``final`` already exists (another writer won the race)
    the temporary folder is discarded quietly and ``final`` is kept: the first
    complete folder wins. If ``final`` vanishes between the failed rename and the
    check (moved aside by a concurrent reader), the rename is tried again. On an
    error the temporary folder is removed and ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; a plain folder's mode instead
        for _ in range(100):
            try:
                os.rename(tmp, final)  # replaces only an empty folder; never a complete one
                break
            except OSError as err:
                if err.errno not in _EXISTS:
                    raise
                if os.path.lexists(final):
                    break  # another writer's complete folder is in place: keep it
        else:
            raise OSError(f"could not rename {tmp} to {final}: it keeps appearing and vanishing")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def file_digest(path: PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB chunks (``algorithm``: any of hashlib's)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def user_dir(env: str, *parts: str, explicit: PathLike | None = None) -> Path:
    """A per-user miakit folder: ``explicit``, else ``$env``, else the XDG cache.

    The fallback is ``$XDG_CACHE_HOME/miakit/<parts>``, else ``~/.cache/miakit/<parts>``.
    ``~`` is expanded in every source. The folder is not created.

    Example:
        ``user_dir("MIAKIT_DATA", "data")`` is where datasets are downloaded.
    """
    if explicit is not None:
        return Path(explicit).expanduser()
    value = os.environ.get(env)
    if value:
        return Path(value).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base.joinpath("miakit", *parts)


# --------------------------------------------------------------------------- checks


def check_fraction(name: str, value: Any, *, what: str = "fraction") -> float:
    """``value`` as a float in ``[0, 1)``, else one ``ValueError`` naming ``name``.

    Booleans and non-numbers are rejected (``True`` is not a sparsity).
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not 0.0 <= float(value) < 1.0
    ):
        raise ValueError(f"{name} must be a number in [0, 1) (the {what}), got {value!r}")
    return float(value)


def check_membership(
    membership: Any, n: int | None = None, *, both: bool = False, name: str = "membership"
) -> np.ndarray:
    """Validate 0/1 membership truth (1 = in the training set of the model) as int64.

    Args:
        membership: array-like of 0/1 (or booleans).
        n: the required length, when known.
        both: also require at least one member and one non-member (needed to fit a
            threshold or to compute an ROC curve).
        name: what to call the array in the error.
    """
    m = np.asarray(membership)
    if m.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one 0/1 value per sample), got shape {m.shape}")
    if n is not None and m.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {m.shape}")
    if m.dtype == bool:
        m = m.astype(np.int64)
    if m.size and not np.isin(m, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0 (non-member) and 1 (member)")
    m = m.astype(np.int64)
    if both and (m.size == 0 or m.min() == m.max()):
        raise ValueError(f"{name} must contain both members (1) and non-members (0)")
    return m


_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "True or False"}


def _type_matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, bool
        )
    if origin is not None:
        return isinstance(value, origin)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _type_words(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_words(h) for h in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if typing.get_origin(hint) is not None:
        return f"a {typing.get_origin(hint).__name__}"
    return _TYPE_WORDS.get(hint, f"a {getattr(hint, '__name__', hint)}")


def check_types(obj: Any) -> None:
    """Check every field of a dataclass instance against its annotation, at construction.

    ``int`` fields take integers only (not ``2.5``, ``True`` or ``"3"``), ``float``
    fields any real number, ``str`` strings; unions, ``None``, containers (checked by
    their outer type) and dataclasses are understood. An integer given to a ``float``
    field is stored as a float (so ``1`` and ``1.0`` are one config and one cache key).
    Raises one ``ValueError`` naming the field, the value and the expected type.
    """
    cls = type(obj)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not _type_matches(value, hints[f.name]):
            raise ValueError(
                f"{cls.__name__}.{f.name}={value!r} has the wrong type: expected "
                f"{_type_words(hints[f.name])}, got {type(value).__name__}"
            )
        if hints[f.name] is float and not isinstance(value, float):
            object.__setattr__(obj, f.name, float(value))


#: Field metadata of a dataclass field added after cache keys were first made: while it
#: holds its default, :func:`key_fields` leaves it out, so the keys made before it stay valid.
KEY_DEFAULT = "key_default"


def key_fields(obj: Any) -> dict[str, Any]:
    """A dataclass instance as :func:`dataclasses.asdict` gives it, as cache keys read it.

    Fields whose metadata holds ``KEY_DEFAULT: True`` are left out while they equal their
    default, so a field added later keeps every key made before it (e.g.
    :attr:`miakit.train.TrainConfig.restore_best`); any other value enters the key.
    """
    out = dataclasses.asdict(obj)
    for f in dataclasses.fields(obj):
        if f.metadata.get(KEY_DEFAULT) and getattr(obj, f.name) == f.default:
            del out[f.name]
    return out


# --------------------------------------------------------------------------- progress


def progress_bar(
    progress: bool, total: int, initial: int = 0, desc: str = "", **options: Any
) -> Any:
    """A transient tqdm bar (cleared when closed), or ``None`` when ``progress`` is off.

    The one place the training loops make their bars (``options``: more tqdm keywords,
    e.g. ``unit``); :func:`close_progress_bars` clears any left open by an exception.
    """
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, leave=False, **options)


def close_progress_bars() -> None:
    """Close every open tqdm bar, so a message printed next starts on a clean line.

    A training loop interrupted (Ctrl-C) or failing mid-way leaves its bar open;
    the command line calls this before it prints its one line.
    """
    if "tqdm" not in sys.modules:
        return
    from tqdm import tqdm

    for bar in list(tqdm._instances):
        bar.close()


# --------------------------------------------------------------------------- torch


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"`` -> CUDA when available, else CPU; otherwise as given."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} was asked for but CUDA is not available; use 'cpu'"
        )
    return dev


@contextlib.contextmanager
def seeded(seed: int, device: str | torch.device | None = None) -> Iterator[None]:
    """Run a block with torch's RNG seeded to ``seed``, restoring the outer RNG state after.

    Makes weight initialisation and dropout reproducible without a side effect on
    the caller's global random state.

    Args:
        seed: the seed for the CPU generator (and the CUDA generator of ``device``).
        device: the device whose CUDA generator is also forked; CPU only when not CUDA.
    """
    dev = resolve_device(device) if device is not None else torch.device("cpu")
    devices = []
    if dev.type == "cuda":
        devices = [dev.index if dev.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` torch CPU threads, never more than the thread budget, then restore.

    The budget is :func:`miakit.threads.current_budget`: where this process applied its
    share, the share is derived again first (other miakit processes may have started
    or ended since). ``None`` leaves the count as it is (after that update).
    """
    budget = current_budget()
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(min(n, budget))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (or buffer); CPU for an empty model."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def as_model_input(x: Tensor, device: torch.device) -> Tensor:
    """Move a batch to ``device`` in the layout the models are trained in.

    The one rule: 4-D image batches go ``channels_last`` (cuDNN's fast layout, and
    oneDNN's on the CPU: a small_cnn training step measured 1.5x faster on one CPU
    thread); other inputs keep their layout.
    """
    x = x.to(device, non_blocking=True)
    if x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


# --------------------------------------------------------------------------- numpy


def safe_log(x: np.ndarray) -> np.ndarray:
    """``log(max(x, LOG_CLIP))``: finite for probabilities that reach 0."""
    return np.log(np.maximum(x, LOG_CLIP))


def true_class_prob(posteriors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``p_y``: each row's probability of its ground-truth class.

    Raises:
        ValueError: ``posteriors`` is not ``(N, K)``, or ``labels`` is not ``(N,)``
            integer classes in ``[0, K)``.
    """
    p = np.asarray(posteriors)
    if p.ndim != 2:
        raise ValueError(f"posteriors must be (N, K), got shape {p.shape}")
    y = np.asarray(labels)
    if y.shape != (p.shape[0],) or (y.size and not np.issubdtype(y.dtype, np.integer)):
        raise ValueError(f"labels must be ({p.shape[0]},) integer classes, got {y.shape} {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError(f"labels must lie in [0, {p.shape[1]}); got [{y.min()}, {y.max()}]")
    return p[np.arange(p.shape[0]), y]
