"""The thread budget: how many CPU threads this miakit process may use, set by default.

A miakit process uses no more torch and BLAS threads than the CPUs it may actually
run on (issue 12, item 5): spinning OpenMP threads on an oversubscribed machine burn
CPU time without doing work (measured: the README's main job used 3.5x the CPU an
idle run can use on 2 cores, and single-model training fell below the textbook loop).

The budget, in order of precedence:

1. ``apply_thread_budget(n)`` with an explicit ``n``;
2. ``MIAKIT_THREADS`` (a positive integer), taken as given;
3. this process's *share*: :func:`available_cpus` (the affinity mask and the cgroup
   CPU quota, whichever is smaller) divided by the number of live miakit processes
   whose affinity overlaps this one's (at least 1), and never more than an
   ``OMP_NUM_THREADS`` the user set.

:func:`apply_thread_budget` sets torch's intra-op threads (and its inter-op threads
where torch still allows it), the BLAS pools already loaded (``threadpoolctl``), and
``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS`` in the
environment, so child processes (the papermill kernels of ``miakit run``) inherit it.
``miakit``'s command line and :func:`miakit.experiment.from_parameters` call it;
importing miakit changes nothing.

Live processes are counted through a registry folder holding one small JSON file per
PID (:func:`registry_dir`); a process registers when it first applies its budget and
removes its file at exit. Files of dead PIDs (or of a PID reused by another program,
told apart by the start time in ``/proc``) are removed when seen. A process does not
count its own parent: ``miakit run`` waits while its notebook kernels compute. A
process that applied its share re-derives it at the start of each pipeline step
(:func:`current_budget`, called by ``miakit._util.num_threads``), so a process started
earlier yields CPUs to the ones started after it. The share is a simplification where
affinities overlap only in part: every overlapping process counts as one whole sharer.
On Windows (no affinity mask, no ``os.kill(pid, 0)``) the registry is skipped.

This module imports no other miakit module (layer 0, ARCHITECTURE.md "Layer order").
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import tempfile
from collections.abc import Collection
from pathlib import Path

__all__ = [
    "BLAS_VARS",
    "ENV",
    "REGISTRY_ENV",
    "apply_thread_budget",
    "available_cpus",
    "current_budget",
    "registry_dir",
    "thread_budget",
]

#: The user's override: the number of CPU threads each miakit process uses.
ENV = "MIAKIT_THREADS"
#: Where live miakit processes register (default: ``$XDG_RUNTIME_DIR/miakit-procs``).
REGISTRY_ENV = "MIAKIT_PROCS_DIR"
#: The thread-count variables set for child processes.
BLAS_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# What miakit last wrote to OMP_NUM_THREADS, and the user's own value before that
# (empty: none), so that miakit's value is not taken for the user's bound, in this
# process or in a child that inherits both.
_APPLIED_ENV = "MIAKIT_THREADS_APPLIED"
_USER_OMP_ENV = "MIAKIT_THREADS_USER_OMP"

PathLike = str | os.PathLike[str]


class _State:
    """What this process applied: the count, whether it follows the share, its entry."""

    applied: int | None = None
    follows_share: bool = False
    entry: Path | None = None
    pid: int | None = None  # the PID that applied (a forked child is another process)
    registry: Path | None = None
    interop_tried: bool = False


_STATE = _State()


# --------------------------------------------------------------------------- CPUs


def _affinity() -> frozenset[int]:
    if hasattr(os, "sched_getaffinity"):
        return frozenset(os.sched_getaffinity(0))
    return frozenset(range(os.cpu_count() or 1))


def _quota_cpus(quota: str, period: str) -> int | None:
    """``ceil(quota / period)``, or ``None`` for no limit (``max`` or a negative quota)."""
    if quota.strip() == "max":
        return None
    q, p = int(quota), int(period)
    if q <= 0 or p <= 0:
        return None
    return max(1, math.ceil(q / p))


def _cgroup_paths(proc_cgroup: Path) -> dict[str, str]:
    """This process's cgroup per hierarchy: ``""`` for v2, a controller list for v1."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in proc_cgroup.read_text().splitlines():
            parts = line.split(":", 2)
            if len(parts) == 3:
                out[parts[1]] = parts[2]
    return out


def _up_to(root: Path, rel: str) -> list[Path]:
    """``root/rel`` and each of its parents up to ``root`` itself."""
    folders = [root]
    for part in Path(rel.lstrip("/")).parts:
        folders.append(folders[-1] / part)
    return folders[::-1]


