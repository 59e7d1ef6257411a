"""Experiment config, profiles, and the cached pipeline.

An :class:`ExperimentConfig` is a frozen dataclass holding everything that
determines a result (dataset, split seed, architecture, training settings,
pruning, attack and defense settings). :func:`profile` returns the three
ready-made configs:

* ``smoke``: seconds on a CPU; what CI runs. ``digits`` + ``small_cnn``,
  two epochs, two shadows; every code path still runs.
* ``quick``: minutes on a laptop CPU on embedded data (``mnist1d`` + ``mlp``).
* ``paper``: PAPER.md's settings (CIFAR-10, DenseNet121, 100 epochs, five
  shadows, L1 unstructured at 0.7), meant for a CUDA GPU.

:class:`Experiment` is the cached pipeline: each artifact (victim, shadow,
pruned, defended model, attack signals) is computed on first request and
stored in the :class:`~miakit.store.Store` under a key derived from the part of
the config that produced it, so notebooks run in any order and a killed run
resumes.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from miakit import defenses
from miakit.attacks import (
    ATTACKS,
    AttackInputs,
    AttackScores,
    AttackSettings,
    ReferenceSignals,
    make_attack,
)
from miakit.data import DATASETS, Data, Splits, canonical_name, load_dataset, paper_splits
from miakit.defenses import DefenseParams, NoDefense, make_defense
from miakit.metrics import (
    AttackResult,
    divergence_stats,
    results_frame,
)
from miakit.models import ARCHS, build_model
from miakit.prune import PRUNERS, prune_model, restore_masks, sparsity_report
from miakit.store import Store, config_key
from miakit.train import (
    FitResult,
    TrainConfig,
    accuracy,
    fit,
    logits,
    resolve_device,
    sensitivity,
)

__all__ = [
    "ORIGINAL",
    "PROFILES",
    "Experiment",
    "ExperimentConfig",
    "TrainedModel",
    "Variant",
    "from_parameters",
    "profile",
]

#: Architectures small enough that one CPU thread beats several (see ``Experiment``).
TINY_ARCHS = frozenset({"mlp", "signal_cnn", "small_cnn", "fc"})

#: Bumped when a step's code changes what it produces, so stale cache entries are not reused.
STEP_VERSIONS = {"train": 3, "prune": 1, "signals": 1, "attack": 2}


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines an experiment's results.

    Attributes:
        dataset: a name from :data:`miakit.data.DATASETS`.
        arch: a name from :data:`miakit.models.ARCHS`.
        dataset_options: extra keyword options of the dataset loader, as
            ``(name, value)`` pairs (e.g. ``(("num_samples", 8000),)`` for mnist1d).
        split_seed: seed of the victim/shadow split (PAPER.md: 7).
        num_shadows: number of shadow models (PAPER.md: 5).
        seed: base seed of model initialisation and batch order; the victim
            uses ``seed``, shadow ``i`` uses ``seed + 1 + i``.
        train: training hyper-parameters of the victim and every shadow.
        finetune: post-pruning fine-tuning; ``None`` means ``train.halved()``
            (PAPER.md, "Pruning": half the epochs, same optimizer).
        pruner: pruning method (PAPER.md default: L1 unstructured).
        sparsity: requested sparsity (PAPER.md default: 0.7).
        sensitivity_m: Gaussian perturbations per sample for SAMIA's feature.
        sensitivity_eps: perturbation scale for SAMIA's feature.
        attack_epochs: epochs of the neural attack models (PAPER.md: 100).
        attack_lr: initial SGD learning rate of the neural attack models (PAPER.md:
            1e-3). Profiles with few attack epochs use a larger rate: at 1e-3 the
            attack MLP is still underfitted after 10 epochs on 18k shadow samples
            (quick profile: NN AUC 0.61 at 1e-3 vs 0.67 at 1e-2; SAMIA 0.79 either way).
        defense_lambda: PPB's lambda (PAPER.md default: 4).
    """

    dataset: str = "mnist1d"
    arch: str = "mlp"
    dataset_options: tuple[tuple[str, Any], ...] = ()
    split_seed: int = 7
    num_shadows: int = 5
    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    finetune: TrainConfig | None = None
    pruner: str = "l1_unstructured"
    sparsity: float = 0.7
    sensitivity_m: int = 10
    sensitivity_eps: float = 1e-3
    attack_epochs: int = 100
    attack_lr: float = 1e-3
    defense_lambda: float = 4.0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "dataset", canonical_name(self.dataset))
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown dataset {self.dataset!r}; known datasets: {', '.join(sorted(DATASETS))}"
            ) from None
        if self.pruner not in PRUNERS:
            raise ValueError(
                f"unknown pruning method {self.pruner!r}; known methods: {', '.join(PRUNERS)}"
            )
        if self.arch not in ARCHS:
            raise ValueError(
                f"unknown model {self.arch!r}; known models: {', '.join(sorted(ARCHS))}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if (
            isinstance(self.split_seed, bool)
            or not isinstance(self.split_seed, int)
            or self.split_seed < 0
        ):
            raise ValueError(f"split_seed must be a non-negative integer, got {self.split_seed!r}")
        if not isinstance(self.num_shadows, int) or self.num_shadows < 1:
            raise ValueError(f"num_shadows must be an integer >= 1, got {self.num_shadows!r}")
        s = self.sparsity
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= float(s) < 1.0:
            raise ValueError(
                f"sparsity must be a number in [0, 1) (the fraction of weights removed), got {s!r}"
            )
        if self.sensitivity_m < 1 or not self.sensitivity_eps > 0:
            raise ValueError("sensitivity_m must be >= 1 and sensitivity_eps > 0")
        if self.attack_epochs < 1:
            raise ValueError(f"attack_epochs must be >= 1, got {self.attack_epochs}")
        if not self.attack_lr > 0:
            raise ValueError(f"attack_lr must be > 0, got {self.attack_lr}")

    @property
    def finetune_config(self) -> TrainConfig:
        """The fine-tuning schedule actually used (``finetune`` or ``train.halved()``)."""
        return self.finetune if self.finetune is not None else self.train.halved()

    def with_overrides(self, **overrides: Any) -> ExperimentConfig:
        """A copy with fields replaced; ``train.epochs=3`` style keys reach nested configs."""
        top: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        names = {f.name for f in fields(self)}
        for key, value in overrides.items():
            head, _, tail = key.partition(".")
            if head not in names:
                raise ValueError(
                    f"unknown setting {key!r}; settings are: {', '.join(sorted(names))} "
                    "(nested: train.<field>, finetune.<field>)"
                )
            if tail:
                nested.setdefault(head, {})[tail] = value
            else:
                top[head] = value
        for head, values in nested.items():
            base = top.get(head, getattr(self, head))
            if base is None and head == "finetune":
                base = self.finetune_config
            if not isinstance(base, TrainConfig):
                raise ValueError(f"{head!r} has no nested settings")
            valid = {f.name for f in fields(TrainConfig)}
            bad = set(values) - valid
            if bad:
                raise ValueError(f"unknown {head} setting(s) {sorted(bad)}; valid: {sorted(valid)}")
            top[head] = replace(base, **values)
        return replace(self, **top)


