"""Executing the numbered notebooks with papermill (what ``miakit run`` does after its tables).

:func:`find_notebooks` lists ``notebooks/NN_*.ipynb`` in reading order;
:func:`run_notebooks` executes them, one kernel each (several at once with ``jobs``),
with the profile and parameters injected after each notebook's ``parameters`` cell.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

__all__ = [
    "NotebookError",
    "execute_notebook",
    "find_notebooks",
    "run_notebooks",
    "start_order",
    "store_outputs",
]


class NotebookError(RuntimeError):
    """A notebook failed: one line naming it, the cell's error, and the executed copy."""


_NOTEBOOK = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.ipynb$")


def find_notebooks(root: str | Path = "notebooks", only: Sequence[str] | None = None) -> list[Path]:
    """The numbered notebooks in reading order, optionally only some (``["03", "04"]``)."""
    folder = Path(root)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no notebooks folder at {folder.resolve()}; run miakit from the repository root "
            "or pass --notebooks PATH"
        )
    books = sorted(p for p in folder.iterdir() if _NOTEBOOK.match(p.name))
    if only:
        wanted = {o.strip().zfill(2) for o in only}
        unknown = wanted - {p.name[:2] for p in books}
        if unknown:
            raise ValueError(
                f"no notebook numbered {sorted(unknown)}; available: "
                f"{', '.join(p.name[:2] for p in books)}"
            )
        books = [p for p in books if p.name[:2] in wanted]
    return books


def _durations_file(out: Path) -> Path:
    return out / "durations.json"


def _read_durations(out: Path) -> dict[str, float]:
    """Seconds each notebook took in the last run into ``out`` (empty when unknown)."""
    try:
        data = json.loads(_durations_file(out).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, int | float)}


def _record_duration(out: Path, name: str, seconds: float) -> None:
    from miakit._util import atomic_write

    durations = _read_durations(out)
    durations[name] = round(seconds, 1)
    text = json.dumps(durations, indent=1, sort_keys=True) + "\n"
    atomic_write(_durations_file(out), lambda tmp: tmp.write_text(text))


def start_order(notebooks: Sequence[Path], durations: Mapping[str, float]) -> list[Path]:
    """The order parallel runs start notebooks in: longest first by the last run's
    ``durations``, so the longest does not run alone at the end; notebooks without a
    duration keep reading order, ahead of the timed ones (their cost is unknown)."""
    timed = [nb for nb in notebooks if nb.name in durations]
    rest = [nb for nb in notebooks if nb.name not in durations]
    return rest + sorted(timed, key=lambda nb: -durations[nb.name])


