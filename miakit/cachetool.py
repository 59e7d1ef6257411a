"""Cache maintenance: ``miakit cache info|verify|prune`` (README, "The cache").

Everything under a :class:`~miakit.store.Store`'s root is one of:

- an **entry** ``<kind>/<xx>/<key>/`` (``meta.json`` + payload);
- a **scratch** file ``<kind>/<xx>/<key>.<name>`` (a training checkpoint);
- a **lock** ``<kind>/<xx>/<key>.lock``, held while one process computes the entry;
- a **temp** leftover: a hidden ``.*`` file or folder (a write in progress, or one
  killed half-way) or a ``*.broken`` lock being broken;
- a **quarantined** entry under ``quarantine/<kind>/`` (it failed verification).

:func:`cache_prune` removes, in that order of rules:

- entries whose ``meta.json`` is unreadable or does not match their key, and entries
  for which ``is_current(kind, config)`` is False (no current code version reaches them);
- everything in quarantine;
- temp leftovers untouched for :data:`TEMP_AGE` seconds (a live write touches its files);
- stale locks (no heartbeat for the store's lock timeout, or their holder on this host
  has exited; see :mod:`miakit.lockfile`), broken so that a live holder's lock survives;
- orphan scratch files: no live lock is held on their key, and either their entry is
  complete (the checkpoint is no longer needed), or their entry was just pruned, or the
  file is untouched for :data:`SCRATCH_AGE` seconds (its job is long gone; a resumed run
  rewrites its checkpoint every epoch).
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from miakit.lockfile import break_lock, lock_stale_reason
from miakit.store import QUARANTINE, CorruptEntry, Store

__all__ = [
    "SCRATCH_AGE",
    "TEMP_AGE",
    "Finding",
    "InfoRow",
    "PruneReport",
    "VerifyReport",
    "add_parser",
    "cache_info",
    "cache_prune",
    "cache_verify",
]

#: Seconds after which an untouched temporary leftover is removed by :func:`cache_prune`.
TEMP_AGE = 3600.0
#: Seconds after which an untouched scratch file without a live lock is removed.
SCRATCH_AGE = 7 * 86400.0
#: What :func:`cache_info` reports, in this order.
WHATS = ("entries", "scratch", "locks", "stale locks", "temp", "quarantine")

IsCurrent = Callable[[str, dict], bool]


@dataclass(frozen=True)
class InfoRow:
    """One line of :func:`cache_info`: ``count`` items of one sort and kind, ``bytes`` in all."""

    what: str
    kind: str
    count: int
    bytes: int


@dataclass(frozen=True)
class Finding:
    """A bad or removable item: its path, sort (``entry``, ``lock``...), why, and size."""

    path: Path
    what: str
    reason: str
    bytes: int


@dataclass
class VerifyReport:
    """What :func:`cache_verify` found: entries checked, bad ones, where they were moved."""

    checked: int = 0
    bad: list[Finding] = field(default_factory=list)
    quarantined: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every entry passed."""
        return not self.bad


@dataclass
class PruneReport:
    """What :func:`cache_prune` removed (or, with ``dry_run``, would remove)."""

    removed: list[Finding] = field(default_factory=list)
    kept: int = 0
    dry_run: bool = False

    @property
    def bytes(self) -> int:
        """Bytes freed (or that would be)."""
        return sum(f.bytes for f in self.removed)


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        try:
            return path.lstat().st_size
        except FileNotFoundError:
            return 0
    total = 0
    for top, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_size
            except FileNotFoundError:
                pass
    return total


def _age(path: Path, now: float) -> float:
    """Seconds since ``path`` (or, for a folder, anything directly in it) was modified."""
    try:
        times = [path.lstat().st_mtime]
        if path.is_dir() and not path.is_symlink():
            times += [p.lstat().st_mtime for p in path.iterdir()]
    except FileNotFoundError:
        return 0.0
    return now - max(times)


def _items(store: Store) -> Iterator[tuple[str, str, Path]]:
    """``(sort, kind, path)`` of everything in the cache (sort as in the module doc)."""
    root = store.root
    if not root.is_dir():
        return
    for top in sorted(root.iterdir()):
        if top.name.startswith("."):
            yield "temp", "", top
        elif top.name == QUARANTINE and top.is_dir():
            for kind in sorted(p for p in top.iterdir() if p.is_dir()):
                for item in sorted(kind.iterdir()):
                    yield "quarantine", kind.name, item
        elif top.is_dir():
            for shard in sorted(p for p in top.iterdir() if p.is_dir() and len(p.name) == 2):
                for item in sorted(shard.iterdir()):
                    yield _sort(item), top.name, item


