"""One run of a sweep, in its own folder: what it is, what state it is in, and executing it.

A run folder (``runs/<grid>/<run-id>/``, issue 14) holds::

    run.json       what to execute: the notebook, its parameters, the run's environment
    state.json     new / running (host, pid, job) / done (seconds) / failed (error) /
                   killed (the process died without saying why: a signal, a time limit)
    run.lock       held while a process executes the run (:mod:`miakit.lockfile`)
    <notebook>     the executed notebook
    log.txt        the kernel's stdout and stderr
    figures/       the run's tables and figures (``MIAKIT_FIGURES``)
    results.csv    the run's tidy results: its attack tables, with the run as columns

:func:`execute` is what every backend runs, in a process of its own: the local backend
as ``python -m miakit.runfolder FOLDER``, Slurm (submitit) by calling it in its job. It
takes the run's lock first, so two sweeps (two hosts on one shared filesystem) never
execute one run at once, and does nothing when the run is already done.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from miakit._util import atomic_write
from miakit.gridfile import Run
from miakit.lockfile import file_lock, lock_holder, lock_stale_reason
from miakit.run import NotebookError, execute_notebook

__all__ = [
    "LOCK_TIMEOUT",
    "execute",
    "live_elsewhere",
    "log_tail",
    "mark_killed",
    "prepare",
    "run_results",
    "run_state",
    "write_json",
]

SPEC, STATE, LOCK, LOG = "run.json", "state.json", "run.lock", "log.txt"
RESULTS = "results.csv"

#: Seconds without a heartbeat after which a run's lock counts as left by a dead process.
LOCK_TIMEOUT = 120.0


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented JSON at ``path``, written atomically."""
    text = json.dumps(data, indent=1, sort_keys=True, default=str) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def run_state(folder: Path) -> dict[str, Any]:
    """A run folder's ``state.json`` (``{"state": "new"}`` when it has none or a bad one)."""
    try:
        data = json.loads((folder / STATE).read_text())
    except (OSError, ValueError):
        return {"state": "new"}
    return data if isinstance(data, dict) and "state" in data else {"state": "new"}


def prepare(run: Run, folder: Path, env: Mapping[str, str]) -> None:
    """Write the run's ``run.json``: its notebook, parameters and environment."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = {
        "notebook": str(run.notebook.resolve()),
        "parameters": dict(run.parameters),
        "settings": dict(run.settings),
        "env": dict(env),
    }
    write_json(folder / SPEC, spec)


def live_elsewhere(folder: Path) -> dict[str, Any] | None:
    """The holder of the run's lock while a live process executes it, else None."""
    lock = folder / LOCK
    holder = lock_holder(lock)
    if holder is None or lock_stale_reason(lock, LOCK_TIMEOUT) is not None:
        return None
    return holder


def mark_killed(folder: Path, reason: str) -> dict[str, Any]:
    """Record that the run's process died without a word (unless it finished after all)."""
    state = run_state(folder)
    if state["state"] in ("done", "failed"):
        return state
    state = {"state": "killed", "error": reason, "ended": time.time()}
    write_json(folder / STATE, state)
    return state


def _slurm_job() -> str | None:
    """This process's Slurm job (``<array>_<task>`` in an array), None outside Slurm."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array:
        return f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '?')}"
    return os.environ.get("SLURM_JOB_ID")


def execute(folder: str | Path, env: Mapping[str, str] | None = None) -> str:
    """Execute the run in ``folder`` (its ``run.json``) in this process; its final state.

    ``env`` is added to the run's own environment (the backend's share: threads, GPU).
    A notebook that raises gives state ``failed`` with the error, not an exception here.
    """
    folder = Path(folder).resolve()
    spec = json.loads((folder / SPEC).read_text())
    with file_lock(folder / LOCK, stale_after=LOCK_TIMEOUT):
        if run_state(folder)["state"] == "done":
            return "done"  # another process finished it while this one waited
        os.environ.update(spec["env"])
        os.environ.update(env or {})
        where = {
            "host": socket.gethostname(),
            "gpu": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
            "threads": os.environ.get("MIAKIT_THREADS", ""),
            "job": _slurm_job(),
        }
        started = {"pid": os.getpid(), "started": time.time()}
        write_json(folder / STATE, {"state": "running", **where, **started})
        notebook = Path(spec["notebook"])
        try:
            seconds = execute_notebook(
                notebook, folder / notebook.name, spec["parameters"], log=folder / LOG
            )
        except NotebookError as err:
            state = {"state": "failed", "error": str(err)}
        except Exception as err:  # noqa: BLE001 - any failure is the run's, recorded
            state = {"state": "failed", "error": f"{type(err).__name__}: {err}"}
        else:
            state = {"state": "done", "seconds": round(seconds, 1)}
            table = run_results(folder, spec)
            if table is not None:
                atomic_write(folder / RESULTS, lambda tmp: table.to_csv(tmp, index=False))
        state |= {**where, "ended": time.time()}
        write_json(folder / STATE, state)
        return str(state["state"])


def run_results(folder: Path, spec: Mapping[str, Any]) -> Any:
    """The run's tidy results (a DataFrame), or None when it wrote no attack table.

    Its attack tables (``figures/<profile>/*.csv`` with an ``attack`` and an ``auc``
    column) concatenated, each row with the run's id, notebook, parameters and settings
    as columns (``run_id``, ``notebook``, ``param_<name>``, ``setting_<name>``; lists and
    mappings as JSON text) and the table's name (``table``), those columns first.
    """
    import pandas as pd

    def cell(value: Any) -> Any:
        return json.dumps(value, sort_keys=True) if isinstance(value, list | dict) else value

    columns: dict[str, Any] = {"run_id": folder.name, "notebook": Path(spec["notebook"]).name}
    columns |= {f"param_{k}": cell(v) for k, v in spec["parameters"].items()}
    columns |= {f"setting_{k}": cell(v) for k, v in spec["settings"].items()}
    frames = []
    for csv in sorted((folder / "figures").glob("*/*.csv")):
        table = pd.read_csv(csv)
        if {"attack", "auc"} <= set(table.columns):
            frames.append(table.assign(table=csv.stem, **columns))
    if not frames:
        return None
    frame = pd.concat(frames, ignore_index=True)
    first = [*columns][:2] + ["table"] + [*columns][2:]
    return frame[first + [c for c in frame.columns if c not in first]]


def log_tail(folder: Path, lines: int = 5) -> Sequence[str]:
    """The last ``lines`` lines of a run's log (empty when it has none)."""
    try:
        return (folder / LOG).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


if __name__ == "__main__":  # the local backend's worker: python -m miakit.runfolder FOLDER
    sys.exit(0 if execute(sys.argv[1]) != "failed" else 1)
