"""Grids of pipeline points over one :class:`~miakit.experiment.Experiment`.

The paper's experiments are grids over one cached pipeline: pruning methods x sparsity
levels (PAPER.md, "Pruning"), victim vs shadow pruning (adversary knowledge, "SAMIA")
and defense settings ("The defense"; SAMIA's ablations are :mod:`miakit.ablation`).
Each function walks one grid and returns one tidy DataFrame with the columns of
:mod:`miakit.tables` (one row per point x attack). Every point is cached, so a sweep
never trains the same model twice and a killed sweep resumes where it stopped.

A profile's sweep values are its :class:`~miakit.config.Grid` (``grid(profile)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from miakit import tables
from miakit.config import Grid, grid
from miakit.defenses import DefenseParams, NoDefense, make_defense
from miakit.experiment import Experiment
from miakit.models import ARCHS
from miakit.variants import FINETUNED, ORIGINAL, Variant

__all__ = [
    "KNOWLEDGE_ATTACKS",
    "PER_CLASS_ATTACKS",
    "STRONG_ATTACKS",
    "Grid",
    "accuracy_tables",
    "as_defense",
    "defense_grid",
    "defense_settings",
    "grid_variants",
    "grid",
    "knowledge_differences",
    "knowledge_grid",
    "knowledge_summary",
    "method_variants",
    "methods_arch",
    "methods_experiment",
    "per_seed",
    "pruning_grid",
    "setting_names",
    "sparsity_variants",
    "variants_tables",
]

#: The attacks of the adversary-knowledge grids (notebook 06): the best threshold attack
#: of the paper's setting and SAMIA (PAPER.md, "SAMIA").
KNOWLEDGE_ATTACKS: tuple[str, ...] = ("conf", "samia")

#: The attacks whose per-class vulnerability notebook 09 compares (beyond the paper).
PER_CLASS_ATTACKS: tuple[str, ...] = ("samia", "lira")

#: The strongest attacks, compared at low FPR in notebook 09 with the best threshold one.
STRONG_ATTACKS: tuple[str, ...] = ("lira", "lira_online", "rmia", "rmia_online", "samia")


def methods_arch(exp: Experiment) -> str:
    """An architecture on which all four pruning methods apply (conv filters + BatchNorm).

    The experiment's own when it has both (:attr:`~miakit.models.ArchSpec.supports_all_pruners`);
    otherwise the first tiny architecture of the same input kind that does: ``signal_cnn``
    for 1-D signals (the quick profile's MLP has neither filters nor BatchNorm channels)
    and ``small_cnn`` for images.
    """
    own = ARCHS[exp.config.arch]
    if own.supports_all_pruners:
        return own.name
    for spec in ARCHS.values():
        if spec.tiny and spec.supports_all_pruners and spec.kind == own.kind:
            return spec.name
    raise ValueError(f"no architecture of kind {own.kind!r} supports every pruning method")


def methods_experiment(exp: Experiment, setting: Grid | None = None) -> Experiment:
    """The experiment that compares the four pruning methods (notebooks 02, 05, 06).

    ``exp`` itself when its architecture takes all four methods. Otherwise the
    profile's stand-in, ``setting.methods`` (:attr:`miakit.config.Grid.methods`; the
    quick profile: ``small_cnn`` on 7x7 ``mnist5k``, trained to memorisation), and
    without one the same data on :func:`methods_arch`. Seeds, split seed, store and
    device are ``exp``'s (:meth:`~miakit.experiment.Experiment.with_overrides`).
    """
    if ARCHS[exp.config.arch].supports_all_pruners:
        return exp
    if setting is not None and setting.methods:
        return exp.with_overrides(**dict(setting.methods))
    return exp.with_overrides(arch=methods_arch(exp))


def sparsity_variants(exp: Experiment, sparsities: Iterable[float]) -> list[Variant]:
    """The original and the experiment's pruner at each sparsity, its own one included.

    ``[ORIGINAL, exp.variant(sparsity=s) for s in ascending({*sparsities, exp's})]``:
    the victims and shadows of the sparsity-mismatch grid (PAPER.md, "SAMIA").
    """
    return tables.variant_grid(exp, sparsities=sorted({*sparsities, exp.config.sparsity}))


def method_variants(exp: Experiment, pruners: Iterable[str]) -> list[Variant]:
    """The original and each pruning method at the experiment's sparsity, in order."""
    return tables.variant_grid(exp, list(pruners))


def accuracy_tables(experiments: Sequence[Experiment]) -> pd.DataFrame:
    """:func:`miakit.tables.accuracy_table` of several experiments in one frame.

    The ``arch`` (and ``dataset``, ``seed``) columns tell the experiments apart, e.g. an
    experiment and its :func:`methods_experiment`.
    """
    frames = [tables.accuracy_table(e) for e in experiments]
    return pd.concat(frames, ignore_index=True)


def variants_tables(
    points: Sequence[tuple[Experiment, Sequence[Variant]]],
) -> pd.DataFrame:
    """:func:`miakit.tables.variants_table` of several (experiment, variants) in one frame."""
    frames = [tables.variants_table(e, variants) for e, variants in points]
    return pd.concat(frames, ignore_index=True)


def per_seed(
    table: Callable[..., pd.DataFrame], exp: Experiment, *args: Any, **kwargs: Any
) -> pd.DataFrame:
    """A one-seed table of every replicate of ``exp`` in one frame, one block per seed.

    The model tables (:func:`~miakit.tables.accuracy_table`,
    :func:`~miakit.tables.variants_table`, :func:`~miakit.tables.sparsity_table`,
    :func:`~miakit.tables.compaction`) describe the models of one seed; this runs
    ``table(rep, *args, **kwargs)`` for each of :meth:`Experiment.replicates` (issue 13:
    every number over ``config.seeds`` seeds) and adds the replicate's ``seed`` column
    where the table has none, so :func:`~miakit.tables.summarise` takes intervals over
    the seeds.

    Example:
        >>> acc = per_seed(tables.accuracy_table, exp)                    # doctest: +SKIP
        >>> tables.summarise(acc, by=["model"])                           # doctest: +SKIP
    """
    frames = []
    for rep in exp.replicates():
        frame = table(rep, *args, **kwargs)
        if "seed" not in frame:
            frame = frame.assign(seed=rep.config.seed)
        # A table that runs every replicate itself (the first replicate is the experiment)
        # gives its rows once: keep this replicate's.
        frames.append(frame[frame["seed"] == rep.config.seed])
    return pd.concat(frames, ignore_index=True)


def pruning_grid(
    exp: Experiment,
    pruners: Sequence[str],
    sparsities: Sequence[float],
    attacks: Sequence[str],
    *,
    include_original: bool = True,
    include_finetuned: bool = True,
) -> pd.DataFrame:
    """Attack performance across pruning methods and sparsity levels, one row per seed.

    PAPER.md, "Pruning" and claim 3: the risk depends on the pruning approach and the
    sparsity. Shadows are pruned like the victim (the default adversary).
    ``include_original`` adds the unpruned victim (``victim_pruner == "none"``) and
    ``include_finetuned`` the fine-tune-only control (:data:`~miakit.variants.FINETUNED`,
    ``"finetuned"``: the same fine-tuning, nothing pruned), before the pruned variants
    (:func:`grid_variants`). :func:`miakit.contrasts.pruning_differences` pairs them.
    """
    variants = grid_variants(exp, pruners, sparsities, include_original, include_finetuned)
    return tables.attack_table(exp, variants, attacks=attacks)


def grid_variants(
    exp: Experiment,
    pruners: Sequence[str],
    sparsities: Sequence[float],
    include_original: bool = True,
    include_finetuned: bool = True,
) -> list[Variant]:
    """The victims of :func:`pruning_grid`: original, fine-tuned only, then each pruned one."""
    variants = tables.variant_grid(exp, pruners, sparsities, include_original=False)
    head = [ORIGINAL] if include_original else []
    return head + ([FINETUNED] if include_finetuned else []) + variants


def knowledge_grid(
    exp: Experiment,
    victims: Sequence[Variant],
    shadows: Sequence[Variant],
    attacks: Sequence[str],
) -> pd.DataFrame:
    """Attacks with shadows pruned differently from the victim (adversary knowledge).

    PAPER.md, "SAMIA": the default adversary prunes the shadows with the victim's method
    and sparsity (``adaptive`` true); this grid crosses every victim variant with every
    shadow variant (mismatched method or sparsity). ``victim_label`` and
    ``shadow_label`` (:attr:`Variant.label`) are display columns, e.g. a heat map's rows
    and columns.
    """
    frames = [
        tables.attack_table(exp, v, shadows=s, attacks=attacks).assign(
            victim_label=v.label, shadow_label=s.label
        )
        for v in victims
        for s in shadows
    ]
    return tables.ordered(pd.concat(frames, ignore_index=True))


def knowledge_differences(
    exp: Experiment,
    victims: Sequence[Variant],
    shadows: Sequence[Variant],
    attacks: Sequence[str],
) -> pd.DataFrame:
    """What a mismatched adversary loses: paired differences against the matched one.

    PAPER.md, "SAMIA" (claim 3): for every victim variant and every other shadow
    variant, each attack's metrics with those shadows minus with shadows pruned like the
    victim (the default adversary), paired per seed and bootstrap resample
    (:func:`miakit.tables.difference`). One row per seed x victim x mismatched shadows x
    attack, with the shadows' real columns (``shadow_pruner``, ``shadow_sparsity``,
    ``shadow_defense``) and the display columns ``victim_label`` and ``shadow_label``;
    :func:`miakit.tables.summarise` gives the intervals (negative: the mismatched
    adversary does worse).
    """
    frames = [
        tables.difference(exp, v, v, attacks, shadows=s).assign(
            **s.columns("shadow"), victim_label=v.label, shadow_label=s.label
        )
        for v in victims
        for s in shadows
        if s != v
    ]
    return pd.concat(frames, ignore_index=True)


def knowledge_summary(frame: pd.DataFrame, victim: Variant, metric: str = "auc") -> pd.DataFrame:
    """A knowledge grid summarised for one pruned victim: one row per adversary, one column
    per attack.

    Rows: the unpruned baseline (original victim, original shadows), matched shadows,
    unpruned shadows, and the best and worst mismatched shadows.
    """
    cols = victim.columns("victim")
    mine = frame
    for k, v in cols.items():
        mine = mine[mine[k] == v]
    unpruned_shadows = mine["shadow_pruner"] == "none"
    mismatched = mine[~mine["adaptive"] & ~unpruned_shadows].groupby("attack")[metric]
    baseline = frame[(frame["victim_pruner"] == "none") & (frame["shadow_pruner"] == "none")]
    rows = {
        "no pruning (original vs original)": baseline.set_index("attack")[metric],
        "matched shadows": mine[mine["adaptive"]].set_index("attack")[metric],
        "unpruned shadows": mine[unpruned_shadows].set_index("attack")[metric],
        "mismatched sparsity, best": mismatched.max(),
        "mismatched sparsity, worst": mismatched.min(),
    }
    order = list(dict.fromkeys(frame["attack"]))
    return pd.DataFrame(rows).T.reindex(columns=order)


#: Short symbols of the defense options shown in the ``setting`` display column.
_SYMBOLS = {"lam": "λ", "theta": "θ", "noise_multiplier": "σ"}


def setting_names(defense: DefenseParams) -> dict[str, str]:
    """The display columns of a defense setting: ``parameter`` and ``setting``.

    ``{"parameter": "λ=4", "setting": "ppb λ=4"}``; a defense with no swept option to
    show has its name in both (``"none"``).
    """
    params = {k: v for k, v in sorted(defense.params().items()) if v is not None}
    shown = " ".join(f"{_SYMBOLS[k]}={v:g}" for k, v in params.items() if k in _SYMBOLS)
    return {
        "parameter": shown or defense.name,
        "setting": f"{defense.name} {shown}" if shown else defense.name,
    }


def as_defense(setting: DefenseParams | tuple[str, Mapping[str, Any]]) -> DefenseParams:
    """A :func:`defense_grid` setting as a :class:`~miakit.defenses.DefenseParams`."""
    if isinstance(setting, DefenseParams):
        return setting
    name, options = setting
    return make_defense(name, **dict(options))


def defense_settings(
    grid: Grid,
    *,
    lambdas: Sequence[float] | None = None,
    thetas: Sequence[float] | None = None,
    noise_multipliers: Sequence[float] | None = None,
) -> list[DefenseParams]:
    """The settings of :func:`defense_grid`: no defense, then :meth:`Grid.defenses`.

    ``NoDefense()`` (the undefended pruned model), then PPB per lambda, AdvReg per theta
    and DP-SGD per noise multiplier (PAPER.md, "The defense"): the grid's lists, or those
    given (a notebook's parameters; ``None`` keeps the grid's).
    """
    chosen = {
        "lambdas": lambdas,
        "thetas": thetas,
        "noise_multipliers": noise_multipliers,
    }
    given = {k: tuple(v) for k, v in chosen.items() if v is not None}
    return [NoDefense(), *replace(grid, **given).defenses()]


def defense_grid(
    exp: Experiment,
    settings: Iterable[DefenseParams | tuple[str, Mapping[str, Any]]],
    attacks: Sequence[str],
    *,
    adaptive: Sequence[bool] = (False, True),
) -> pd.DataFrame:
    """Privacy-utility of defenses applied during post-pruning fine-tuning.

    PAPER.md, "The defense". For each setting, a :class:`~miakit.defenses.DefenseParams`
    (``NoDefense()`` is the undefended pruned model) or a ``(name, options)`` pair: every
    attack's metrics, non-adaptive (shadows pruned without the defense) and/or adaptive
    (shadows pruned with the same defense and setting), with the victim's accuracy,
    realised sparsity and epsilon as columns. ``parameter`` (e.g. ``"λ=4"``; the
    defense's name, ``"none"``, where it has no option to show) and ``setting``
    (``"ppb λ=4"``, ``"none"``) are display columns. With both adversaries, the
    undefended model has one row (adaptive): its shadows are the same either way.
    """
    pruned = exp.variant()
    frames = []
    for setting in settings:
        defense = as_defense(setting)
        victim = exp.variant(defense=defense)
        for is_adaptive in adaptive:
            if isinstance(defense, NoDefense) and not is_adaptive and True in adaptive:
                continue  # identical to the adaptive row: the shadows are the same
            shadows = victim if is_adaptive else pruned
            frame = tables.attack_table(exp, victim, shadows=shadows, attacks=attacks)
            frames.append(frame.assign(**setting_names(defense)))
    return tables.ordered(pd.concat(frames, ignore_index=True))
