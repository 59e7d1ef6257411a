"""Executing a sweep's runs: ``miakit sweep`` and its local backend (issue 14).

:class:`Sweep` plans a grid file's runs into a folder a person can browse
(``runs/<grid>/manifest.json`` with every run's parameters and state, and one
:mod:`miakit.runfolder` per run). A run whose state is done is skipped; a failed one is
reported and skipped unless ``retry_failed``; a killed one (its process died: a signal,
the OOM killer, a time limit) or one left ``running`` by a dead process runs again; one
that a live process executes (another sweep, another host) is left to it.

:func:`launch` is the local backend: each run is one ``python -m miakit.runfolder``
process, watched directly, at most ``max_parallel`` at once, each with
``cores / max_parallel`` CPU threads (``MIAKIT_THREADS``) and, where GPUs are present,
the least-loaded GPU (``CUDA_VISIBLE_DEVICES``; several runs share a GPU when
``max_parallel`` exceeds the GPUs). The Slurm backend is :mod:`miakit.slurm`. Runs share
the artifact cache, whose locks make two runs needing one model train it once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from miakit._util import progress_bar
from miakit.gridfile import GridFile, Run
from miakit.runfolder import live_elsewhere, mark_killed, prepare, run_state, write_json
from miakit.threads import available_cpus

__all__ = ["LaunchReport", "Progress", "Sweep", "launch", "visible_gpus"]


@dataclass
class LaunchReport:
    """What a sweep did: run ids by outcome, and each failed or killed run's message."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    killed: dict[str, str] = field(default_factory=dict)
    elsewhere: list[str] = field(default_factory=list)

    def record(self, run_id: str, state: dict[str, Any]) -> None:
        """File a finished run under its final state."""
        if state["state"] == "done":
            self.done.append(run_id)
        elif state["state"] == "failed":
            self.failed[run_id] = str(state.get("error", ""))
        else:
            self.killed[run_id] = str(state.get("error", ""))


class Sweep:
    """A grid file's runs in ``runs_root/<grid name>/``: which to run, and the manifest."""

    def __init__(
        self, grid: GridFile, runs_root: str | Path = "runs", cache: str | Path | None = None
    ) -> None:
        self.grid = grid
        self.root = Path(runs_root).resolve() / grid.name
        self.runs = grid.runs()
        self.folders = {run.run_id: self.root / run.run_id for run in self.runs}
        self.states = {run_id: run_state(folder) for run_id, folder in self.folders.items()}
        self.cache = None if cache is None else Path(cache).resolve()

    def plan(self, retry_failed: bool = False) -> tuple[list[Run], LaunchReport]:
        """The runs to execute now (each prepared: ``run.json`` written), and a report
        holding the skipped ones."""
        self.root.mkdir(parents=True, exist_ok=True)
        report, todo = LaunchReport(), []
        for run in self.runs:
            folder, state = self.folders[run.run_id], self.states[run.run_id]
            if state["state"] == "done":
                report.skipped.append(run.run_id)
            elif state["state"] == "failed" and not retry_failed:
                report.skipped.append(run.run_id)
                report.failed[run.run_id] = str(state.get("error", ""))
            elif live_elsewhere(folder) is not None:
                report.elsewhere.append(run.run_id)
            else:
                prepare(run, folder, self.environment(run))
                self.set_state(run.run_id, {"state": "queued", "queued": time.time()})
                todo.append(run)
        self.manifest()
        return todo, report

    def environment(self, run: Run) -> dict[str, str]:
        """The run's own environment: its figures folder, settings, profile and cache."""
        import json

        env = {
            "MIAKIT_FIGURES": str(self.folders[run.run_id] / "figures"),
            "MIAKIT_SET": json.dumps(dict(run.settings)),
        }
        if "profile" in run.parameters:
            env["MIAKIT_PROFILE"] = str(run.parameters["profile"])
        if self.cache is not None:
            env["MIAKIT_CACHE"] = str(self.cache)
        return env

    def set_state(self, run_id: str, state: dict[str, Any]) -> None:
        """Write a run's state (the launcher's view: queued, or a worker's final word)."""
        self.states[run_id] = state
        write_json(self.folders[run_id] / "state.json", state)

    def refresh(self, run_id: str) -> dict[str, Any]:
        """Re-read a run's state as its worker wrote it."""
        self.states[run_id] = run_state(self.folders[run_id])
        return self.states[run_id]

    def manifest(self) -> None:
        """``manifest.json``: every run's id, notebook, parameters, settings and state."""
        rows = [
            {
                "run_id": run.run_id,
                "notebook": run.notebook.name,
                "parameters": dict(run.parameters),
                "settings": dict(run.settings),
                **self.states[run.run_id],
            }
            for run in self.runs
        ]
        write_json(self.root / "manifest.json", {"grid": str(self.grid.path), "runs": rows})


