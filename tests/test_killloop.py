"""A killed pipeline loses at most one epoch and ends where an uninterrupted run ends (issue 10).

``miakit signals --profile smoke --defense ppb`` (base training of the victim and
shadows, pruning and PPB fine-tuning of each, signals, the NN attack, SAMIA and LiRA)
is SIGKILLed five times at random points, each kill coming only after the run has
saved something new since it started; every kill must leave more saved work
(finished cache entries or checkpointed epochs) than before it. A last run then
completes, and the file it writes (every signal and every attack score) equals, array
for array, the file of an uninterrupted run on a fresh cache.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

SETTINGS = ["train.epochs=4", "attack_epochs=6", "train.patience=0"]


def _command(cache: Path) -> tuple[list[str], dict[str, str]]:
    argv = [sys.executable, "-m", "miakit.cli", "signals", "--profile", "smoke"]
    argv += ["--defense", "ppb", "--attacks", "conf,nn,samia,lira", "--quiet"]
    argv += ["--cache", str(cache), "--out", str(cache.parent / f"{cache.name}.npz")]
    for item in SETTINGS:
        argv += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return argv, env


def _saved(cache: Path) -> set[tuple[str, int]]:
    """What a run has saved: finished entries, and each checkpoint with its epoch."""
    out: set[tuple[str, int]] = set()
    for path in cache.rglob("meta.json"):
        out.add((str(path.parent.relative_to(cache)), -1))
    for path in cache.rglob("*.ckpt"):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - a checkpoint being replaced right now
            continue
        out.add((str(path.relative_to(cache)), int(state.get("epoch", 0))))
    return out


def _progress(before: set[tuple[str, int]], after: set[tuple[str, int]]) -> bool:
    """Whether ``after`` holds more work: a new entry, or a checkpoint at a later epoch."""
    best = {name: epoch for name, epoch in before}
    for name, epoch in before:
        best[name] = max(best[name], epoch)
    return any(name not in best or epoch > best[name] for name, epoch in after)


def test_five_sigkills_then_a_full_run_equal_an_uninterrupted_run(tmp_path):
    rng = random.Random(10)
    killed = tmp_path / "killed"
    argv, env = _command(killed)
    for kill in range(5):
        before = _saved(killed)
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if _progress(before, _saved(killed)):
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"run {kill} finished before kill {kill}: lower the wait"
        time.sleep(rng.uniform(0.0, 1.5))  # a random point after the first new save
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        after = _saved(killed)
        assert _progress(before, after), f"kill {kill} lost everything since the last one"
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    fresh = tmp_path / "fresh"
    argv, env = _command(fresh)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    with np.load(tmp_path / "killed.npz") as a, np.load(tmp_path / "fresh.npz") as b:
        assert sorted(a.files) == sorted(b.files) and "scores_samia" in a.files
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert not list(killed.rglob("*.ckpt")), "finished runs leave no checkpoint behind"
