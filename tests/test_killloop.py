"""A killed pipeline loses at most one epoch and ends where an uninterrupted run ends (issue 10).

``miakit run --profile smoke --no-notebooks`` (base training, pruning with plain and
PPB fine-tuning, the neural attacks, SAMIA) is SIGKILLed five times at random
points, each kill coming only after the run has saved something new since it
started; every kill must leave more saved work (finished cache entries or
checkpointed epochs) than before it. A last run then completes, and every attack
score and model it stored equals those of an uninterrupted run on a fresh cache.
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

from miakit.experiment import ORIGINAL, Experiment, profile
from miakit.store import Store

SETTINGS = ["train.epochs=4", "attack_epochs=6", "train.patience=0"]
ATTACKS = ("conf", "nn", "samia", "lira")


def _command(cache: Path) -> tuple[list[str], dict[str, str]]:
    argv = [sys.executable, "-m", "miakit.cli", "run", "--profile", "smoke", "--no-notebooks"]
    argv += ["--quiet", "--cache", str(cache)]
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


def _scores(cache: Path) -> dict[str, np.ndarray]:
    cfg = profile("smoke").with_overrides(
        **{"train.epochs": 4, "attack_epochs": 6, "train.patience": 0}
    )
    exp = Experiment(cfg, store=Store(cache), device="cpu")
    pruned = exp.variant()
    out = {}
    for name in ATTACKS:
        out[f"{name} original"] = exp.attack_scores(name, ORIGINAL).scores
        out[f"{name} pruned"] = exp.attack_scores(name, pruned).scores
    out["ppb weights"] = np.concatenate(
        [
            t.flatten().numpy()
            for t in exp.model("victim", exp.variant(defense="ppb")).model.state_dict().values()
        ]
    )
    return out


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

    entries = len(list(killed.rglob("meta.json")))
    resumed, uninterrupted = _scores(killed), _scores(fresh)
    assert len(list(killed.rglob("meta.json"))) == entries, "the runs left work undone"
    assert resumed.keys() == uninterrupted.keys()
    for name in resumed:
        np.testing.assert_array_equal(resumed[name], uninterrupted[name], err_msg=name)
    assert not list(killed.rglob("*.ckpt")), "finished runs leave no checkpoint behind"
