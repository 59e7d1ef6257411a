"""The model steps of the cached pipeline: data, split, roles, train, prune, fine-tune/defend.

:class:`ModelSteps` is the half of :class:`~miakit.experiment.Experiment` that makes
models: the dataset pool and the paper's split (PAPER.md, "Data and splits"), each
role's seed, the victim and shadows (PAPER.md, "Models and training"), the reference
models of LiRA and RMIA (beyond the paper: ``ref0..``, :func:`~miakit.splits.reference_split`),
and their pruned and defended variants (PAPER.md, "Pruning", "The defense"); many of them
train at once through :class:`~miakit.together.TrainTogether`. Every model is cached under
:meth:`ModelSteps._model_key`, the one key of a model everywhere. The prune ->
fine-tune -> measure -> save -> reload round trip happens in one place,
:meth:`ModelSteps.model`: :func:`~miakit.prune.prune_model`,
:func:`miakit.defenses.finetune`, :func:`~miakit.prune.sparsity_report`, the store;
reloading is ``variant.defense.rebuild``, :func:`~miakit.prune.restore_masks`,
``load_state_dict``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from miakit import defenses
from miakit._util import num_threads
from miakit.config import ExperimentConfig
from miakit.data import DATASETS, Data, Splits, load_dataset, paper_splits
from miakit.defenses import DefenseParams, make_defense
from miakit.keys import STEP_FIELDS, STEP_VERSIONS, StepTrace, derives_key
from miakit.models import ARCHS, build_model
from miakit.prune import prune_model, restore_masks, sparsity_report, sparsity_training
from miakit.splits import Split, reference_split
from miakit.store import Store, config_key
from miakit.together import TrainTogether
from miakit.train import (
    FitResult,
    accuracy,
    fit,
    resolve_device,
)
from miakit.variants import FINETUNED_PRUNER, ORIGINAL, Variant

__all__ = ["STEP_FIELDS", "STEP_VERSIONS", "ModelSteps", "StepTrace", "TrainedModel"]


@lru_cache(maxsize=64)
def _splits(n: int, seed: int, count: int) -> Splits:
    """The paper's split with ``count`` shadows (shadow ``i`` does not depend on ``count``)."""
    return paper_splits(n, seed=seed, num_shadows=count)


#: The sparsity-trained base's optimizer, in its key (Adam-trained entries predate it).
_SPARSITY_OPTIMIZER = "liu_sgd"

#: Offset of the reference models' seeds from the experiment's ``seed``.
_REFERENCE_SEED = 100_000


@dataclass
class TrainedModel:
    """A model with what the cache recorded about it (accuracies, fit history)."""

    role: str
    model: nn.Module
    info: dict[str, Any]


