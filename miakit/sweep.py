"""Grids of pipeline points, and running the notebooks.

The paper's experiments are grids over one cached pipeline: pruning methods x
sparsity levels (PAPER.md, "Pruning"), victim vs shadow pruning (adversary
knowledge, "SAMIA"), SAMIA's ablations, and defense settings ("The defense").
Each function here walks one grid on an :class:`~miakit.experiment.Experiment`
and returns one tidy DataFrame (one row per point x attack). Every point is
cached, so a sweep never trains the same model twice and a killed sweep
resumes where it stopped.

:func:`run_notebooks` executes the numbered notebooks with papermill (the
``miakit run`` command).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from miakit.attacks import BASELINES
from miakit.defenses import LAMBDAS, NOISE_MULTIPLIERS, THETAS, DefenseParams, PPBParams
from miakit.experiment import ORIGINAL, Experiment, Variant
from miakit.metrics import results_frame
from miakit.models import has_batchnorm, is_convnet

__all__ = [
    "GRIDS",
    "Grid",
    "ablation_table",
    "defense_grid",
    "find_notebooks",
    "grid",
    "methods_arch",
    "knowledge_grid",
    "pruning_grid",
    "run_notebooks",
]


@dataclass(frozen=True)
class Grid:
    """The sweep values a notebook uses under one profile.

    Attributes:
        sparsities: sparsity levels swept (PAPER.md, "Pruning": roughly 0.5-0.9).
        pruners: the four pruning methods compared.
        attacks: attacks run at every sweep point (the cheap ones plus SAMIA; the
            full set is run on the default point in notebook 04).
        lambdas, thetas, noise_multipliers: the defense settings (PAPER.md, "The
            defense": lambda 1-16, theta 1-8, noise 0.01-1).
        knowledge_sparsities: shadow sparsities for the adversary-knowledge grid.
    """

    sparsities: tuple[float, ...]
    pruners: tuple[str, ...]
    attacks: tuple[str, ...]
    lambdas: tuple[float, ...]
    thetas: tuple[float, ...]
    noise_multipliers: tuple[float, ...]
    knowledge_sparsities: tuple[float, ...]


_ALL_PRUNERS = ("l1_unstructured", "l1_structured", "l2_structured", "slimming")

GRIDS: dict[str, Grid] = {
    "smoke": Grid(
        (0.5, 0.7),
        _ALL_PRUNERS,
        ("conf", "mentr", "samia"),
        (PPBParams.lam,),
        THETAS[:1],
        NOISE_MULTIPLIERS[-1:],
        (0.5,),
    ),
    "quick": Grid(
        (0.5, 0.7, 0.9),
        _ALL_PRUNERS,
        ("conf", "mentr", "nncls", "samia", "lira"),
        LAMBDAS[::2],
        THETAS[::2],
        NOISE_MULTIPLIERS[1:],
        (0.5, 0.9),
    ),
    "paper": Grid(
        (0.5, 0.6, 0.7, 0.8, 0.9),
        _ALL_PRUNERS,
        BASELINES + ("samia", "lira", "rmia"),
        LAMBDAS,
        THETAS,
        NOISE_MULTIPLIERS,
        (0.5, 0.6, 0.8, 0.9),
    ),
}
"""Sweep values per profile; the paper profile uses PAPER.md's full grids.

The defense settings are the sweeps of :mod:`miakit.defenses` or slices of them
(smoke: the PPB default, the smallest theta, the largest noise multiplier), never copies.
"""


def grid(profile_name: str) -> Grid:
    """The :class:`Grid` of a profile (unknown names are a clear error)."""
    if profile_name not in GRIDS:
        raise ValueError(f"unknown profile {profile_name!r}; choose one of: {', '.join(GRIDS)}")
    return GRIDS[profile_name]


def methods_arch(exp: Experiment) -> str:
    """An architecture on which all four pruning methods apply (conv + BatchNorm).

    The experiment's own when it has both; otherwise ``signal_cnn`` for 1-D signals
    (the quick profile's MLP has neither filters nor BatchNorm channels) and
    ``small_cnn`` for images.
    """
    model = exp.new_model()
    if is_convnet(model) and has_batchnorm(model):
        return exp.config.arch
    return "signal_cnn" if exp.data.x.dim() == 2 else "small_cnn"


def _with_model_columns(exp: Experiment, frame: pd.DataFrame, variant: Variant) -> pd.DataFrame:
    info = exp.model("victim", variant).info
    frame.insert(0, "victim_test_acc", info["test_acc"])
    frame.insert(0, "victim_train_acc", info["train_acc"])
    frame.insert(0, "realised_sparsity", info.get("sparsity", 0.0))
    return frame


def pruning_grid(
    exp: Experiment,
    pruners: Sequence[str],
    sparsities: Sequence[float],
    attacks: Sequence[str],
    *,
    include_original: bool = True,
) -> pd.DataFrame:
    """Attack performance across pruning methods and sparsity levels.

    PAPER.md, "Pruning" and claim 3: the risk depends on the pruning approach
    and the sparsity. Shadows are pruned like the victim (the default adversary).

    Returns:
        One row per (pruner, sparsity, attack) with ``pruner``, ``sparsity``,
        ``realised_sparsity``, the victim's train/test accuracy and every metric
        column of :func:`miakit.metrics.results_frame`. ``include_original`` adds
        the unpruned victim as ``pruner="original"``, ``sparsity=0``.
    """
    frames = []
    points: list[tuple[str, float, Variant]] = []
    if include_original:
        points.append(("original", 0.0, ORIGINAL))
    points += [(p, s, exp.variant(p, s)) for p in pruners for s in sparsities]
    for pruner, sparsity, variant in points:
        frame = _with_model_columns(exp, exp.attack_table(variant, attacks=attacks), variant)
        frame.insert(0, "sparsity", sparsity)
        frame.insert(0, "pruner", pruner)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def knowledge_grid(
    exp: Experiment,
    victims: Sequence[Variant],
    shadows: Sequence[Variant],
    attacks: Sequence[str],
) -> pd.DataFrame:
    """Attacks with shadows pruned differently from the victim (adversary knowledge).

    PAPER.md, "SAMIA": the default adversary prunes the shadows with the
    victim's method and sparsity; this grid crosses every victim variant with
    every shadow variant (mismatched method or sparsity).
    """
    rows = [exp.attack(a, v, s) for v in victims for s in shadows for a in attacks]
    frame = results_frame(rows)
    frame.insert(2, "matched", frame["victim"] == frame["shadows"])
    return frame


#: SAMIA and its ablations (PAPER.md, "SAMIA"), as (label, options).
SAMIA_ABLATIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("SAMIA", {}),
    ("SAMIA w/o sensitivity", {"use_sensitivity": False}),
    ("SAMIA with MLP", {"mlp": True}),
    ("SAMIA with MLP w/o sensitivity", {"use_sensitivity": False, "mlp": True}),
)


def ablation_table(exp: Experiment, variants: Sequence[Variant]) -> pd.DataFrame:
    """SAMIA with and without the sensitivity feature, attention vs MLP."""
    frames = []
    for variant in variants:
        for label, options in SAMIA_ABLATIONS:
            frame = results_frame([exp.attack("samia", variant, **options)])
            frame.insert(0, "ablation", label)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def defense_grid(
    exp: Experiment,
    settings: Iterable[DefenseParams | tuple[str, Mapping[str, Any]]],
    attacks: Sequence[str],
    *,
    adaptive: Sequence[bool] = (False, True),
) -> pd.DataFrame:
    """Privacy-utility of defenses applied during post-pruning fine-tuning.

    PAPER.md, "The defense". For each setting, a
    :class:`~miakit.defenses.DefenseParams` (``NoDefense()`` is the undefended pruned
    model) or a ``(name, options)`` pair such as ``("ppb", {"lam": 4.0})``: the
    victim's test accuracy and sparsity, the privacy budget epsilon where there is
    one, and every attack's metrics, non-adaptive (shadows pruned without the defense)
    and/or adaptive (shadows pruned with the same defense and setting).
    """
    pruned = exp.variant()
    frames = []
    for setting in settings:
        if isinstance(setting, DefenseParams):
            victim = exp.variant(defense=setting)
        else:
            name, options = setting
            victim = exp.variant(defense=name, **dict(options))
        defense = victim.defense.name
        info = exp.model("victim", victim).info
        for is_adaptive in adaptive:
            if defense == "none" and not is_adaptive and True in adaptive:
                continue  # identical to the adaptive row: shadows are the same
            shadows = victim if is_adaptive else pruned
            frame = exp.attack_table(victim, shadows, attacks=attacks)
            frame.insert(0, "adaptive", is_adaptive)
            frame.insert(0, "epsilon", info.get("defense_epsilon"))
            frame.insert(0, "sparsity", info.get("sparsity"))
            frame.insert(0, "test_acc", info["test_acc"])
            frame.insert(0, "setting", _setting_label(defense, victim))
            frame.insert(0, "defense", defense)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _setting_label(defense: str, variant: Variant) -> str:
    params = {k: v for k, v in sorted(variant.defense.params().items()) if v is not None}
    short = {"lam": "λ", "theta": "θ", "noise_multiplier": "σ"}
    shown = [f"{short[k]}={v:g}" for k, v in params.items() if k in short]
    return defense if not shown else f"{defense} {' '.join(shown)}"


# -- notebooks ----------------------------------------------------------------------------

_NOTEBOOK = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.ipynb$")


def find_notebooks(root: str | Path = "notebooks", only: Sequence[str] | None = None) -> list[Path]:
    """The numbered notebooks in reading order, optionally only some (``["03", "04"]``)."""
    folder = Path(root)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no notebooks folder at {folder.resolve()}; run miakit from the repository root "
            "or pass --notebooks PATH"
        )
    books = sorted(p for p in folder.iterdir() if _NOTEBOOK.match(p.name))
    if only:
        wanted = {o.strip().zfill(2) for o in only}
        unknown = wanted - {p.name[:2] for p in books}
        if unknown:
            raise ValueError(
                f"no notebook numbered {sorted(unknown)}; available: "
                f"{', '.join(p.name[:2] for p in books)}"
            )
        books = [p for p in books if p.name[:2] in wanted]
    return books


def run_notebooks(
    notebooks: Sequence[Path],
    *,
    profile: str,
    parameters: Mapping[str, Any] | None = None,
    output_dir: str | Path = "runs",
    progress: bool = True,
) -> list[Path]:
    """Execute notebooks with papermill; executed copies go to ``output_dir/<profile>/``.

    Each notebook runs in its own folder (so its relative paths work) with
    ``profile`` and ``parameters`` injected after its ``parameters`` cell;
    ``MIAKIT_PROFILE`` is set for the kernel too.
    """
    import papermill as pm

    out = Path(output_dir) / profile
    out.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, **dict(parameters or {})}
    done = []
    old = os.environ.get("MIAKIT_PROFILE")
    os.environ["MIAKIT_PROFILE"] = profile
    try:
        for nb in notebooks:
            target = out / nb.name
            pm.execute_notebook(
                str(nb),
                str(target),
                parameters=params,
                cwd=str(nb.parent),
                progress_bar=progress,
                kernel_name="python3",
            )
            done.append(target)
    finally:
        if old is None:
            os.environ.pop("MIAKIT_PROFILE", None)
        else:
            os.environ["MIAKIT_PROFILE"] = old
    return done
