"""Grid files (issue 14): the paper's and the quick grid expand; bad files fail first."""

from __future__ import annotations

from pathlib import Path

import pytest

from miakit.cli import main
from miakit.config import ExperimentConfig
from miakit.gridfile import GridError, load_grid, notebook_parameters

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def test_the_papers_grid_lists_every_dataset_with_its_models_and_three_seeds() -> None:
    grid = load_grid(ROOT / "sweeps" / "paper.yaml", NOTEBOOKS)
    runs = grid.runs()
    assert [nb.name[:2] for nb in grid.notebooks] == ["05", "06", "08"]
    pairs = {(r.parameters["dataset"], r.parameters["arch"]) for r in runs}
    images = {"cifar10", "cifar100", "svhn", "chmnist"}
    archs = {"resnet18", "densenet121", "vgg16_bn", "mobilenetv2"}
    assert pairs == {(d, a) for d in images for a in archs} | {
        (d, "fc") for d in ("location", "purchase100", "texas100")
    }
    assert len(runs) == 3 * len(pairs) * 3  # notebooks x pairs x seeds
    assert len({r.run_id for r in runs}) == len(runs)  # one folder per run
    for dataset, arch in pairs:
        ExperimentConfig(dataset=dataset, arch=arch)  # every pair is a valid config


def test_the_quick_grid_is_small() -> None:
    runs = load_grid(ROOT / "sweeps" / "quick.yaml", NOTEBOOKS).runs()
    assert [(r.parameters["sparsity"], dict(r.settings)) for r in runs] == [
        (0.5, {"seeds": 1}),
        (0.9, {"seeds": 1}),
    ]


def test_notebook_parameters_read_the_parameters_cell() -> None:
    names = notebook_parameters(NOTEBOOKS / "08_defenses.ipynb")
    assert {"profile", "dataset", "lambdas", "thetas", "noise_multipliers"} <= set(names)


GOOD = 'name: t\nnotebooks: ["04"]\nparameters:\n  profile: smoke\n'

#: (case, grid text, text the one error must contain: file, line and key)
BAD = [
    ("malformed", GOOD + "product:\n  sparsity: [0.5, 0.7\n", "line 6: malformed YAML"),
    ("unknown-key", GOOD + "axes:\n  sparsity: [0.5]\n", "line 5: axes: unknown key"),
    ("unknown-notebook", 'notebooks: ["04", "42"]\n', "line 1: notebooks.1: unknown notebook '42'"),
    (
        "unknown-parameter",
        GOOD + "product:\n  sparsityy: [0.5]\n",
        "line 6: product.sparsityy: unknown parameter 'sparsityy'",
    ),
    ("empty-axis", GOOD + "product:\n  sparsity: []\n", "line 6: product.sparsity: an axis is"),
    (
        "zip-lengths",
        GOOD + "zip:\n  - {sparsity: [0.5, 0.7], pruner: [slimming]}\n",
        "line 6: zip.0: zipped lists differ in length",
    ),
    (
        "bad-setting",
        GOOD + "product:\n  settings.num_shadows: [2, 0]\n",
        "line 6: product.settings.num_shadows: num_shadows must be",
    ),
    (
        "unknown-setting",
        GOOD + "settings:\n  epochz: 3\n",
        "line 6: settings.epochz: unknown setting",
    ),
    ("no-notebooks", "name: t\n", "notebooks: list at least one notebook"),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_grid_file_is_one_error_naming_the_line_and_key(
    case, text, message, tmp_path, capsys
) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(GridError) as err:
        load_grid(path, NOTEBOOKS)
    assert str(err.value).startswith(str(path)) and message in str(err.value), str(err.value)
    # the command line: exit 2, one line, before anything runs
    assert main(["sweep", str(path), "--dry-run", "--notebooks", str(NOTEBOOKS)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_dry_run_lists_every_run_with_its_state_and_what_is_left(tmp_path, capsys) -> None:
    grid = str(ROOT / "sweeps" / "quick.yaml")
    runs = ["--runs", str(tmp_path), "--notebooks", str(NOTEBOOKS)]
    assert main(["sweep", grid, "--dry-run", *runs]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"grid quick-grid: 2 run(s) into {tmp_path}/quick-grid/<run-id>/"
    assert all("04_attacks_on_pruned_models.ipynb  [new]" in line for line in out[1:3])
    assert out[3] == "left: 2 x 04 (no finished run to time): not known yet"
    assert len(out) == 4 and not (tmp_path / "quick-grid").exists()  # a dry run writes nothing


def test_the_slurm_backend_off_a_cluster_says_so_in_one_line(tmp_path, capsys) -> None:
    grid = str(ROOT / "sweeps" / "quick.yaml")
    argv = ["sweep", grid, "--backend", "slurm", "--runs", str(tmp_path)]
    assert main([*argv, "--notebooks", str(NOTEBOOKS)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no Slurm on this machine" in err[0] and "submitit-local" in err[0]
    assert not list(tmp_path.rglob("state.json"))  # nothing was planned or run


@pytest.mark.parametrize(
    ("slurm", "message"),
    [
        ("{partion: gpu}", "slurm.partion: unknown Slurm resource"),
        ("{gpus_per_node: two}", "slurm.gpus_per_node: must be of type int"),
        ("{timeout_min: true}", "slurm.timeout_min: must be of type int"),
    ],
)
def test_bad_slurm_resources_name_their_line(tmp_path, slurm, message) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(f"notebooks: ['01']\nparameters: {{profile: smoke}}\nslurm: {slurm}\n")
    with pytest.raises(GridError) as err:
        load_grid(path, NOTEBOOKS)
    assert f"{path} line 3: {message}" in str(err.value), str(err.value)


def test_slurm_resources_reach_submitit_with_flags_winning(tmp_path) -> None:
    from miakit.slurm import DEFAULTS, slurm_parameters

    path = tmp_path / "g.yaml"
    path.write_text(
        "name: g\nnotebooks: ['01']\nslurm: {partition: gpu, account: lab, mem_gb: 64, "
        "setup: ['module load cuda']}\n"
    )
    grid = load_grid(path, NOTEBOOKS)
    params = slurm_parameters(grid, {"mem_gb": 16, "timeout_min": None, "account": "other"})
    assert params["slurm_partition"] == "gpu" and params["slurm_account"] == "other"
    assert params["mem_gb"] == 16 and params["timeout_min"] == DEFAULTS["timeout_min"]
    assert params["slurm_setup"] == ["module load cuda"] and params["name"] == "miakit-g"
    assert params["slurm_array_parallelism"] == DEFAULTS["array_parallelism"]
