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

import os
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from miakit.data import DATASETS, Data, Splits, load_dataset, paper_splits
from miakit.models import ARCHS, build_model
from miakit.store import Store
from miakit.train import FitResult, TrainConfig, accuracy, fit, resolve_device

__all__ = ["PROFILES", "Experiment", "ExperimentConfig", "TrainedModel", "profile"]

#: Bumped when a step's code changes what it produces, so stale cache entries are not reused.
STEP_VERSIONS = {"train": 1}


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
    defense_lambda: float = 4.0

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(
                f"unknown dataset {self.dataset!r}; known datasets: {', '.join(sorted(DATASETS))}"
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
    ),
    "quick": ExperimentConfig(
        dataset="mnist1d",
        arch="mlp",
        dataset_options=(("num_samples", 8000),),
        num_shadows=5,
        train=TrainConfig(epochs=60, patience=10),
        attack_epochs=30,
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
    ) -> None:
        self.config = config
        self.store = store or Store()
        self.device = resolve_device(device)
        self.data_root = data_root
        self.progress = progress

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
        key = self._base_key(role)
        model = self.new_model()
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
        info = self.store.load_model("model", key, model)
        return TrainedModel(role, model.to(self.device).eval(), info)

    def victim(self) -> TrainedModel:
        """The victim model (trained on the victim split's train part)."""
        return self.trained("victim")

    def shadows(self) -> list[TrainedModel]:
        """All shadow models, each trained on its own re-split of the shadow half."""
        return [self.trained(f"shadow{i}") for i in range(self.config.num_shadows)]

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

    def describe(self) -> dict[str, Any]:
        """The config as a plain dict (for notebook headers and result tables)."""
        return asdict(self.config)
