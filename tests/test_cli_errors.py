"""Every expected failure of the ``miakit`` command is one line and exit status 2 (issue 10).

Table-driven: each row is a bad input a user can give (a mistyped setting, a value of
the wrong type, a device that does not exist, an unusable cache folder, a corrupt
hand-placed data file, a failing notebook); the command must print exactly one
``miakit: error:`` line naming the problem, exit 2, and never start training.
Ctrl-C is one line and 130, tested in process and with a real SIGINT.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import miakit.steps
from miakit.cli import main

Setup = Callable[[Path], list[str]]


def _nothing(tmp: Path) -> list[str]:
    return []


def _cache_is_a_file(tmp: Path) -> list[str]:
    (tmp / "cachefile").write_text("not a folder")
    return ["--cache", str(tmp / "cachefile")]


def _garbage_purchase(tmp: Path) -> list[str]:
    folder = tmp / "data" / "purchase100"
    folder.mkdir(parents=True)
    (folder / "dataset_purchase.tgz").write_bytes(os.urandom(4096))
    return ["--data-root", str(tmp / "data"), "--set", "dataset=purchase100", "--set", "arch=mlp"]


def _garbage_cifar(tmp: Path) -> list[str]:
    folder = tmp / "data" / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4"):
        (folder / name).write_bytes(os.urandom(1000))
    for name in ("data_batch_5", "test_batch", "batches.meta"):
        (folder / name).write_bytes(os.urandom(1000))
    return ["--data-root", str(tmp / "data"), "--set", "dataset=cifar10"]


#: (case id, extra arguments of ``miakit run --profile smoke --no-notebooks``, setup,
#: text the one line must contain)
CASES: list[tuple[str, list[str], Setup, str]] = [
    ("int-as-text", ["--set", "train.epochs=abc"], _nothing, "TrainConfig.epochs='abc'"),
    ("m-as-text", ["--set", "sensitivity_m=abc"], _nothing, "sensitivity_m='abc'"),
    ("float-for-int", ["--set", "attack_epochs=2.5"], _nothing, "expected an integer"),
    ("bool-for-int", ["--set", "num_shadows=True"], _nothing, "num_shadows=True"),
    ("zero-shadows", ["--set", "num_shadows=0"], _nothing, "num_shadows must be"),
    ("unknown-setting", ["--set", "epochz=3"], _nothing, "unknown setting 'epochz'"),
    ("unknown-nested", ["--set", "train.epochz=3"], _nothing, "unknown train setting"),
    ("no-equals", ["--set", "sparsity"], _nothing, "--set expects key=value"),
    ("sparsity-range", ["--set", "sparsity=1.5"], _nothing, "sparsity must be a number"),
    ("unused-seed", ["--set", "train.seed=2"], _nothing, "set seed instead"),
    ("bad-options", ["--set", "dataset_options=5"], _nothing, "dataset_options=5"),
    ("unknown-dataset", ["--set", "dataset=imagenet"], _nothing, "unknown dataset 'imagenet'"),
    ("unknown-arch", ["--set", "arch=resnet9000"], _nothing, "unknown model 'resnet9000'"),
    ("unknown-pruner", ["--set", "pruner=magic"], _nothing, "unknown pruning method"),
    ("device", ["--device", "foo"], _nothing, "unknown device 'foo'"),
    ("cuda-missing", ["--device", "cuda:7"], _nothing, "cuda"),
    ("unknown-profile", ["--profile", "huge"], _nothing, "invalid choice: 'huge'"),
    ("unknown-flag", ["--frobnicate"], _nothing, "unrecognized arguments"),
    ("zero-jobs", ["--jobs", "0"], _nothing, "--jobs: expected an integer >= 1, got '0'"),
    ("cache-is-a-file", [], _cache_is_a_file, "cachefile"),
    ("garbage-purchase100", [], _garbage_purchase, "dataset_purchase.tgz"),
    ("garbage-cifar", [], _garbage_cifar, "data_batch_1"),
]


@pytest.fixture
def no_training(monkeypatch):
    """Any attempt to train fails the test: bad input must be caught before work."""

    def refuse(*args, **kwargs):
        raise AssertionError("training started before the bad input was reported")

    monkeypatch.setattr(miakit.steps, "fit", refuse)


@pytest.mark.parametrize(("case", "extra", "setup", "text"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(
    case, extra, setup, text, tmp_path, capsys, monkeypatch, no_training
):
    if case == "cuda-missing":
        import torch

        if torch.cuda.is_available() and torch.cuda.device_count() > 7:
            pytest.skip("this machine has a cuda:7")
    monkeypatch.setenv("MIAKIT_CACHE", str(tmp_path / "cache"))
    argv = ["run", "--profile", "smoke", "--no-notebooks", "--quiet", *setup(tmp_path), *extra]
    rc = _exit_code(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1, err
    assert err[0].startswith("miakit: error: ") and text in err[0], err[0]
    assert "Traceback" not in err[0] and "allow_pickle" not in err[0]


def _exit_code(argv: list[str]) -> int:
    """``main(argv)``'s status, also when argparse exits (a bad flag or choice)."""
    try:
        return main(argv)
    except SystemExit as done:
        return int(done.code or 0)