PROFILES: dict[str, ExperimentConfig] = {
    "smoke": ExperimentConfig(
        dataset="digits",
        arch="small_cnn",
        num_shadows=2,
        train=TrainConfig(epochs=2, patience=0),
        sensitivity_m=2,
        attack_epochs=2,
        attack_lr=1e-2,
    ),
    "quick": ExperimentConfig(
        dataset="mnist1d",
        arch="mlp",
        dataset_options=(("num_samples", 8000),),
        num_shadows=5,
        train=TrainConfig(epochs=60, patience=10),
        attack_epochs=10,
        attack_lr=1e-2,
    ),
    "paper": ExperimentConfig(
        dataset="cifar10",
        arch="densenet121",
        num_shadows=5,
        train=TrainConfig(epochs=100, patience=5),
        attack_epochs=100,
    ),
}


def profile(name: str | None = None, **overrides: Any) -> ExperimentConfig:
    """The config of a named profile, with optional overrides.

    Args:
        name: ``"smoke"``, ``"quick"`` or ``"paper"``; ``None`` reads the
            ``MIAKIT_PROFILE`` environment variable (default ``"quick"``).
        **overrides: fields to replace, e.g. ``sparsity=0.5`` or ``**{"train.epochs": 3}``.
    """
    name = name or os.environ.get("MIAKIT_PROFILE", "quick")
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)}")
    cfg = PROFILES[name]
    return cfg.with_overrides(**overrides) if overrides else cfg


