"""Sentences and Markdown tables built from result tables, for the notebooks' conclusions.

A notebook's "what we measured" paragraph is a code cell that calls one of these on the
run's own tables and displays the Markdown, so every number in it is the run's and the
same text is true under the smoke, quick and paper profiles (issue 13). The building
blocks are in :mod:`~miakit.narrate.core`; each topic's paragraphs in its own module.
"""

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
    "accuracy_sentence",
    "difference_sentence",
    "interval",
    "interval_pivot",
    "markdown_table",
    "ranking_sentence",
    "shown",
]