def test_read_only_cache_is_reported_before_any_work(tmp_path, capsys, no_training):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the file-in-the-way case covers it")
    cache = tmp_path / "ro"
    cache.mkdir()
    cache.chmod(0o500)
    try:
        rc = main(["run", "--profile", "smoke", "--no-notebooks", "--cache", str(cache)])
    finally:
        cache.chmod(0o700)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and str(cache) in err[0], err


def test_ctrl_c_is_one_line_and_130(tmp_path, capsys, monkeypatch):
    import miakit.cli

    def interrupted(args, cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(miakit.cli, "_pipeline_tables", interrupted)
    rc = main(["run", "--profile", "smoke", "--no-notebooks", "--cache", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 130 and len(err) == 1, err
    assert str(tmp_path) in err[0] and "run the same command again" in err[0]


def test_a_real_sigint_mid_training_ends_with_one_line_and_130(tmp_path):
    # The smoke pipeline is quick: a run that finished before the signal came tests
    # nothing, so it is tried again on a fresh cache (up to three times).
    for attempt in range(3):
        cache = tmp_path / f"cache{attempt}"
        env = {**os.environ, "MIAKIT_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "miakit.cli", "run", "--profile", "smoke", "--no-notebooks"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        # wait until training has started (a checkpoint or a finished model exists)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (cache.exists() and any(cache.rglob("*"))):
            time.sleep(0.05)
        time.sleep(0.2)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            break
        proc.communicate()
    else:
        pytest.fail("the smoke run finished three times before it could be interrupted")
    _, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    # main() returns 130 (the in-process test above); CPython then sometimes ends the
    # process by re-raising SIGINT at exit (seen here in about 1 run of 5 under -m),
    # which a shell reports as the same status, 130.
    assert proc.returncode in (130, -signal.SIGINT), err
    # the progress bars may have printed before; the open one is closed first, so the
    # message is a line of its own, the last, and no traceback follows it
    assert lines[-1].startswith("miakit: interrupted"), err
    assert "Traceback" not in err, err


def test_a_failing_notebook_is_one_line(tmp_path, capsys, monkeypatch):
    import nbformat

    books = tmp_path / "books"
    books.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell("profile = 'smoke'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell("raise ValueError('the data is odd\\nsecond line')"),
    ]
    nbformat.write(nb, books / "01_fails.ipynb")
    monkeypatch.setenv("MIAKIT_CACHE", str(tmp_path / "cache"))
    rc = main(
        [
            "run",
            "--profile",
            "smoke",
            "--only",
            "01",
            "--notebooks",
            str(books),
            "--runs",
            str(tmp_path / "runs"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "01_fails.ipynb failed at In [3]: ValueError: the data is odd" in err[0]
    assert str(tmp_path / "runs" / "smoke" / "01_fails.ipynb") in err[0]


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"sparsity": 2}, "sparsity must be a number"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"device": "foo"}, "unknown device 'foo'"),
        ({"attack_epochs": "ten"}, "attack_epochs='ten'"),
    ],
)
def test_the_notebooks_entry_point_shows_one_line(kwargs, text, monkeypatch):
    """``from_parameters`` raises a ParameterError that Jupyter renders as one line."""
    from miakit.config import ParameterError
    from miakit.experiment import from_parameters

    monkeypatch.delenv("MIAKIT_SET", raising=False)
    with pytest.raises(ParameterError, match=text) as caught:
        from_parameters("smoke", **kwargs)
    assert isinstance(caught.value, ValueError)
    shown = caught.value._render_traceback_()
    assert len(shown) == 1 and shown[0].startswith("miakit: error: ") and text in shown[0]


def test_cache_prune_removes_what_no_current_step_reaches(tmp_path, capsys):
    """``miakit cache prune`` keeps entries of current step versions, drops stale ones."""
    import torch

    from miakit.keys import STEP_VERSIONS
    from miakit.store import Store

    store = Store(tmp_path)
    current = {"step": "train", "version": STEP_VERSIONS["train"], "role": "victim"}
    stale = {"step": "train", "version": STEP_VERSIONS["train"] - 1, "role": "victim"}
    for key in (current, stale):
        store.save_tensors("model", key, {"w": torch.zeros(2)})
    assert main(["cache", "info", "--cache", str(tmp_path)]) == 0
    assert main(["cache", "verify", "--cache", str(tmp_path)]) == 0
    assert main(["cache", "prune", "--cache", str(tmp_path)]) == 0
    assert store.has("model", current) and not store.has("model", stale)
    assert "model" in capsys.readouterr().out


def test_the_notebooks_entry_point_checks_the_cache(tmp_path, monkeypatch):
    from miakit.config import ParameterError
    from miakit.experiment import from_parameters

    (tmp_path / "cachefile").write_text("not a folder")
    monkeypatch.setenv("MIAKIT_CACHE", str(tmp_path / "cachefile"))
    monkeypatch.delenv("MIAKIT_SET", raising=False)
    with pytest.raises(ParameterError, match="cachefile"):
        from_parameters("smoke")
