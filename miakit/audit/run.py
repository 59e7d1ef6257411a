"""``audit()``: every attack the kit has against a user's (pruned) checkpoint (issue 15).

The audit mimics the user's setting: shadow models of the same architecture on the same
dataset (the paper's split at the audit's seed), pruned with the user's method and
sparsity (given, or, for a checkpoint with zeros, L1 unstructured at its realised
sparsity, said in the result), trained or reused from the cache. Each attack is fitted
on those shadows (the reference attacks on reference models pruned alike) and scores
the user's model on its members and non-members (:mod:`~miakit.audit.members`). With a
dense checkpoint as well, the dense model is attacked with unpruned shadows and the
pair with :class:`~miakit.audit.pair.PairAttack`, calibrated on shadow pairs.

Every metric carries its 95% bootstrap interval over the targets (one model, one seed:
the interval is over samples). The reference attacks (LiRA, RMIA) need reference models
scored on the targets, which the cache holds for the paper's split only; with a members
file they are left out, and the result says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from miakit.attacks import ATTACKS, AttackInputs, AttackScores
from miakit.audit.checkpoints import LoadedWeights, load_weights
from miakit.audit.compare import class_change, label, versus
from miakit.audit.members import Membership, membership
from miakit.audit.pair import PairAttack
from miakit.audit.target import target_signals
from miakit.experiment import Experiment, from_parameters
from miakit.metrics import results_frame
from miakit.models import build_model
from miakit.prune.sparsity import SparsityReport, sparsity_report
from miakit.tables import standard_errors, summarise
from miakit.variants import ORIGINAL, Variant

__all__ = ["AuditResult", "audit"]

#: Below this realised sparsity a checkpoint counts as dense.
DENSE_BELOW = 0.01


@dataclass(frozen=True, eq=False)
class AuditResult:
    """What :func:`audit` measured.

    Attributes:
        checkpoint: the file audited; ``format`` how it was stored.
        arch, dataset: the architecture and dataset.
        membership: where the members came from, and their counts.
        shadows: the shadows' variant label; ``inferred`` when the method and sparsity
            were read from the checkpoint rather than given.
        sparsity: the checkpoint's realised sparsity, per layer and overall.
        accuracy: ``members`` and ``nonmembers`` (held-out) accuracy of the model.
        attacks: one row per model x attack: balanced accuracy, AUC, TPR at 0.1% and 1%
            FPR with their intervals, realised FPRs and counts; ``model`` is ``pruned``
            (the checkpoint), ``dense`` or ``pair``.
        per_class: per-class metrics of the strongest attack on each model.
        roc: ``(fpr, tpr)`` of each row's ROC curve, by ``"<model>/<attack>"``.
        exposed: with a dense checkpoint, the members whose score under the strongest
            single attack rose most from dense to pruned (top 20).
        differences: with a dense checkpoint, the pair attack minus the strongest attack
            on each model alone, and the strongest attack on the pruned model minus the
            same attack on the dense one, per metric, with a paired bootstrap 95%
            interval (the same resampled targets for both;
            :func:`~miakit.audit.compare.versus`).
        class_change: with a dense checkpoint, that attack's per-class AUC, pruned minus
            dense, with intervals (:func:`~miakit.audit.compare.class_change`).
        notes: what the audit assumed or left out, in words.
    """

    checkpoint: Path
    format: str
    arch: str
    dataset: str
    membership: str
    shadows: str
    inferred: bool
    sparsity: SparsityReport
    accuracy: dict[str, float]
    attacks: pd.DataFrame
    per_class: pd.DataFrame
    roc: dict[str, tuple[np.ndarray, np.ndarray]]
    exposed: pd.DataFrame | None = None
    differences: pd.DataFrame | None = None
    class_change: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    def strongest(self, model: str = "pruned") -> pd.Series:
        """The row of ``model``'s attack with the highest AUC."""
        rows = self.attacks[self.attacks["model"] == model]
        return rows.loc[rows["auc"].idxmax()]


def _shadow_variant(
    pruner: str | None, sparsity: float | None, report: SparsityReport
) -> tuple[Variant, bool]:
    if pruner is not None:
        return Variant(pruner, report.sparsity if sparsity is None else sparsity), False
    if report.sparsity < DENSE_BELOW:
        return ORIGINAL, False
    return Variant("l1_unstructured", round(report.sparsity, 2)), True


def _accuracy(inputs: AttackInputs) -> dict[str, float]:
    right = inputs.posteriors.argmax(1) == inputs.labels
    member = inputs.membership == 1
    return {"members": float(right[member].mean()), "nonmembers": float(right[~member].mean())}


def _run(
    exp: Experiment, names: list[str], shadows: Variant, inputs: AttackInputs, model: str
) -> list[AttackScores]:
    out = []
    for name in names:
        scores = exp.fitted_attack(name, shadows).score(inputs)
        out.append(_tagged(scores, model, shadows))
    return out


def _tagged(scores: AttackScores, model: str, shadows: Variant) -> AttackScores:
    return dataclasses.replace(scores, columns={"model": model, "shadows": shadows.label})


