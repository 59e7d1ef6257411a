"""The registry of pruning methods, :data:`PRUNERS`, and :func:`prune_model` (PAPER.md, "Pruning").

Adding a method is one masks function (the :class:`~miakit.prune.methods.Pruner`
protocol) and one :data:`PRUNERS` line:

    >>> def random_masks(model, sparsity):  # doctest: +SKIP
    ...     return {(m, "weight"): (torch.rand_like(m.weight) >= sparsity).float()
    ...             for m in model.modules() if isinstance(m, nn.Linear)}
    >>> PRUNERS["random"] = PrunerSpec("random", "random", random_masks)  # doctest: +SKIP
    >>> prune_model(model, "random", 0.5)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from miakit.prune.masks import apply_masks
from miakit.prune.methods import (
    Pruner,
    l1_structured_masks,
    l1_unstructured_masks,
    l2_structured_masks,
)
from miakit.prune.slimming import slimming_masks

__all__ = ["PRUNERS", "PrunerSpec", "prune_model"]


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PrunerSpec:
    """One pruning method of :data:`PRUNERS`: its name, display title and masks function.

    Calling the spec prunes in place, like the method's function:
    ``PRUNERS["slimming"](model, 0.5)`` is ``slimming(model, 0.5)``.

    Attributes:
        name: the registry key, e.g. ``"l1_unstructured"``.
        title: the name in figures and tables, e.g. ``"L1 unstructured"``.
        masks: the :class:`Pruner` that computes the method's masks.
    """

    name: str
    title: str
    masks: Pruner

    def prune(self, model: nn.Module, sparsity: float, **options: Any) -> nn.Module:
        """Prune ``model`` in place with this method; ``options`` go to :attr:`masks`."""
        return apply_masks(model, self.masks(model, sparsity, **options), method=self.name)

    def __call__(self, model: nn.Module, sparsity: float, **options: Any) -> nn.Module:
        return self.prune(model, sparsity, **options)


PRUNERS: dict[str, PrunerSpec] = {
    spec.name: spec
    for spec in (
        PrunerSpec("l1_unstructured", "L1 unstructured", l1_unstructured_masks),
        PrunerSpec("l1_structured", "L1 structured", l1_structured_masks),
        PrunerSpec("l2_structured", "L2 structured", l2_structured_masks),
        PrunerSpec("slimming", "network slimming", slimming_masks),
    )
}
"""The paper's four pruning methods, by name (PAPER.md, "Pruning")."""


def prune_model(model: nn.Module, method: str, sparsity: float, **opts: Any) -> nn.Module:
    """Prune ``model`` in place with the method named ``method`` (a key of :data:`PRUNERS`).

    PAPER.md, "Pruning". ``opts`` go to the method (``scope=``, ``mask_bn=``).

    Raises:
        ValueError: an unknown ``method`` (the message lists the known ones), or any
            error of the method itself.

    Example:
        >>> prune_model(model, "slimming", 0.5)  # doctest: +SKIP
    """
    if not isinstance(method, str) or method not in PRUNERS:
        raise ValueError(f"unknown pruning method {method!r}; known methods: {', '.join(PRUNERS)}")
    return PRUNERS[method].prune(model, sparsity, **opts)
