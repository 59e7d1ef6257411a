"""Grid files: the runs of a sweep, read from YAML and checked before anything runs.

A grid file (``sweeps/*.yaml``, issue 14) names notebooks, their fixed parameters, fixed
config settings and parameter axes; :func:`load_grid` reads and checks it and
:meth:`GridFile.runs` expands it into :class:`Run` s, one notebook execution each::

    name: quick                    # the runs folder: runs/<name>/<run-id>/
    notebooks: ["05", "08"]        # numbered notebooks of notebooks/ (number or name)
    parameters: {profile: quick}   # notebook parameters every run gets
    settings: {seeds: 1}           # ExperimentConfig settings every run gets (MIAKIT_SET)
    product:                       # every combination of these values
      sparsity: [0.5, 0.7]
    zip:                           # groups of equally long lists, stepped together
      - {dataset: [mnist1d, mnist5k], arch: [mlp, small_cnn]}
    slurm: {partition: gpu, gpus_per_node: 1, timeout_min: 600}   # see SLURM_KEYS

The runs are ``notebooks x product x zip groups``. An axis key is a notebook parameter
(every listed notebook must have it in its ``parameters`` cell), or ``settings.<field>``
for a config setting. Every error names the file, the line and the key, and is raised
before any run starts: malformed YAML, an unknown top-level key, an unknown notebook or
parameter, an empty axis, zipped lists of different lengths, a setting the config refuses,
an unknown or mistyped Slurm resource.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from miakit.config import ExperimentConfig
from miakit.run import find_notebooks

__all__ = ["SLURM_KEYS", "GridError", "GridFile", "Run", "load_grid", "notebook_parameters"]

_TOP_KEYS = ("name", "notebooks", "parameters", "settings", "product", "zip", "slurm")

#: The resources a grid file's ``slurm:`` mapping may name (:mod:`miakit.slurm`), by type.
SLURM_KEYS: dict[str, type | tuple[type, ...]] = {
    "partition": str,
    "account": str,
    "qos": str,
    "constraint": str,
    "gpus_per_node": int,
    "cpus_per_task": int,
    "mem_gb": (int, float),
    "timeout_min": int,
    "array_parallelism": int,
    "setup": list,
    "additional_parameters": dict,
}
_SETTING = "settings."


class GridError(ValueError):
    """A grid file that cannot run: one line naming the file, line and key."""


@dataclass(frozen=True)
class Run:
    """One notebook execution of a sweep.

    Attributes:
        notebook: the notebook file.
        parameters: the notebook parameters papermill injects.
        settings: the config settings the kernel gets through ``MIAKIT_SET``.
    """

    notebook: Path
    parameters: Mapping[str, Any]
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        """``<NN>-<key>=<value>-...`` of the axis values, made safe for a folder name,
        with a hash of everything when it would be long (ids stay unique and stable)."""
        parts = [self.notebook.name[:2]]
        for key, value in sorted({**self.parameters, **self.settings}.items()):
            text = (
                value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
            )
            parts.append(f"{key}={text}")
        readable = re.sub(r"[^A-Za-z0-9_.=,+-]+", "_", "-".join(parts))
        if len(readable) <= 80:
            return readable
        digest = hashlib.sha256(readable.encode()).hexdigest()[:10]
        return f"{readable[:68]}-{digest}"


@dataclass(frozen=True)
class GridFile:
    """A checked grid file (see the module docstring); :meth:`runs` lists its runs."""

    path: Path
    name: str
    notebooks: tuple[Path, ...]
    parameters: Mapping[str, Any]
    settings: Mapping[str, Any]
    product: Mapping[str, tuple[Any, ...]]
    zipped: tuple[Mapping[str, tuple[Any, ...]], ...]
    slurm: Mapping[str, Any] = field(default_factory=dict)

    def runs(self) -> list[Run]:
        """Every run: each notebook at every combination of the axes, in file order."""
        axes: list[list[dict[str, Any]]] = [
            [{key: value} for value in values] for key, values in self.product.items()
        ]
        for group in self.zipped:
            keys = list(group)
            rows = zip(*group.values(), strict=True)  # lengths checked by load_grid
            axes.append([dict(zip(keys, row, strict=True)) for row in rows])
        runs = []
        for nb in self.notebooks:
            for combo in itertools.product(*axes):
                point: dict[str, Any] = {}
                for part in combo:
                    point.update(part)
                params = {**self.parameters}
                settings = {**self.settings}
                for key, value in point.items():
                    if key.startswith(_SETTING):
                        settings[key[len(_SETTING) :]] = value
                    else:
                        params[key] = value
                runs.append(Run(nb, params, settings))
        return runs


def notebook_parameters(notebook: Path) -> list[str]:
    """The names assigned in a notebook's ``parameters`` cell (what papermill may set)."""
    book = json.loads(Path(notebook).read_text())
    for cell in book["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse("".join(cell["source"]))
            return [
                t.id
                for node in tree.body
                if isinstance(node, ast.Assign)
                for t in node.targets
                if isinstance(t, ast.Name)
            ]
    return []


def _lines(text: str) -> dict[tuple[str, ...], int]:
    """The 1-based line of every mapping key, by its path of keys (list items by index)."""
    import yaml

    lines: dict[tuple[str, ...], int] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                lines[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, str(i)))

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return lines


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def load_grid(path: str | Path, notebooks_dir: str | Path = "notebooks") -> GridFile:
    """Read and check a grid file (see the module docstring).

    Raises:
        GridError: the file is missing or malformed, or names an unknown key, notebook,
            parameter or setting, or has an empty axis or zipped lists of other lengths;
            the message names the file, the line and the key.
    """
    import yaml

    file = Path(path)
    try:
        text = file.read_text()
    except OSError as err:
        raise GridError(f"{file}: cannot read the grid file ({err.strerror or err})") from None
    try:
        data = yaml.safe_load(text)
        lines = _lines(text)
    except yaml.YAMLError as err:
        # where the unclosed construct began (context), else where parsing gave up
        mark = getattr(err, "context_mark", None) or getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        context = getattr(err, "context", None)
        what = f"{context}, {problem}" if context else problem
        raise GridError(f"{file}{where}: malformed YAML: {what}") from None

    def fail(keys: Sequence[str], message: str) -> GridError:
        line = lines.get(tuple(keys))
        at = f" line {line}" if line else ""
        return GridError(f"{file}{at}: {'.'.join(keys) or 'the file'}: {message}")

    if not isinstance(data, dict):
        raise fail(
            (), "a grid file is a mapping of name, notebooks, parameters, settings, product and zip"
        )
    for key in data:
        if key not in _TOP_KEYS:
            raise fail((str(key),), f"unknown key; a grid file has {', '.join(_TOP_KEYS)}")
    name = data.get("name", file.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise fail(("name",), f"must be a folder name (letters, digits, _ . -), got {name!r}")

    wanted = data.get("notebooks")
    if not isinstance(wanted, list) or not wanted:
        raise fail(("notebooks",), "list at least one notebook, by number or name")
    found = find_notebooks(notebooks_dir)
    by_name = {p.name[:2]: p for p in found} | {p.stem: p for p in found}
    books: list[Path] = []
    for i, entry in enumerate(wanted):
        text = str(entry).removesuffix(".ipynb")
        book = by_name.get(text.zfill(2) if text.isdigit() else text)
        if book is None:
            raise fail(
                ("notebooks", str(i)),
                f"unknown notebook {entry!r}; available: {', '.join(p.stem for p in found)}",
            )
        books.append(book)
    names = {b: set(notebook_parameters(b)) for b in books}

    def check_key(keys: Sequence[str], key: str) -> None:
        if key.startswith(_SETTING):
            return  # checked with the values below
        lacking = [b.name for b in books if key not in names[b]]
        if lacking:
            raise fail(
                keys,
                f"unknown parameter {key!r} of {', '.join(lacking)} (a notebook parameter, "
                f"or settings.<field> for a config setting)",
            )

    def mapping(key: str) -> dict[str, Any]:
        value = data.get(key) or {}
        if not isinstance(value, dict):
            raise fail((key,), "must be a mapping of names to values")
        return {str(k): v for k, v in value.items()}

    parameters = mapping("parameters")
    for key in parameters:
        check_key(("parameters", key), key)
    settings = mapping("settings")

    def axis(keys: Sequence[str], values: Any) -> tuple[Any, ...]:
        if not isinstance(values, list) or not values:
            raise fail(keys, "an axis is a non-empty list of values")
        check_key(keys, keys[-1])
        return tuple(values)

    product = {k: axis(("product", k), v) for k, v in mapping("product").items()}
    groups = data.get("zip") or []
    if not isinstance(groups, list):
        raise fail(("zip",), "must be a list of mappings of equally long lists")
    zipped = []
    for i, group in enumerate(groups):
        if not isinstance(group, dict) or not group:
            raise fail(("zip", str(i)), "must be a mapping of equally long lists")
        lists = {str(k): axis(("zip", str(i), str(k)), v) for k, v in group.items()}
        lengths = {k: len(v) for k, v in lists.items()}
        if len(set(lengths.values())) > 1:
            raise fail(("zip", str(i)), f"zipped lists differ in length: {lengths}")
        zipped.append(lists)

    slurm = mapping("slurm")
    for key, value in slurm.items():
        kind = SLURM_KEYS.get(key)
        if kind is None:
            raise fail(("slurm", key), f"unknown Slurm resource; known: {', '.join(SLURM_KEYS)}")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise fail(("slurm", key), f"must be of type {_type_name(kind)}, got {value!r}")
    grid = GridFile(file, name, tuple(books), parameters, settings, product, tuple(zipped), slurm)
    keys_of: dict[str, tuple[str, ...]] = {k: ("settings", k) for k in settings}
    for source, keys in (("product", product), *((f"zip.{i}", g) for i, g in enumerate(zipped))):
        for k in keys:
            if k.startswith(_SETTING):
                keys_of[k[len(_SETTING) :]] = (*source.split("."), k)
    # every settings combination the runs would give the config, each checked once, now
    combos = {json.dumps(r.settings, sort_keys=True, default=str): r.settings for r in grid.runs()}
    for combo in combos.values():
        try:
            ExperimentConfig().with_overrides(**combo)
        except (TypeError, ValueError) as err:
            bad = next((k for k in combo if k in str(err)), next(iter(combo)))
            raise fail(keys_of.get(bad, ("settings",)), str(err)) from None
    return grid