def _cgroup_cpus(root: Path, proc_cgroup: Path) -> int | None:
    """The cgroup CPU quota in whole CPUs (the tightest of this cgroup and its parents)."""
    paths = _cgroup_paths(proc_cgroup)
    limits: list[int] = []
    # cgroup v2: "quota period" in cpu.max (quota "max": no limit)
    for folder in _up_to(root, paths.get("", "/")):
        with contextlib.suppress(OSError, ValueError, IndexError):
            quota, period = (folder / "cpu.max").read_text().split()[:2]
            if (cpus := _quota_cpus(quota, period)) is not None:
                limits.append(cpus)
    # cgroup v1: cpu.cfs_quota_us / cpu.cfs_period_us (quota -1: no limit)
    rel = next((p for c, p in paths.items() if "cpu" in c.split(",")), "/")
    for ctrl in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        for folder in _up_to(root / ctrl, rel):
            with contextlib.suppress(OSError, ValueError):
                quota = (folder / "cpu.cfs_quota_us").read_text()
                period = (folder / "cpu.cfs_period_us").read_text()
                if (cpus := _quota_cpus(quota, period)) is not None:
                    limits.append(cpus)
    return min(limits) if limits else None


def available_cpus(
    cgroup_root: PathLike = "/sys/fs/cgroup", proc_cgroup: PathLike = "/proc/self/cgroup"
) -> int:
    """The CPUs this process may use: its affinity mask or its cgroup quota, the smaller.

    The affinity is ``os.sched_getaffinity(0)`` where the OS has it, else
    ``os.cpu_count()``. The quota is read from cgroup v2 (``cpu.max``: ``"quota
    period"``, ``max`` = no limit) or v1 (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``,
    ``-1`` = no limit) in this process's cgroup (``proc_cgroup``) and its parents,
    rounded up to whole CPUs (a 1.5-CPU quota gives 2).

    Args:
        cgroup_root: where the cgroup file system is mounted (tests pass a fake tree).
        proc_cgroup: the file naming this process's cgroups.
    """
    cpus = len(_affinity())
    quota = _cgroup_cpus(Path(cgroup_root), Path(proc_cgroup))
    return max(1, min(cpus, quota) if quota is not None else cpus)


# --------------------------------------------------------------------------- registry


def registry_dir(explicit: PathLike | None = None) -> Path:
    """The folder of live miakit processes: ``explicit``, ``$MIAKIT_PROCS_DIR``, else
    ``$XDG_RUNTIME_DIR/miakit-procs``, else ``<tmp>/miakit-procs-<uid>``."""
    if explicit is not None:
        return Path(explicit)
    if value := os.environ.get(REGISTRY_ENV):
        return Path(value).expanduser()
    if runtime := os.environ.get("XDG_RUNTIME_DIR"):
        return Path(runtime) / "miakit-procs"
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"miakit-procs-{uid}"


def _start_time(pid: int) -> str | None:
    """A process's start time (``/proc/<pid>/stat`` field 22), to tell a reused PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2 :].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return True


def _register(folder: Path) -> Path | None:
    """Write this process's entry (PID, start time, affinity); removed at exit."""
    if _STATE.pid == os.getpid() and _STATE.entry is not None:
        return _STATE.entry
    pid = os.getpid()
    entry = folder / f"{pid}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = folder / f".{pid}.tmp"
        tmp.write_text(json.dumps({"start": _start_time(pid), "cpus": sorted(_affinity())}))
        os.replace(tmp, entry)
    except OSError:
        _STATE.entry = None
        return None  # an unwritable registry: this process's share ignores the others
    _STATE.entry, _STATE.pid = entry, pid
    atexit.register(_unregister, entry, pid)
    return entry


def _unregister(entry: Path, pid: int) -> None:
    if os.getpid() == pid:  # never a forked child removing its parent's entry
        with contextlib.suppress(OSError):
            entry.unlink()


def _sharers(folder: Path, mine: Collection[int]) -> int:
    """Live miakit processes other than this one and its parent whose CPUs overlap ``mine``.

    Entries of dead PIDs, and of live PIDs whose start time differs from the entry's
    (the PID was reused), are removed.
    """
    skip = {os.getpid(), os.getppid()}
    count = 0
    try:
        entries = list(folder.glob("*.json"))
    except OSError:
        return 0
    for entry in entries:
        try:
            pid = int(entry.stem)
        except ValueError:
            continue
        if pid in skip:
            continue
        try:
            info = json.loads(entry.read_text())
        except (OSError, ValueError):
            info = {}
        start = info.get("start") if isinstance(info, dict) else None
        if not _alive(pid) or (start is not None and _start_time(pid) not in (None, start)):
            with contextlib.suppress(OSError):
                entry.unlink()
            continue
        cpus = info.get("cpus") if isinstance(info, dict) else None
        if not isinstance(cpus, list) or set(cpus) & set(mine):
            count += 1  # an unreadable entry counts: sharing is the safe guess
    return count


