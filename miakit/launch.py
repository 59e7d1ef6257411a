"""Executing a sweep's runs on this machine: the local backend of ``miakit sweep`` (issue 14).

:func:`launch` runs every :class:`~miakit.gridfile.Run` of a grid file with papermill, each
in its own process, into a folder a person can browse::

    runs/<grid>/manifest.json            every run's id, notebook, parameters and state
    runs/<grid>/<run-id>/<notebook>      the executed notebook
    runs/<grid>/<run-id>/log.txt         the kernel's stdout and stderr
    runs/<grid>/<run-id>/figures/        the run's tables (CSV) and figures (MIAKIT_FIGURES)
    runs/<grid>/<run-id>/state.json      done / failed (with the error) / running

A run whose ``state.json`` says done is skipped; a failed one is reported and skipped
unless ``retry_failed``; one left ``running`` by a killed sweep runs again. Runs share
the artifact cache, whose locks make two runs needing one model train it once. With
``max_parallel`` runs at once, each gets ``cores / max_parallel`` CPU threads
(``MIAKIT_THREADS``) and, where GPUs are present, one GPU by rotation
(``CUDA_VISIBLE_DEVICES``).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from miakit._util import atomic_write
from miakit.gridfile import GridError, GridFile, Run, load_grid
from miakit.run import NotebookError, execute_notebook
from miakit.threads import available_cpus

__all__ = ["LaunchReport", "add_parser", "launch", "log_tail", "run_state"]

_STATE = "state.json"


@dataclass
class LaunchReport:
    """What :func:`launch` did: run ids by outcome, and each failure's message."""

    done: list[str]
    skipped: list[str]
    failed: dict[str, str]


def _write_json(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=1, sort_keys=True, default=str) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def run_state(folder: Path) -> dict[str, Any]:
    """A run folder's ``state.json`` (``{"state": "new"}`` when it has none or a bad one)."""
    try:
        data = json.loads((folder / _STATE).read_text())
    except (OSError, ValueError):
        return {"state": "new"}
    return data if isinstance(data, dict) and "state" in data else {"state": "new"}


def _gpus() -> list[str]:
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no usable CUDA: CPU-only runs
        return []


def _run_one(run: Run, folder: Path, env: Mapping[str, str]) -> float:
    """One run in this (fresh) process: its environment, then papermill; seconds taken."""
    os.environ.update(env)
    target = folder / run.notebook.name
    return execute_notebook(run.notebook, target, run.parameters, log=folder / "log.txt")


def launch(
    grid: GridFile,
    runs_root: str | Path = "runs",
    *,
    max_parallel: int = 1,
    retry_failed: bool = False,
    cache: str | Path | None = None,
) -> LaunchReport:
    """Execute the grid's runs locally (see the module docstring); returns what happened.

    Args:
        grid: a checked grid file (:func:`miakit.gridfile.load_grid`).
        runs_root: the folder that gets ``<grid name>/``.
        max_parallel: runs at once, each in its own process.
        retry_failed: run the failed runs again (and only those besides new ones).
        cache: the artifact cache every run shares (default: ``MIAKIT_CACHE``).
    """
    if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1:
        raise ValueError(f"max_parallel must be an integer >= 1, got {max_parallel!r}")
    root = Path(runs_root).resolve() / grid.name
    root.mkdir(parents=True, exist_ok=True)
    runs = grid.runs()
    folders = {run.run_id: root / run.run_id for run in runs}
    report = LaunchReport([], [], {})
    states = {run_id: run_state(folder) for run_id, folder in folders.items()}
    todo: list[Run] = []
    for run in runs:
        state = states[run.run_id]
        if state["state"] == "done" or (state["state"] == "failed" and not retry_failed):
            report.skipped.append(run.run_id)
            if state["state"] == "failed":
                report.failed[run.run_id] = str(state.get("error", ""))
        else:
            todo.append(run)

    def manifest() -> None:
        rows = [
            {
                "run_id": run.run_id,
                "notebook": run.notebook.name,
                "parameters": dict(run.parameters),
                "settings": dict(run.settings),
                **states[run.run_id],
            }
            for run in runs
        ]
        _write_json(root / "manifest.json", {"grid": str(grid.path), "runs": rows})

    def set_state(run_id: str, state: dict[str, Any]) -> None:
        states[run_id] = state
        _write_json(folders[run_id] / _STATE, state)

    threads = max(1, available_cpus() // max_parallel)
    gpus = _gpus()
    base = {"MIAKIT_THREADS": str(threads)}
    if cache is not None:
        base["MIAKIT_CACHE"] = str(Path(cache).resolve())

    def environment(run: Run, slot: int) -> dict[str, str]:
        env = {
            **base,
            "MIAKIT_FIGURES": str(folders[run.run_id] / "figures"),
            "MIAKIT_SET": json.dumps(dict(run.settings)),
        }
        if "profile" in run.parameters:
            env["MIAKIT_PROFILE"] = str(run.parameters["profile"])
        env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)] if gpus else ""
        return env

    for run in todo:
        folders[run.run_id].mkdir(parents=True, exist_ok=True)
        set_state(run.run_id, {"state": "running", "started": time.time()})
    manifest()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max_parallel, mp_context=context) as pool:
        futures = {
            pool.submit(_run_one, run, folders[run.run_id], environment(run, i)): run
            for i, run in enumerate(todo)
        }
        for future in as_completed(futures):
            run = futures[future]
            error = future.exception()
            if error is None:
                set_state(run.run_id, {"state": "done", "seconds": future.result()})
                report.done.append(run.run_id)
            else:
                message = str(error) if isinstance(error, NotebookError) else repr(error)
                set_state(run.run_id, {"state": "failed", "error": message})
                report.failed[run.run_id] = message
            manifest()
    return report


