"""The cache under real concurrent processes (issue 10, "No double work under concurrency").

Each test starts real OS processes (``multiprocessing``; ``fork`` where available, as
it starts in milliseconds) on one cache folder. ``create`` functions count their runs
by writing one marker file each, so "computed once" is read off the disk.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import socket
import time
import uuid
from pathlib import Path

import pytest
import torch

from miakit.lockfile import file_lock, lock_holder
from miakit.store import CacheWarning, Store

CTX = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
CFG = {"step": "train", "version": 1}


def _creator(markers: Path, value: float, seconds: float = 0.0):
    """A ``create`` that sleeps ``seconds``, leaves one marker file and returns ``value``."""

    def create():
        time.sleep(seconds)
        (markers / f"{os.getpid()}-{uuid.uuid4().hex}").write_text("")
        return {"w": torch.full((4,), value)}, {"by": os.getpid()}

    return create


def _markers(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir(exist_ok=True)
    return path


def _run(procs: list) -> None:
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0, f"a worker failed (exit code {p.exitcode})"


# --------------------------------------------------------------------------- workers


def _saver(root: str, rounds: int, barrier, errors) -> None:
    store = Store(root)
    for i in range(rounds):
        barrier.wait()
        try:
            store.save_tensors("sig", {"i": i % 3}, {"w": torch.full((64,), float(os.getpid()))})
        except Exception as err:  # noqa: BLE001 - the test reports any crash
            errors.put(repr(err))


def _asker(root: str, markers: str, barrier, results, timeout: float = 60.0) -> None:
    store = Store(root, lock_timeout=timeout)
    barrier.wait()
    tensors, info = store.get_or_create("model", CFG, _creator(Path(markers), 1.0, 0.5))
    results.put((float(tensors["w"].sum()), info["by"]))


def _holder(root: str, held, hold: float, timeout: float) -> None:
    store = Store(root, lock_timeout=timeout)
    with store.lock("model", CFG):
        held.set()
        time.sleep(hold)  # longer than ``timeout``: only the heartbeat keeps the lock
        store.save_tensors("model", CFG, {"w": torch.full((4,), 7.0)}, {"by": os.getpid()})


def _dies_holding(root: str, held) -> None:
    store = Store(root)

    def create():
        held.set()
        time.sleep(60)  # killed here
        raise AssertionError("not reached")

    store.get_or_create("model", CFG, create)


def _exits_holding(root: str) -> None:
    lock = Store(root).lock("model", CFG)  # kept referenced: never closed
    lock.__enter__()
    os._exit(0)  # no clean-up: the lock file stays, naming a pid that is gone


# --------------------------------------------------------------------------- tests


def test_simultaneous_saves_of_one_key_never_crash(tmp_path):
    """8 processes x 40 rounds, all saving the same key at once (issue: 'Directory not empty')."""
    n, rounds = 8, 40
    barrier, errors = CTX.Barrier(n), CTX.Queue()
    _run(
        [
            CTX.Process(target=_saver, args=(str(tmp_path), rounds, barrier, errors))
            for _ in range(n)
        ]
    )
    crashes = []
    while not errors.empty():
        crashes.append(errors.get())
    assert not crashes, crashes[:3]
    store = Store(tmp_path)
    for i in range(3):  # one complete, verified entry per key: the first writer's
        tensors, _ = store.load_tensors("sig", {"i": i})
        assert tensors["w"].unique().numel() == 1
    assert not [p for p in tmp_path.rglob(".*")], "temporary folders left behind"


def test_two_processes_asking_for_one_artifact_compute_it_once(tmp_path):
    markers, n = _markers(tmp_path), 2
    barrier, results = CTX.Barrier(n), CTX.Queue()
    procs = [
        CTX.Process(target=_asker, args=(str(tmp_path), str(markers), barrier, results))
        for _ in range(n)
    ]
    _run(procs)
    got = [results.get(timeout=5) for _ in range(n)]
    assert len(list(markers.iterdir())) == 1  # create ran once
    assert len(set(got)) == 1  # both returned the one stored result (same creator pid)
    assert got[0][1] in {p.pid for p in procs}
    assert not list(tmp_path.rglob("*.lock"))


def test_a_live_holder_is_waited_on_past_the_timeout_thanks_to_its_heartbeat(tmp_path):
    timeout, hold = 1.0, 2.5
    held = CTX.Event()
    holder = CTX.Process(target=_holder, args=(str(tmp_path), held, hold, timeout))
    holder.start()
    assert held.wait(30)
    markers = _markers(tmp_path)
    t0 = time.perf_counter()
    tensors, info = Store(tmp_path, lock_timeout=timeout).get_or_create(
        "model", CFG, _creator(markers, 1.0)
    )
    waited = time.perf_counter() - t0
    holder.join(30)
    assert holder.exitcode == 0
    assert not list(markers.iterdir())  # never computed here: it waited and loaded
    assert info["by"] == holder.pid and torch.equal(tensors["w"], torch.full((4,), 7.0))
    assert waited > 2 * timeout  # the lock outlived the timeout while its holder worked


def test_a_lock_of_a_killed_process_is_broken_at_once(tmp_path):
    held = CTX.Event()
    victim = CTX.Process(target=_dies_holding, args=(str(tmp_path), held))
    victim.start()
    assert held.wait(30)
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(30)
    store = Store(tmp_path, lock_timeout=20)  # only the dead-pid rule can break it in time
    lock = store.path("model", CFG).with_name(store.path("model", CFG).name + ".lock")
    assert lock_holder(lock)["pid"] == victim.pid
    markers = _markers(tmp_path)
    t0 = time.perf_counter()
    with pytest.warns(CacheWarning, match="stale lock"):
        tensors, _ = store.get_or_create("model", CFG, _creator(markers, 3.0))
    assert time.perf_counter() - t0 < 10
    assert len(list(markers.iterdir())) == 1 and torch.equal(tensors["w"], torch.full((4,), 3.0))
    assert not lock.exists()


def test_many_waiters_break_a_dead_holders_lock_once_and_compute_once(tmp_path):
    quitter = CTX.Process(target=_exits_holding, args=(str(tmp_path),))
    quitter.start()
    quitter.join(30)
    store = Store(tmp_path)
    lock = store.path("model", CFG).with_name(store.path("model", CFG).name + ".lock")
    assert lock_holder(lock)["pid"] == quitter.pid  # a stale lock is in place
    markers, n = _markers(tmp_path), 6
    barrier, results = CTX.Barrier(n), CTX.Queue()
    _run(
        [
            CTX.Process(target=_asker, args=(str(tmp_path), str(markers), barrier, results))
            for _ in range(n)
        ]
    )
    got = [results.get(timeout=5) for _ in range(n)]
    assert len(list(markers.iterdir())) == 1 and len(set(got)) == 1
    assert not list(lock.parent.glob("*.lock*"))  # no lock, no half-broken lock left


def test_a_foreign_lock_without_heartbeat_is_waited_on_then_broken(tmp_path):
    """A holder on another host can't be checked by pid: its lock goes stale by mtime."""
    timeout = 1.0
    store = Store(tmp_path, lock_timeout=timeout)
    entry = store.path("model", CFG)
    lock = entry.with_name(entry.name + ".lock")
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"host": f"not-{socket.gethostname()}", "pid": 1, "token": "x"}))
    markers = _markers(tmp_path)
    t0 = time.perf_counter()
    with pytest.warns(CacheWarning, match="no heartbeat"):
        store.get_or_create("model", CFG, _creator(markers, 1.0))
    assert time.perf_counter() - t0 >= timeout * 0.9  # it waited for the timeout first
    assert len(list(markers.iterdir())) == 1


