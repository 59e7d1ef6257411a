"""Tests of the config, profiles, variants and the cached steps (config, variants, steps, cli)."""

from __future__ import annotations

import numpy as np
import pytest

import miakit.steps as S
from miakit import tables
from miakit.cli import main, parse_set
from miakit.config import PROFILES, grid, profile_names
from miakit.defenses import LAMBDAS, NOISE_MULTIPLIERS, THETAS
from miakit.experiment import Experiment, ExperimentConfig, profile
from miakit.prune import PRUNERS
from miakit.splits import split_sizes
from miakit.store import Store
from miakit.variants import ORIGINAL, Variant


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
    assert profile("quick").dataset == "mnist1d"
    assert profile("smoke").dataset == "digits"


def test_profile_env_and_overrides(monkeypatch):
    monkeypatch.setenv("MIAKIT_PROFILE", "smoke")
    assert profile() == PROFILES["smoke"].config
    cfg = profile("smoke", sparsity=0.5, **{"train.epochs": 3})
    assert cfg.sparsity == 0.5 and cfg.train.epochs == 3
    assert cfg.train.patience == PROFILES["smoke"].config.train.patience


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"dataset": "imagenet"}, "unknown dataset 'imagenet'"),
        ({"arch": "resnet9000"}, "unknown model 'resnet9000'"),
        ({"sparsity": 1.0}, "sparsity must be a number in"),
        ({"sparsity": -0.1}, "sparsity must be a number in"),
        ({"sparsity": "high"}, "sparsity must be a number in"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"seed": 1.5}, "seed=1.5 has the wrong type: expected an integer"),
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
    real_fit = S.fit

    def counting_fit(*args, **kwargs):
        calls.append(1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(S, "fit", counting_fit)
    first = smoke.victim()
    again = Experiment(smoke.config, store=smoke.store, device="cpu").victim()
    assert len(calls) == 1
    for k, v in first.model.state_dict().items():
        assert (v == again.model.state_dict()[k]).all()
    assert first.info == again.info
    assert 0.0 <= first.info["train_acc"] <= 1.0


def test_roles_have_disjoint_members_and_distinct_seeds(smoke):
    v = smoke.splits.victim
    train, dev, test = smoke.role_data("victim")
    # the victim's train, dev and test parts are pairwise disjoint
    assert not set(v.train) & set(v.dev) and not set(v.train) & set(v.test)
    assert not set(v.dev) & set(v.test)
    # and role_data returns exactly those samples (not, say, train twice)
    assert np.array_equal(test.y.numpy(), smoke.data.y[v.test].numpy())
    assert np.array_equal(train.y.numpy(), smoke.data.y[v.train].numpy())
    assert np.array_equal(dev.x.numpy(), smoke.data.x[v.dev].numpy())
    # no victim member or non-member is in any shadow's data
    for role, s in zip(smoke.roles()[1:], smoke.splits.shadows, strict=True):
        shadow_samples = set(s.train) | set(s.dev) | set(s.test)
        assert not shadow_samples & (set(v.train) | set(v.test)), role
        s_train, _, s_test = smoke.role_data(role)
        assert np.array_equal(s_test.y.numpy(), smoke.data.y[s.test].numpy())
        assert len(s_train) == len(s.train)
    sizes = split_sizes(len(smoke.data))
    assert (len(v.train), len(v.dev), len(v.test)) == sizes
    assert smoke.roles() == ["victim", "shadow0", "shadow1"]
    assert len({smoke.role_seed(r) for r in smoke.roles()}) == 3
    with pytest.raises(ValueError, match="unknown role"):
        smoke.role_data("shadow7")


def test_accuracy_table(smoke):
    table = tables.accuracy_table(smoke)
    seeds = [r.config.seed for r in smoke.replicates()]  # one block of roles per seed
    assert list(table["model"]) == ["victim", "shadow0", "shadow1"] * len(seeds)
    assert list(table["seed"]) == [s for s in seeds for _ in range(3)]
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


def test_grids_import_the_paper_lists_and_slice_them():
    assert grid("paper").lambdas is LAMBDAS and grid("paper").thetas is THETAS
    assert grid("paper").noise_multipliers is NOISE_MULTIPLIERS
    assert grid("quick").lambdas == LAMBDAS[::2] and grid("quick").thetas == THETAS[::2]
    assert set(grid("quick").pruners) == set(PRUNERS)
    assert profile_names() == tuple(PROFILES) == ("smoke", "quick", "paper")
    assert [d.name for d in grid("smoke").defenses()] == ["ppb", "advreg", "dpsgd"]


def test_bad_variant_fails_before_any_training(monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("a bad variant must fail before training")

    monkeypatch.setattr(S, "fit", no_training)
    for bad in (1.5, -0.1, True, "0.7"):
        with pytest.raises(ValueError, match="sparsity must be a number"):
            Variant("l1_unstructured", bad)
    with pytest.raises(ValueError, match="unknown pruning method"):
        Variant("magic", 0.5)


def test_variant_columns_are_real_columns():
    from miakit.defenses import PPBParams

    cols = Variant("l1_unstructured", 0.7, PPBParams(lam=2.0)).columns("victim")
    assert cols == {
        "victim_pruner": "l1_unstructured",
        "victim_sparsity": 0.7,
        "victim_defense": "ppb",
        "victim_defense_lam": 2.0,
    }
    assert ORIGINAL.columns("shadow")["shadow_pruner"] == "none"
