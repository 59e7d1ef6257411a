"""The command line of sweeps: ``miakit sweep GRID.yaml`` over the local and Slurm backends.

``--dry-run`` lists every run with its state and what the runs left would take (from
this grid's finished runs); otherwise the runs execute on :func:`miakit.launch.launch`
(``--backend local``) or :func:`miakit.slurm.submit` (``slurm``, or ``submitit-local``
for the same code path on this machine), and one line per failed or killed run gives
its error and the tail of its log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from miakit.gridfile import load_grid
from miakit.launch import Sweep, launch
from miakit.runfolder import log_tail
from miakit.slurm import submit

__all__ = ["add_parser"]


def _estimate(sweep: Sweep) -> str:
    """Runs left times the mean seconds of this grid's finished runs of each notebook."""
    took: dict[str, list[float]] = {}
    left: dict[str, int] = {}
    for run in sweep.runs:
        state = sweep.states[run.run_id]
        if state["state"] == "done" and isinstance(state.get("seconds"), int | float):
            took.setdefault(run.notebook.name, []).append(float(state["seconds"]))
        elif state["state"] != "done":
            left[run.notebook.name] = left.get(run.notebook.name, 0) + 1
    if not left:
        return "every run is done"
    parts, total, known = [], 0.0, True
    for name, count in left.items():
        if name in took:
            each = sum(took[name]) / len(took[name])
            total += count * each
            parts.append(f"{count} x {name[:2]} at {each:.0f} s")
        else:
            known = False
            parts.append(f"{count} x {name[:2]} (no finished run to time)")
    spent = f"about {total / 3600:.1f} run-hours" if known else "not known yet"
    return f"left: {'; '.join(parts)}: {spent}"


def _sweep_cmd(args: Any) -> int:
    grid = load_grid(args.grid, args.notebooks)
    sweep = Sweep(grid, args.runs)
    if args.dry_run:
        print(f"grid {grid.name}: {len(sweep.runs)} run(s) into {args.runs}/{grid.name}/<run-id>/")
        for run in sweep.runs:
            fields = {**run.parameters, **{f"settings.{k}": v for k, v in run.settings.items()}}
            shown = " ".join(f"{k}={json.dumps(v)}" for k, v in fields.items())
            state = sweep.states[run.run_id]["state"]
            print(f"  {run.run_id}  {run.notebook.name}  [{state}]  {shown}")
        print(_estimate(sweep))
        return 0
    common: dict[str, Any] = {"retry_failed": args.retry_failed, "progress": not args.quiet}
    if args.backend == "local":
        gpus = None if args.gpus is None else [g for g in args.gpus.split(",") if g]
        report = launch(grid, args.runs, max_parallel=args.max_parallel, gpus=gpus, **common)
    else:
        options = {
            "partition": args.partition,
            "account": args.account,
            "gpus_per_node": args.gpus_per_node,
            "cpus_per_task": args.cpus_per_task,
            "mem_gb": args.mem_gb,
            "timeout_min": args.timeout_min,
            "array_parallelism": args.max_parallel if args.max_parallel > 1 else None,
        }
        cluster = "local" if args.backend == "submitit-local" else "slurm"
        report = submit(grid, args.runs, options=options, cluster=cluster, **common)
    print(
        f"grid {grid.name}: {len(report.done)} done, {len(report.skipped)} skipped (finished "
        f"before), {len(report.failed)} failed, {len(report.killed)} killed, "
        f"{len(report.elsewhere)} running elsewhere; runs in {args.runs}/{grid.name}/"
    )
    for word, runs in (("FAILED", report.failed), ("KILLED", report.killed)):
        for run_id, error in runs.items():
            print(f"  {word} {run_id}: {error}")
            for line in log_tail(Path(args.runs) / grid.name / run_id):
                print(f"    | {line}")
    if report.killed:
        print("killed runs run again at the next sweep")
    if report.failed:
        print("rerun the failed ones with --retry-failed")
    return 1 if report.failed or report.killed else 0


def add_parser(subparsers: Any) -> Any:
    """``miakit sweep GRID.yaml``: check a grid file, list or execute its runs."""
    sweep = subparsers.add_parser("sweep", help="check a grid file, list or execute its runs")
    sweep.add_argument("grid", help="the grid file (YAML), e.g. sweeps/quick.yaml")
    sweep.add_argument("--dry-run", action="store_true", help="list the runs, execute nothing")
    sweep.add_argument("--notebooks", default="notebooks", help="folder of the numbered notebooks")
    sweep.add_argument("--runs", default="runs", help="where runs/<grid>/<run-id>/ go")
    sweep.add_argument(
        "--backend",
        choices=("local", "slurm", "submitit-local"),
        default="local",
        help="local: processes on this machine; slurm: a submitit job array; "
        "submitit-local: the slurm code path on this machine",
    )
    sweep.add_argument(
        "--max-parallel", type=int, default=1, metavar="N", help="runs at once (slurm: array)"
    )
    sweep.add_argument("--gpus", help="local: GPU ids to rotate over, e.g. 0,1 (default: all)")
    sweep.add_argument(
        "--retry-failed", action="store_true", help="run the failed runs again, with the new ones"
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    for flag, kind in (
        ("--partition", str),
        ("--account", str),
        ("--gpus-per-node", int),
        ("--cpus-per-task", int),
        ("--mem-gb", float),
        ("--timeout-min", int),
    ):
        sweep.add_argument(flag, type=kind, help="slurm: overrides the grid file's slurm: entry")
    sweep.set_defaults(func=_sweep_cmd)
    return sweep