def run_notebooks(
    notebooks: Sequence[Path],
    *,
    profile: str,
    parameters: Mapping[str, Any] | None = None,
    output_dir: str | Path = "runs",
    progress: bool = True,
    jobs: int = 1,
) -> list[Path]:
    """Execute notebooks with papermill; executed copies go to ``output_dir/<profile>/``.

    Each notebook runs in its own folder (so its relative paths work) with
    ``profile`` and ``parameters`` injected after its ``parameters`` cell;
    ``MIAKIT_PROFILE`` is set for the kernel too. The seconds each took are kept in
    ``output_dir/<profile>/durations.json``.

    With ``jobs > 1``, that many kernels run at once (a process per kernel waits on it),
    started longest first by the last run's durations (:func:`start_order`). They share
    the artifact cache, whose locks make two kernels needing one artifact compute it once,
    and the thread budget (:mod:`miakit.threads`) splits the CPUs between them, so on 2
    cores two kernels of one thread each replace one kernel of two: the many small
    operations of the quick profile's attack networks gain from it (measured: a SAMIA fit
    in 24.9 s on 2 threads; two at once on 1 thread each, 37.3 and 39.7 s, 19.9 s a fit).
    Papermill's per-cell bars are off then; one line reports each notebook as it ends.

    Returns:
        The executed copies, in the order of ``notebooks``.

    Raises:
        NotebookError: a cell failed; the message names the notebook, the cell, the
            error's first line and the executed copy holding the whole traceback. With
            ``jobs > 1`` the kernels already running finish first, none starts after.
        ValueError: ``jobs`` is not an integer >= 1.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1 (kernels at once), got {jobs!r}")
    out = (Path(output_dir) / profile).resolve()
    out.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, **dict(parameters or {})}
    books = [Path(nb).resolve() for nb in notebooks]  # papermill changes the process's cwd
    old = os.environ.get("MIAKIT_PROFILE")
    os.environ["MIAKIT_PROFILE"] = profile
    try:
        if jobs == 1:
            for nb in books:
                seconds = execute_notebook(nb, out / nb.name, params, progress)
                _record_duration(out, nb.name, seconds)
            return [out / nb.name for nb in books]
        # one process per running notebook: papermill chdirs into the notebook's folder
        # while it starts the kernel, and the working directory is per process
        context = multiprocessing.get_context("spawn")  # the parent's torch threads stay put
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {
                pool.submit(execute_notebook, nb, out / nb.name, params, False): nb
                for nb in start_order(books, _read_durations(out))
            }
            for future in as_completed(futures):
                error = future.exception()
                if error is not None:
                    for pending in futures:
                        pending.cancel()  # the running ones finish; no new one starts
                    break
                nb = futures[future]
                _record_duration(out, nb.name, future.result())
                print(f"  {nb.name} done in {future.result():.0f} s", flush=True)
        by_book = {nb: f for f, nb in futures.items()}
        ran = [by_book[nb] for nb in books if not by_book[nb].cancelled()]
        errors = [f.exception() for f in ran if f.exception() is not None]
        if errors:
            raise errors[0]  # type: ignore[misc]  # the first failed one in reading order
        return [out / nb.name for nb in books]
    finally:
        if old is None:
            os.environ.pop("MIAKIT_PROFILE", None)
        else:
            os.environ["MIAKIT_PROFILE"] = old


def execute_notebook(
    nb: Path,
    target: Path,
    params: Mapping[str, Any],
    progress: bool = False,
    log: Path | None = None,
) -> float:
    """Execute one notebook with papermill into ``target``; the seconds it took. With
    ``log``, the kernel's stdout and stderr are written there as the cells run."""
    import contextlib

    import papermill as pm

    start = time.perf_counter()
    try:
        with contextlib.ExitStack() as stack:
            streams = {}
            if log is not None:
                out = stack.enter_context(open(log, "w"))
                streams = {"log_output": True, "stdout_file": out, "stderr_file": out}
            pm.execute_notebook(
                str(nb),
                str(target),
                parameters=dict(params),
                cwd=str(nb.parent),
                progress_bar=progress,
                kernel_name="python3",
                **streams,
            )
    except pm.PapermillExecutionError as err:
        first = str(err.evalue).strip().splitlines()
        raise NotebookError(
            f"notebook {nb.name} failed at In [{err.exec_count}]: {err.ename}: "
            f"{first[0] if first else ''} (the executed copy with the full "
            f"traceback is {target})"
        ) from None
    return time.perf_counter() - start


def store_outputs(executed: str | Path, target: str | Path) -> Path:
    """Copy an executed notebook's outputs into the committed notebook, clean for git.

    The cell sources of ``target`` are kept; the outputs and execution counts come from
    ``executed``, a papermill run of the same code cells (markdown edited since the run
    is kept: prose does not change outputs). papermill's metadata, its
    timing records, the injected-parameters cell and the stderr streams (a run's log:
    warnings, such as a parallel run's "waiting for ... being computed by pid", with the
    machine's paths) are dropped, so the stored notebook holds the outputs of a run and
    nothing of the machine that ran it.

    Raises:
        ValueError: the two notebooks' cells do not match (``executed`` is a run of
            another version of the notebook).
    """
    import json

    from miakit._util import atomic_write

    run = json.loads(Path(executed).read_text())
    book = json.loads(Path(target).read_text())
    cells = [c for c in run["cells"] if "injected-parameters" not in c["metadata"].get("tags", [])]

    def code(cs: list[dict]) -> list[tuple[str, Any]]:
        return [(c["cell_type"], c["source"] if c["cell_type"] == "code" else None) for c in cs]

    if code(cells) != code(book["cells"]):
        raise ValueError(
            f"{executed} is not a run of {target} as it is now (the code cells differ); "
            "execute the notebook again before storing its outputs"
        )
    for mine, ran in zip(book["cells"], cells, strict=True):
        if mine["cell_type"] == "code":
            mine["outputs"] = [
                o
                for o in ran.get("outputs", [])
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            ]
            mine["execution_count"] = ran.get("execution_count")
        for key in ("papermill", "execution"):
            mine["metadata"].pop(key, None)
    book["metadata"].pop("papermill", None)
    text = json.dumps(book, indent=1, ensure_ascii=False) + "\n"
    return atomic_write(target, lambda tmp: tmp.write_text(text))
