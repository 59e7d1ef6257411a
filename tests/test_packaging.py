"""The set-up files agree with each other and with the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names of the PyPI packages whose names differ
CONDA_NAMES = {"torch": "pytorch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower()


def _pyproject_requirements() -> dict[str, str]:
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(proj["dependencies"])
    for extra in proj["optional-dependencies"].values():
        reqs += extra
    return {CONDA_NAMES.get(_name(r), _name(r)): r.replace(" ", "") for r in reqs}


def _environment_requirements() -> tuple[dict[str, str], list[str]]:
    conda: dict[str, str] = {}
    pip: list[str] = []
    in_pip = in_deps = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        stripped = line.strip()
        if not line.startswith(" "):
            in_deps = stripped == "dependencies:"
            continue
        if not in_deps:
            continue
        if stripped == "- pip:":
            in_pip = True
            continue
        if not stripped.startswith("- ") or stripped.startswith("#"):
            continue
        item = stripped[2:].strip()
        if in_pip and line.startswith("      "):
            pip.append(item)
        elif item not in ("pip",) and not item.startswith("python"):
            conda[_name(item)] = item.replace(" ", "")
    return conda, pip


def test_environment_matches_pyproject():
    want = _pyproject_requirements()
    conda, pip = _environment_requirements()
    got = dict(conda)
    for item in pip:
        if not item.startswith("-e"):
            got[_name(item)] = item

    # same names and the same version bounds (modulo the conda/PyPI name of torch)
    def bound(req: str) -> str:
        return req[len(_name(req)) :] if not req.startswith("pytorch") else req[len("pytorch") :]

    assert set(got) == set(want), (
        f"only in environment.yml: {sorted(set(got) - set(want))}; "
        f"only in pyproject.toml: {sorted(set(want) - set(got))}"
    )
    for name in want:
        assert bound(got[name]) == bound(want[name]), f"{name}: {got[name]} vs {want[name]}"
    assert any(p.startswith("-e .[") for p in pip), "environment.yml must pip-install miakit"


def test_python_requirement():
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert proj["requires-python"] == ">=3.10"
    assert proj["scripts"]["miakit"] == "miakit.cli:main"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", readme, flags=re.S)
    setup = [b.strip() for b in blocks if b.strip()][:2]
    assert len(setup) == 2, "README must open with exactly two set-up commands"
    ci = (ROOT / ".ci" / "run").read_text()
    assert setup[1] in ci, "CI must run the README's test command verbatim"


def test_facade_names_resolve_lazily():
    """``import miakit`` loads no torch; every facade name then resolves to its module's."""
    import importlib
    import subprocess
    import sys

    code = "import sys, miakit; assert 'torch' not in sys.modules, 'import miakit loaded torch'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    miakit = importlib.import_module("miakit")
    for name, module in miakit._FACADE.items():
        assert getattr(miakit, name) is getattr(importlib.import_module(module), name), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        miakit.nope  # noqa: B018
