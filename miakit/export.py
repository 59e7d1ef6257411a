"""Signals out, for other tools: one ``.npz`` file of a victim's and its shadows' signals.

:func:`export_signals` writes everything miakit's attacks read (the victim's and the
shadows' posteriors, logits, labels, membership and SAMIA sensitivity, the reference
matrices of LiRA and RMIA) plus every attack's scores, so a researcher can score
miakit's models with Privacy Meter or with their own code, and check their numbers
against miakit's. :func:`load_signals` reads the file back.

The file is a plain ``numpy.savez_compressed`` archive with no pickled object:
``np.load(path, allow_pickle=False)`` opens it. Every array is numeric or bool except
``meta_json``, a 0-d unicode string (which also loads without pickle).

Membership always means "in the training set of the model that produced the signals"
(PAPER.md, "Threat model"; ARCHITECTURE.md, "Membership has one meaning"). Target rows
are the victim's members (its train split) then its non-members (its test split);
shadow rows are each shadow's own members then non-members, shadow 0 first.
N = target samples, K = classes, M = pooled shadow samples, S = shadow models,
Z = population samples (the victim's dev split: non-members of every model).

=========================== ========= ======= ===========================================
key                         shape     dtype   meaning
=========================== ========= ======= ===========================================
``target_posteriors``       (N, K)    float64 victim's softmax outputs
``target_logits``           (N, K)    float64 victim's pre-softmax outputs
``target_labels``           (N,)      int64   true classes
``target_membership``       (N,)      int64   1 = in the victim's training set
``target_sensitivity``      (N, K)    float64 victim's per-class input sensitivity
                                              (SAMIA's feature; PAPER.md, "SAMIA")
``target_sample_ids``       (N,)      int64   pool indices (rows of the dataset)
``shadow_posteriors``       (M, K)    float64 shadows' softmax outputs, pooled
``shadow_logits``           (M, K)    float64 shadows' pre-softmax outputs
``shadow_labels``           (M,)      int64   true classes
``shadow_membership``       (M,)      int64   1 = in THAT shadow's training set
``shadow_sensitivity``      (M, K)    float64 shadows' per-class input sensitivity
``shadow_sample_ids``       (M,)      int64   pool indices
``shadow_model``            (M,)      int64   which shadow (0..S-1) gave each row
``ref_sample_ids``          (N,)      int64   the target samples of the ``ref_*``
                                              matrices (equal to ``target_sample_ids``)
``ref_p_y``                 (N, S)    float64 each shadow's true-class probability on
                                              the target samples (RMIA)
``ref_phi``                 (N, S)    float64 each shadow's ``log(p_y / (1 - p_y))``
                                              on the target samples (LiRA)
``ref_is_in``               (N, S)    bool    shadow ``s`` trained on target sample
                                              ``n`` (all False with disjoint splits)
``population_sample_ids``   (Z,)      int64   pool indices of the population
``population_p_y``          (Z, S)    float64 each shadow's p_y on the population
``target_population_p_y``   (Z,)      float64 the victim's p_y on the population
``refmodel_p_y``            (N, R)    float64 with ``num_references`` R > 0: each
                                              reference model's p_y on the target
                                              samples (online LiRA and RMIA)
``refmodel_phi``            (N, R)    float64 their ``log(p_y / (1 - p_y))``
``refmodel_is_in``          (N, R)    bool    reference ``r`` trained on target sample
                                              ``n`` (for about half of them)
``refmodel_population_p_y`` (Z, R)    float64 their p_y on the population
``scores_<attack>``         (N,)      float64 the attack's scores on the target rows
                                              (higher = member)
``threshold_<attack>``      ()        float64 ``scores >= threshold`` is its decision
``meta_json``               ()        str     JSON: ``config`` (the profile's
                                              ExperimentConfig), ``victim`` and
                                              ``shadows`` (variant label, pruner,
                                              sparsity, defense and its options),
                                              ``attacks``, ``phi_from_logits``,
                                              ``keys`` (these descriptions),
                                              ``miakit_version``, ``format_version``
=========================== ========= ======= ===========================================

Example:
    >>> path = export_signals(exp, "signals.npz", exp.variant())      # doctest: +SKIP
    >>> sig = load_signals(path)                                      # doctest: +SKIP
    >>> sig["scores_conf"].shape == sig["target_labels"].shape        # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from miakit import __version__
from miakit._util import atomic_write
from miakit.attacks import ATTACKS, AttackInputs
from miakit.experiment import Experiment
from miakit.variants import ORIGINAL, Variant

if TYPE_CHECKING:
    from miakit.experiment import Experiment

__all__ = ["FORMAT_VERSION", "KEYS", "check_attacks", "export_signals", "load_signals"]

#: Bumped when a key's meaning or shape changes.
FORMAT_VERSION = 1

#: Every fixed key of the file and what it holds (also stored in ``meta_json``).
KEYS: dict[str, str] = {
    "target_posteriors": "(N, K) victim's softmax outputs on its members then non-members",
    "target_logits": "(N, K) victim's pre-softmax outputs",
    "target_labels": "(N,) true classes",
    "target_membership": "(N,) 1 = in the victim's training set",
    "target_sensitivity": "(N, K) victim's per-class input sensitivity (SAMIA's feature)",
    "target_sample_ids": "(N,) pool indices of the target samples",
    "shadow_posteriors": "(M, K) shadows' softmax outputs on their own members then "
    "non-members, pooled (shadow 0 first)",
    "shadow_logits": "(M, K) shadows' pre-softmax outputs",
    "shadow_labels": "(M,) true classes",
    "shadow_membership": "(M,) 1 = in the training set of the shadow that gave the row",
    "shadow_sensitivity": "(M, K) shadows' per-class input sensitivity",
    "shadow_sample_ids": "(M,) pool indices of the shadow rows",
    "shadow_model": "(M,) which shadow (0..S-1) gave each pooled row",
    "ref_sample_ids": "(N,) target samples of the ref_* matrices (= target_sample_ids)",
    "ref_p_y": "(N, S) each shadow's true-class probability on the target samples",
    "ref_phi": "(N, S) each shadow's log(p_y / (1 - p_y)) on the target samples (LiRA)",
    "ref_is_in": "(N, S) bool: shadow s trained on target sample n",
    "population_sample_ids": "(Z,) pool indices of the population (victim's dev split)",
    "population_p_y": "(Z, S) each shadow's true-class probability on the population",
    "target_population_p_y": "(Z,) the victim's true-class probability on the population",
    "refmodel_p_y": "(N, R) with num_references R > 0: each reference model's p_y on the "
    "target samples (online LiRA and RMIA)",
    "refmodel_phi": "(N, R) each reference model's log(p_y / (1 - p_y)) on the target samples",
    "refmodel_is_in": "(N, R) bool: reference model r trained on target sample n",
    "refmodel_population_p_y": "(Z, R) each reference model's p_y on the population",
    "scores_<attack>": "(N,) the attack's scores on the target rows (higher = member)",
    "threshold_<attack>": "() scores >= threshold is the attack's member decision",
    "meta_json": "() JSON string: config, victim, shadows, attacks, keys, miakit_version",
}


def _variant_meta(variant: Variant) -> dict[str, Any]:
    return {
        "label": variant.label,
        "pruner": variant.pruner,
        "sparsity": variant.sparsity,
        "defense": variant.defense.name,
        "defense_params": variant.defense.params(),
    }


def _inputs_arrays(prefix: str, sig: AttackInputs) -> dict[str, np.ndarray]:
    if sig.sensitivity is None or sig.logits is None or sig.membership is None:
        raise ValueError(f"{prefix} signals lack sensitivity, logits or membership")
    if sig.sample_ids is None:
        raise ValueError(f"{prefix} signals lack sample_ids")
    return {
        f"{prefix}_posteriors": np.asarray(sig.posteriors, dtype=np.float64),
        f"{prefix}_logits": np.asarray(sig.logits, dtype=np.float64),
        f"{prefix}_labels": np.asarray(sig.labels, dtype=np.int64),
        f"{prefix}_membership": np.asarray(sig.membership, dtype=np.int64),
        f"{prefix}_sensitivity": np.asarray(sig.sensitivity, dtype=np.float64),
        f"{prefix}_sample_ids": np.asarray(sig.sample_ids, dtype=np.int64),
    }


def check_attacks(attacks: Sequence[str] | None) -> tuple[str, ...]:
    """The attack names to export (``None``: every attack of :data:`~miakit.attacks.ATTACKS`).

    Raises:
        ValueError: a name that is not an attack (the message lists the known ones).
    """
    if attacks is None:
        return tuple(ATTACKS)
    if isinstance(attacks, str):
        raise ValueError(f"attacks must be a list of names, got the string {attacks!r}")
    names = tuple(attacks)
    unknown = [a for a in names if a not in ATTACKS]
    if unknown:
        raise ValueError(
            f"unknown attack(s) {', '.join(map(repr, unknown))}; known attacks: "
            f"{', '.join(ATTACKS)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"attacks are listed twice: {list(names)}")
    return names


def export_signals(
    exp: Experiment,
    path: str | Path,
    victim: Variant = ORIGINAL,
    shadows: Variant | None = None,
    attacks: Sequence[str] | None = None,
) -> Path:
    """Write the victim's and shadows' signals and every attack's scores to one ``.npz``.

    The keys are documented in this module's docstring and in :data:`KEYS`. Everything
    comes from the experiment's cache (:meth:`~miakit.experiment.Experiment.signals`,
    ``shadow_signals``, ``references``, ``attack_scores``), computing what is missing;
    the file is written atomically (a reader never sees half of it).

    Args:
        exp: the experiment whose models to export.
        path: the ``.npz`` file to write (folders are created).
        victim: the victim's variant (default the original model).
        shadows: the shadows' variant; default the victim's (adaptive shadows, as in
            PAPER.md, "SAMIA").
        attacks: names of :data:`miakit.attacks.ATTACKS` to score; ``None``: all of
            them; ``()``: none.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: an unknown attack name, checked before any model is trained.
    """
    names = check_attacks(attacks)
    shadows = victim if shadows is None else shadows
    target = exp.signals("victim", victim)
    per_shadow = [exp.signals(role, shadows) for role in exp.roles()[1:]]
    pooled = exp.shadow_signals(shadows)
    sizes = [s.num_samples for s in per_shadow]
    if sum(sizes) != pooled.num_samples:
        raise ValueError(
            f"the pooled shadow signals have {pooled.num_samples} rows but the shadows "
            f"{sizes}; the experiment's shadow_signals no longer pools its roles in order"
        )
    refs = exp.references(victim, shadows)
    population = exp.signals("victim", victim, "population")

    arrays: dict[str, np.ndarray] = {
        **_inputs_arrays("target", target),
        **_inputs_arrays("shadow", pooled),
        "shadow_model": np.repeat(np.arange(len(sizes), dtype=np.int64), sizes),
        "ref_sample_ids": np.asarray(refs.sample_ids, dtype=np.int64),
        "ref_p_y": refs.p_y,
        "ref_phi": refs.phi,
        "ref_is_in": refs.is_in,
        "population_sample_ids": np.asarray(population.sample_ids, dtype=np.int64),
        "population_p_y": refs.population_p_y,
        "target_population_p_y": refs.target_population_p_y,
    }
    if exp.config.num_references:
        online = exp.references(victim, shadows, "lira_online")
        arrays["refmodel_p_y"], arrays["refmodel_phi"] = online.p_y, online.phi
        arrays["refmodel_is_in"] = online.is_in
        arrays["refmodel_population_p_y"] = online.population_p_y
    for name in names:
        result = exp.attack_scores(name, victim, shadows)
        arrays[f"scores_{name}"] = np.asarray(result.scores, dtype=np.float64)
        arrays[f"threshold_{name}"] = np.asarray(result.threshold, dtype=np.float64)
    meta = {
        "format_version": FORMAT_VERSION,
        "miakit_version": __version__,
        "config": asdict(exp.config),
        "victim": _variant_meta(victim),
        "shadows": _variant_meta(shadows),
        "attacks": list(names),
        "num_shadows": len(sizes),
        "phi_from_logits": bool(refs.phi_from_logits),
        "keys": KEYS,
    }
    arrays["meta_json"] = np.asarray(json.dumps(meta, sort_keys=True, default=str))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: savez would append ".npz" to a name
            np.savez_compressed(f, **arrays)

    return atomic_write(path, write)


def load_signals(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of a file written by :func:`export_signals` (no pickle is read).

    ``json.loads(str(out["meta_json"]))`` gives the metadata record.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    with np.load(Path(path), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