class Progress:
    """A bar over a sweep's runs, with the counts done / running / failed."""

    def __init__(self, show: bool, name: str, total: int) -> None:
        self.bar = progress_bar(show, total, desc=f"sweep {name}", unit="run")
        self.done = self.failed = self.running = 0

    def update(self, running: int, finished: str | None = None) -> None:
        """Count one more finished run (by its state) and the number running now."""
        self.running = running
        if finished is not None:
            if finished == "done":
                self.done += 1
            else:
                self.failed += 1
        if self.bar is not None:
            if finished is not None:
                self.bar.update(1)
            self.bar.set_postfix_str(
                f"done {self.done}, running {running}, failed {self.failed}", refresh=True
            )

    def close(self) -> None:
        """Clear the bar."""
        if self.bar is not None:
            self.bar.close()


def visible_gpus() -> list[str]:
    """The GPUs runs may be pinned to: ``CUDA_VISIBLE_DEVICES`` if set, else every device
    torch sees (none on a CPU-only machine)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no usable CUDA: CPU-only runs
        return []


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Kill a worker's whole process group (the worker and anything it left)."""
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)


def launch(
    grid: GridFile,
    runs_root: str | Path = "runs",
    *,
    max_parallel: int = 1,
    retry_failed: bool = False,
    cache: str | Path | None = None,
    gpus: Sequence[str] | None = None,
    progress: bool = False,
) -> LaunchReport:
    """Execute the grid's runs on this machine (see the module docstring).

    Args:
        grid: a checked grid file (:func:`miakit.gridfile.load_grid`).
        runs_root: the folder that gets ``<grid name>/``.
        max_parallel: runs at once, each in its own process.
        retry_failed: run the failed runs again (with the new and killed ones).
        cache: the artifact cache every run shares (default: ``MIAKIT_CACHE``).
        gpus: the GPU ids to rotate over (default :func:`visible_gpus`; ``[]``: none).
        progress: show a bar over the runs.
    """
    if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1:
        raise ValueError(f"max_parallel must be an integer >= 1, got {max_parallel!r}")
    sweep = Sweep(grid, runs_root, cache)
    todo, report = sweep.plan(retry_failed)
    threads = str(max(1, available_cpus() // max_parallel))
    devices = list(visible_gpus() if gpus is None else gpus)
    load = dict.fromkeys(devices, 0)
    running: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    bar = Progress(progress, grid.name, len(todo))

    def start(run: Run) -> None:
        gpu = min(devices, key=lambda g: load[g]) if devices else ""
        if gpu:
            load[gpu] += 1
        folder = sweep.folders[run.run_id]
        env = {**os.environ, "MIAKIT_THREADS": threads, "CUDA_VISIBLE_DEVICES": gpu}
        with open(folder / "worker.txt", "wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "miakit.runfolder", str(folder)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group, so a kill reaches what it started
            )
        running[run.run_id] = (process, gpu)

    def finish(run_id: str, code: int) -> None:
        process, gpu = running.pop(run_id)
        if gpu:
            load[gpu] -= 1
        folder = sweep.folders[run_id]
        if code < 0:
            _stop(process)
            name = signal.Signals(-code).name if -code in signal.valid_signals() else -code
            state = mark_killed(folder, f"its process was killed by {name}")
        else:
            state = run_state(folder)
            if state["state"] not in ("done", "failed"):
                state = mark_killed(folder, f"its process exited with code {code}; see worker.txt")
        sweep.states[run_id] = state
        report.record(run_id, state)
        sweep.manifest()
        bar.update(len(running), state["state"])

    queue = list(todo)
    try:
        while queue or running:
            while queue and len(running) < max_parallel:
                start(queue.pop(0))
                bar.update(len(running))
            time.sleep(0.1)
            for run_id, (process, _) in list(running.items()):
                code = process.poll()
                if code is not None:
                    finish(run_id, code)
    except BaseException:  # Ctrl-C or a crash here: no worker outlives the sweep
        for run_id, (process, _) in list(running.items()):
            _stop(process)
            process.wait()
            finish(run_id, -signal.SIGKILL)
        raise
    finally:
        bar.close()
    return report
