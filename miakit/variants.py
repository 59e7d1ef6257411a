"""Which version of a model: the original, fine-tuned only, or pruned (and maybe defended).

A :class:`Variant` names a model version independently of any experiment: the pruning
method, the requested sparsity and the defense used during post-pruning fine-tuning
(PAPER.md, "Pruning" and "The defense"). It validates all three when it is built, so a
bad sparsity or defense option fails before any model trains.

:data:`FINETUNED` is the fine-tune-only control (beyond the paper, issue 13): the
original model put through exactly the pruned variants' post-pruning fine-tuning
schedule with nothing pruned (sparsity 0), so "pruned and fine-tuned" can be told from
"fine-tuned": claim 1 (PAPER.md, the claims at its top) is tested at three levels, original,
fine-tuned only, pruned and fine-tuned.

Result tables never parse a variant back from a label: :meth:`Variant.columns` gives
the real columns (``victim_pruner``, ``victim_sparsity``, ``victim_defense``,
``victim_defense_lam``, ...), and :attr:`Variant.label` is for display only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from miakit.defenses import DefenseParams, NoDefense
from miakit.prune import PRUNERS, check_sparsity

__all__ = ["FINETUNED", "FINETUNED_PRUNER", "ORIGINAL", "Variant"]

#: The value of the ``<prefix>_pruner`` column for the original (unpruned) model.
NO_PRUNER = "none"

#: The ``pruner`` (and ``<prefix>_pruner`` column value) of the fine-tune-only control:
#: fine-tuned like a pruned variant, nothing pruned (:data:`FINETUNED`).
FINETUNED_PRUNER = "finetuned"

#: The display label of the fine-tune-only control (:attr:`Variant.label`).
FINETUNED_LABEL = "fine-tuned only"


@dataclass(frozen=True)
class Variant:
    """A model version: the original, or pruned with ``pruner`` at ``sparsity``, defended.

    Attributes:
        pruner: pruning method (a key of :data:`miakit.prune.PRUNERS`),
            :data:`FINETUNED_PRUNER` (``"finetuned"``: the fine-tune-only control, the
            original fine-tuned with nothing pruned), or ``None`` for the original model.
        sparsity: requested sparsity in [0, 1) (0 for the original and the
            fine-tune-only control). The sparsity a pruned model actually has is
            measured and reported separately, as ``realised_sparsity``.
        defense: the defense used during post-pruning fine-tuning, validated options
            included (:class:`~miakit.defenses.NoDefense`: plain fine-tuning with early
            stopping; build others with :func:`~miakit.defenses.make_defense`).

    Raises:
        ValueError: an unknown pruner, a sparsity outside [0, 1), a defense on the
            original model, or a sparsity other than 0 for the fine-tune-only control.
        TypeError: ``defense`` is not a :class:`~miakit.defenses.DefenseParams`.

    Example:
        >>> Variant("l1_unstructured", 0.7).columns("victim")["victim_sparsity"]
        0.7
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
        if self.pruner == FINETUNED_PRUNER:
            if check_sparsity(self.sparsity) != 0.0:
                raise ValueError(
                    f"the fine-tune-only control ({FINETUNED_PRUNER!r}) prunes nothing, so its "
                    f"sparsity is 0, got {self.sparsity!r}; use a pruning method "
                    f"({', '.join(PRUNERS)}) for a pruned model"
                )
            object.__setattr__(self, "sparsity", 0.0)
            return
        if not isinstance(self.pruner, str) or self.pruner not in PRUNERS:
            raise ValueError(
                f"unknown pruning method {self.pruner!r}; known methods: {', '.join(PRUNERS)} "
                f"({FINETUNED_PRUNER!r}: the fine-tune-only control, nothing pruned)"
            )
        object.__setattr__(self, "sparsity", check_sparsity(self.sparsity))

    @property
    def is_original(self) -> bool:
        """Whether this is the original model (neither pruned nor fine-tuned)."""
        return self.pruner is None

    @property
    def prunes(self) -> bool:
        """Whether this variant prunes (not the original, not the fine-tune-only control)."""
        return self.pruner is not None and self.pruner != FINETUNED_PRUNER

    def columns(self, prefix: str) -> dict[str, Any]:
        """The variant as result-table columns, each name starting with ``prefix_``.

        ``<prefix>_pruner`` (``"none"`` for the original), ``<prefix>_sparsity`` (the
        requested value), ``<prefix>_defense`` and one ``<prefix>_defense_<option>``
        per option of the defense (e.g. ``victim_defense_lam``).
        """
        out: dict[str, Any] = {
            f"{prefix}_pruner": self.pruner or NO_PRUNER,
            f"{prefix}_sparsity": self.sparsity,
            f"{prefix}_defense": self.defense.name,
        }
        out.update({f"{prefix}_defense_{k}": v for k, v in sorted(self.defense.params().items())})
        return out

    @property
    def label(self) -> str:
        """Short display name: ``original``, ``fine-tuned only``, ``l1_unstructured@0.7``,
        ``...+ppb(lam=4.0)``.

        For printing only; tables carry :meth:`columns`, and nothing parses a label.
        """
        if self.pruner is None:
            return "original"
        out = FINETUNED_LABEL if not self.prunes else f"{self.pruner}@{self.sparsity:g}"
        if self.defense.name != "none":
            params = sorted(self.defense.params().items())
            args = ",".join(f"{k}={v}" for k, v in params if v is not None)
            out += f"+{self.defense.name}({args})"
        return out


ORIGINAL = Variant()
"""The original (unpruned, undefended) model."""

FINETUNED = Variant(FINETUNED_PRUNER)
"""The fine-tune-only control: the original model fine-tuned on the post-pruning schedule
(``ExperimentConfig.finetune_config``) with nothing pruned (``victim_pruner ==
"finetuned"``, label ``"fine-tuned only"``)."""
