"""Storing an executed notebook's outputs back into the committed notebook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from miakit.run import find_notebooks, store_outputs


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
    ran = _book(
        [
            _code("a = 1", papermill={"duration": 1}),
            _code("a = 2", tags=["injected-parameters"]),
            {**_code("print(a)", execution={"t": 0}), "outputs": [out], "execution_count": 3},
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
