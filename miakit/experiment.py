"""The cached pipeline: data, split, train, prune, fine-tune/defend, signals, attack.

:class:`Experiment` runs one :class:`~miakit.config.ExperimentConfig`. Each artifact
(victim, shadow, pruned or defended model, attack signals, fitted attack, attack
scores) is computed on first request and stored in the :class:`~miakit.store.Store`
under a key derived from the part of the config that produced it (one
``_model_key`` for every model), so notebooks run in any order and a killed run
resumes. Tables over these steps live in :mod:`miakit.tables`, grids in
:mod:`miakit.sweep`.

The config, the profiles and :class:`~miakit.variants.Variant` are re-exported here
for code written against the earlier single module.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any

import torch

from miakit.attacks import (
    ATTACKS,
    AttackScores,
    AttackSettings,
    make_attack,
)
from miakit.config import PROFILES, ExperimentConfig, ParameterError, profile
from miakit.keys import derives_key
from miakit.metrics import AttackResult
from miakit.signal_steps import SignalSteps
from miakit.steps import STEP_VERSIONS, TrainedModel
from miakit.store import CacheError, Store, config_key
from miakit.threads import apply_thread_budget
from miakit.variants import ORIGINAL, Variant

__all__ = [
    "ORIGINAL",
    "PROFILES",
    "STEP_VERSIONS",
    "Experiment",
    "ExperimentConfig",
    "TrainedModel",
    "Variant",
    "from_parameters",
    "profile",
]


class Experiment(SignalSteps):
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
            leaves it alone. Attack models train with torch's default (the thread
            budget, :mod:`miakit.threads`).
        batch: train several models at once (:func:`miakit.train.fit_many`: the
            victim with its shadows or reference models, and their pruned copies).
            ``"auto"`` does when :func:`~miakit.train.batching_pays` (CUDA; fully
            connected models on a CPU with two threads or more); ``True`` always,
            ``False`` never. Results equal one at a time up to float rounding, so it
            is not part of any cache key.

    The model steps (data, split, roles, train, prune, fine-tune/defend) come from
    :class:`~miakit.steps.ModelSteps`, the signals from :class:`~miakit.signal_steps.SignalSteps`;
    this class adds the attacks.

    Example:
        >>> exp = Experiment(profile("quick"))            # doctest: +SKIP
        >>> scores = exp.attack_scores("samia", exp.variant())  # doctest: +SKIP
        >>> tables.attack_table(exp, [ORIGINAL, exp.variant()])  # doctest: +SKIP
    """

    # -- replicates -----------------------------------------------------------------------
    def replicates(self) -> list[Experiment]:
        """One experiment per seed of the pipeline (``config.seeds``), this one first.

        Replicate ``r`` runs :meth:`ExperimentConfig.replicate` ``(r)`` (base seed
        ``seed + r * SEED_STRIDE``) with this experiment's store, device and settings,
        and shares its loaded data; it is one run (``seeds=1``), so a table called on a
        replicate does not replicate again; every table runs them all and
        :func:`miakit.tables.summarise` takes intervals over them.
        """
        c = self.config
        cached = getattr(self, "_replicates", None)
        if cached is not None and cached[0] == c:
            return cached[1]
        out: list[Experiment] = [self]
        if c.seeds > 1:
            _ = self.data  # loaded once, shared by every replicate
        for r in range(1, c.seeds):
            sibling = self._sibling(replace(c.replicate(r), seeds=1))  # one run: no nesting
            sibling.trace = self.trace
            out.append(sibling)
        self._replicates = (c, out)
        return out

    # -- attacks --------------------------------------------------------------------------
    @property
    def attack_settings(self) -> AttackSettings:
        """The neural attacks' training settings, from the config (device: the experiment's)."""
        c = self.config
        return AttackSettings(
            epochs=c.attack_epochs,
            lr=c.attack_lr,
            seed=c.seed,
            device=self.device,
            progress=self.progress,
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
        if shadows == victim:  # the victim trains with its shadows or references
            helpers = (
                self.attack_roles() if "references" in ATTACKS[name].uses else self.roles()[1:]
            )
            self.prefetch(["victim", *helpers], victim)
        target = self.signals("victim", victim)
        key = self._attack_key(name, victim, shadows, options)

        def create() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            fitted = self._fitted_attack(name, victim, shadows, options)
            scores = fitted.score(self.signals("victim", victim))  # consumed: traced
            return {"scores": torch.from_numpy(scores.scores)}, {"threshold": scores.threshold}

        tensors, info = self._cached("attack", key, create)
        return AttackScores(
            attack=name,
            scores=tensors["scores"].numpy(),
            threshold=float(info["threshold"]),
            membership=target.membership,
            labels=target.labels,
            sample_ids=target.sample_ids,
            columns=self.attack_columns(name, victim, shadows, options),
        )

    @derives_key
    def _attack_key(
        self, name: str, victim: Variant, shadows: Variant, options: dict[str, Any]
    ) -> dict[str, Any]:
        """The scores' key: the target's signals and the fitted attack."""
        return self.step_key(
            "attack",
            {
                "target": self._signals_key("victim", victim, "own"),
                "fitted": self._fitted_key(name, victim, shadows, options),
            },
        )

    def attack_columns(
        self, name: str, victim: Variant, shadows: Variant, options: dict[str, Any]
    ) -> dict[str, Any]:
        """What an attack row is about: experiment, victim and shadow variants, attack options.

        ``adaptive`` is derived: the shadows are the victim's own variant. Model metrics
        (realised sparsity, accuracy) are added by :func:`miakit.tables.model_columns`.
        """
        return {
            **self.columns(),
            **victim.columns("victim"),
            **shadows.columns("shadow"),
            "adaptive": shadows == victim,
            **{f"attack_{k}": v for k, v in sorted(options.items())},
        }

    @derives_key
    def _fitted_key(
        self, name: str, victim: Variant, shadows: Variant, options: dict[str, Any]
    ) -> dict[str, Any]:
        """A fitted attack's key: the signals its ``uses`` declares, its options, its step.

        An attack that trains a network (``persist``) is the ``fit_network`` step, which
        reads the attack settings; the others are the ``fit`` step, which reads none.
        """
        cls = ATTACKS[name]
        inputs: dict[str, Any] = {}
        roles = self.roles()[1:]
        if "shadows" in cls.uses:
            inputs["shadows"] = [self._signals_key(r, shadows, "own") for r in roles]
        if "references" in cls.uses:
            inputs["references"] = [
                self._signals_key(r, shadows, s)
                for r in self.attack_roles(name)
                for s in ("victim", "population")
            ]
            inputs["population"] = self._signals_key("victim", victim, "population")
        step = "fit_network" if cls.persist else "fit"
        return self.step_key(step, inputs, attack=name, options=sorted(options.items()))

    def _fitted_attack(
        self, name: str, victim: Variant, shadows: Variant, options: dict[str, Any]
    ) -> Any:
        """An attack fitted once on what its ``uses`` declares; one fit serves every target.

        An attack with ``persist = True`` (the neural ones) stores its ``state()``
        in the cache (tensors only, safetensors), so another notebook attacking a
        different victim with the same shadows reloads it instead of retraining; its
        training checkpoints every epoch beside the entry, so a killed run resumes.
        """
        key = self._fitted_key(name, victim, shadows, options)
        memo = config_key("fitted", key)
        cls = ATTACKS[name]
        if memo in self._fitted:
            if self.trace is not None:  # a reuse is a request all the same
                kind = "attack_model" if cls.persist else "fitted"
                self.trace.request(key["step"], config_key(kind, key))
            return self._fitted[memo]

        def fitted() -> Any:
            settings = replace(self.attack_settings, label=shadows.label) if cls.persist else None
            attack = make_attack(name, settings=settings, **options)
            shadow_inputs = self.shadow_signals(shadows) if "shadows" in cls.uses else None
            refs = self.references(victim, shadows, name) if "references" in cls.uses else None
            if cls.persist:
                attack.fit(
                    shadow_inputs, refs, checkpoint=self.store.scratch("attack_model", key, "ckpt")
                )
            else:
                attack.fit(shadow_inputs, refs)
            return attack

        if cls.persist:  # fitted or not, the attack is rebuilt from its verified entry
            tensors, meta = self._cached("attack_model", key, lambda: fitted().state())
            attack = cls.from_state(tensors, meta, self.attack_settings, **options)
        else:
            attack = self._traced_fit(key, fitted)
        self._fitted[memo] = attack
        return attack

    def fitted_attack(
        self, name: str, shadows: Variant = ORIGINAL, victim: Variant | None = None, **options: Any
    ) -> Any:
        """One attack fitted on the ``shadows`` variant's shadow (or reference) signals,
        ready to :meth:`~miakit.attacks.Attack.score` any target's signals (cached like
        :meth:`attack_scores`'). ``victim`` only matters to the reference attacks, whose
        references are scored on the victim's samples (default: ``shadows``)."""
        if name not in ATTACKS:
            raise ValueError(f"unknown attack {name!r}; known attacks: {', '.join(ATTACKS)}")
        return self._fitted_attack(name, shadows if victim is None else victim, shadows, options)

    def _traced_fit(self, key: dict[str, Any], fitted: Any) -> Any:
        """Run an in-memory fit, as a traced step when a :attr:`trace` is set."""
        if self.trace is None:
            return fitted()
        digest = config_key("fitted", key)
        self.trace.request(key["step"], digest)
        with self.trace.computing(digest):
            return fitted()

    def attack(
        self,
        name: str,
        victim: Variant = ORIGINAL,
        shadows: Variant | None = None,
        **options: Any,
    ) -> AttackResult:
        """One attack's metrics against the victim (see :meth:`attack_scores`)."""
        return self.attack_scores(name, victim, shadows, **options).result()

    def with_overrides(self, **overrides: Any) -> Experiment:
        """The same experiment (store, device, threads, batching) on an overridden config.

        ``overrides`` as :meth:`ExperimentConfig.with_overrides` (``finetune.epochs=30``
        style keys reach the nested configs). Models whose keys do not read an
        overridden field are shared through the store: a ``finetune`` override
        re-fine-tunes the pruned models from the same cached originals
        (:data:`miakit.keys.STEP_FIELDS`).
        """
        return self._sibling(self.config.with_overrides(**overrides))

    def _sibling(self, config: ExperimentConfig) -> Experiment:
        """An experiment on ``config`` with this one's store, device and settings; it
        shares the loaded pool when the dataset and its options are the same."""
        out = Experiment(
            config,
            store=self.store,
            device=self.device,
            data_root=self.data_root,
            progress=self.progress,
            threads=self.threads,
            batch=self.batch,
        )
        if (config.dataset, config.dataset_options) == (
            self.config.dataset,
            self.config.dataset_options,
        ):
            out._data = self._data  # the same pool: loaded once
        return out


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

    Raises:
        ParameterError: a bad parameter or setting, or an unwritable cache (a
            ``ValueError`` that Jupyter shows as one line).
    """
    try:
        return _from_parameters(
            profile_name,
            dict(dataset=dataset, arch=arch, pruner=pruner, sparsity=sparsity, seed=seed),
            device,
            store,
            progress,
            overrides,
        )
    except (ValueError, KeyError, CacheError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise ParameterError(msg) from None


def _from_parameters(
    profile_name: str | None,
    named: dict[str, Any],
    device: str,
    store: Store | None,
    progress: bool,
    overrides: dict[str, Any],
) -> Experiment:
    apply_thread_budget()  # a notebook's kernel: its share of the CPUs (miakit.threads)
    env = os.environ.get("MIAKIT_SET")
    if env:
        try:
            from_env = json.loads(env)
        except json.JSONDecodeError as err:
            raise ValueError(f"MIAKIT_SET must be a JSON object of settings: {err}") from None
        overrides = {**from_env, **{k: v for k, v in overrides.items() if v is not None}}
    given = {k: v for k, v in overrides.items() if v is not None}
    given.update({k: v for k, v in named.items() if v is not None})
    if "dataset" in given and given["dataset"] != profile(profile_name).dataset:
        given.setdefault("dataset_options", ())
    exp = Experiment(profile(profile_name, **given), store=store, device=device, progress=progress)
    exp.store.check_writable()  # a read-only or full cache fails now, not after training
    return exp
