"""``miakit collect RUNS_DIR``: a sweep's results as one tidy table (issue 14, item 5).

Every finished run of :mod:`miakit.launch` keeps its notebook's tables under
``<run-id>/figures/<profile>/*.csv``. :func:`collect` reads the attack tables among them
(those with an ``attack`` and an ``auc`` column), adds the run's id, notebook, parameters
and settings as columns (``param_<name>``, ``setting_<name>``) and the table's name
(``table``), and concatenates them: one row per run, table and attack row. It writes
``collected.csv`` and ``collected.parquet`` into the runs folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from miakit.runfolder import run_state

__all__ = ["collect"]


def collect(runs_dir: str | Path) -> pd.DataFrame:
    """The attack tables of every finished run under ``runs_dir`` (a grid's folder).

    Raises:
        FileNotFoundError: ``runs_dir`` holds no ``manifest.json`` (not a sweep's folder).
        ValueError: no finished run has an attack table.
    """
    root = Path(runs_dir)
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except OSError:
        raise FileNotFoundError(
            f"{root} holds no manifest.json; pass the folder miakit sweep wrote, runs/<grid name>"
        ) from None
    frames = []
    for row in manifest["runs"]:
        folder = root / row["run_id"]
        if run_state(folder)["state"] != "done":
            continue
        columns: dict[str, Any] = {"run_id": row["run_id"], "notebook": row["notebook"]}
        columns |= {f"param_{k}": _cell(v) for k, v in row["parameters"].items()}
        columns |= {f"setting_{k}": _cell(v) for k, v in row["settings"].items()}
        for csv in sorted((folder / "figures").glob("*/*.csv")):
            table = pd.read_csv(csv)
            if {"attack", "auc"} <= set(table.columns):
                frames.append(table.assign(table=csv.stem, **columns))
    if not frames:
        raise ValueError(f"no finished run under {root} has an attack table to collect")
    frame = pd.concat(frames, ignore_index=True)
    first = ["run_id", "notebook", "table"]
    first += [c for c in frame.columns if c.startswith(("param_", "setting_"))]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    frame.to_csv(root / "collected.csv", index=False)
    frame.to_parquet(root / "collected.parquet", index=False)
    return frame


def _cell(value: Any) -> Any:
    """A parameter as one table cell: lists and mappings as JSON text."""
    return json.dumps(value, sort_keys=True) if isinstance(value, list | dict) else value


def add_parser(subparsers: Any) -> Any:
    """``miakit collect RUNS_DIR``."""
    sub = subparsers.add_parser("collect", help="merge a sweep's attack tables into one table")
    sub.add_argument("runs_dir", help="the sweep's folder, runs/<grid name>")

    def command(args: Any) -> int:
        frame = collect(args.runs_dir)
        runs = frame["run_id"].nunique()
        print(
            f"collected {len(frame)} rows from {runs} run(s) into "
            f"{Path(args.runs_dir) / 'collected.csv'} and collected.parquet"
        )
        return 0

    sub.set_defaults(func=command)
    return sub
