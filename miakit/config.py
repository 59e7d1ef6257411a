"""Experiment configs, the named profiles and each profile's sweep grid.

An :class:`ExperimentConfig` is a frozen dataclass holding everything that determines
a result (dataset, split seed, architecture, training, pruning and attack settings).
A :class:`Profile` pairs a config with the :class:`Grid` of values its notebooks sweep,
so a profile's settings and its sweeps live in one place:

* ``smoke``: seconds on a CPU; what CI runs. ``digits`` + ``small_cnn``, two epochs,
  two shadows; every code path still runs.
* ``quick``: minutes on a laptop CPU on embedded data (``mnist1d`` + ``mlp``).
* ``paper``: PAPER.md's settings (CIFAR-10, DenseNet121, 100 epochs, five shadows,
  L1 unstructured at 0.7) and its full sweeps, meant for a CUDA GPU.

The sweep values are never copied: :class:`Grid` imports the paper's lists
(``LAMBDAS``, ``THETAS``, ``NOISE_MULTIPLIERS``, ``PRUNERS``) and smaller profiles
slice them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from miakit._util import check_types
from miakit.attacks import ATTACKS, BASELINES
from miakit.data import DATASETS, canonical_name
from miakit.defenses import LAMBDAS, NOISE_MULTIPLIERS, THETAS, DefenseParams, make_defense
from miakit.models import ARCHS
from miakit.prune import PRUNERS, check_sparsity
from miakit.train import TrainConfig

__all__ = [
    "PROFILES",
    "SEED_STRIDE",
    "ParameterError",
    "ExperimentConfig",
    "Grid",
    "Profile",
    "grid",
    "profile",
    "profile_names",
]

#: The distance between replicates' base seeds (:meth:`ExperimentConfig.replicate`).
SEED_STRIDE = 1_000_000


class ParameterError(ValueError):
    """A notebook parameter or setting is invalid: shown as one line, also in Jupyter.

    IPython renders an exception through its ``_render_traceback_`` when it has one, so
    a notebook whose ``parameters`` cell holds a bad value shows one
    ``miakit: error:`` line instead of a traceback through the library.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"miakit: error: {self}"]


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
        num_references: number of reference models for LiRA and RMIA (beyond the paper;
            Carlini et al. 2022): reference ``i`` trains on a random half of the
            victim's candidates (:func:`miakit.splits.reference_split`), so online
            LiRA/RMIA have IN and OUT models for every target sample. ``0``: the
            shadows serve as (all-OUT) references, offline variants only.
        seed: base seed of model initialisation and batch order; the victim
            uses ``seed``, shadow ``i`` uses ``seed + 1 + i``.
        seeds: independent replicates of the whole pipeline (models, shadows, reference
            models, attack networks) that every table runs and every interval is taken
            over (:mod:`miakit.metrics.intervals`); replicate ``r`` is the config with
            ``seed + r * SEED_STRIDE`` (:meth:`replicate`), so replicate 0 is this
            config and shares its cache. Not part of any cache key. The paper reports
            one run (default 1).
        train: training hyper-parameters of the victim and every shadow.
        finetune: post-pruning fine-tuning; ``None`` means ``train.halved()``
            (PAPER.md, "Pruning": half the epochs, same optimizer).
        pruner: pruning method (PAPER.md default: L1 unstructured).
        sparsity: requested sparsity (PAPER.md default: 0.7).
        slimming_lambda: weight of network slimming's L1 penalty on BatchNorm ``gamma``
            (Liu et al. 2017: 1e-4), trained into the base model of every ``slimming``
            variant before it is pruned (victim and shadows alike; the other pruners
            keep the plain model), with Liu et al.'s SGD schedule and the penalty scaled
            to the same total pull as their runs (:func:`miakit.prune.sparsity_training`:
            under the paper's Adam over a few hundred steps no lambda made gamma sparse).
            ``0`` is the paper's variant (PAPER.md, "Pruning": the authors prune the
            normally trained model, with no L1-on-gamma phase), which can collapse a
            network: its global threshold removes whole layers (quick method comparison,
            slimming at 0.7: test accuracy 0.51 at 0, 0.92 at 1e-4).
        sensitivity_m: Gaussian perturbations per sample for SAMIA's feature.
        sensitivity_eps: perturbation scale for SAMIA's feature.
        attack_epochs: epochs of the neural attack models (PAPER.md: 100).
        attack_lr: initial SGD learning rate of the neural attack models (PAPER.md:
            1e-3). Profiles with few attack epochs use a larger rate: at 1e-3 the
            attack MLP is still underfitted after 10 epochs on 18k shadow samples
            (quick profile: NN AUC 0.61 at 1e-3 vs 0.67 at 1e-2; SAMIA 0.79 either way).
            The quick profile's 5 epochs at 2e-2 fit as well as 10 at 1e-2 in half the
            time (mnist1d with 8000 samples, victim pruned at 0.7, seed 0, AUC: NNCls
            0.796 and 0.796, SAMIA 0.796 and 0.796; 5 epochs at 1e-2: NNCls 0.780).
    """

    dataset: str = "mnist1d"
    arch: str = "mlp"
    dataset_options: tuple[tuple[str, Any], ...] = ()
    split_seed: int = 7
    num_shadows: int = 5
    num_references: int = 0
    seed: int = 0
    seeds: int = 1
    train: TrainConfig = field(default_factory=TrainConfig)
    finetune: TrainConfig | None = None
    pruner: str = "l1_unstructured"
    sparsity: float = 0.7
    slimming_lambda: float = 1e-4
    sensitivity_m: int = 10
    sensitivity_eps: float = 1e-3
    attack_epochs: int = 100
    attack_lr: float = 1e-3

    def __post_init__(self) -> None:
        if isinstance(self.dataset_options, Mapping):
            object.__setattr__(self, "dataset_options", tuple(sorted(self.dataset_options.items())))
        object.__setattr__(self, "sparsity", check_sparsity(self.sparsity))  # its own advice
        check_types(self)
        if not all(
            isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)
            for pair in self.dataset_options
        ):
            raise ValueError(
                f"dataset_options must be (name, value) pairs such as "
                f"(('num_samples', 4000),), got {self.dataset_options!r}"
            )
        for name in ("train", "finetune"):
            nested = getattr(self, name)
            if nested is not None and nested.seed != 0:
                raise ValueError(
                    f"{name}.seed={nested.seed} is not used: each role's training seed comes "
                    "from `seed` (victim seed, shadow i seed + 1 + i); set seed instead"
                )
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
        if self.seeds < 1:
            raise ValueError(f"seeds must be an integer >= 1 (replicates), got {self.seeds!r}")
        if self.num_shadows < 1:
            raise ValueError(f"num_shadows must be an integer >= 1, got {self.num_shadows!r}")
        if self.num_references < 0 or self.num_references == 1:
            raise ValueError(
                f"num_references must be 0 (the shadows serve as references) or >= 2 (IN "
                f"and OUT models per sample), got {self.num_references!r}"
            )
        object.__setattr__(self, "sparsity", check_sparsity(self.sparsity))
        if not (math.isfinite(self.slimming_lambda) and self.slimming_lambda >= 0):
            raise ValueError(
                f"slimming_lambda must be a finite number >= 0 (Liu et al.: 1e-4; 0: no "
                f"L1-on-gamma training, the paper's variant), got {self.slimming_lambda!r}"
            )
        if self.sensitivity_m < 1 or not self.sensitivity_eps > 0:
            raise ValueError("sensitivity_m must be >= 1 and sensitivity_eps > 0")
        if self.attack_epochs < 1:
            raise ValueError(f"attack_epochs must be >= 1, got {self.attack_epochs}")
        if not self.attack_lr > 0:
            raise ValueError(f"attack_lr must be > 0, got {self.attack_lr}")

    def replicate(self, r: int) -> ExperimentConfig:
        """Replicate ``r`` of the pipeline: this config with ``seed + r * SEED_STRIDE``.

        The stride keeps every replicate's role seeds (victim, shadows ``seed + 1 + i``,
        reference models ``seed + 100_000 + i``) apart from every other's.

        Raises:
            ValueError: ``r`` outside ``range(seeds)``.
        """
        if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r < self.seeds:
            raise ValueError(f"replicate must be in range({self.seeds}) (seeds), got {r!r}")
        return replace(self, seed=self.seed + r * SEED_STRIDE)

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


def _check_names(what: str, names: tuple[Any, ...], known: Any) -> None:
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f"unknown {what} {bad}; known: {', '.join(map(str, known))}")


@dataclass(frozen=True)
class Grid:
    """The sweep values a profile's notebooks use.

    Attributes:
        sparsities: sparsity levels swept (PAPER.md, "Pruning": roughly 0.5-0.9).
        attacks: attacks run at every sweep point (the cheap ones plus SAMIA; the full
            set runs on the default point in notebook 04).
        knowledge_sparsities: shadow sparsities of the adversary-knowledge grid.
        pruners: the pruning methods compared (default: all of ``PRUNERS``).
        lambdas, thetas, noise_multipliers: the defense settings (PAPER.md, "The
            defense"); defaults are the paper's full lists, imported, never copied.
        finetune_epochs: the fine-tune lengths of the leakage-vs-fine-tuning curve
            (:func:`miakit.finetune_curve.finetune_curve`, notebook 03; beyond the
            paper, issue 13), each an integer >= 1.
        methods: the method comparison's setting where the profile's model cannot take
            all four methods: ``(key, value)`` overrides of :meth:`ExperimentConfig.with_overrides`
            (:func:`miakit.sweep.methods_experiment`; empty: :func:`~miakit.sweep.methods_arch`).
            Quick, measured (1 seed): ``small_cnn`` on 7x7 ``mnist5k``, 30 epochs, no early
            stop: train/test 1.000/0.915, Conf AUC 0.590, LiRA 0.694, 88 s for four victims
            and shadows (14x14: 0.998/0.949, 0.596, 0.671, 279 s; mnist1d signal_cnn 0.50-0.60).
    """

    sparsities: tuple[float, ...]
    attacks: tuple[str, ...]
    knowledge_sparsities: tuple[float, ...]
    pruners: tuple[str, ...] = tuple(PRUNERS)
    lambdas: tuple[float, ...] = LAMBDAS
    thetas: tuple[float, ...] = THETAS
    noise_multipliers: tuple[float, ...] = NOISE_MULTIPLIERS
    finetune_epochs: tuple[int, ...] = (10, 25, 50)
    methods: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        ExperimentConfig().with_overrides(**dict(self.methods))  # a bad key fails here
        if not self.finetune_epochs or any(
            isinstance(e, bool) or not isinstance(e, int) or e < 1 for e in self.finetune_epochs
        ):
            raise ValueError(
                f"Grid.finetune_epochs must be fine-tune epoch counts, integers >= 1, got "
                f"{self.finetune_epochs!r}"
            )
        _check_names("pruning methods", self.pruners, PRUNERS)
        _check_names("attacks", self.attacks, ATTACKS)
        for name in ("sparsities", "knowledge_sparsities"):
            for s in getattr(self, name):
                check_sparsity(s)

    def defenses(self) -> list[DefenseParams]:
        """Every defense setting of the grid: PPB per lambda, AdvReg per theta, DP-SGD per sigma."""
        return (
            [make_defense("ppb", lam=lam) for lam in self.lambdas]
            + [make_defense("advreg", theta=theta) for theta in self.thetas]
            + [make_defense("dpsgd", noise_multiplier=s) for s in self.noise_multipliers]
        )


@dataclass(frozen=True)
class Profile:
    """A named, ready-made experiment: its config and the grid its notebooks sweep."""

    name: str
    config: ExperimentConfig
    grid: Grid


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "smoke",
            ExperimentConfig(
                dataset="digits",
                arch="small_cnn",
                num_shadows=2,
                num_references=4,
                seeds=2,
                train=TrainConfig(epochs=2, patience=0),
                sensitivity_m=2,
                attack_epochs=2,
                attack_lr=1e-2,
            ),
            Grid(
                sparsities=(0.5, 0.7),
                attacks=("conf", "mentr", "samia"),
                knowledge_sparsities=(0.5,),
                lambdas=LAMBDAS[2:3],
                thetas=THETAS[:1],
                noise_multipliers=NOISE_MULTIPLIERS[2:],
                finetune_epochs=(2,),
            ),
        ),
        Profile(
            "quick",
            ExperimentConfig(
                dataset="mnist1d",
                arch="mlp",
                dataset_options=(("num_samples", 4000),),
                num_shadows=5,
                num_references=16,
                seeds=3,
                train=TrainConfig(epochs=60, patience=10),
                attack_epochs=5,
                attack_lr=2e-2,
            ),
            Grid(
                sparsities=(0.5, 0.7, 0.9),
                attacks=("conf", "mentr", "nncls", "samia", "lira"),
                knowledge_sparsities=(0.5, 0.9),
                lambdas=LAMBDAS[::2],
                thetas=THETAS[::2],
                noise_multipliers=NOISE_MULTIPLIERS[1:],
                finetune_epochs=(5, 15, 30, 60),
                methods=(
                    ("dataset", "mnist5k"),
                    ("dataset_options", (("side", 7),)),
                    ("arch", "small_cnn"),
                    ("train.epochs", 30),
                    ("train.patience", 0),
                ),
            ),
        ),
        Profile(
            "paper",
            ExperimentConfig(
                dataset="cifar10",
                arch="densenet121",
                num_shadows=5,
                num_references=16,
                train=TrainConfig(epochs=100, patience=5),
                attack_epochs=100,
            ),
            Grid(
                sparsities=(0.5, 0.6, 0.7, 0.8, 0.9),
                attacks=(*BASELINES, "samia", "lira", "rmia"),
                knowledge_sparsities=(0.5, 0.6, 0.8, 0.9),
            ),
        ),
    )
}
"""The named profiles (DESIGN.md, "Profiles"); the only list of profile names."""


def profile_names() -> tuple[str, ...]:
    """The profile names, for command-line choices and error messages."""
    return tuple(PROFILES)


def _lookup(name: str | None) -> Profile:
    name = name or os.environ.get("MIAKIT_PROFILE", "quick")
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)}")
    return PROFILES[name]


def profile(name: str | None = None, **overrides: Any) -> ExperimentConfig:
    """The config of a named profile, with optional overrides.

    Args:
        name: ``"smoke"``, ``"quick"`` or ``"paper"``; ``None`` reads the
            ``MIAKIT_PROFILE`` environment variable (default ``"quick"``).
        **overrides: fields to replace, e.g. ``sparsity=0.5`` or ``**{"train.epochs": 3}``.
    """
    cfg = _lookup(name).config
    return cfg.with_overrides(**overrides) if overrides else cfg


def grid(name: str | None = None) -> Grid:
    """The :class:`Grid` of a named profile (``None``: ``MIAKIT_PROFILE``, default quick)."""
    return _lookup(name).grid
