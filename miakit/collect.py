"""A sweep's results: ``miakit collect`` (one tidy table) and ``miakit report`` (its figures).

Issue 14, item 5.

Every finished run of a sweep leaves its tidy results in ``<run-id>/results.csv``
(:func:`miakit.runfolder.run_results`: its attack tables, with the run's id, notebook,
parameters and settings as columns ``param_<name>``, ``setting_<name>``, and the table's
name). :func:`collect` concatenates them, one row per run, table and attack row (reading
a run's tables afresh where it has no ``results.csv``), and writes ``collected.csv`` and
``collected.parquet`` into the runs folder.

:func:`report` draws, from that table, attack AUC and TPR at 1% FPR against the victim's
sparsity: one figure per dataset and architecture, one column per pruning method, one
line per attack, the unpruned original at sparsity 0 of every method. Several runs of
one point (the grid's seeds) give a 95% interval over them (with their bootstrap errors,
:func:`miakit.metrics.intervals.seed_interval`); a point from one run keeps that run's
own interval. The figures go to ``figures/<grid>/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from miakit.runfolder import RESULTS, run_results, run_state

__all__ = ["METRICS", "collect", "report", "sparsity_rows"]

#: The metrics :func:`report` draws against sparsity.
METRICS = ("auc", "tpr@1%fpr")

#: The columns that name one attacked model and attack within an attack table.
_IDENTITY = (
    "dataset",
    "arch",
    "split_seed",
    "victim_pruner",
    "victim_sparsity",
    "victim_defense",
    "shadow_pruner",
    "shadow_sparsity",
    "shadow_defense",
    "adaptive",
    "attack",
    "seeds",
)


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
        try:
            frames.append(pd.read_csv(folder / RESULTS))
        except FileNotFoundError:  # a run no results.csv was written for: read its tables
            spec = {key: row[key] for key in ("notebook", "parameters", "settings")}
            table = run_results(folder, spec)
            if table is not None:
                frames.append(table)
    if not frames:
        raise ValueError(f"no finished run under {root} has an attack table to collect")
    frame = pd.concat(frames, ignore_index=True)
    frame.to_csv(root / "collected.csv", index=False)
    frame.to_parquet(root / "collected.parquet", index=False)
    return frame


def sparsity_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a collected table that :func:`report` draws, each once.

    Kept: attack rows (not differences) of undefended victims attacked with shadows of
    the victim's own pruning, the fine-tune-only control left out. One model's row that
    several tables or runs repeat (the original, in every run of a sparsity axis) is
    kept once: rows are the same when their identity columns, the run's seed and
    settings, and their metrics agree.
    """
    need = {"attack", "victim_pruner", "victim_sparsity", *METRICS}
    if "baseline_attack" in table:
        table = table[table["baseline_attack"].isna()].drop(columns="baseline_attack")
    if not need <= set(table.columns):
        missing = sorted(need - set(table.columns))
        raise ValueError(f"the collected table lacks {missing}; no attack-vs-sparsity rows")
    keep = table["victim_pruner"] != "finetuned"
    if "victim_defense" in table:
        keep &= table["victim_defense"].fillna("none") == "none"
    for part in ("pruner", "sparsity"):
        if f"shadow_{part}" in table:
            keep &= table[f"shadow_{part}"] == table[f"victim_{part}"]
    rows = table[keep]
    same = [c for c in _IDENTITY if c in rows] + [*METRICS]
    same += [c for c in rows if c.startswith("setting_") or c == "param_seed"]
    return rows.drop_duplicates(subset=same).reset_index(drop=True)


def report(
    runs_dir: str | Path, figures: str | Path = "figures", attacks: list[str] | None = None
) -> list[Path]:
    """Draw a sweep's attack metrics against sparsity into ``figures/<grid>/``.

    Args:
        runs_dir: the sweep's folder (``runs/<grid>``); its table is collected afresh.
        figures: the figures root; the grid's figures go into its ``<grid>/`` folder.
        attacks: only these attacks (default: every attack in the table).

    Returns:
        The files written: a PNG and a PDF per dataset and architecture, and the drawn
        rows as ``vs_sparsity.csv``.

    Raises:
        ValueError: no drawable rows (e.g. a sweep of defenses only), an unknown attack, or
            a grid named like a profile (its figures would mix with the notebooks').
    """
    import matplotlib.pyplot as plt

    from miakit.config import profile_names
    from miakit.plots import FULL_WIDTH, metric_lines, save_figure, save_table
    from miakit.plots.names import readable

    grid = Path(runs_dir).resolve().name
    if grid in profile_names():
        raise ValueError(
            f"a grid named {grid!r} would draw into figures/{grid}/, the {grid} profile's "
            f"figures; give the grid file another name (e.g. name: {grid}-grid)"
        )
    rows = sparsity_rows(collect(runs_dir))
    if attacks:
        unknown = sorted(set(attacks) - set(rows["attack"]))
        if unknown:
            raise ValueError(
                f"no attack {unknown} in {runs_dir}; it has {sorted(set(rows['attack']))}"
            )
        rows = rows[rows["attack"].isin(attacks)]
    methods = sorted(set(rows["victim_pruner"]) - {"none"})
    if not methods:
        raise ValueError(f"no pruned victim in {runs_dir}: nothing to draw against sparsity")
    written = [save_table(rows, "vs_sparsity", profile=grid, root=figures)]
    for (dataset, arch), part in rows.groupby(["dataset", "arch"], sort=True):
        fig, axes = plt.subplots(
            len(METRICS),
            len(methods),
            squeeze=False,
            sharey="row",
            figsize=(FULL_WIDTH, 2.2 * len(METRICS) + 0.6),
            layout="constrained",
        )
        for j, method in enumerate(methods):
            shown = part[part["victim_pruner"].isin(["none", method])]
            for i, metric in enumerate(METRICS):
                ax = axes[i][j]
                xlabel = f"sparsity, {readable(method, 'victim_pruner')}"
                metric_lines(
                    shown, x="victim_sparsity", y=metric, hue="attack", ax=ax, xlabel=xlabel
                )
                if (i, j) != (0, 0) and ax.get_legend() is not None:
                    ax.get_legend().remove()
        written += save_figure(fig, f"{dataset}_{arch}_vs_sparsity", profile=grid, root=figures)
    return written


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


def add_report_parser(subparsers: Any) -> Any:
    """``miakit report RUNS_DIR [--figures DIR] [--attacks A,B]``."""
    sub = subparsers.add_parser("report", help="draw a sweep's attack metrics vs sparsity")
    sub.add_argument("runs_dir", help="the sweep's folder, runs/<grid name>")
    sub.add_argument("--figures", default="figures", help="figures root; gets <grid>/")
    sub.add_argument("--attacks", help="only these attacks, comma-separated (default: all)")

    def command(args: Any) -> int:
        attacks = [a for a in args.attacks.split(",") if a] if args.attacks else None
        paths = report(args.runs_dir, args.figures, attacks)
        print(f"wrote {len(paths)} file(s) into {paths[0].parent}")
        return 0

    sub.set_defaults(func=command)
    return sub