def _sort(item: Path) -> str:
    name = item.name
    if name.startswith(".") or name.endswith(".broken"):
        return "temp"
    if "." not in name:
        return "entry" if item.is_dir() else "temp"
    return "lock" if name.endswith(".lock") else "scratch"


def cache_info(store: Store) -> list[InfoRow]:
    """Count and size of entries, scratch files, locks, temp leftovers and quarantine, per kind."""
    rows: dict[tuple[str, str], list[int]] = {}
    for sort, kind, path in _items(store):
        what = {"entry": "entries", "lock": "locks"}.get(sort, sort)
        if sort == "lock" and lock_stale_reason(path, store.lock_timeout):
            what = "stale locks"
        acc = rows.setdefault((what, kind), [0, 0])
        acc[0] += 1
        acc[1] += _size(path)
    order = sorted(rows, key=lambda wk: (WHATS.index(wk[0]), wk[1]))
    return [InfoRow(w, k, *rows[w, k]) for w, k in order]


def cache_verify(store: Store, *, quarantine: bool = False) -> VerifyReport:
    """Check every entry's files, meta, key, HMAC (if the store is signed) and SHA-256.

    With ``quarantine``, bad entries are moved to ``quarantine/`` (recomputed when next
    asked for); otherwise they are only listed.
    """
    report = VerifyReport()
    for sort, _, path in _items(store):
        if sort != "entry":
            continue
        report.checked += 1
        try:
            store.inspect(path)
        except KeyError:
            report.checked -= 1  # removed meanwhile
        except CorruptEntry as err:
            report.bad.append(Finding(path, "entry", err.problem, _size(path)))
            if quarantine:
                moved = store.quarantine(path, err.problem, warn=False, stat=err.stat)
                report.quarantined += [moved] if moved else []
    return report


def _remove(path: Path) -> None:
    """Remove a file, or a folder by renaming it aside first (readers see it or nothing)."""
    if path.is_dir() and not path.is_symlink():
        trash = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def cache_prune(
    store: Store,
    is_current: IsCurrent | None = None,
    dry_run: bool = False,
    *,
    temp_age: float = TEMP_AGE,
    scratch_age: float = SCRATCH_AGE,
) -> PruneReport:
    """Remove what no current config reaches, plus debris (rules in the module doc).

    Args:
        store: the cache.
        is_current: ``(kind, stored config) -> bool``; None keeps every sound entry.
        dry_run: only report what would be removed.
        temp_age: seconds after which temporary leftovers are removed.
        scratch_age: seconds after which orphan scratch files without a live lock go.
    """
    now, report = time.time(), PruneReport(dry_run=dry_run)
    items = list(_items(store))
    kept: set[Path] = set()  # entries that stay
    pruned: set[Path] = set()  # entries removed now

    def drop(path: Path, what: str, reason: str) -> None:
        report.removed.append(Finding(path, what, reason, _size(path)))
        if not dry_run:
            _remove(path)

    for sort, kind, path in items:
        if sort == "entry":
            try:
                meta = store.inspect(path, full=False)
            except KeyError:
                continue
            except CorruptEntry as err:
                reason = err.problem
            else:
                config = meta.get("config")
                if is_current is None or is_current(
                    kind, config if isinstance(config, dict) else {}
                ):
                    kept.add(path)
                    continue
                reason = "is not reached by any current config (an older step version)"
            pruned.add(path)
            drop(path, "entry", reason)
        elif sort == "quarantine":
            drop(path, sort, "was quarantined")
        elif sort == "temp" and _age(path, now) > temp_age:
            drop(path, sort, f"is a temporary leftover untouched for {_ago(_age(path, now))}")
        elif sort == "lock" and (why := lock_stale_reason(path, store.lock_timeout)):
            if dry_run or break_lock(path, store.lock_timeout):
                report.removed.append(Finding(path, sort, f"is a stale lock ({why})", 0))
    for sort, _, path in items:
        if sort != "scratch":
            continue
        entry = path.with_name(path.name.split(".", 1)[0])
        lock = entry.with_name(entry.name + ".lock")
        if lock.exists() and not lock_stale_reason(lock, store.lock_timeout):
            continue  # a live job is using it
        if entry in kept:
            drop(path, "scratch", "belongs to a complete entry")
        elif entry in pruned:
            drop(path, "scratch", "belongs to an entry removed now")
        elif _age(path, now) > scratch_age:
            drop(path, "scratch", f"has no live job and is untouched for {_ago(_age(path, now))}")
    report.kept = len(kept)
    return report


