"""The content-addressed artifact cache (DESIGN.md, "The cache").

Every trained model, pruned model and signal array is stored under a key
derived from the *full* config that produced it (a canonical JSON document
hashed with SHA-256, including the code version of that step). Asking for an
artifact twice loads it instead of recomputing it; a killed run resumes
because everything finished before the kill is already on disk.

Layout under the root (``MIAKIT_CACHE``, else ``$XDG_CACHE_HOME/miakit``, else
``~/.cache/miakit``): ``<kind>/<key[:2]>/<key>/`` holds ``meta.json`` (config, kind,
payload SHA-256, HMAC if signed) and ``tensors.safetensors`` (no pickle); beside it
``<key>.lock`` is held while one process computes the entry and ``<key>.<name>`` are
scratch files (checkpoints); ``quarantine/<kind>/`` keeps entries that failed checks.

Entries are built in a temporary folder renamed into place when complete (the first
complete writer wins, the others' results are discarded). :meth:`Store.get_or_create`
heals (an entry missing a file, with a bad ``meta.json``, checksum or HMAC is
quarantined with one warning and recomputed) and takes the entry's lock
(:mod:`miakit.lockfile`), so concurrent processes, on one host or on a cluster's
shared filesystem, compute an artifact once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from miakit._util import atomic_dir, file_digest, key_fields, user_dir
from miakit.lockfile import file_lock

__all__ = [
    "LOCK_TIMEOUT",
    "MIN_FREE_MB",
    "QUARANTINE",
    "CacheError",
    "CacheUnwritable",
    "CacheWarning",
    "CorruptEntry",
    "Store",
    "config_key",
    "default_cache_dir",
]

_PAYLOAD = "tensors.safetensors"
_META = "meta.json"
FORMAT_VERSION = 1
#: Folder under the cache root that holds entries which failed verification.
QUARANTINE = "quarantine"
#: Seconds without a heartbeat after which an entry's lock is stale (``MIAKIT_LOCK_TIMEOUT``).
LOCK_TIMEOUT = 120.0
#: MiB free below which :meth:`Store.check_writable` fails (``MIAKIT_CACHE_MIN_FREE_MB``).
MIN_FREE_MB = 256


class CacheError(RuntimeError):
    """A cache entry is corrupt, incomplete or does not match what was asked for."""


class CorruptEntry(CacheError):
    """An entry failed verification; ``problem`` says how, ``path`` is its folder."""

    def __init__(self, path: Path, problem: str, stat: os.stat_result | None = None) -> None:
        super().__init__(f"cache entry {path} {problem}")
        self.path, self.problem, self.stat = path, problem, stat


class CacheUnwritable(CacheError):
    """The cache folder is read-only, not a folder, or nearly full."""


class CacheWarning(UserWarning):
    """A cache entry was quarantined or a stale lock was broken."""


def default_cache_dir() -> Path:
    """``MIAKIT_CACHE``, else ``$XDG_CACHE_HOME/miakit``, else ``~/.cache/miakit``."""
    return user_dir("MIAKIT_CACHE")


def _warn(message: str) -> None:
    warnings.warn(f"miakit cache: {message}", CacheWarning, stacklevel=4)


def _env_number(name: str, default: float, *, zero_ok: bool = False) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = float("nan")
    if not (value > 0 or (zero_ok and value == 0)):
        raise ValueError(f"{name} must be a number > {'=' if zero_ok else ''}0, got {raw!r}")
    return value


def _canonical(obj: Any) -> Any:
    """A JSON-able, order-independent form of a config (dataclasses by ``key_fields``, paths)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {"__type__": type(obj).__name__, **_canonical(key_fields(obj))}
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
        secret: key that signs and authenticates every entry with HMAC-SHA256;
            defaults to ``MIAKIT_CACHE_KEY`` (unset or empty: entries are not signed).
        lock_timeout: seconds without heartbeat after which a lock is broken;
            defaults to ``MIAKIT_LOCK_TIMEOUT``, else :data:`LOCK_TIMEOUT`.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        secret: str | bytes | None = None,
        lock_timeout: float | None = None,
    ) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        secret = os.environ.get("MIAKIT_CACHE_KEY") if secret is None else secret
        self._secret = (secret.encode() if isinstance(secret, str) else secret) or None
        #: whether entries are signed and authenticated (``MIAKIT_CACHE_KEY``)
        self.signed = self._secret is not None
        self.lock_timeout = float(lock_timeout or _env_number("MIAKIT_LOCK_TIMEOUT", LOCK_TIMEOUT))

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- addressing ------------------------------------------------------------------------
    def path(self, kind: str, config: Any) -> Path:
        """Folder of the entry for ``(kind, config)`` (it may not exist yet)."""
        if not kind or "/" in kind or kind.startswith(".") or kind == QUARANTINE:
            raise ValueError(f"artifact kind must be a plain name like 'victim', got {kind!r}")
        key = config_key(kind, config)
        return self.root / kind / key[:2] / key

    def has(self, kind: str, config: Any) -> bool:
        """Whether a complete entry exists (it is verified only when loaded)."""
        return (self.path(kind, config) / _META).is_file()

    def scratch(self, kind: str, config: Any, name: str) -> Path:
        """A per-entry scratch file (e.g. a training checkpoint for resuming).

        It lives beside, not inside, the entry, so an unfinished run never looks
        like a finished artifact. ``name`` ``"lock"`` is reserved for the entry's lock.
        """
        if not name or "/" in name or name.startswith(".") or name == "lock":
            raise ValueError(f"scratch name must be a plain name like 'ckpt', got {name!r}")
        p = self.path(kind, config)
        return p.parent / f"{p.name}.{name}"

    # -- locking ---------------------------------------------------------------------------
    def lock(self, kind: str, config: Any) -> AbstractContextManager[None]:
        """Hold the entry's lock file ``<key>.lock`` (see :mod:`miakit.lockfile`) for a block."""
        entry = self.path(kind, config)
        lock = entry.with_name(entry.name + ".lock")

        def waiting(by: dict[str, Any]) -> None:
            who = f"{by.get('host', '?')} pid {by.get('pid', '?')} since {by.get('time', '?')}"
            _warn(f"waiting for {kind} {entry.name[:12]} (being computed by {who})")

        return file_lock(lock, stale_after=self.lock_timeout, on_break=_warn, on_wait=waiting)

    # -- tensors ---------------------------------------------------------------------------
    def save_tensors(
        self,
        kind: str,
        config: Any,
        tensors: Mapping[str, torch.Tensor],
        info: Mapping[str, Any] | None = None,
    ) -> Path:
        """Atomically store named tensors (and a JSON-able ``info`` dict) for the entry.

        A complete entry already there (a concurrent writer won) is kept and this result
        discarded; a folder there missing its files is quarantined first.
        """
        final = self.path(kind, config)
        if final.is_dir() and not ((final / _META).is_file() and (final / _PAYLOAD).is_file()):
            self.quarantine(final, "is incomplete (no meta.json or payload)")
        with atomic_dir(final) as tmp:
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
            if self._secret is not None:
                meta["hmac"] = self._sign(meta)
            (tmp / _META).write_text(json.dumps(meta, indent=1, sort_keys=True))
        return final

    def load_tensors(self, kind: str, config: Any) -> tuple[dict[str, torch.Tensor], dict]:
        """Load and verify an entry; returns ``(tensors, info)``.

        Raises:
            KeyError: no entry for this config.
            CorruptEntry: the entry is corrupt or untrusted; it was moved to quarantine.
        """
        try:
            return self._read(kind, config)
        except CorruptEntry as err:
            moved = self.quarantine(err.path, err.problem, warn=False, stat=err.stat)
            fix = f"moved it to {moved}; ask again to recompute it" if moved else "ask again"
            raise CorruptEntry(err.path, f"{err.problem}; {fix}") from None

    def get_or_create(
        self,
        kind: str,
        config: Any,
        create: Callable[[], tuple[Mapping[str, torch.Tensor], Mapping[str, Any]]],
    ) -> tuple[dict[str, torch.Tensor], dict]:
        """Load the entry, or call ``create() -> (tensors, info)``, store it and return it.

        Concurrent callers for one entry compute it once: the first takes the entry's
        lock and computes, the others wait for the lock and then load the result.
        A corrupt entry is quarantined (one :class:`CacheWarning`) and recomputed.
        ``create`` may itself call ``get_or_create`` for other entries.
        """
        try:
            return self._read(kind, config)
        except (KeyError, CorruptEntry):
            pass  # computed, or healed, under the lock
        with self.lock(kind, config):
            try:
                return self._read(kind, config)  # a concurrent holder may have made it
            except KeyError:
                pass
            except CorruptEntry as err:
                self.quarantine(err.path, err.problem, stat=err.stat)
            tensors, info = create()
            self.save_tensors(kind, config, tensors, info)
        return self.load_tensors(kind, config)  # a verified round trip

    # -- models ----------------------------------------------------------------------------
    def save_model(
        self, kind: str, config: Any, model: nn.Module, info: Mapping[str, Any] | None = None
    ) -> Path:
        """Store a model's ``state_dict`` (pruning masks included) without pickle."""
        return self.save_tensors(kind, config, model.state_dict(), info)

    def load_model(self, kind: str, config: Any, model: nn.Module) -> dict:
        """Load stored weights into ``model`` (strict); returns the stored ``info``."""
        tensors, info = self.load_tensors(kind, config)
        self.load_state(kind, config, model, tensors)
        return info

    def load_state(
        self, kind: str, config: Any, model: nn.Module, tensors: Mapping[str, torch.Tensor]
    ) -> None:
        """Load cached ``tensors`` into ``model`` strictly; one clear error if they do not fit."""
        try:
            model.load_state_dict(tensors, strict=True)
        except RuntimeError as err:
            raise CacheError(
                f"cached {kind!r} weights at {self.path(kind, config)} do not fit "
                f"{type(model).__name__}: {err}"
            ) from err

    # -- health ----------------------------------------------------------------------------
    def check_writable(self) -> None:
        """Raise :class:`CacheUnwritable` (one line) unless the cache can take new entries.

        Writes and deletes a probe file; requires :data:`MIN_FREE_MB` MiB free.
        """
        fix = "pass --cache DIR or set MIAKIT_CACHE to a writable folder with free space"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.root, prefix=".probe-", suffix=".tmp")
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            why = f"cache folder {self.root} is not writable ({err.strerror or err})"
            raise CacheUnwritable(f"{why}; {fix}") from err
        need = _env_number("MIAKIT_CACHE_MIN_FREE_MB", MIN_FREE_MB, zero_ok=True)
        free = shutil.disk_usage(self.root).free / 2**20
        if free < need:
            raise CacheUnwritable(
                f"cache folder {self.root} has {free:.0f} MiB free, less than the {need:g} MiB "
                f"miakit needs (MIAKIT_CACHE_MIN_FREE_MB); free space ('miakit cache prune') "
                f"or {fix}"
            )

    def quarantine(
        self,
        entry: Path,
        problem: str,
        *,
        warn: bool = True,
        stat: os.stat_result | None = None,
    ) -> Path | None:
        """Move a bad entry to ``quarantine/<kind>/`` atomically; where it went (None: gone).

        ``warn``: one :class:`CacheWarning` naming ``problem`` and the destination.
        ``stat`` (taken when it was judged): an entry replaced since is left alone.
        """
        try:
            now = os.stat(entry)
        except FileNotFoundError:
            return None
        if stat is not None and (now.st_dev, now.st_ino) != (stat.st_dev, stat.st_ino):
            return None
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        dest = self.root / QUARANTINE / entry.parent.parent.name / f"{entry.name}.{stamp}"
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(entry, dest)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise CacheError(
                f"cache entry {entry} {problem}, and it could not be moved aside ({err}); "
                "delete it by hand"
            ) from err
        if warn:
            _warn(f"entry {entry} {problem}; moved it to {dest} (it will be recomputed)")
        return dest

    # -- verification (:meth:`inspect` is public, for ``miakit cache verify``) -------------
    def _sign(self, meta: Mapping[str, Any]) -> str:
        body = {k: v for k, v in meta.items() if k != "hmac"}
        doc = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self._secret or b"", doc, hashlib.sha256).hexdigest()

    def _read(self, kind: str, config: Any) -> tuple[dict[str, torch.Tensor], dict]:
        final = self.path(kind, config)
        meta = self.inspect(final)
        try:
            tensors = load_file(str(final / _PAYLOAD))
        except Exception as err:
            raise CorruptEntry(final, f"could not be read by safetensors ({err})") from err
        return tensors, meta.get("info", {})

    def inspect(self, final: Path, *, full: bool = True) -> dict:
        """Verify an entry folder without loading it (``full``: its SHA-256 too); its meta.

        Raises :class:`CorruptEntry` saying how it failed (files, meta, key, HMAC, checksum).
        """
        kind = final.parent.parent.name
        try:
            st = os.stat(final)
        except FileNotFoundError:
            raise KeyError(f"no cached {kind!r} for this config (looked in {final})") from None

        def bad(problem: str) -> CorruptEntry:
            return CorruptEntry(final, problem, st)

        try:
            meta = json.loads((final / _META).read_text())
        except FileNotFoundError:
            raise bad("has no meta.json (an incomplete entry)") from None
        except (OSError, ValueError) as err:
            raise bad(f"has an unreadable meta.json ({err})") from err
        if not isinstance(meta, dict):
            raise bad("has a meta.json that is not a JSON object")
        if self._secret is not None:
            if "hmac" not in meta:
                raise bad("is not signed, so untrusted under MIAKIT_CACHE_KEY")
            if not hmac.compare_digest(str(meta["hmac"]), self._sign(meta)):
                raise bad("has a wrong HMAC (altered, or signed with another MIAKIT_CACHE_KEY)")
        if meta.get("format") != FORMAT_VERSION or meta.get("kind") != kind:
            raise bad(
                f"has format/kind {meta.get('format')}/{meta.get('kind')}, "
                f"expected {FORMAT_VERSION}/{kind}"
            )
        if config_key(kind, meta.get("config")) != final.name:
            raise bad("was stored for a different config")
        payload = final / _PAYLOAD
        if not payload.is_file():
            raise bad("is missing its payload (an incomplete entry)")
        if full:
            try:
                digest = file_digest(payload)
            except OSError as err:
                raise bad(f"has an unreadable payload ({err})") from err
            sums = meta.get("sha256")
            if not isinstance(sums, dict) or digest != sums.get(_PAYLOAD):
                raise bad("failed its SHA-256 check (a corrupt file)")
        return meta
