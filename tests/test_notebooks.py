"""The committed notebooks: present, parameterised for papermill, and clean in git."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = [
    "00_quickstart",
    "01_data_and_models",
    "02_pruning",
    "03_prediction_divergence",
    "04_attacks_on_pruned_models",
    "05_pruning_methods_and_sparsity",
    "06_adversary_knowledge",
    "07_samia_ablation",
    "08_defenses",
    "09_beyond_the_paper",
]
COMMON = ("profile", "dataset", "arch", "pruner", "sparsity", "seed", "device")
MACHINE_PATH = re.compile(r"(/tmp/|/root/|/work/|/home/|C:\\\\)")


def _load(name: str) -> dict:
    return json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())


def test_every_paper_section_has_a_notebook():
    found = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert found == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_parameters_cell(name):
    cells = _load(name)["cells"]
    tagged = [i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, f"{name}: expected one cell tagged 'parameters'"
    i = tagged[0]
    source = "".join(cells[i]["source"])
    assert 'profile = os.environ.get("MIAKIT_PROFILE", "quick")' in source
    for var in COMMON:
        assert re.search(rf"^{var} = ", source, flags=re.M), f"{name}: parameter {var} missing"
    assert "from_parameters" not in source, "derived values belong in the next cell"
    assert "from_parameters(" in "".join(cells[i + 1]["source"])


@pytest.mark.parametrize("name", EXPECTED)
def test_clean_in_git(name):
    path = ROOT / "notebooks" / f"{name}.ipynb"
    nb = _load(name)
    assert "papermill" not in nb["metadata"], f"{name}: papermill metadata left in"
    assert path.stat().st_size < 600_000, f"{name}: outputs too large"
    for cell in nb["cells"]:
        meta = cell.get("metadata", {})
        assert "papermill" not in meta and "execution" not in meta, f"{name}: timing metadata"
        assert "injected-parameters" not in meta.get("tags", [])
        for out in cell.get("outputs", []):
            text = json.dumps({k: v for k, v in out.items() if k != "data"})
            text += json.dumps(out.get("data", {}).get("text/plain", ""))
            text += json.dumps(out.get("data", {}).get("text/html", ""))
            assert not MACHINE_PATH.search(text), f"{name}: machine path in an output"
            assert out.get("output_type") != "error", f"{name}: committed with an error"


@pytest.mark.parametrize("name", EXPECTED)
def test_no_reusable_logic(name):
    """Notebooks call miakit; they define no functions or classes of their own."""
    for cell in _load(name)["cells"]:
        if cell["cell_type"] == "code":
            src = "".join(cell["source"])
            assert not re.search(r"^\s*(def|class) ", src, flags=re.M), f"{name}: {src[:80]}"
