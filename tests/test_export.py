"""miakit.export and ``miakit signals``: the .npz a researcher takes to other tools (smoke)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from miakit.attacks import AttackInputs, ReferenceSignals
from miakit.attacks.lira import LiRA
from miakit.attacks.threshold import Conf
from miakit.cli import main
from miakit.experiment import Experiment, profile
from miakit.export import KEYS, export_signals, load_signals
from miakit.store import Store

ATTACKS = ("conf", "samia", "lira")


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("cache"))
    return Experiment(profile("smoke"), store=store, device="cpu")


@pytest.fixture(scope="module")
def exported(exp, tmp_path_factory):
    path = tmp_path_factory.mktemp("out") / "sub" / "signals.npz"
    assert export_signals(exp, path, exp.variant(), attacks=ATTACKS) == path
    return path, load_signals(path)


def test_keys_and_shapes(exp, exported):
    _, d = exported
    n = len(exp.splits.victim.train) + len(exp.splits.victim.test)
    m = sum(len(s.train) + len(s.test) for s in exp.splits.shadows)
    s, z, k = len(exp.attack_roles()), len(exp.splits.victim.dev), exp.data.num_classes
    r = exp.config.num_references
    shapes = {
        **{f"target_{x}": (n, k) for x in ("posteriors", "logits", "sensitivity")},
        **{f"target_{x}": (n,) for x in ("labels", "membership", "sample_ids")},
        **{f"shadow_{x}": (m, k) for x in ("posteriors", "logits", "sensitivity")},
        **{f"shadow_{x}": (m,) for x in ("labels", "membership", "sample_ids", "model")},
        "ref_sample_ids": (n,),
        "ref_p_y": (n, s),
        "ref_phi": (n, s),
        "ref_is_in": (n, s),
        "population_sample_ids": (z,),
        "population_p_y": (z, s),
        "target_population_p_y": (z,),
        **{f"refmodel_{x}": (n, r) for x in ("p_y", "phi", "is_in")},
        "refmodel_population_p_y": (z, r),
        **{f"scores_{a}": (n,) for a in ATTACKS},
        **{f"threshold_{a}": () for a in ATTACKS},
        "meta_json": (),
    }
    assert set(d) == set(shapes)
    assert {k.replace("<attack>", "conf") for k in KEYS} <= set(d)
    for key, shape in shapes.items():
        assert d[key].shape == shape, key
        assert d[key].dtype != object, key
    assert d["ref_is_in"].dtype == bool and not d["ref_is_in"].any()  # disjoint splits
    np.testing.assert_array_equal(d["ref_sample_ids"], d["target_sample_ids"])
    # the reference models: complementary halves, each target sample IN for exactly half
    np.testing.assert_array_equal(d["refmodel_is_in"].sum(1), np.full(n, r // 2))
    for i in range(r):
        trained = np.isin(d["target_sample_ids"], exp._split(f"ref{i}").train)
        np.testing.assert_array_equal(d["refmodel_is_in"][:, i], trained)
    np.testing.assert_array_equal(d["population_sample_ids"], exp.splits.victim.dev)


def test_loads_without_pickle_and_meta(exp, exported):
    path, _ = exported
    with np.load(path, allow_pickle=False) as raw:
        meta = json.loads(str(raw["meta_json"]))
        assert raw["meta_json"].dtype.kind == "U"
    assert meta["victim"]["label"] == exp.variant().label == meta["shadows"]["label"]
    assert meta["victim"]["pruner"] == exp.config.pruner
    assert meta["config"]["dataset"] == exp.config.dataset
    assert meta["config"]["train"]["epochs"] == exp.config.train.epochs
    assert meta["attacks"] == list(ATTACKS)
    assert meta["keys"] == KEYS and meta["miakit_version"]


def test_membership_follows_the_splits(exp, exported):
    _, d = exported
    v = exp.splits.victim
    ids = d["target_sample_ids"]
    np.testing.assert_array_equal(ids, np.concatenate([v.train, v.test]))
    np.testing.assert_array_equal(d["target_membership"], np.isin(ids, v.train).astype(int))
    assert d["target_membership"].sum() == len(v.train)
    np.testing.assert_array_equal(d["target_labels"], exp.data.y.numpy()[ids])
    for i, split in enumerate(exp.splits.shadows):
        rows = d["shadow_model"] == i
        np.testing.assert_array_equal(
            d["shadow_sample_ids"][rows], np.concatenate([split.train, split.test])
        )
        np.testing.assert_array_equal(
            d["shadow_membership"][rows], np.isin(d["shadow_sample_ids"][rows], split.train)
        )


def test_arrays_equal_the_experiments(exp, exported):
    _, d = exported
    pruned = exp.variant()
    for name in ATTACKS:
        scores = exp.attack_scores(name, pruned)
        np.testing.assert_array_equal(d[f"scores_{name}"], scores.scores)
        assert float(d[f"threshold_{name}"]) == scores.threshold
    target = exp.signals("victim", pruned)
    np.testing.assert_array_equal(d["target_posteriors"], target.posteriors)
    np.testing.assert_array_equal(d["target_sensitivity"], target.sensitivity)
    pooled = exp.shadow_signals(pruned)
    np.testing.assert_array_equal(d["shadow_logits"], pooled.logits)
    refs = exp.references(pruned)
    np.testing.assert_array_equal(d["ref_phi"], refs.phi)
    np.testing.assert_array_equal(d["population_p_y"], refs.population_p_y)
    # the victim was pruned: its signals differ from the original model's
    assert not np.array_equal(d["target_logits"], exp.signals("victim").logits)


def test_rescoring_from_the_file_gives_the_exported_scores(exported):
    """The round trip a user would do: fit Conf and LiRA on the file's arrays alone."""
    _, d = exported
    shadows = AttackInputs(
        posteriors=d["shadow_posteriors"],
        labels=d["shadow_labels"],
        membership=d["shadow_membership"],
    )
    target = AttackInputs(
        posteriors=d["target_posteriors"],
        labels=d["target_labels"],
        logits=d["target_logits"],
        sample_ids=d["target_sample_ids"],
    )
    conf = Conf().fit(shadows).score(target)
    np.testing.assert_array_equal(conf.scores, d["scores_conf"])
    assert conf.threshold == float(d["threshold_conf"])
    refs = ReferenceSignals(
        sample_ids=d["ref_sample_ids"],
        p_y=d["ref_p_y"],
        phi=d["ref_phi"],
        is_in=d["ref_is_in"],
        population_p_y=d["population_p_y"],
        target_population_p_y=d["target_population_p_y"],
    )
    np.testing.assert_array_equal(LiRA().fit(None, refs).score(target).scores, d["scores_lira"])


