"""Cache keys are complete by construction (issue 10, item 1).

The pipeline runs once on the smoke profile with a config that reports every field a
step's computation reads (:class:`miakit.steps.StepTrace`). From that measurement alone
(what each step read, which artifacts it consumed) the test derives, for every config
field, which artifacts depend on it; changing the field must give new keys to exactly
those artifacts: a stale hit (a dependent key unchanged) and a needless recompute (an
independent key changed) both fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

import pytest

from miakit.config import ExperimentConfig
from miakit.experiment import ORIGINAL, Experiment, Variant, profile
from miakit.steps import StepTrace
from miakit.store import Store, config_key
from miakit.train import TrainConfig

BASE = profile(
    "smoke",
    **{
        "train.epochs": 1,
        "attack_epochs": 1,
        "sensitivity_m": 1,
        "finetune": TrainConfig(epochs=1),
    },
)
PRUNED = Variant("l1_unstructured", 0.5)
SLIMMED = Variant("slimming", 0.5)  # prunes the sparsity-trained model (slimming_lambda)

#: Derived config properties and the fields they read.
_DERIVED = {"finetune_config": ("train", "finetune")}


class ReportingConfig:
    """Wraps a config; every attribute read is reported to the trace."""

    def __init__(self, config: ExperimentConfig, trace: StepTrace) -> None:
        object.__setattr__(self, "_config", config)
        object.__setattr__(self, "_trace", trace)

    def __getattr__(self, name: str) -> Any:
        for field in _DERIVED.get(name, (name,)):
            self._trace.read(field)
        return getattr(self._config, name)


#: The artifacts checked: name -> (store kind, key of the artifact in an experiment).
ARTIFACTS: dict[str, Callable[[Experiment], tuple[str, dict]]] = {
    "victim model": lambda e: ("model", e._model_key("victim", ORIGINAL)),
    "shadow1 model": lambda e: ("model", e._model_key("shadow1", ORIGINAL)),
    "pruned victim": lambda e: ("model", e._model_key("victim", PRUNED)),
    "pruned shadow0": lambda e: ("model", e._model_key("shadow0", PRUNED)),
    "slimmed victim": lambda e: ("model", e._model_key("victim", SLIMMED)),
    "sparsity-trained victim": lambda e: ("model", e._base_key("victim", sparsity_trained=True)),
    "victim signals": lambda e: ("signals", e._signals_key("victim", ORIGINAL, "own")),
    "pruned shadow0 signals": lambda e: ("signals", e._signals_key("shadow0", PRUNED, "own")),
    "ref1 model": lambda e: ("model", e._model_key("ref1", ORIGINAL)),
    "pruned ref0 on victim samples": lambda e: (
        "signals",
        e._signals_key("ref0", PRUNED, "victim"),
    ),
    "lira_online fit": lambda e: ("fitted", e._fitted_key("lira_online", PRUNED, PRUNED, {})),
    "conf fit": lambda e: ("fitted", e._fitted_key("conf", PRUNED, PRUNED, {})),
    "samia fit": lambda e: ("attack_model", e._fitted_key("samia", PRUNED, PRUNED, {})),
    "lira fit": lambda e: ("fitted", e._fitted_key("lira", PRUNED, PRUNED, {})),
    "conf scores": lambda e: ("attack", e._attack_key("conf", PRUNED, PRUNED, {})),
    "samia scores": lambda e: ("attack", e._attack_key("samia", PRUNED, PRUNED, {})),
    "lira scores original": lambda e: ("attack", e._attack_key("lira", ORIGINAL, ORIGINAL, {})),
}

#: One other valid value per config field (nested ones as ``train.<field>``).
CHANGES: dict[str, dict[str, Any]] = {
    "dataset": {"dataset": "mnist1d"},
    "arch": {"arch": "mlp"},
    "dataset_options": {"dataset_options": (("num_samples", 500),)},
    "split_seed": {"split_seed": 8},
    "num_shadows": {"num_shadows": 3},
    "num_references": {"num_references": 2},
    "seed": {"seed": 1},
    "seeds": {"seeds": 2},
    "train": {"train.epochs": 2},
    "finetune": {"finetune.epochs": 2},
    "pruner": {"pruner": "l1_structured"},
    "sparsity": {"sparsity": 0.9},
    "slimming_lambda": {"slimming_lambda": 1e-3},
    "sensitivity_m": {"sensitivity_m": 3},
    "sensitivity_eps": {"sensitivity_eps": 0.01},
    "attack_epochs": {"attack_epochs": 3},
    "attack_lr": {"attack_lr": 0.5},
}


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """Run the traced pipeline once; return the trace and each artifact's digest."""
    exp = Experiment(BASE, store=Store(tmp_path_factory.mktemp("cache")), device="cpu")
    trace = StepTrace()
    exp.trace = trace
    exp.config = ReportingConfig(BASE, trace)  # type: ignore[assignment]
    exp.attack_scores("conf", PRUNED)
    exp.attack_scores("samia", PRUNED)
    exp.attack_scores("lira", ORIGINAL)
    exp.attack_scores("lira", PRUNED)  # its fit is measured too (scores not checked)
    exp.attack_scores("lira_online", PRUNED)  # the reference models, pruned
    exp.model("victim", SLIMMED)  # and its sparsity-trained base model
    digests = {name: config_key(*artifact(exp)) for name, artifact in ARTIFACTS.items()}
    return trace, digests