class ModelSteps(TrainTogether):
    """Data, split, roles and the cached models of one config (see ``Experiment``)."""

    def __init__(
        self,
        config: ExperimentConfig,
        *,
        store: Store | None = None,
        device: str | torch.device | None = "auto",
        data_root: str | Path | None = None,
        progress: bool = False,
        threads: int | str | None = "auto",
        batch: bool | str = "auto",
    ) -> None:
        self.config = config
        self.store = store or Store()
        self.device = resolve_device(device)
        self.data_root = data_root
        self.progress = progress
        if threads == "auto":
            threads = 1 if self.device.type == "cpu" and ARCHS[config.arch].tiny else None
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be 'auto', None or an int >= 1, got {threads!r}")
        self.threads = threads
        if batch not in ("auto", True, False):
            raise ValueError(f"batch must be 'auto', True or False, got {batch!r}")
        self.batch = batch
        self.trace: StepTrace | None = None
        self._fitted: dict[str, Any] = {}
        self._data: tuple[Any, Data] | None = None

    # -- data ------------------------------------------------------------------------------
    @property
    def data(self) -> Data:
        """The dataset pool (train and test concatenated), on the CPU; loaded once."""
        c = self.config
        which = (c.dataset, c.dataset_options)
        if self._data is None or self._data[0] != which:
            self._data = (which, load_dataset(c.dataset, self.data_root, **dict(which[1])))
        return self._data[1]

    @property
    def splits(self) -> Splits:
        """Victim and shadow splits (PAPER.md, "Data and splits")."""
        return _splits(len(self.data), self.config.split_seed, self.config.num_shadows)

    def roles(self) -> list[str]:
        """``["victim", "shadow0", ...]``."""
        return ["victim"] + [f"shadow{i}" for i in range(self.config.num_shadows)]

    def reference_roles(self) -> list[str]:
        """``["ref0", ...]``: the ``num_references`` reference models (empty by default)."""
        return [f"ref{i}" for i in range(self.config.num_references)]

    @derives_key
    def check_role(self, role: str) -> str:
        """``role`` if it is in :meth:`roles` or :meth:`reference_roles`, else a ValueError."""
        if role not in self.roles() and role not in self.reference_roles():
            raise ValueError(
                f"unknown role {role!r}; roles are {self.roles()} and "
                f"{self.config.num_references} reference models ref0, ref1, ... "
                "(set num_references for more)"
            )
        return role

    def _split(self, role: str) -> Split:
        """A role's split; shadow ``i``'s depends on the split seed and ``i`` only."""
        self.check_role(role)
        victim = _splits(len(self.data), self.config.split_seed, 1).victim
        if role == "victim":
            return victim
        if role.startswith("ref"):
            return reference_split(victim, int(role[3:]), seed=self.config.split_seed)
        i = int(role[6:])
        return _splits(len(self.data), self.config.split_seed, i + 1).shadows[i]

    def role_data(self, role: str) -> tuple[Data, Data, Data]:
        """``(train, dev, test)`` data of a role (members = train, non-members = test)."""
        s = self._split(role)
        return self.data.subset(s.train), self.data.subset(s.dev), self.data.subset(s.test)

    def role_seed(self, role: str) -> int:
        """Init/batch-order seed: victim ``seed``, shadow ``i`` ``seed + 1 + i``, reference
        ``i`` ``seed + 100_000 + i`` (apart from the shadows' for any practical count)."""
        if role == "victim":
            return self.config.seed
        if role.startswith("ref"):
            return self.config.seed + _REFERENCE_SEED + int(role[3:])
        return self.config.seed + 1 + int(role[6:])

    # -- keys and the cache ------------------------------------------------------------------
    @derives_key
    def step_key(
        self, step: str, inputs: Mapping[str, Any] | None = None, **params: Any
    ) -> dict[str, Any]:
        """The cache key of one computation of ``step``.

        It holds the config fields the step reads (:data:`STEP_FIELDS`), the keys of
        the artifacts it consumes (``inputs``), its per-call ``params`` and its code
        version (:data:`STEP_VERSIONS`): every input of the step, by construction.
        """
        c = self.config
        return {
            "step": step,
            "config": {name: getattr(c, name) for name in STEP_FIELDS[step]},
            "inputs": dict(inputs or {}),
            "params": params,
            "version": STEP_VERSIONS[step],
        }

    def _cached(
        self,
        kind: str,
        key: dict[str, Any],
        create: Callable[[], tuple[Mapping[str, torch.Tensor], Mapping[str, Any]]],
    ) -> tuple[dict[str, torch.Tensor], dict]:
        """The store's entry for ``key``, computed by ``create`` when missing.

        The one route of every cached step into the :class:`~miakit.store.Store`
        (which locks, verifies and heals); with a :attr:`trace` set, the request and
        the computation are recorded.
        """
        if self.trace is None:
            return self.store.get_or_create(kind, key, create)
        digest = config_key(kind, key)
        trace = self.trace

        def traced() -> tuple[Mapping[str, torch.Tensor], Mapping[str, Any]]:
            with trace.computing(digest):
                return create()

        trace.request(key["step"], digest)
        return self.store.get_or_create(kind, key, traced)

    @derives_key
    def _base_key(self, role: str, sparsity_trained: bool = False) -> dict[str, Any]:
        """A trained model's key; the sparsity-trained one (:meth:`base`) adds its lambda,
        so the plain key is the same as before the option existed."""
        if not sparsity_trained:
            return self.step_key("train", role=self.check_role(role))
        lam = self.config.slimming_lambda
        return self.step_key(
            "train", role=self.check_role(role), slimming_lambda=lam, optimizer=_SPARSITY_OPTIMIZER
        )

    def _sparsity_trained(self, variant: Variant) -> bool:
        """Whether ``variant`` prunes the sparsity-trained model (slimming, lambda > 0);
        other pruners never read ``slimming_lambda``, so their keys ignore it."""
        return variant.pruner == "slimming" and self.config.slimming_lambda > 0

    @derives_key
    def _variant_key(self, role: str, variant: Variant) -> dict[str, Any]:
        return self.step_key(
            "prune",
            {"model": self._base_key(role, self._sparsity_trained(variant))},
            pruner=variant.pruner,
            sparsity=variant.sparsity,
            defense=variant.defense.name,
            defense_params=variant.defense.params(),
        )

    @derives_key
    def _model_key(self, role: str, variant: Variant) -> dict[str, Any]:
        return self._base_key(role) if variant.is_original else self._variant_key(role, variant)

    def new_model(self) -> nn.Module:
        """A freshly initialised network of the configured architecture."""
        info = DATASETS[self.config.dataset]
        shape = tuple(self.data.x.shape[1:]) if self._data is not None else info.input_shape
        return build_model(self.config.arch, info.num_classes, tuple(shape))

    # -- trained models ----------------------------------------------------------------------
    def trained(self, role: str) -> TrainedModel:
        """The victim, a shadow or a reference model, trained once, then loaded from the cache."""
        with num_threads(self.threads):
            return self._trained(role)

    def base(self, role: str, variant: Variant = ORIGINAL) -> TrainedModel:
        """The trained model that ``variant`` prunes: :meth:`trained`, except for slimming.

        Network slimming as Liu et al. (2017) define it trains with an L1 penalty on
        BatchNorm ``gamma`` first, with their SGD schedule and the penalty scaled to this
        schedule's length (:func:`~miakit.prune.sparsity_training`, lambda
        ``config.slimming_lambda``): a ``slimming`` variant with lambda > 0 prunes that
        separately cached model (same seed, data and epochs). With lambda 0 it prunes
        the plain model, as the authors do (PAPER.md, "Pruning"), which can collapse.
        """
        with num_threads(self.threads):
            return self._trained(role, self._sparsity_trained(variant))

    def _trained(self, role: str, sparsity_trained: bool = False) -> TrainedModel:
        key = self._base_key(role, sparsity_trained)

        def create() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            train, dev, test = self.role_data(role)
            seed = self.role_seed(role)
            torch.manual_seed(seed)
            model = self.new_model()  # initialised under the role's seed
            cfg = replace(self.config.train, seed=seed)
            lam = self.config.slimming_lambda if sparsity_trained else None
            objective, optimizer = (
                (None, None)
                if lam is None
                else sparsity_training(lam, cfg.epochs, -(-len(train) // cfg.batch_size))
            )
            result = fit(
                model,
                train,
                dev,
                cfg,
                objective=objective,
                optimizer_factory=optimizer,
                device=self.device,
                progress=self.progress,
                checkpoint=self.store.scratch("model", key, "ckpt"),
                desc=f"train {role}" + ("" if lam is None else f" (L1 on gamma {lam:g})"),
            )
            return model.cpu().state_dict(), self._info(model, result, train, test)

        tensors, info = self._cached("model", key, create)
        model = self.new_model()
        self.store.load_state("model", key, model, tensors)  # verified round trip either way
        return TrainedModel(role, model.to(self.device).eval(), info)

    def victim(self) -> TrainedModel:
        """The victim model (trained on the victim split's train part)."""
        return self.trained("victim")

    def shadows(self) -> list[TrainedModel]:
        """All shadow models, each trained on its own re-split of the shadow half."""
        self.prefetch(self.roles()[1:])
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

        ``pruner="finetuned"`` is the fine-tune-only control (sparsity 0 by default;
        :data:`~miakit.variants.FINETUNED` when undefended).

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
        pruner = pruner or self.config.pruner
        if sparsity is None:
            sparsity = 0.0 if pruner == FINETUNED_PRUNER else self.config.sparsity
        return Variant(pruner, sparsity, params)

    def model(self, role: str, variant: Variant = ORIGINAL) -> TrainedModel:
        """A role's model in a variant: original, or pruned + fine-tuned (+ defended).

        PAPER.md, "Pruning": one-shot prune of the best checkpoint, then fine-tune
        for half the training epochs with the same optimizer and early stopping;
        every shadow is pruned the same way on its own shadow-train split. The
        fine-tune-only control (:data:`~miakit.variants.FINETUNED`) runs the same
        fine-tuning on the unpruned best checkpoint.
        """
        if variant.is_original:
            return self.trained(role)
        with num_threads(self.threads):
            return self._pruned(role, variant)

    def _pruned(self, role: str, variant: Variant) -> TrainedModel:
        key = self._variant_key(role, variant)

        def create() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            model = self._pruned_start(role, variant)
            train, dev, test = self.role_data(role)
            result = defenses.finetune(
                model,
                train,
                dev,
                replace(self.config.finetune_config, seed=self.role_seed(role)),
                variant.defense,
                device=self.device,
                progress=self.progress,
                checkpoint=self.store.scratch("model", key, "ckpt"),
            )
            model = result.model if result.model is not None else model
            return model.cpu().state_dict(), self._info(model, result, train, test)

        tensors, info = self._cached("model", key, create)
        model = variant.defense.rebuild(self.new_model())
        restore_masks(model, tensors)
        self.store.load_state("model", key, model, tensors)
        return TrainedModel(role, model.to(self.device).eval(), info)

    def _pruned_start(self, role: str, variant: Variant) -> nn.Module:
        """A copy of the role's trained model, pruned by ``variant`` (before fine-tuning);
        unpruned for the fine-tune-only control (:data:`~miakit.variants.FINETUNED`)."""
        model = copy.deepcopy(self.base(role, variant).model)
        if variant.prunes:
            prune_model(model, variant.pruner, variant.sparsity)
        return model

    def _info(self, model: nn.Module, result: Any, train: Data, test: Data) -> dict:
        """What the cache records about a model: its accuracies, and its fit (a
        :class:`FitResult`) or its sparsity and defense run (a ``DefenseResult``)."""
        acc = {
            k: accuracy(model, d, device=self.device)
            for k, d in (("train_acc", train), ("test_acc", test))
        }
        if isinstance(result, FitResult):
            fitted = {k: getattr(result, k) for k in ("best_epoch", "epochs_run", "best_dev_acc")}
            return {**fitted, **acc, "history": [list(h.values()) for h in result.history]}
        report = sparsity_report(model, tuple(self.data.x.shape[1:]))
        return {
            **acc,
            "realised_sparsity": report.sparsity,
            "sparsity_all": report.sparsity_all,
            "macs_fraction": report.macs_fraction,
            **{f"defense_{k}": v for k, v in result.record().items()},
        }

    def describe(self) -> dict[str, Any]:
        """The config as a plain dict (for notebook headers)."""
        return asdict(self.config)

    def columns(self) -> dict[str, Any]:
        """The experiment's columns of every result row: dataset, arch, seed, split seed."""
        c = self.config
        return {"dataset": c.dataset, "arch": c.arch, "seed": c.seed, "split_seed": c.split_seed}
