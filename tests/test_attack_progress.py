"""The attack phase is visible: progress bars name what runs; the benchmark reports its ratio.

Issue 12, item 3: SAMIA's and the NN attacks' training, the sensitivity features and the
scoring each show a progress bar saying what is computed (attack, variant, epoch); with
progress off nothing is printed.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from miakit.attacks import AttackInputs, AttackSettings, make_attack
from miakit.experiment import Experiment, ExperimentConfig
from miakit.store import Store
from miakit.train import TrainConfig, sensitivity
from miakit.variants import ORIGINAL

ROOT = Path(__file__).resolve().parents[1]


def _inputs(n: int = 200, k: int = 4, seed: int = 0) -> AttackInputs:
    """Random shadow-like signals with sensitivity and membership."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k), n)
    return AttackInputs(
        posteriors=p,
        labels=rng.integers(0, k, n),
        sensitivity=rng.random((n, k)),
        membership=(np.arange(n) % 2).astype(np.int64),
    )


def _settings(progress: bool, epochs: int = 3) -> AttackSettings:
    return AttackSettings(
        epochs=epochs,
        lr=1e-2,
        batch_size=32,
        device="cpu",
        progress=progress,
        label="l1_unstructured@0.7",
    )


@pytest.mark.parametrize("name", ["samia", "nn"])
def test_attack_fit_and_score_show_bars_naming_attack_variant_and_epochs(capsys, name):
    data = _inputs()
    attack = make_attack(name, settings=_settings(True))
    attack.fit(data).score(data)
    err = capsys.readouterr().err.replace("\r", "\n")
    assert f"fit {name} (l1_unstructured@0.7)" in err
    assert "3/3" in err  # the bar counts the epochs to the end
    assert re.search(r"loss=\d+\.\d+", err)  # the epoch's loss as postfix
    assert f"score {name} (l1_unstructured@0.7)" in err


def test_progress_off_prints_nothing_and_changes_no_result(capsys):
    data = _inputs()
    quiet = make_attack("samia", settings=_settings(False)).fit(data).score(data)
    out = capsys.readouterr()
    assert out.err == "" and out.out == ""
    shown = make_attack("samia", settings=_settings(True)).fit(data).score(data)
    capsys.readouterr()
    np.testing.assert_array_equal(quiet.scores, shown.scores)


def test_progress_and_label_are_not_part_of_the_settings_key():
    assert _settings(True).key() == _settings(False).key()


def test_sensitivity_bar_counts_chunks_and_result_is_unchanged(capsys):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    x = torch.randn(50, 6)
    quiet = sensitivity(net, x, m=3, batch_size=20)
    assert capsys.readouterr().err == ""
    shown = sensitivity(net, x, m=3, batch_size=20, progress=True, desc="sensitivity shadow0")
    err = capsys.readouterr().err.replace("\r", "\n")
    assert "sensitivity shadow0" in err and "0/3" in err  # ceil(50 / 20) chunks
    torch.testing.assert_close(quiet, shown, rtol=0, atol=0)


def test_experiment_progress_names_attack_variant_and_signals(tmp_path, capsys):
    cfg = ExperimentConfig(
        dataset="mnist1d",
        arch="mlp",
        dataset_options=(("num_samples", 600),),
        num_shadows=1,
        train=TrainConfig(epochs=1, patience=0),
        sensitivity_m=2,
        attack_epochs=2,
        attack_lr=1e-2,
    )
    exp = Experiment(cfg, store=Store(tmp_path), device="cpu", progress=True)
    exp.attack("samia", ORIGINAL)
    err = capsys.readouterr().err.replace("\r", "\n")
    assert "fit samia (original)" in err and "2/2" in err
    assert "sensitivity shadow0 (original, own)" in err
    quiet = Experiment(cfg, store=Store(tmp_path / "quiet"), device="cpu", progress=False)
    quiet.attack("samia", ORIGINAL)
    assert capsys.readouterr().err == ""


def test_bench_attack_phase_small_ends_with_ratio(capsys):
    path = ROOT / "benchmarks" / "bench_attack_phase.py"
    spec = importlib.util.spec_from_file_location("bench_attack_phase", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--small"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"ratio: \d+(\.\d+)?", lines[-1]), lines[-1]
    assert any(line.startswith("(a) one shadow") for line in lines)
    assert any(line.startswith("(b) attack phase") for line in lines)