@dataclass(frozen=True)
class Variant:
    """Which version of a model: the original, or pruned (and maybe defended).

    Attributes:
        pruner: pruning method, or ``None`` for the original (unpruned) model.
        sparsity: requested sparsity (ignored for the original).
        defense: the defense used during post-pruning fine-tuning, validated options
            included (:class:`~miakit.defenses.NoDefense`: plain fine-tuning with early
            stopping, the undefended pruned model; build others with
            :func:`~miakit.defenses.make_defense`).
    """

    pruner: str | None = None
    sparsity: float = 0.0
    defense: DefenseParams = NoDefense()

    def __post_init__(self) -> None:
        if not isinstance(self.defense, DefenseParams):
            raise TypeError(
                f"Variant.defense must be a DefenseParams such as PPBParams(lam=4.0), got "
                f"{self.defense!r}; use make_defense(name, **options) or "
                "Experiment.variant(defense=name, **options)"
            )
        if self.pruner is None:
            if self.defense.name != "none":
                raise ValueError("a defense applies to post-pruning fine-tuning: give a pruner")
            object.__setattr__(self, "sparsity", 0.0)
            return
        if self.pruner not in PRUNERS:
            raise ValueError(
                f"unknown pruning method {self.pruner!r}; known methods: {', '.join(PRUNERS)}"
            )

    @property
    def is_original(self) -> bool:
        return self.pruner is None

    @property
    def label(self) -> str:
        """Short name for tables: ``original``, ``l1_unstructured@0.7``, ``...+ppb(lam=4.0)``."""
        if self.pruner is None:
            return "original"
        out = f"{self.pruner}@{self.sparsity:g}"
        if self.defense.name != "none":
            params = sorted(self.defense.params().items())
            args = ",".join(f"{k}={v}" for k, v in params if v is not None)
            out += f"+{self.defense.name}({args})"
        return out


ORIGINAL = Variant()


@dataclass
class TrainedModel:
    """A model with what the cache recorded about it (accuracies, fit history)."""

    role: str
    model: nn.Module
    info: dict[str, Any]


