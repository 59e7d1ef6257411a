"""The local backend of ``miakit sweep`` (issue 14): real papermill runs in processes."""

from __future__ import annotations

import json
from pathlib import Path

from miakit.cli import main
from miakit.gridfile import load_grid
from miakit.launch import launch
from miakit.runfolder import run_state

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

GRID = """name: tiny
notebooks: ["01"]
parameters:
  profile: smoke
settings:
  seeds: 1
product:
  sparsity: [0.5, 0.7, 5]
"""


def test_local_runs_land_in_their_folders_skip_what_is_done_and_retry_only_failures(
    tmp_path, monkeypatch, capsys
) -> None:
    """Three runs, two at a time; the one at sparsity 5 fails (the notebook refuses it)
    without stopping the others. A second sweep runs nothing; --retry-failed reruns
    only the failed run."""
    monkeypatch.setenv("MIAKIT_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "tiny.yaml"
    path.write_text(GRID)
    grid = load_grid(path, NOTEBOOKS)
    report = launch(grid, tmp_path / "runs", max_parallel=2)
    ids = [r.run_id for r in grid.runs()]
    good, bad = ids[:2], ids[2]
    assert sorted(report.done) == sorted(good) and list(report.failed) == [bad]
    assert "sparsity must be a number" in report.failed[bad]
    root = tmp_path / "runs" / "tiny"
    for run_id in good:
        folder = root / run_id
        assert run_state(folder)["state"] == "done"
        assert (folder / "01_data_and_models.ipynb").is_file()
        assert (folder / "log.txt").is_file()
        csvs = sorted(p.name for p in (folder / "figures" / "smoke").glob("*.csv"))
        assert "01_model_accuracy.csv" in csvs  # the run's own tables, not figures/
    manifest = json.loads((root / "manifest.json").read_text())
    assert [(r["run_id"], r["state"]) for r in manifest["runs"]] == [
        (good[0], "done"),
        (good[1], "done"),
        (bad, "failed"),
    ]
    assert manifest["runs"][0]["parameters"]["sparsity"] == 0.5
    assert manifest["runs"][0]["settings"] == {"seeds": 1}
    stamps = {i: (root / i / "01_data_and_models.ipynb").stat().st_mtime_ns for i in good}

    again = launch(grid, tmp_path / "runs", max_parallel=2)
    assert again.done == [] and sorted(again.skipped) == sorted(ids)
    retried = launch(grid, tmp_path / "runs", max_parallel=2, retry_failed=True)
    assert retried.done == [] and list(retried.failed) == [bad]
    assert sorted(retried.skipped) == sorted(good)
    assert {i: (root / i / "01_data_and_models.ipynb").stat().st_mtime_ns for i in good} == stamps

    # the command line reports the failure with its log's tail, and exits 1
    argv = ["sweep", str(path), "--runs", str(tmp_path / "runs"), "--notebooks", str(NOTEBOOKS)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "0 done, 3 skipped" in out and f"FAILED {bad}" in out and "--retry-failed" in out


def test_the_progress_bar_counts_runs_done_running_and_failed() -> None:
    from miakit.launch import Progress

    bar = Progress(True, "g", 3)
    bar.update(2)
    bar.update(1, "done")
    bar.update(0, "killed")
    assert (bar.done, bar.running, bar.failed) == (1, 0, 1)
    assert bar.bar.n == 2 and bar.bar.total == 3
    assert bar.bar.postfix == "done 1, running 0, failed 1"
    bar.close()
    quiet = Progress(False, "g", 3)
    quiet.update(1, "done")
    assert quiet.bar is None and quiet.done == 1
