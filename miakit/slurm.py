"""The Slurm backend of ``miakit sweep``: a sweep's runs as one submitit job array (issue 14).

:func:`submit` plans the runs like the local backend (:class:`miakit.launch.Sweep`: done
runs skipped, failed ones only with ``retry_failed``), submits the rest as one job array
through `submitit <https://github.com/facebookincubator/submitit>`_, and watches it with
a bar over the runs until every job has ended. Each array task calls
:func:`miakit.runfolder.execute` on its run folder, so the runs' states, notebooks and
logs are the same as the local backend's; submitit's own logs go to
``runs/<grid>/slurm/<job id>_<task>_log.{out,err}``, next to the runs on the shared
filesystem. A task that dies without a word (a time limit, preemption, the OOM killer)
is recorded as killed and runs again at the next sweep. A duplicate task (a sweep run
again while its first array was still queued) waits on the run's lock, finds it done and
exits. ``cluster="local"`` uses submitit's local executor: the same code path without a
cluster, which is what the tests run.

The resources come from the grid file's ``slurm:`` mapping (:data:`SLURM_KEYS`), then
from the command line's flags, which win.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from miakit.gridfile import SLURM_KEYS, GridError, GridFile
from miakit.launch import LaunchReport, Progress, Sweep
from miakit.runfolder import execute, mark_killed

__all__ = ["DEFAULTS", "SLURM_KEYS", "BackendError", "slurm_parameters", "submit"]


class BackendError(ValueError):
    """The Slurm backend cannot run here: no submitit, or no Slurm on this machine."""


#: Resources of a task when neither the grid file nor a flag names them.
DEFAULTS: dict[str, Any] = {
    "gpus_per_node": 1,
    "cpus_per_task": 8,
    "mem_gb": 32,
    "timeout_min": 24 * 60,
    "array_parallelism": 64,
}


def slurm_parameters(grid: GridFile, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """submitit's ``update_parameters`` keywords: :data:`DEFAULTS`, then the grid file's
    ``slurm:`` mapping, then ``options`` (flags; ``None`` values are not given).

    Raises:
        GridError: an option that is not one of :data:`SLURM_KEYS`.
    """
    given = {k: v for k, v in (options or {}).items() if v is not None}
    chosen = {**DEFAULTS, **grid.slurm, **given}
    unknown = sorted(set(chosen) - set(SLURM_KEYS))
    if unknown:
        raise GridError(f"unknown slurm option(s) {unknown}; known: {', '.join(SLURM_KEYS)}")
    params: dict[str, Any] = {"name": f"miakit-{grid.name}"}
    for key in ("gpus_per_node", "cpus_per_task", "mem_gb", "timeout_min"):
        params[key] = chosen[key]
    for key in ("partition", "account", "qos", "constraint", "array_parallelism", "setup"):
        if chosen.get(key) is not None:
            params[f"slurm_{key}"] = chosen[key]
    if chosen.get("additional_parameters"):
        params["slurm_additional_parameters"] = dict(chosen["additional_parameters"])
    return params


def submit(
    grid: GridFile,
    runs_root: str | Path = "runs",
    *,
    options: Mapping[str, Any] | None = None,
    retry_failed: bool = False,
    cache: str | Path | None = None,
    cluster: str = "slurm",
    progress: bool = False,
    poll: float = 2.0,
) -> LaunchReport:
    """Submit the grid's runs as one job array and wait for it (see the module docstring).

    Args:
        grid: a checked grid file; its ``slurm`` mapping gives the resources.
        runs_root: the folder that gets ``<grid name>/``.
        options: resources that override the grid file's (keys of :data:`SLURM_KEYS`).
        retry_failed: submit the failed runs again (with the new and killed ones).
        cache: the artifact cache every task shares (on the shared filesystem).
        cluster: ``"slurm"``, or ``"local"`` for submitit's local executor.
        progress: show a bar over the runs.
        poll: seconds between looks at the jobs' states.

    Raises:
        GridError: an unknown resource key.
        BackendError: submitit is not installed, or Slurm is not on this machine.
    """
    try:
        import submitit
    except ImportError:
        raise BackendError(
            "the slurm backend needs submitit: pip install 'miakit[slurm]' (or pip install "
            "submitit)"
        ) from None
    params = slurm_parameters(grid, options)
    sweep = Sweep(grid, runs_root, cache)
    try:
        executor = submitit.AutoExecutor(folder=sweep.root / "slurm", cluster=cluster)
    except RuntimeError as err:  # submitit: 'Could not detect "srun"'
        raise BackendError(
            f"no Slurm on this machine ({err}); run miakit sweep on the cluster's login node, "
            "or use --backend submitit-local to try the slurm code path here"
        ) from None
    todo, report = sweep.plan(retry_failed)
    if not todo:
        return report
    executor.update_parameters(**params)
    env = {"MIAKIT_THREADS": str(params["cpus_per_task"])}
    folders = [str(sweep.folders[run.run_id]) for run in todo]
    jobs = executor.map_array(execute, folders, [env] * len(folders))
    pending = {run.run_id: job for run, job in zip(todo, jobs, strict=True)}
    for run_id, job in pending.items():
        sweep.states[run_id] = {**sweep.states[run_id], "job": job.job_id}
    sweep.manifest()
    bar = Progress(progress, grid.name, len(todo))

    def running() -> int:
        return sum(state["state"] == "running" for state in sweep.states.values())

    try:
        while pending:
            time.sleep(poll)
            for run_id, job in list(pending.items()):
                state = sweep.refresh(run_id)
                if not job.done():
                    continue
                del pending[run_id]
                if state["state"] not in ("done", "failed"):
                    state = mark_killed(
                        sweep.folders[run_id],
                        f"its job {job.job_id} ended as {job.state} before the run finished "
                        f"(submitit's log: {job.paths.stderr})",
                    )
                    sweep.states[run_id] = state
                report.record(run_id, state)
                sweep.manifest()
                bar.update(
                    sum(s["state"] == "running" for s in sweep.states.values()), state["state"]
                )
            bar.update(sum(s["state"] == "running" for s in sweep.states.values()))
    finally:
        bar.close()
    return report