class Experiment:
    """The cached pipeline for one :class:`ExperimentConfig`.

    Args:
        config: the experiment.
        store: artifact cache; default :class:`~miakit.store.Store` at ``MIAKIT_CACHE``.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``; not part
            of any cache key.
        data_root: where downloadable datasets live (``MIAKIT_DATA`` by default).
        progress: show progress bars.
        threads: CPU threads for torch while training and evaluating the victim
            and shadows. ``"auto"`` uses one thread for the tiny embedded-data
            models on a CPU (their matrices are too small for intra-op
            parallelism to pay: the smoke profile ran 3x faster on one thread
            than on two) and torch's default otherwise; an int sets it; ``None``
            leaves it alone. Attack models train with torch's default.

    Example:
        >>> exp = Experiment(profile("quick"))            # doctest: +SKIP
        >>> exp.accuracy_table()                          # doctest: +SKIP
    """

    def __init__(
        self,
        config: ExperimentConfig,
        *,
        store: Store | None = None,
        device: str | torch.device | None = "auto",
        data_root: str | Path | None = None,
        progress: bool = False,
        threads: int | str | None = "auto",
    ) -> None:
        self.config = config
        self.store = store or Store()
        self.device = resolve_device(device)
        self.data_root = data_root
        self.progress = progress
        if threads == "auto":
            threads = 1 if self.device.type == "cpu" and config.arch in TINY_ARCHS else None
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be 'auto', None or an int >= 1, got {threads!r}")
        self.threads = threads
        self._fitted: dict[str, Any] = {}

    # -- data ------------------------------------------------------------------------------
    @cached_property
    def data(self) -> Data:
        """The dataset pool (train and test concatenated), on the CPU."""
        return load_dataset(
            self.config.dataset, self.data_root, **dict(self.config.dataset_options)
        )

    @cached_property
    def splits(self) -> Splits:
        """Victim and shadow splits (PAPER.md, "Data and splits")."""
        return paper_splits(
            len(self.data), seed=self.config.split_seed, num_shadows=self.config.num_shadows
        )

    def roles(self) -> list[str]:
        """``["victim", "shadow0", ...]``."""
        return ["victim"] + [f"shadow{i}" for i in range(self.config.num_shadows)]

    def _split(self, role: str):
        if role == "victim":
            return self.splits.victim
        if role.startswith("shadow") and role[6:].isdigit():
            i = int(role[6:])
            if i < len(self.splits.shadows):
                return self.splits.shadows[i]
        raise ValueError(f"unknown role {role!r}; roles are {self.roles()}")

    def role_data(self, role: str) -> tuple[Data, Data, Data]:
        """``(train, dev, test)`` data of a role (members = train, non-members = test)."""
        s = self._split(role)
        return self.data.subset(s.train), self.data.subset(s.dev), self.data.subset(s.test)

    def role_seed(self, role: str) -> int:
        """Init/batch-order seed: victim ``seed``, shadow ``i`` ``seed + 1 + i``."""
        return self.config.seed if role == "victim" else self.config.seed + 1 + int(role[6:])

    # -- keys ------------------------------------------------------------------------------
    def _base_key(self, role: str) -> dict[str, Any]:
        c = self.config
        return {
            "dataset": c.dataset,
            "dataset_options": c.dataset_options,
            "split_seed": c.split_seed,
            "num_shadows": c.num_shadows if role != "victim" else None,
            "arch": c.arch,
            "role": role,
            "seed": self.role_seed(role),
            "train": replace(c.train, seed=self.role_seed(role)),
            "version": STEP_VERSIONS["train"],
        }

    def new_model(self) -> nn.Module:
        """A freshly initialised network of the configured architecture."""
        info = DATASETS[self.config.dataset]
        shape = tuple(self.data.x.shape[1:]) if "data" in self.__dict__ else info.input_shape
        return build_model(self.config.arch, info.num_classes, tuple(shape))

    # -- trained models ----------------------------------------------------------------------
    def trained(self, role: str) -> TrainedModel:
        """The victim or a shadow, trained once and then loaded from the cache."""
        with _num_threads(self.threads):
            return self._trained(role)

    def _trained(self, role: str) -> TrainedModel:
        key = self._base_key(role)
        if not self.store.has("model", key):
            train, dev, test = self.role_data(role)
            seed = self.role_seed(role)
            torch.manual_seed(seed)
            model = self.new_model()  # initialised under the role's seed
            result: FitResult = fit(
                model,
                train,
                dev,
                replace(self.config.train, seed=seed),
                device=self.device,
                progress=self.progress,
                checkpoint=self.store.scratch("model", key, "ckpt"),
                desc=f"train {role}",
            )
            info = {
                "best_epoch": result.best_epoch,
                "epochs_run": result.epochs_run,
                "best_dev_acc": result.best_dev_acc,
                "train_acc": accuracy(model, train, device=self.device),
                "test_acc": accuracy(model, test, device=self.device),
                "history": [list(h.values()) for h in result.history],
            }
            self.store.save_model("model", key, model.cpu(), info)
        else:
            model = self.new_model()
        info = self.store.load_model("model", key, model)  # verified round trip either way
        return TrainedModel(role, model.to(self.device).eval(), info)

    def victim(self) -> TrainedModel:
        """The victim model (trained on the victim split's train part)."""
        return self.trained("victim")

    def shadows(self) -> list[TrainedModel]:
        """All shadow models, each trained on its own re-split of the shadow half."""
        return [self.trained(f"shadow{i}") for i in range(self.config.num_shadows)]

    # -- pruned and defended models -------------------------------------------------------
    def variant(
        self,
        pruner: str | None = None,
        sparsity: float | None = None,
        defense: str | DefenseParams = "none",
        **options: Any,
    ) -> Variant:
        """A pruned :class:`Variant` with the config's pruner/sparsity as defaults.

        ``defense`` is a name of :data:`~miakit.defenses.DEFENSES` with its ``options``
        (defaults from the defense's dataclass: ``defense="ppb"`` is lambda 4), or a
        ready :class:`~miakit.defenses.DefenseParams`.
        """
        if isinstance(defense, DefenseParams):
            if options:
                raise ValueError(
                    f"options {sorted(options)} given with a ready {defense!r}; "
                    "put them in the DefenseParams instead"
                )
            params = defense
        else:
            params = make_defense(defense, **options)
        return Variant(
            pruner or self.config.pruner,
            self.config.sparsity if sparsity is None else sparsity,
            params,
        )

    def _variant_key(self, role: str, variant: Variant) -> dict[str, Any]:
        return {
            "base": self._base_key(role),
            "pruner": variant.pruner,
            "sparsity": variant.sparsity,
            # the shape hashed before defenses were dataclasses: name + sorted options
            "defense": variant.defense.name,
            "defense_params": tuple(sorted(variant.defense.params().items())),
            "finetune": replace(self.config.finetune_config, seed=self.role_seed(role)),
            "version": STEP_VERSIONS["prune"],
        }

    def model(self, role: str, variant: Variant = ORIGINAL) -> TrainedModel:
        """A role's model in a variant: original, or pruned + fine-tuned (+ defended).

        PAPER.md, "Pruning": one-shot prune of the best checkpoint, then fine-tune
        for half the training epochs with the same optimizer and early stopping;
        every shadow is pruned the same way on its own shadow-train split.
        """
        if variant.is_original:
            return self.trained(role)
        with _num_threads(self.threads):
            return self._pruned(role, variant)

    def _pruned(self, role: str, variant: Variant) -> TrainedModel:
        key = self._variant_key(role, variant)
        if not self.store.has("model", key):
            base = self.trained(role)
            model = copy.deepcopy(base.model)
            prune_model(model, variant.pruner, variant.sparsity)
            train, dev, test = self.role_data(role)
            result = defenses.finetune(
                model,
                train,
                dev,
                replace(self.config.finetune_config, seed=self.role_seed(role)),
                variant.defense,
                device=self.device,
                progress=self.progress,
            )
            model = result.model if result.model is not None else model
            report = sparsity_report(model, tuple(self.data.x.shape[1:]))
            info = {
                "train_acc": accuracy(model, train, device=self.device),
                "test_acc": accuracy(model, test, device=self.device),
                "sparsity": report.sparsity,
                "sparsity_all": report.sparsity_all,
                "macs_fraction": report.macs_fraction,
                **{f"defense_{k}": v for k, v in result.record().items()},
            }
            self.store.save_model("model", key, model.cpu(), info)
        tensors, info = self.store.load_tensors("model", key)
        model = variant.defense.rebuild(self.new_model())
        restore_masks(model, tensors)
        model.load_state_dict(tensors)
        return TrainedModel(role, model.to(self.device).eval(), info)

    # -- attack signals -------------------------------------------------------------------
    def _sample_set(self, role: str, samples: str) -> np.ndarray:
        """Pool indices of a named sample set.

        ``"own"``: the role's members (train) then non-members (test), the set its
        attacks are fitted or evaluated on. ``"victim"``: the victim's members and
        non-members; ``"population"``: the victim's dev split (non-members of every
        model), RMIA's population.
        """
        if samples == "own":
            s = self._split(role)
        elif samples == "victim":
            s = self.splits.victim
        elif samples == "population":
            return self.splits.victim.dev
        else:
            raise ValueError(f"unknown sample set {samples!r}; use 'own', 'victim' or 'population'")
        return np.concatenate([s.train, s.test])

    def signals(self, role: str, variant: Variant = ORIGINAL, samples: str = "own") -> AttackInputs:
        """Posteriors, logits, labels and sensitivity of a model on a sample set (cached).

        Computed once per (model, sample set); every attack reads them.
        Sensitivity follows PAPER.md, "SAMIA" (m perturbations of scale eps).
        ``membership`` is 1 where the sample is in the training set of THIS role's
        model, by the role's own split, for every sample set: a shadow's signals
        on the victim's samples are all OUT.
        """
        c = self.config
        key = {
            "model": self._model_key(role, variant),
            "samples": samples,
            "m": c.sensitivity_m,
            "eps": c.sensitivity_eps,
            "version": STEP_VERSIONS["signals"],
        }
        idx = self._sample_set(role, samples)
        membership = np.isin(idx, self._split(role).train).astype(np.int64)

        def create() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            model = self.model(role, variant).model
            x = self.data.x[torch.as_tensor(idx)]
            out = logits(model, x, device=self.device)
            sens = sensitivity(
                model,
                x,
                m=c.sensitivity_m,
                eps=c.sensitivity_eps,
                seed=c.seed,
                device=self.device,
            )
            return {"logits": out, "sensitivity": sens}, {}

        with _num_threads(self.threads):
            tensors, _ = self.store.get_or_create("signals", key, create)
        out = tensors["logits"].double()
        return AttackInputs(
            posteriors=out.softmax(1).numpy(),
            labels=self.data.y[torch.as_tensor(idx)].numpy().astype(np.int64),
            sensitivity=tensors["sensitivity"].double().numpy(),
            membership=membership,
            logits=out.numpy(),
            sample_ids=idx,
        )

    def shadow_signals(self, variant: Variant = ORIGINAL) -> AttackInputs:
        """All shadows' signals on their own members and non-members, pooled."""
        roles = self.roles()[1:]
        return AttackInputs.concat([self.signals(r, variant) for r in roles])

    def references(
        self, victim: Variant = ORIGINAL, shadows: Variant | None = None
    ) -> ReferenceSignals:
        """The shadows (as reference models) on the victim's samples and on the population.

        LiRA's and RMIA's input (samples x models): each shadow's signals on the
        victim's members and non-members (``is_in`` from the shadow's own split),
        each shadow's and the victim's ``p_y`` on the population (the victim's dev
        split, non-members of every model).
        """
        shadows = victim if shadows is None else shadows
        roles = self.roles()[1:]
        return ReferenceSignals.from_inputs(
            [self.signals(r, shadows, "victim") for r in roles],
            [self.signals(r, shadows, "population") for r in roles],
            self.signals("victim", victim, "population"),
        )

    # -- attacks --------------------------------------------------------------------------
    @cached_property
    def attack_settings(self) -> AttackSettings:
        """The neural attacks' training settings, from the config (device: the experiment's)."""
        c = self.config
        return AttackSettings(
            epochs=c.attack_epochs, lr=c.attack_lr, seed=c.seed, device=self.device
        )

    def attack_scores(
        self,
        name: str,
        victim: Variant = ORIGINAL,
        shadows: Variant | None = None,
        **options: Any,
    ) -> AttackScores:
        """Run one attack against the victim; return its per-sample scores (cached).

        Args:
            name: a key of :data:`miakit.attacks.ATTACKS`.
            victim: the victim's variant (original, pruned, defended).
            shadows: the shadows' variant; default the victim's (PAPER.md, "SAMIA":
                shadows pruned with the victim's method and sparsity). A different
                variant models an adversary who knows less (mismatched method or
                sparsity) or a non-adaptive attack on a defended victim.
            **options: attack options (e.g. ``use_sensitivity=False`` for SAMIA).
        """
        if name not in ATTACKS:
            raise ValueError(f"unknown attack {name!r}; known attacks: {', '.join(ATTACKS)}")
        shadows = victim if shadows is None else shadows
        target = self.signals("victim", victim)
        key = {
            "victim": self._model_key("victim", victim),
            "fitted": self._fitted_key(name, victim, shadows, options),
            "version": STEP_VERSIONS["attack"],
        }

        def create() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            scores = self._fitted_attack(name, victim, shadows, options).score(target)
            return {"scores": torch.from_numpy(scores.scores)}, {"threshold": scores.threshold}

        tensors, info = self.store.get_or_create("attack", key, create)
        return AttackScores(
            attack=name,
            scores=tensors["scores"].numpy(),
            threshold=float(info["threshold"]),
            membership=target.membership,
            labels=target.labels,
            sample_ids=target.sample_ids,
            columns={"victim": victim.label, "shadows": shadows.label},
        )

    def _fitted_key(
        self, name: str, victim: Variant, shadows: Variant, options: dict[str, Any]
    ) -> dict[str, Any]:
        """What a fitted attack depends on: its inputs as its ``uses`` declares, and settings."""
        uses = ATTACKS[name].uses
        key: dict[str, Any] = {
            "attack": name,
            "options": sorted(options.items()),
            "settings": self.attack_settings.key(),
            "m": self.config.sensitivity_m,
            "eps": self.config.sensitivity_eps,
            "version": STEP_VERSIONS["attack"],
        }
        if uses:
            key["shadows"] = {r: self._model_key(r, shadows) for r in self.roles()[1:]}
        if "references" in uses:  # the population ratios read the victim's signals
            key["victim"] = self._model_key("victim", victim)
        return key

    def _fitted_attack(
        self, name: str, victim: Variant, shadows: Variant, options: dict[str, Any]
    ) -> Any:
        """An attack fitted once on what its ``uses`` declares; one fit serves every target.

        An attack with ``persist = True`` (the neural ones) stores its ``state()``
        in the cache (tensors only, safetensors), so another notebook attacking a
        different victim with the same shadows reloads it instead of retraining.
        """
        key = self._fitted_key(name, victim, shadows, options)
        memo = config_key("fitted", key)
        if memo in self._fitted:
            return self._fitted[memo]
        cls = ATTACKS[name]
        if cls.persist and self.store.has("attack_model", key):
            tensors, meta = self.store.load_tensors("attack_model", key)
            attack = cls.from_state(tensors, meta, self.attack_settings, **options)
        else:
            attack = make_attack(name, settings=self.attack_settings, **options)
            attack.fit(
                self.shadow_signals(shadows) if "shadows" in cls.uses else None,
                self.references(victim, shadows) if "references" in cls.uses else None,
            )
            if cls.persist:
                tensors, meta = attack.state()
                self.store.save_tensors("attack_model", key, tensors, meta)
        self._fitted[memo] = attack
        return attack

    def _model_key(self, role: str, variant: Variant) -> dict[str, Any]:
        return self._base_key(role) if variant.is_original else self._variant_key(role, variant)

    def attack(
        self,
        name: str,
        victim: Variant = ORIGINAL,
        shadows: Variant | None = None,
        **options: Any,
    ) -> AttackResult:
        """One attack's metrics against the victim (see :meth:`attack_scores`)."""
        return self.attack_scores(name, victim, shadows, **options).result()

    def attack_table(
        self,
        victim: Variant = ORIGINAL,
        shadows: Variant | None = None,
        attacks: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Every attack against one victim variant: a tidy DataFrame, one row per attack."""
        names = list(attacks) if attacks is not None else list(ATTACKS)
        return results_frame([self.attack(n, victim, shadows) for n in names])

    def model_row(self, role: str, variant: Variant = ORIGINAL) -> dict[str, Any]:
        """Accuracy (and sparsity, defense) of one model as a table row."""
        info = self.model(role, variant).info
        return {
            "model": role,
            "variant": variant.label,
            "train_acc": info["train_acc"],
            "test_acc": info["test_acc"],
            "gap": info["train_acc"] - info["test_acc"],
            "sparsity": info.get("sparsity", 0.0),
            "epsilon": info.get("defense_epsilon"),
        }

    # -- prediction divergence ------------------------------------------------------------
    def divergence(self, variant: Variant = ORIGINAL, role: str = "victim") -> pd.DataFrame:
        """Per-sample ground-truth-class confidence and sensitivity, members vs non-members.

        PAPER.md, "Prediction divergence (the analysis)": the signals behind the
        histograms. One row per sample: ``membership``, ``label``, ``confidence``
        (p_y), ``sensitivity`` (s_y), ``variant``.
        """
        sig = self.signals(role, variant)
        rows = np.arange(sig.num_samples)
        return pd.DataFrame(
            {
                "variant": variant.label,
                "membership": sig.membership,
                "label": sig.labels,
                "confidence": sig.posteriors[rows, sig.labels],
                "sensitivity": sig.sensitivity[rows, sig.labels],
            }
        )

    def class_gaps(self, variants: Sequence[Variant], signal: str = "confidence") -> pd.DataFrame:
        """Per-class member - non-member mean of a signal, one column per variant.

        PAPER.md, "Prediction divergence": the per-class gap bar charts.
        """
        out = None
        for v in variants:
            d = self.divergence(v)
            stats = divergence_stats(d[signal].to_numpy(), d["membership"], d["label"])
            col = stats[["class", "gap"]].rename(columns={"gap": v.label})
            out = col if out is None else out.merge(col, on="class")
        return out

    # -- tables ----------------------------------------------------------------------------
    def accuracy_table(self) -> pd.DataFrame:
        """Train/test accuracy and their gap for the victim and every shadow (one row each)."""
        rows = []
        for role in self.roles():
            info = self.trained(role).info
            rows.append(
                {
                    "model": role,
                    "train_acc": info["train_acc"],
                    "test_acc": info["test_acc"],
                    "gap": info["train_acc"] - info["test_acc"],
                    "best_epoch": info["best_epoch"],
                }
            )
        return pd.DataFrame(rows)

    def variants_table(self, variants: Sequence[Variant]) -> pd.DataFrame:
        """Train/test accuracy and sparsity of the victim and shadows in each variant."""
        return pd.DataFrame([self.model_row(r, v) for v in variants for r in self.roles()])

    def describe(self) -> dict[str, Any]:
        """The config as a plain dict (for notebook headers and result tables)."""
        return asdict(self.config)


@contextlib.contextmanager
def _num_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` torch CPU threads (``None``: unchanged), then restore."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def from_parameters(
    profile_name: str | None = None,
    *,
    dataset: str | None = None,
    arch: str | None = None,
    pruner: str | None = None,
    sparsity: float | None = None,
    seed: int | None = None,
    device: str = "auto",
    store: Store | None = None,
    progress: bool = False,
    **overrides: Any,
) -> Experiment:
    """The :class:`Experiment` of a notebook's ``parameters`` cell.

    Values left at ``None`` come from the profile (``profile_name``, else
    ``MIAKIT_PROFILE``, else ``quick``); the rest override it. This is the
    "resolve" step that follows each notebook's parameters cell. Overrides
    given to ``miakit run --set key=value`` reach the notebooks through the
    ``MIAKIT_SET`` environment variable (a JSON object), applied first.
    """
    env = os.environ.get("MIAKIT_SET")
    if env:
        try:
            from_env = json.loads(env)
        except json.JSONDecodeError as err:
            raise ValueError(f"MIAKIT_SET must be a JSON object of settings: {err}") from None
        overrides = {**from_env, **{k: v for k, v in overrides.items() if v is not None}}
    named = {"dataset": dataset, "arch": arch, "pruner": pruner, "sparsity": sparsity, "seed": seed}
    given = {k: v for k, v in overrides.items() if v is not None}
    given.update({k: v for k, v in named.items() if v is not None})
    if "dataset" in given and given["dataset"] != profile(profile_name).dataset:
        given.setdefault("dataset_options", ())
    return Experiment(profile(profile_name, **given), store=store, device=device, progress=progress)