def _closure(trace: StepTrace, digest: str, seen: set[str] | None = None) -> set[str]:
    """The config fields an artifact depends on: its reads and its inputs' dependencies."""
    seen = set() if seen is None else seen
    if digest in seen:
        return set()
    seen.add(digest)
    out = set(trace.reads[digest])
    for child in trace.consumed[digest]:
        out |= _closure(trace, child, seen)
    return out


def test_every_config_field_has_a_change():
    assert set(CHANGES) == {f.name for f in fields(ExperimentConfig)}


def test_every_checked_artifact_was_computed_or_requested(measured):
    trace, digests = measured
    missing = [name for name, d in digests.items() if d not in trace.steps]
    assert not missing, f"the traced run never requested {missing}"
    # the trace saw real work: the victim's training read its data and schedule
    assert {"dataset", "train", "seed", "arch"} <= trace.reads[digests["victim model"]]


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_a_changed_field_rekeys_exactly_its_dependents(measured, field):
    trace, digests = measured
    changed = Experiment(BASE.with_overrides(**CHANGES[field]), store=Store("unused"), device="cpu")
    stale, needless = [], []
    for name, artifact in ARTIFACTS.items():
        depends = field in _closure(trace, digests[name])
        rekeyed = config_key(*artifact(changed)) != digests[name]
        if depends and not rekeyed:
            stale.append(name)
        if rekeyed and not depends:
            needless.append(name)
    assert not stale, f"{field} is read by {stale} but their keys did not change (stale hit)"
    assert not needless, f"{field} is not read by {needless} but their keys changed"


def test_more_shadows_reuse_the_existing_ones(measured):
    """``num_shadows=3`` on a 2-shadow cache keeps shadows 0-1 and re-keys the attacks."""
    _, digests = measured
    more = Experiment(BASE.with_overrides(num_shadows=3), store=Store("unused"), device="cpu")
    assert config_key(*ARTIFACTS["shadow1 model"](more)) == digests["shadow1 model"]
    assert config_key(*ARTIFACTS["conf scores"](more)) != digests["conf scores"]


def test_nested_seed_fields_are_rejected_not_ignored():
    with pytest.raises(ValueError, match="train.seed=3 is not used"):
        BASE.with_overrides(**{"train.seed": 3})
    assert replace(BASE, finetune=None).finetune_config.seed == 0


def test_a_third_shadow_is_trained_alone_and_changes_the_attack(tmp_path, monkeypatch):
    """The issue's probe: ``num_shadows=3`` on a 2-shadow cache trains the third shadow."""
    import miakit.steps

    store = Store(tmp_path)
    two = Experiment(BASE, store=store, device="cpu")
    before = two.attack_scores("conf", ORIGINAL)
    trained: list[int] = []
    real_fit = miakit.steps.fit

    def counting_fit(model, train, dev, cfg, **kwargs):
        trained.append(cfg.seed)
        return real_fit(model, train, dev, cfg, **kwargs)

    monkeypatch.setattr(miakit.steps, "fit", counting_fit)
    three = Experiment(BASE.with_overrides(num_shadows=3), store=store, device="cpu")
    after = three.attack_scores("conf", ORIGINAL)
    assert trained == [three.role_seed("shadow2")]
    assert after.threshold != before.threshold or not (after.scores == before.scores).all()
