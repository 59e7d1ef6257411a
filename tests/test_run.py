"""Storing an executed notebook's outputs back into the committed notebook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from miakit.run import NotebookError, find_notebooks, run_notebooks, start_order, store_outputs


def _book(cells: list[dict], **meta: object) -> dict:
    return {"cells": cells, "metadata": dict(meta), "nbformat": 4, "nbformat_minor": 5}


def _code(src: str, **meta: object) -> dict:
    return {
        "cell_type": "code",
        "metadata": dict(meta),
        "source": [src],
        "outputs": [],
        "execution_count": None,
        "id": src[:4],
    }


def test_store_outputs_keeps_sources_and_drops_papermill(tmp_path: Path) -> None:
    target = tmp_path / "00_x.ipynb"
    target.write_text(json.dumps(_book([_code("a = 1"), _code("print(a)")])))
    out = {"output_type": "stream", "name": "stdout", "text": ["1\n"]}
    log = {  # a parallel run's lock wait: a log line naming the machine, not a result
        "output_type": "stream",
        "name": "stderr",
        "text": ["/root/lib/contextlib.py:137: CacheWarning: waiting for model 3880 (pid 1)\n"],
    }
    ran = _book(
        [
            _code("a = 1", papermill={"duration": 1}),
            _code("a = 2", tags=["injected-parameters"]),
            {
                **_code("print(a)", execution={"t": 0}),
                "outputs": [log, out],
                "execution_count": 3,
            },
        ],
        papermill={"parameters": {}},
    )
    executed = tmp_path / "run.ipynb"
    executed.write_text(json.dumps(ran))
    store_outputs(executed, target)
    book = json.loads(target.read_text())
    assert "papermill" not in book["metadata"]
    assert [c["source"] for c in book["cells"]] == [["a = 1"], ["print(a)"]]
    assert book["cells"][1]["outputs"] == [out] and book["cells"][1]["execution_count"] == 3
    assert all(not c["metadata"] for c in book["cells"])


def test_store_outputs_refuses_a_run_of_another_version(tmp_path: Path) -> None:
    target = tmp_path / "00_x.ipynb"
    target.write_text(json.dumps(_book([_code("a = 1")])))
    executed = tmp_path / "run.ipynb"
    executed.write_text(json.dumps(_book([_code("a = 99")])))
    with pytest.raises(ValueError, match="code cells differ"):
        store_outputs(executed, target)
    assert json.loads(target.read_text())["cells"][0]["source"] == ["a = 1"]


def test_find_notebooks_in_order_and_only() -> None:
    root = Path(__file__).resolve().parents[1] / "notebooks"
    books = find_notebooks(root)
    assert [b.name[:2] for b in books] == sorted(b.name[:2] for b in books)
    assert [b.name[:2] for b in find_notebooks(root, ["3", "04"])] == ["03", "04"]
    with pytest.raises(ValueError, match="no notebook numbered"):
        find_notebooks(root, ["42"])


def test_store_outputs_keeps_prose_edited_after_the_run(tmp_path: Path) -> None:
    md = {"cell_type": "markdown", "metadata": {}, "source": ["new prose"], "id": "m"}
    target = tmp_path / "00_x.ipynb"
    target.write_text(json.dumps(_book([md, _code("a = 1")])))
    executed = tmp_path / "run.ipynb"
    executed.write_text(json.dumps(_book([{**md, "source": ["old prose"]}, _code("a = 1")])))
    store_outputs(executed, target)
    assert json.loads(target.read_text())["cells"][0]["source"] == ["new prose"]


def _timed_book(path: Path, log: Path, *, fail: bool = False) -> Path:
    """A notebook that logs its start and end times and sleeps between them."""
    src = (
        "import json, time\n"
        f"start = time.time(); time.sleep(2.0)\n"
        f"open({str(log)!r}, 'a').write(json.dumps([{path.name!r}, start, time.time()]) + '\\n')\n"
        + ("raise ValueError('broken on purpose')\n" if fail else "")
    )
    params = _code("profile = 'smoke'", tags=["parameters"])
    path.write_text(json.dumps(_book([params, _code(src)], kernelspec=_KERNEL)))
    return path


_KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def test_parallel_runs_overlap_record_durations_and_start_the_longest_first(
    tmp_path, monkeypatch
) -> None:
    """``jobs=2`` runs two kernels at once, given relative paths as the command line gives
    them (papermill changes the working directory while it starts a kernel); each
    notebook's seconds land in durations.json, and the next parallel run starts the
    longest one first."""
    log = tmp_path / "log.jsonl"
    (tmp_path / "nbs").mkdir()
    monkeypatch.chdir(tmp_path)
    books = [_timed_book(Path("nbs") / f"0{i}_book.ipynb", log) for i in range(3)]
    done = run_notebooks(books, profile="smoke", output_dir="runs", jobs=2)
    assert done == [tmp_path / "runs" / "smoke" / b.name for b in books]
    assert all(p.is_file() for p in done)
    spans = [json.loads(line)[1:] for line in log.read_text().splitlines()]
    assert len(spans) == 3
    overlapping = [(a, b) for a in spans for b in spans if a < b and b[0] < a[1]]
    assert overlapping, spans  # some two ran at the same time
    durations = json.loads((tmp_path / "runs" / "smoke" / "durations.json").read_text())
    assert sorted(durations) == [b.name for b in books]
    assert all(2.0 <= d < 120 for d in durations.values())
    assert Path.cwd() == tmp_path
    known = {"00_book.ipynb": 5.0, "02_book.ipynb": 50.0}
    assert start_order(books, known) == [books[1], books[2], books[0]]


def test_a_failing_parallel_notebook_is_one_clear_error(tmp_path) -> None:
    log = tmp_path / "log.jsonl"
    books = [
        _timed_book(tmp_path / "00_ok.ipynb", log),
        _timed_book(tmp_path / "01_bad.ipynb", log, fail=True),
    ]
    with pytest.raises(NotebookError, match=r"01_bad\.ipynb failed at .*ValueError: broken"):
        run_notebooks(books, profile="smoke", output_dir=tmp_path / "runs", jobs=2)
    with pytest.raises(ValueError, match="jobs must be an integer >= 1"):
        run_notebooks(books, profile="smoke", output_dir=tmp_path / "runs", jobs=0)
