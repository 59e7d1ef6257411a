"""Executing the numbered notebooks with papermill (what ``miakit run`` does after its tables).

:func:`find_notebooks` lists ``notebooks/NN_*.ipynb`` in reading order;
:func:`run_notebooks` executes them, one kernel each, with the profile and parameters
injected after each notebook's ``parameters`` cell.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["NotebookError", "find_notebooks", "run_notebooks", "store_outputs"]


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


def run_notebooks(
    notebooks: Sequence[Path],
    *,
    profile: str,
    parameters: Mapping[str, Any] | None = None,
    output_dir: str | Path = "runs",
    progress: bool = True,
) -> list[Path]:
    """Execute notebooks with papermill; executed copies go to ``output_dir/<profile>/``.

    Each notebook runs in its own folder (so its relative paths work) with
    ``profile`` and ``parameters`` injected after its ``parameters`` cell;
    ``MIAKIT_PROFILE`` is set for the kernel too.

    Raises:
        NotebookError: a cell failed; the message names the notebook, the cell, the
            error's first line and the executed copy holding the whole traceback.
    """
    import papermill as pm

    out = Path(output_dir) / profile
    out.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, **dict(parameters or {})}
    done = []
    old = os.environ.get("MIAKIT_PROFILE")
    os.environ["MIAKIT_PROFILE"] = profile
    try:
        for nb in notebooks:
            target = out / nb.name
            try:
                pm.execute_notebook(
                    str(nb),
                    str(target),
                    parameters=params,
                    cwd=str(nb.parent),
                    progress_bar=progress,
                    kernel_name="python3",
                )
            except pm.PapermillExecutionError as err:
                first = str(err.evalue).strip().splitlines()
                raise NotebookError(
                    f"notebook {nb.name} failed at In [{err.exec_count}]: {err.ename}: "
                    f"{first[0] if first else ''} (the executed copy with the full "
                    f"traceback is {target})"
                ) from None
            done.append(target)
    finally:
        if old is None:
            os.environ.pop("MIAKIT_PROFILE", None)
        else:
            os.environ["MIAKIT_PROFILE"] = old
    return done


def store_outputs(executed: str | Path, target: str | Path) -> Path:
    """Copy an executed notebook's outputs into the committed notebook, clean for git.

    The cell sources of ``target`` are kept; the outputs and execution counts come from
    ``executed``, a papermill run of the same code cells (markdown edited since the run
    is kept: prose does not change outputs). papermill's metadata, its
    timing records and the injected-parameters cell are dropped, so the stored notebook
    holds the outputs of a run and nothing of the machine that ran it.

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
            mine["outputs"] = ran.get("outputs", [])
            mine["execution_count"] = ran.get("execution_count")
        for key in ("papermill", "execution"):
            mine["metadata"].pop(key, None)
    book["metadata"].pop("papermill", None)
    text = json.dumps(book, indent=1, ensure_ascii=False) + "\n"
    return atomic_write(target, lambda tmp: tmp.write_text(text))