# --------------------------------------------------------------------------- budget


def _env_threads() -> int | None:
    value = os.environ.get(ENV)
    if value is None or value.strip() == "":
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(
            f"{ENV}={value!r} is not a thread count: set it to a positive integer (the "
            f"number of CPU threads each miakit process uses, e.g. {ENV}=2) or unset it "
            "to use this process's share of the CPUs it may run on"
        )
    return n


def _user_omp() -> int | None:
    """The ``OMP_NUM_THREADS`` the user set (not one miakit wrote), as a bound."""
    value = os.environ.get("OMP_NUM_THREADS")
    if value is not None and value == os.environ.get(_APPLIED_ENV):
        value = os.environ.get(_USER_OMP_ENV) or None  # miakit's: the user's was before
    try:
        n = int(value.split(",")[0]) if value else 0  # "4,2" is OpenMP's nested form
    except ValueError:
        return None
    return n if n >= 1 else None


def thread_budget(*, registry: PathLike | None = None, cpus: int | None = None) -> int:
    """The number of CPU threads this process may use (see the module's precedence).

    ``MIAKIT_THREADS`` if set; else :func:`available_cpus` divided by the live miakit
    processes sharing those CPUs, this one included (rounded down, at least 1), and no
    more than a user-set ``OMP_NUM_THREADS``. Computing it sets no thread count (it only
    removes the registry entries of processes that ended).

    Args:
        registry: the registry folder (default :func:`registry_dir`).
        cpus: the CPUs to share (default :func:`available_cpus`); for tests.

    Raises:
        ValueError: ``MIAKIT_THREADS`` is not a positive integer.
    """
    fixed = _env_threads()
    if fixed is not None:
        return fixed
    cpus = available_cpus() if cpus is None else cpus
    others = 0 if os.name == "nt" else _sharers(registry_dir(registry), _affinity())
    share = max(1, cpus // (1 + others))
    bound = _user_omp()
    return min(share, bound) if bound is not None else share


def apply_thread_budget(n: int | None = None, *, registry: PathLike | None = None) -> int:
    """Set this process's torch and BLAS thread counts to its budget; return the count.

    Registers the process (so other miakit processes count it), then sets
    ``torch.set_num_threads``, ``torch.set_num_interop_threads`` (once, and only while
    torch still allows it: it refuses after parallel work started), the BLAS pools
    already loaded, and ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
    ``OPENBLAS_NUM_THREADS`` for child processes. Precedence: ``n``, then
    ``MIAKIT_THREADS``, then :func:`thread_budget`'s share (which a user-set
    ``OMP_NUM_THREADS`` bounds).

    Args:
        n: an explicit count, or ``None`` for the budget.
        registry: the registry folder (default :func:`registry_dir`).

    Raises:
        ValueError: ``n`` or ``MIAKIT_THREADS`` is not a positive integer.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"the thread count must be a positive integer, got {n!r}")
    folder = registry_dir(registry)
    if os.name != "nt":
        _register(folder)
    follows_share = n is None and _env_threads() is None
    count = n if n is not None else thread_budget(registry=folder)
    _set(count)
    _STATE.follows_share, _STATE.registry = follows_share, folder
    return count


def current_budget(*, registry: PathLike | None = None) -> int:
    """The thread count this process may use now.

    Where :func:`apply_thread_budget` applied the share, the share is derived again
    (and applied if it changed): other miakit processes may have started or ended.
    Where it applied a fixed count, that count; where it never ran, :func:`thread_budget`.
    """
    if _STATE.applied is None or _STATE.pid != os.getpid():
        return thread_budget(registry=registry)
    if _STATE.follows_share:
        share = thread_budget(registry=_STATE.registry if registry is None else registry)
        if share != _STATE.applied:
            _set(share)
    return _STATE.applied


def _set(count: int) -> None:
    import torch

    user_omp = _user_omp()  # read before this overwrites OMP_NUM_THREADS
    torch.set_num_threads(count)
    if not _STATE.interop_tried:
        _STATE.interop_tried = True
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(count)
    for var in BLAS_VARS:
        os.environ[var] = str(count)
    os.environ[_APPLIED_ENV] = str(count)
    os.environ[_USER_OMP_ENV] = str(user_omp) if user_omp is not None else ""
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=count)
    _STATE.applied, _STATE.pid = count, os.getpid()
