"""The package's import graph follows ARCHITECTURE.md's layer order, with no cycle.

Imports are read with ``ast`` (module level and inside functions alike), so a lazy
import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "miakit"

#: Layer of each top-level module or package of miakit (ARCHITECTURE.md, "Layer order").
LAYERS: dict[str, int] = {
    "_util": 0,
    "checkpoint": 0,
    "lockfile": 0,
    "reported": 0,
    "threads": 0,
    "data": 1,
    "splits": 1,
    "models": 1,
    "metrics": 1,
    "store": 1,
    "cachetool": 2,
    "prune": 1,
    "train": 2,
    "attacks": 2,
    "defenses": 3,
    "config": 4,
    "variants": 4,
    "plots": 4,
    "keys": 4,
    "together": 5,
    "signal_steps": 5,
    "steps": 5,
    "experiment": 5,
    "tables": 6,
    "sweep": 6,
    "ablation": 6,
    "claims": 6,
    "contrasts": 6,
    "narrate": 5,
    "finetune_curve": 6,
    "export": 6,
    "audit": 6,
    "run": 7,
    "gridfile": 7,
    "runfolder": 7,
    "launch": 7,
    "slurm": 7,
    "sweepcli": 7,
    "collect": 7,
    "cli": 7,
}

MAX_LINES = 420


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path, module: str) -> list[tuple[str, list[str]]]:
    """``(imported module, names)`` for every miakit import in a file."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.split(".")[0] == "miakit"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "miakit":
                out.append((target, [a.name for a in node.names]))
    return out


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_has_a_layer() -> None:
    tops = {_top(m) for m in _modules() if _top(m)}
    assert tops <= set(LAYERS), f"modules without a layer: {sorted(tops - set(LAYERS))}"


@pytest.mark.parametrize("module", sorted(_modules()))
def test_no_upward_import(module: str) -> None:
    path = _modules()[module]
    if not _top(module):
        return  # the facade, miakit/__init__.py, may name anything (lazily)
    mine = LAYERS[_top(module)]
    for target, _ in _imports(path, module):
        other = _top(target)
        if not other or other == _top(module):
            continue
        assert LAYERS[other] <= mine, (
            f"{module} (layer {mine}) imports {target} (layer {LAYERS[other]}): "
            "a module imports only from layers below its own"
        )


@pytest.mark.parametrize("module", sorted(_modules()))
def test_no_private_name_from_another_module(module: str) -> None:
    for target, names in _imports(_modules()[module], module):
        if _top(target) in ("", "_util") or _top(target) == _top(module):
            continue
        private = [n for n in names if n.startswith("_")]
        assert not private, f"{module} takes private names {private} from {target}"


def test_import_graph_has_no_cycle() -> None:
    mods = _modules()
    graph = {m: {t for t, _ in _imports(p, m) if t in mods and t != m} for m, p in mods.items()}
    # resolve "from miakit.pkg import sub" to the submodule where it exists
    for m, p in mods.items():
        for t, names in _imports(p, m):
            graph[m] |= {f"{t}.{n}" for n in names if f"{t}.{n}" in mods and f"{t}.{n}" != m}
    # a package's __init__ re-exports its submodules; edges into a package's own
    # submodules from its __init__ are the normal direction, so a cycle is only
    # reported between different top-level modules
    top_graph: dict[str, set[str]] = {}
    for m, ts in graph.items():
        top_graph.setdefault(_top(m), set()).update(_top(t) for t in ts if _top(t) != _top(m))
    top_graph.pop("", None)
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(top_graph.get(node, ())):
            if not nxt:
                continue
            if state.get(nxt) == 1:
                raise AssertionError(f"import cycle: {' -> '.join([*stack, node, nxt])}")
            if not state.get(nxt):
                visit(nxt, [*stack, node])
        state[node] = 2

    for node in sorted(top_graph):
        if not state.get(node):
            visit(node, [])


@pytest.mark.parametrize("module", sorted(_modules()))
def test_module_size(module: str) -> None:
    lines = len(_modules()[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it by concept (<= ~400)"


@pytest.mark.parametrize("module", ["experiment", "steps", "tables", "sweep", "export", "cli"])
def test_pipeline_never_branches_on_an_attack_name(module: str) -> None:
    """Attacks declare ``family``, ``uses`` and ``persist``; the pipeline reads those only."""
    from miakit.attacks import ATTACKS

    path = PACKAGE / f"{module}.py"
    files = [path] if path.exists() else sorted((PACKAGE / module).glob("*.py"))
    assert files, module
    for node in (n for f in files for n in ast.walk(ast.parse(f.read_text()))):
        if isinstance(node, ast.Compare):
            names = {
                n.value
                for n in ast.walk(node)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            }
            hit = names & set(ATTACKS)
            assert not hit, f"{module} line {node.lineno} compares against {sorted(hit)}"