def test_breaking_puts_back_a_lock_that_turned_fresh(tmp_path):
    """The rename-then-judge step: a live lock found at the path is never removed."""
    from miakit.lockfile import break_lock

    lock = tmp_path / "x.lock"
    with file_lock(lock, stale_after=60):
        token = lock_holder(lock)["token"]
        assert not break_lock(lock, 60)
        assert lock_holder(lock)["token"] == token
        old = time.time() - 120
        os.utime(lock, (old, old))  # looks stale (no heartbeat) to a breaker...
        assert break_lock(lock, 60)  # ...so it is broken
    assert not lock.exists()


def test_two_threads_of_one_process_compute_once(tmp_path):
    """Same pid, different threads: a thread's lock is live to its siblings."""
    from concurrent.futures import ThreadPoolExecutor

    store, markers = Store(tmp_path), _markers(tmp_path)
    with ThreadPoolExecutor(3) as pool:
        futures = [
            pool.submit(store.get_or_create, "model", CFG, _creator(markers, 5.0, 0.3))
            for _ in range(3)
        ]
        got = [f.result(timeout=30) for f in futures]
    assert len(list(markers.iterdir())) == 1
    assert all(torch.equal(t["w"], got[0][0]["w"]) for t, _ in got)


def test_a_waiter_says_what_it_waits_for(tmp_path):
    """A run waiting on another's lock prints one warning naming the holder, then loads."""
    import threading
    import time as _time

    import torch

    from miakit.store import CacheWarning, Store

    store = Store(tmp_path)
    key = {"step": "train", "role": "victim"}
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with store.lock("model", key):
            held.set()
            release.wait(10)
            store.save_tensors("model", key, {"w": torch.ones(3)})

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    threading.Timer(0.3, release.set).start()
    start = _time.monotonic()
    with pytest.warns(CacheWarning, match=r"waiting for model \w+ \(being computed by .* pid"):
        tensors, _ = store.get_or_create("model", key, lambda: ({"w": torch.zeros(3)}, {}))
    thread.join()
    assert _time.monotonic() - start >= 0.25
    assert torch.equal(tensors["w"], torch.ones(3))  # the holder's result, not recomputed