def test_unknown_attack_is_refused_before_any_work(exp, tmp_path):
    with pytest.raises(ValueError, match="unknown attack.*'magic'.*known attacks: gap"):
        export_signals(exp, tmp_path / "x.npz", attacks=["conf", "magic"])
    assert not (tmp_path / "x.npz").exists()


def _cli(exp, *args: str) -> list[str]:
    return [
        "signals",
        "--profile",
        "smoke",
        "--device",
        "cpu",
        "--cache",
        str(exp.store.root),
        "--quiet",
        *args,
    ]


def test_cli_writes_the_file(exp, exported, tmp_path, capsys):
    out = tmp_path / "cli.npz"
    assert main(_cli(exp, "--attacks", "conf,lira", "--out", str(out))) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and "conf, lira" in lines[0]
    n, m = len(exported[1]["target_labels"]), len(exported[1]["shadow_labels"])
    assert f"{n} target and {m} shadow samples" in lines[0]
    d = load_signals(out)
    assert {"scores_conf", "scores_lira"} <= set(d) and "scores_samia" not in d
    np.testing.assert_array_equal(d["scores_conf"], exported[1]["scores_conf"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--attacks", "conf,magic"), "unknown attack(s) 'magic'"),
        (("--defense", "prayer"), "unknown defense 'prayer'"),
        (("--defense", "ppb", "--option", "gamma=1"), "does not take option(s) ['gamma']"),
        (("--original", "--defense", "ppb"), "--original is the unpruned model; drop --defense"),
        (("--option", "lam"), "--option expects key=value"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(exp, tmp_path, capsys, args, message):
    out = tmp_path / "bad.npz"
    assert main(_cli(exp, *args, "--out", str(out))) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("miakit: error: ") and message in err[0], err
    assert not out.exists()
