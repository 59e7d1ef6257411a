"""Sentences and Markdown tables built from result tables, for the notebooks' conclusions.

A notebook's "what we measured" paragraph is a code cell that calls one of these on the
run's own tables and displays the Markdown, so every number in it is the run's and the
same text is true under the smoke, quick and paper profiles (issue 13). The building
blocks are in :mod:`~miakit.narrate.core`; each topic's paragraphs in its own module:
:mod:`~miakit.narrate.models` (01, 02), :mod:`~miakit.narrate.divergence` (03),
:mod:`~miakit.narrate.attacks` (04, 07), :mod:`~miakit.narrate.sweeps` (05),
:mod:`~miakit.narrate.knowledge` (06), :mod:`~miakit.narrate.defenses` (08) and
:mod:`~miakit.narrate.beyond` (09).
"""

from miakit.narrate import (  # noqa: E402  (the topic modules read the building blocks)
    attacks,
    beyond,
    defenses,
    divergence,
    knowledge,
    models,
    sweeps,
)
from miakit.narrate.core import (
    accuracy_sentence,
    difference_sentence,
    interval,
    interval_pivot,
    markdown_table,
    ranking_sentence,
    shown,
)

__all__ = [
    "attacks",
    "beyond",
    "defenses",
    "divergence",
    "knowledge",
    "models",
    "sweeps",
    "accuracy_sentence",
    "difference_sentence",
    "interval",
    "interval_pivot",
    "markdown_table",
    "ranking_sentence",
    "shown",
]
