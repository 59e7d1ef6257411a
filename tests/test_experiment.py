"""Tests of the config, profiles and the cached pipeline (miakit.experiment, miakit.cli)."""

from __future__ import annotations

import pytest

import miakit.experiment as E
from miakit.cli import main, parse_set
from miakit.experiment import Experiment, ExperimentConfig, profile
from miakit.store import Store


@pytest.fixture
def smoke(tmp_path):
    return Experiment(profile("smoke"), store=Store(tmp_path / "cache"), device="cpu")


def test_profiles_follow_the_paper():
    paper = profile("paper")
    assert (paper.dataset, paper.arch, paper.num_shadows) == ("cifar10", "densenet121", 5)
    assert (paper.train.epochs, paper.train.batch_size, paper.train.lr) == (100, 128, 1e-3)
    assert (paper.train.weight_decay, paper.train.patience) == (5e-4, 5)
    assert paper.finetune_config.epochs == 50
    assert (paper.pruner, paper.sparsity, paper.split_seed) == ("l1_unstructured", 0.7, 7)
    assert profile("quick").dataset in ("mnist1d", "digits")


def test_profile_env_and_overrides(monkeypatch):
    monkeypatch.setenv("MIAKIT_PROFILE", "smoke")
    assert profile() == E.PROFILES["smoke"]
    cfg = profile("smoke", sparsity=0.5, **{"train.epochs": 3})
    assert cfg.sparsity == 0.5 and cfg.train.epochs == 3
    assert cfg.train.patience == E.PROFILES["smoke"].train.patience


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"dataset": "imagenet"}, "unknown dataset 'imagenet'"),
        ({"arch": "resnet9000"}, "unknown model 'resnet9000'"),
        ({"sparsity": 1.0}, "sparsity must be a number in"),
        ({"sparsity": -0.1}, "sparsity must be a number in"),
        ({"sparsity": "high"}, "sparsity must be a number in"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"seed": 1.5}, "seed must be a non-negative integer"),
        ({"num_shadows": 0}, "num_shadows"),
        ({"nonsense": 1}, "unknown setting 'nonsense'"),
        ({"train.nonsense": 1}, "unknown train setting"),
    ],
)
def test_bad_config_values_give_one_clear_error(overrides, match):
    with pytest.raises(ValueError, match=match):
        profile("smoke", **overrides)


def test_unknown_profile():
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        profile("fast")


def test_victim_is_trained_once_then_loaded(smoke, monkeypatch):
    calls = []
    real_fit = E.fit

    def counting_fit(*args, **kwargs):
        calls.append(1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(E, "fit", counting_fit)
    first = smoke.victim()
    again = Experiment(smoke.config, store=smoke.store, device="cpu").victim()
    assert len(calls) == 1
    for k, v in first.model.state_dict().items():
        assert (v == again.model.state_dict()[k]).all()
    assert first.info == again.info
    assert 0.0 <= first.info["train_acc"] <= 1.0


def test_roles_have_disjoint_members_and_distinct_seeds(smoke):
    train, dev, test = smoke.role_data("victim")
    s_train, _, _ = smoke.role_data("shadow0")
    assert len(train) == len(test) - (len(test) - len(train))  # sizes come from paper_splits
    assert smoke.roles() == ["victim", "shadow0", "shadow1"]
    assert len({smoke.role_seed(r) for r in smoke.roles()}) == 3
    with pytest.raises(ValueError, match="unknown role"):
        smoke.role_data("shadow7")
    assert len(s_train) > 0 and len(dev) > 0


def test_accuracy_table(smoke):
    table = smoke.accuracy_table()
    assert list(table["model"]) == ["victim", "shadow0", "shadow1"]
    assert ((table["gap"] - (table["train_acc"] - table["test_acc"])).abs() < 1e-12).all()


def test_parse_set():
    assert parse_set(["sparsity=0.5", "pruner=l1_structured", "train.epochs=3"]) == {
        "sparsity": 0.5,
        "pruner": "l1_structured",
        "train.epochs": 3,
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_set(["sparsity"])


def test_cli_reports_bad_input_in_one_line(capsys, tmp_path):
    rc = main(["run", "--profile", "smoke", "--cache", str(tmp_path), "--set", "sparsity=2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "sparsity must be a number in [0, 1)" in err[0]


def test_config_is_hashable_and_frozen():
    cfg = ExperimentConfig()
    assert hash(cfg) == hash(ExperimentConfig())
    with pytest.raises(AttributeError):
        cfg.sparsity = 0.1  # type: ignore[misc]
