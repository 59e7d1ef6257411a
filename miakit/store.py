"""The content-addressed artifact cache (DESIGN.md, "The cache").

Every trained model, pruned model and signal array is stored under a key
derived from the *full* config that produced it (a canonical JSON document
hashed with SHA-256, including the code version of that step). Asking for an
artifact twice loads it instead of recomputing it; a killed run resumes
because everything finished before the kill is already on disk.

On-disk layout under the cache root (``MIAKIT_CACHE``, else
``$XDG_CACHE_HOME/miakit``, else ``~/.cache/miakit``)::

    <kind>/<key[:2]>/<key>/
        meta.json            config, kind, key, sha256 of every payload file
        tensors.safetensors  the payload (model weights or arrays), no pickle

Writes are atomic: the entry is assembled in a temporary folder that is
renamed into place only when complete. Payloads are read with safetensors,
which cannot execute code, and their SHA-256 is checked against
``meta.json``; a corrupt or mismatched entry raises :class:`CacheError` and is
never silently used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from miakit._util import atomic_dir, file_digest, user_dir

__all__ = ["CacheError", "Store", "config_key", "default_cache_dir"]

T = TypeVar("T")
_PAYLOAD = "tensors.safetensors"
_META = "meta.json"
FORMAT_VERSION = 1


class CacheError(RuntimeError):
    """A cache entry is corrupt, incomplete or does not match what was asked for."""


def default_cache_dir() -> Path:
    """``MIAKIT_CACHE``, else ``$XDG_CACHE_HOME/miakit``, else ``~/.cache/miakit``."""
    return user_dir("MIAKIT_CACHE")


def _canonical(obj: Any) -> Any:
    """A JSON-able, order-independent form of a config (dataclasses, tuples, paths)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {"__type__": type(obj).__name__, **_canonical(asdict(obj))}
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, (Path, torch.device)):
        return str(obj)
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return repr(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"cannot derive a cache key from a {type(obj).__name__}: {obj!r}")


def config_key(kind: str, config: Any) -> str:
    """SHA-256 hex key of ``kind`` plus the canonical JSON of ``config``."""
    doc = json.dumps(
        {"kind": kind, "config": _canonical(config)}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(doc.encode()).hexdigest()


class Store:
    """A folder of cached artifacts, addressed by config.

    Args:
        root: cache folder; defaults to :func:`default_cache_dir`.

    Example:
        >>> store = Store(tmp_path)                        # doctest: +SKIP
        >>> w = store.get_or_create("victim", cfg, train_and_return_tensors)  # doctest: +SKIP
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- addressing ------------------------------------------------------------------------
    def path(self, kind: str, config: Any) -> Path:
        """Folder of the entry for ``(kind, config)`` (it may not exist yet)."""
        if not kind or "/" in kind or kind.startswith("."):
            raise ValueError(f"artifact kind must be a plain name like 'victim', got {kind!r}")
        key = config_key(kind, config)
        return self.root / kind / key[:2] / key

    def has(self, kind: str, config: Any) -> bool:
        """Whether a complete entry exists (it is verified only when loaded)."""
        return (self.path(kind, config) / _META).is_file()

    def scratch(self, kind: str, config: Any, name: str) -> Path:
        """A per-entry scratch file (e.g. a training checkpoint for resuming).

        It lives beside, not inside, the entry, so an unfinished run never looks
        like a finished artifact.
        """
        p = self.path(kind, config)
        return p.parent / f"{p.name}.{name}"

    # -- tensors ---------------------------------------------------------------------------
    def save_tensors(
        self,
        kind: str,
        config: Any,
        tensors: Mapping[str, torch.Tensor],
        info: Mapping[str, Any] | None = None,
    ) -> Path:
        """Atomically store named tensors (and a JSON-able ``info`` dict) for the entry."""
        final = self.path(kind, config)
        with atomic_dir(final) as tmp:  # a concurrent writer that won the race is kept
            payload = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            save_file(payload, str(tmp / _PAYLOAD))
            meta = {
                "format": FORMAT_VERSION,
                "kind": kind,
                "key": final.name,
                "config": _canonical(config),
                "info": _canonical(dict(info or {})),
                "sha256": {_PAYLOAD: file_digest(tmp / _PAYLOAD)},
            }
            (tmp / _META).write_text(json.dumps(meta, indent=1, sort_keys=True))
        return final

    def load_tensors(self, kind: str, config: Any) -> tuple[dict[str, torch.Tensor], dict]:
        """Load and verify an entry; returns ``(tensors, info)``.

        Raises:
            KeyError: no entry for this config.
            CacheError: the entry is corrupt or was stored for another config.
        """
        final = self.path(kind, config)
        meta_path = final / _META
        if not meta_path.is_file():
            raise KeyError(f"no cached {kind!r} for this config (looked in {final})")
        fix = f"delete {final} to recompute it"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise CacheError(
                f"cache entry {final} has an unreadable meta.json ({err}); {fix}"
            ) from err
        if meta.get("format") != FORMAT_VERSION or meta.get("kind") != kind:
            raise CacheError(
                f"cache entry {final} has format/kind {meta.get('format')}/"
                f"{meta.get('kind')}, expected {FORMAT_VERSION}/{kind}; {fix}"
            )
        if meta.get("config") != _canonical(config):
            raise CacheError(f"cache entry {final} was stored for a different config; {fix}")
        payload = final / _PAYLOAD
        if not payload.is_file():
            raise CacheError(f"cache entry {final} is missing its payload; {fix}")
        if file_digest(payload) != meta.get("sha256", {}).get(_PAYLOAD):
            raise CacheError(f"cache entry {final} failed its SHA-256 check (corrupt file); {fix}")
        try:
            tensors = load_file(str(payload))
        except Exception as err:
            raise CacheError(f"cache entry {final} could not be read ({err}); {fix}") from err
        return tensors, meta.get("info", {})

    def get_or_create(
        self,
        kind: str,
        config: Any,
        create: Callable[[], tuple[Mapping[str, torch.Tensor], Mapping[str, Any]]],
    ) -> tuple[dict[str, torch.Tensor], dict]:
        """Load the entry, or call ``create() -> (tensors, info)``, store it and return it."""
        if self.has(kind, config):
            return self.load_tensors(kind, config)
        tensors, info = create()
        self.save_tensors(kind, config, tensors, info)
        return self.load_tensors(kind, config)

    # -- models ----------------------------------------------------------------------------
    def save_model(
        self, kind: str, config: Any, model: nn.Module, info: Mapping[str, Any] | None = None
    ) -> Path:
        """Store a model's ``state_dict`` (pruning masks included) without pickle."""
        return self.save_tensors(kind, config, model.state_dict(), info)

    def load_model(self, kind: str, config: Any, model: nn.Module) -> dict:
        """Load stored weights into ``model`` (strict); returns the stored ``info``."""
        tensors, info = self.load_tensors(kind, config)
        try:
            model.load_state_dict(tensors, strict=True)
        except RuntimeError as err:
            raise CacheError(
                f"cached {kind!r} weights at {self.path(kind, config)} do not fit "
                f"{type(model).__name__}: {err}"
            ) from err
        return info