# --------------------------------------------------------------------------- command line


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GiB"


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _store(args: argparse.Namespace) -> Store:
    return Store(args.cache) if args.cache else Store()


def _rel(store: Store, path: Path) -> str:
    try:
        return str(path.relative_to(store.root))
    except ValueError:
        return str(path)


def _info_cmd(args: argparse.Namespace) -> int:
    store = _store(args)
    rows = cache_info(store)
    print(f"cache {store.root} ({'signed' if store.signed else 'not signed'})")
    if not rows:
        print("  empty" if store.root.is_dir() else "  (the folder does not exist yet)")
        return 0
    print(f"  {'what':<12} {'kind':<16} {'count':>7} {'size':>14}")
    for r in rows:
        print(f"  {r.what:<12} {r.kind or '-':<16} {r.count:>7} {_human(r.bytes):>14}")
    total = sum(r.bytes for r in rows)
    print(f"  {'total':<12} {'':<16} {sum(r.count for r in rows):>7} {_human(total):>14}")
    return 0


def _verify_cmd(args: argparse.Namespace) -> int:
    store = _store(args)
    report = cache_verify(store, quarantine=args.quarantine)
    print(f"verified {report.checked} entries in {store.root}: {len(report.bad)} bad")
    for f in report.bad:
        print(f"  BAD  {_rel(store, f.path)}  {f.reason}")
    if report.quarantined:
        print(f"moved {len(report.quarantined)} to {store.root / QUARANTINE}; they are recomputed")
    elif report.bad:
        print("run 'miakit cache verify --quarantine' to move them aside (they are recomputed)")
    return 0 if report.ok else 1


def _prune_cmd(args: argparse.Namespace, is_current: IsCurrent | None) -> int:
    store = _store(args)
    report = cache_prune(
        store, is_current, dry_run=args.dry_run, scratch_age=args.scratch_days * 86400
    )
    verb = "would remove" if args.dry_run else "removed"
    print(
        f"{verb} {len(report.removed)} item(s), {_human(report.bytes)}, from {store.root}; "
        f"kept {report.kept} entries"
    )
    for f in report.removed:
        print(f"  {f.what:<10} {_rel(store, f.path)}  {f.reason}")
    return 0


def add_parser(subparsers: Any, is_current: IsCurrent | None = None) -> argparse.ArgumentParser:
    """Add ``cache info|verify|prune`` to a CLI's subparsers; returns the ``cache`` parser.

    Each subcommand sets ``func(args) -> exit code``. ``is_current`` is the predicate
    ``prune`` uses (None: only debris is pruned); passing it keeps this module free of
    the pipeline. ``verify`` exits 1 when it finds a bad entry.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--cache", metavar="DIR", help="the cache folder (default: MIAKIT_CACHE or ~/.cache/miakit)"
    )
    cache = subparsers.add_parser("cache", help="inspect, verify or prune the artifact cache")
    sub = cache.add_subparsers(dest="cache_command", required=True)
    info = sub.add_parser("info", parents=[common], help="size and entries per step")
    info.set_defaults(func=_info_cmd)
    verify = sub.add_parser(
        "verify", parents=[common], help="check every entry's checksum (and HMAC)"
    )
    verify.add_argument(
        "--quarantine", action="store_true", help="move bad entries aside to be recomputed"
    )
    verify.set_defaults(func=_verify_cmd)
    prune = sub.add_parser(
        "prune", parents=[common], help="remove what no current config reaches, and debris"
    )
    prune.add_argument("--dry-run", action="store_true", help="list, remove nothing")
    prune.add_argument(
        "--scratch-days",
        type=float,
        default=SCRATCH_AGE / 86400,
        metavar="D",
        help="remove orphan checkpoints untouched for D days (default %(default)g)",
    )
    prune.set_defaults(func=functools.partial(_prune_cmd, is_current=is_current))
    return cache