def _table(all_scores: list[AttackScores], seed: int) -> pd.DataFrame:
    frame = results_frame([s.result() for s in all_scores])
    errors = pd.DataFrame([standard_errors(s, seed=seed) for s in all_scores])
    frame = pd.concat([frame.reset_index(drop=True), errors], axis=1).assign(seed=seed)
    return summarise(frame).drop(columns="seeds")


def audit(
    checkpoint: str | Path,
    arch: str,
    dataset: str,
    *,
    members: str | Path | None = None,
    dense_checkpoint: str | Path | None = None,
    pruner: str | None = None,
    sparsity: float | None = None,
    profile: str = "quick",
    seed: int | None = None,
    attacks: list[str] | None = None,
    device: str = "auto",
    progress: bool = True,
    store: Any = None,
) -> AuditResult:
    """Audit a checkpoint (see the module docstring).

    Args:
        checkpoint: the (pruned) model to audit (:func:`~miakit.audit.load_weights`).
        arch, dataset: a key of :data:`miakit.models.ARCHS` and of the dataset registry.
        members: the model's training indices (text or ``.npy``); default the paper's
            split at ``seed``.
        dense_checkpoint: the dense original, when it is released too.
        pruner, sparsity: the user's pruning, which the shadows copy.
        profile: the kit's profile for the shadows' training (``quick``, ``paper``).
        seed: the split seed (default the profile's).
        attacks: attack names (default every attack the profile runs).
        device, progress, store: as :class:`~miakit.experiment.Experiment`'s.
    """
    exp = from_parameters(
        profile, dataset=dataset, arch=arch, seed=seed, device=device, progress=progress,
        store=store,
    )  # fmt: skip
    shape = tuple(exp.data.x.shape[1:])

    def load(path: str | Path) -> LoadedWeights:
        fresh = build_model(arch, num_classes=exp.data.num_classes, input_shape=shape)
        return load_weights(path, fresh, arch)

    loaded = load(checkpoint)
    report = sparsity_report(loaded.model, shape)
    variant, inferred = _shadow_variant(pruner, sparsity, report)
    notes = []
    if inferred:
        notes.append(
            f"no --pruner given: the shadows were pruned with L1 unstructured at the "
            f"checkpoint's realised sparsity ({variant.sparsity:g})"
        )
    targets: Membership = membership(exp.splits, len(exp.data), members, seed=exp.config.split_seed)
    names = list(attacks) if attacks else exp.attack_names()
    unknown = [n for n in names if n not in ATTACKS]
    if unknown:
        raise ValueError(f"unknown attack(s) {unknown}; known: {', '.join(ATTACKS)}")
    if members is not None:
        left = [n for n in names if "references" in ATTACKS[n].uses]
        names = [n for n in names if n not in left]
        if left:
            notes.append(
                f"left out {', '.join(left)}: reference attacks need reference models scored "
                "on the targets, which the audit has for the paper's split only"
            )
    inputs = target_signals(loaded.model, exp, targets)
    scores = _run(exp, names, variant, inputs, "pruned")
    exposed = differences = changed = None
    if dense_checkpoint is not None:
        dense_inputs = target_signals(load(dense_checkpoint).model, exp, targets)
        dense = _run(exp, names, ORIGINAL, dense_inputs, "dense")
        pair = PairAttack(seed=exp.config.seed).fit(
            exp.shadow_signals(ORIGINAL), exp.shadow_signals(variant)
        )
        scores += dense + [_tagged(pair.score(dense_inputs, inputs), "pair", variant)]
        best = max(range(len(names)), key=lambda i: scores[i].result().auc)
        rise = scores[best].scores - dense[best].scores
        member = np.flatnonzero(inputs.membership == 1)
        top = member[np.argsort(-rise[member], kind="stable")[:20]]
        dense_best = max(dense, key=lambda d: d.result().auc)
        pairs = [(scores[-1], scores[best]), (scores[-1], dense_best), (scores[best], dense[best])]
        differences = versus(pairs, exp.config.seed)
        changed = class_change(dense[best], scores[best], exp.config.seed)
        exposed = pd.DataFrame(
            {
                "sample": inputs.sample_ids[top],
                "label": inputs.labels[top],
                "attack": names[best],
                "dense_score": dense[best].scores[top],
                "pruned_score": scores[best].scores[top],
                "rise": rise[top],
            }
        )
    table = _table(scores, exp.config.seed)
    per_class = []
    for model in dict.fromkeys(s.columns["model"] for s in scores):
        mine = [s for s in scores if s.columns["model"] == model]
        per_class.append(max(mine, key=lambda s: s.result().auc).per_class())
    return AuditResult(
        checkpoint=Path(checkpoint),
        format=loaded.format,
        arch=arch,
        dataset=dataset,
        membership=f"{targets.source}: {len(targets.members)} members, "
        f"{len(targets.nonmembers)} non-members",
        shadows=variant.label,
        inferred=inferred,
        sparsity=report,
        accuracy=_accuracy(inputs),
        attacks=table,
        per_class=pd.concat(per_class, ignore_index=True),
        roc={label(s): s.roc() for s in scores},
        exposed=exposed,
        differences=differences,
        class_change=changed,
        notes=notes,
    )
