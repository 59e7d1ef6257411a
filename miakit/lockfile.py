"""Lock files that work across processes and hosts on a shared filesystem.

One process computes a cached artifact while the others wait (issue 10, "No double
work under concurrency"). The lock is a plain file created with
``O_CREAT | O_EXCL``, which is atomic on local filesystems and on NFS, holding its
holder's host, pid, start time and a random token as JSON. ``fcntl`` is not used:
its locks do not reach every cluster filesystem and vanish silently on some.

A holder proves it is alive by a heartbeat thread that refreshes the file's mtime
every ``stale_after / 4`` seconds. A lock is *stale*, and is broken by the next
waiter, when its mtime is older than ``stale_after`` (a holder killed anywhere, or a
host that went away), or at once when its holder ran on this host and that process
has exited. Hosts sharing a cache must agree on the time to well within
``stale_after``. Breaking renames the lock to a unique name first, so of several
waiters exactly one breaks it, and a lock that turns out fresh is put back.

A lock only saves work: miakit's cache entries are written atomically (first
complete entry wins), so even two holders at once (a lock broken while its holder
was merely suspended) give correct results, only computed twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["break_lock", "file_lock", "lock_holder", "lock_stale_reason"]

PathLike = str | os.PathLike[str]

_GUARD = threading.Lock()
_OWN_TOKENS: set[str] = set()  # tokens of the lock files this process holds or is creating
_HELD: dict[tuple[str, int, int], int] = {}  # (path, pid, thread) -> depth, for re-entry


def lock_holder(path: PathLike) -> dict[str, Any] | None:
    """What a lock file says of its holder (host, pid, time, token); None if there is none.

    An empty or unreadable lock (its holder is between creating and writing it) gives ``{}``.
    """
    try:
        doc = json.loads(Path(path).read_text() or "{}")
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    try:  # a killed process that its parent has not reaped yet is dead too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def lock_stale_reason(path: PathLike, stale_after: float) -> str | None:
    """Why the lock at ``path`` is stale, or None while its holder may still be working.

    Stale means: its mtime (refreshed by the holder's heartbeat) is older than
    ``stale_after`` seconds, or its holder ran on this host and that process is gone.
    """
    try:
        age = time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return None
    holder = lock_holder(path) or {}
    who = f"held by {holder.get('host', '?')} pid {holder.get('pid', '?')}"
    if age > stale_after:
        return f"{who}, no heartbeat for {age:.0f} s (> {stale_after:g} s)"
    pid = holder.get("pid")
    if holder.get("host") == socket.gethostname() and isinstance(pid, int):
        if pid == os.getpid():
            if holder.get("token") not in _OWN_TOKENS:
                return f"{who}: left by an earlier process with this pid"
        elif not _pid_alive(pid):
            return f"{who}, a process that has exited"
    return None


def break_lock(
    path: PathLike, stale_after: float, on_break: Callable[[str], None] | None = None
) -> bool:
    """Remove the lock at ``path`` if it is stale; whether this call removed it.

    Of several concurrent breakers exactly one succeeds: the lock is first renamed
    to a unique name (only one rename of a file succeeds) and judged again there; if
    it turns out fresh (a new holder took the path in between) it is linked back, so
    a live holder's lock is never removed.
    """
    path = Path(path)
    grave = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}.broken")
    try:
        os.rename(path, grave)
    except FileNotFoundError:
        return False
    reason = lock_stale_reason(grave, stale_after)
    if reason is not None:
        grave.unlink(missing_ok=True)
        if on_break is not None:
            on_break(f"broke the stale lock {path} ({reason})")
        return True
    try:
        os.link(grave, path)  # put the fresh lock back, unless yet another one is in place
    except FileExistsError:
        pass
    except OSError:  # a filesystem without hard links
        if not os.path.lexists(path):
            os.rename(grave, path)
    grave.unlink(missing_ok=True)
    return False


def _heartbeat(path: Path, token: str, stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        holder = lock_holder(path)
        if holder is None:
            continue  # renamed aside for a moment by a breaker, who will put it back
        if holder.get("token") != token:
            return  # broken and taken over: nothing of ours left to refresh
        with contextlib.suppress(OSError):
            os.utime(path)


@contextlib.contextmanager
def file_lock(
    path: PathLike,
    *,
    stale_after: float = 120.0,
    poll: float = 0.05,
    on_wait: Callable[[dict[str, Any]], None] | None = None,
    on_break: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold an exclusive lock file for a block, across processes and hosts.

    The lock is created with ``O_CREAT | O_EXCL`` (atomic on local disks and NFS) and
    holds its holder's host, pid, time and a token as JSON. While held, a heartbeat
    thread refreshes its mtime every ``stale_after / 4`` seconds. A waiter polls
    (``poll`` seconds, growing to ``min(1, stale_after / 4)``) and breaks a stale lock
    (see :func:`lock_stale_reason`); hosts must share a clock to well within
    ``stale_after``. No ``fcntl``: correctness rests on ``O_EXCL``, rename and mtime.
    Re-entering the lock in the same thread is allowed (a no-op).

    Args:
        path: the lock file.
        stale_after: seconds without heartbeat after which the lock is broken.
        poll: first wait between attempts, in seconds.
        on_wait: called once with the holder's record when the lock is busy.
        on_break: called with a one-line message when a stale lock is broken.
    """
    path = Path(path)
    me = (str(path), os.getpid(), threading.get_ident())
    with _GUARD:
        nested = me in _HELD
        _HELD[me] = _HELD.get(me, 0) + 1 if nested else 0
    if nested:
        try:
            yield
        finally:
            with _GUARD:
                _HELD[me] -= 1
        return
    token = uuid.uuid4().hex
    body = {"host": socket.gethostname(), "pid": os.getpid(), "token": token}
    body["time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with _GUARD:
        _OWN_TOKENS.add(token)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        delay, waited = poll, False
        while True:
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if lock_stale_reason(path, stale_after) is not None:
                    break_lock(path, stale_after, on_break)
                    continue
                if not waited and on_wait is not None:
                    on_wait(lock_holder(path) or {})
                waited = True
                time.sleep(delay)
                delay = min(delay * 1.5, max(poll, min(1.0, stale_after / 4)))
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(body, fh)
            break
        stop = threading.Event()
        beat = threading.Thread(
            target=_heartbeat, args=(path, token, stop, stale_after / 4), daemon=True
        )
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()
            if (lock_holder(path) or {}).get("token") == token:
                path.unlink(missing_ok=True)
    finally:
        with _GUARD:
            _OWN_TOKENS.discard(token)
            _HELD.pop(me, None)
