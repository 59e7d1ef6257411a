"""Issue 14's kill test: a sweep whose run is SIGKILLed mid-way, then run again.

For the local backend and for the Slurm backend through submitit's local executor, a
grid of three runs of a small notebook executes with all three at once. Every run asks
the shared cache for one artifact (computed once for all). One run waits for a release
file; the test SIGKILLs its process while it waits. The sweep reports it killed and the
others done; the rerun executes only the killed run (nothing finished is recomputed),
which completes, and ``miakit collect`` gives exactly one row per run and attack.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from miakit.collect import collect
from miakit.gridfile import load_grid
from miakit.launch import launch
from miakit.runfolder import run_state

BODY = """
import os, pathlib, time
import pandas as pd
import torch
from miakit.store import Store

def create():
    marker = pathlib.Path(os.environ["MIAKIT_CACHE"]).parent / "computed"
    marker.mkdir(exist_ok=True)
    (marker / str(os.getpid())).touch()
    time.sleep(1.0)
    return {"w": torch.ones(3)}, {}

shared, _ = Store(os.environ["MIAKIT_CACHE"]).get_or_create("model", {"shared": 1}, create)
figures = pathlib.Path(os.environ["MIAKIT_FIGURES"]) / profile
figures.mkdir(parents=True, exist_ok=True)
if sparsity == stall:
    (figures.parent.parent / "waiting").touch()
    while not pathlib.Path(release).exists():
        time.sleep(0.05)
table = pd.DataFrame({"attack": ["conf", "loss"], "auc": [0.5 + sparsity / 10, 0.6]})
table.assign(victim_sparsity=sparsity).to_csv(figures / "01_attacks.csv", index=False)
"""


def _notebooks(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'profile = "smoke"\nsparsity = 0.5\nstall = -1.0\nrelease = ""'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(BODY)]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["kernelspec"] = kernel
    folder.mkdir()
    nbformat.write(nb, folder / "01_wait.ipynb")
    return folder


def _sweep(backend: str, grid, runs: Path):
    if backend == "local":
        return launch(grid, runs, max_parallel=3, gpus=[])
    from miakit.slurm import submit

    options = {"timeout_min": 10, "cpus_per_task": 1, "gpus_per_node": 0}
    return submit(grid, runs, options=options, cluster="local", poll=0.2)


@pytest.mark.parametrize("backend", ["local", "submitit-local"])
def test_a_killed_run_reruns_alone_and_nothing_finished_is_recomputed(
    tmp_path, monkeypatch, backend
) -> None:
    monkeypatch.setenv("MIAKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MIAKIT_THREADS", "1")
    release = tmp_path / "release"
    path = tmp_path / "grid.yaml"
    path.write_text(
        f"name: kill\nnotebooks: ['01']\nparameters: {{profile: smoke, stall: 0.7, "
        f"release: '{release}'}}\nproduct:\n  sparsity: [0.5, 0.7, 0.9]\n"
    )
    grid = load_grid(path, _notebooks(tmp_path / "notebooks"))
    ids = [run.run_id for run in grid.runs()]
    victim = ids[1]
    root = tmp_path / "runs" / "kill"

    outcome: dict = {}
    sweeping = threading.Thread(
        target=lambda: outcome.update(report=_sweep(backend, grid, tmp_path / "runs"))
    )
    sweeping.start()
    deadline = time.monotonic() + 180
    while not (root / victim / "waiting").exists():
        assert time.monotonic() < deadline and sweeping.is_alive(), "the run never started"
        time.sleep(0.05)
    state = run_state(root / victim)
    assert state["state"] == "running"
    os.kill(state["pid"], signal.SIGKILL)  # the run's own process, mid-notebook
    sweeping.join(timeout=240)
    assert not sweeping.is_alive()
    report = outcome["report"]
    assert sorted(report.done) == sorted([ids[0], ids[2]])
    assert list(report.killed) == [victim] and not report.failed
    assert run_state(root / victim)["state"] == "killed"
    assert "killed" in report.killed[victim] or "ended" in report.killed[victim]
    finished = {i: (root / i / "01_wait.ipynb").stat().st_mtime_ns for i in (ids[0], ids[2])}

    release.touch()
    again = _sweep(backend, grid, tmp_path / "runs")
    assert again.done == [victim] and sorted(again.skipped) == sorted(finished)
    assert {i: (root / i / "01_wait.ipynb").stat().st_mtime_ns for i in finished} == finished
    assert all(run_state(root / i)["state"] == "done" for i in ids)
    # three runs in two sweeps asked for the shared artifact; it was computed once
    assert len(list((tmp_path / "computed").iterdir())) == 1

    for run_id in ids:  # each run's own tidy results, which collect merges
        assert len(pd.read_csv(root / run_id / "results.csv")) == 2
    table = collect(root)
    assert len(table) == 6
    assert table.groupby(["run_id", "attack"]).size().eq(1).all()
    assert set(table["run_id"]) == set(ids)
    assert sorted(table["param_sparsity"].unique()) == [0.5, 0.7, 0.9]


def test_the_local_backend_pins_runs_to_the_least_loaded_gpu_and_shares_the_cpus(
    tmp_path, monkeypatch
) -> None:
    """Two runs at once over two GPU ids: the first two runs get one GPU each, the third
    the GPU freed first; every run gets cores / 2 threads. (CPU-only here: the ids only
    reach ``CUDA_VISIBLE_DEVICES``, as they would on a GPU box.)"""
    from miakit.threads import available_cpus

    monkeypatch.setenv("MIAKIT_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "grid.yaml"
    path.write_text("name: gpus\nnotebooks: ['01']\nproduct:\n  sparsity: [0.5, 0.7, 0.9]\n")
    grid = load_grid(path, _notebooks(tmp_path / "notebooks"))
    report = launch(grid, tmp_path / "runs", max_parallel=2, gpus=["0", "1"])
    ids = [run.run_id for run in grid.runs()]
    assert sorted(report.done) == sorted(ids)
    states = [run_state(tmp_path / "runs" / "gpus" / i) for i in ids]
    assert {states[0]["gpu"], states[1]["gpu"]} == {"0", "1"}
    assert states[2]["gpu"] in {"0", "1"}
    assert {s["threads"] for s in states} == {str(max(1, available_cpus() // 2))}