def log_tail(folder: Path, lines: int = 5) -> Sequence[str]:
    """The last ``lines`` lines of a run's log (empty when it has none)."""
    try:
        return (folder / "log.txt").read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


# --------------------------------------------------------------------------- command line


def _sweep_cmd(args: Any) -> int:
    grid = load_grid(args.grid, args.notebooks)
    runs = grid.runs()
    if args.dry_run:
        print(f"grid {grid.name}: {len(runs)} run(s) into {args.runs}/{grid.name}/<run-id>/")
        for run in runs:
            fields = {**run.parameters, **{f"settings.{k}": v for k, v in run.settings.items()}}
            shown = " ".join(f"{k}={json.dumps(v)}" for k, v in fields.items())
            print(f"  {run.run_id}  {run.notebook.name}  {shown}")
        return 0
    if args.backend != "local":
        raise GridError(f"{grid.path}: the {args.backend} backend is not built yet; use local")
    report = launch(grid, args.runs, max_parallel=args.max_parallel, retry_failed=args.retry_failed)
    print(
        f"grid {grid.name}: {len(report.done)} done, {len(report.skipped)} skipped (finished "
        f"before), {len(report.failed)} failed; runs in {args.runs}/{grid.name}/"
    )
    for run_id, error in report.failed.items():
        print(f"  FAILED {run_id}: {error}")
        for line in log_tail(Path(args.runs) / grid.name / run_id):
            print(f"    | {line}")
    if report.failed:
        print("rerun them with --retry-failed")
    return 1 if report.failed else 0


def add_parser(subparsers: Any) -> Any:
    """``miakit sweep GRID.yaml [--dry-run]``: check a grid file, list or execute its runs."""
    sweep = subparsers.add_parser("sweep", help="check a grid file, list or execute its runs")
    sweep.add_argument("grid", help="the grid file (YAML), e.g. sweeps/quick.yaml")
    sweep.add_argument("--dry-run", action="store_true", help="list the runs, execute nothing")
    sweep.add_argument("--notebooks", default="notebooks", help="folder of the numbered notebooks")
    sweep.add_argument("--runs", default="runs", help="where runs/<grid>/<run-id>/ go")
    sweep.add_argument("--backend", choices=("local", "slurm"), default="local")
    sweep.add_argument("--max-parallel", type=int, default=1, metavar="N", help="runs at once")
    sweep.add_argument(
        "--retry-failed", action="store_true", help="run the failed runs again, with the new ones"
    )
    sweep.set_defaults(func=_sweep_cmd)
    return sweep
