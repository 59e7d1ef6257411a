"""What a reviewer sees in a figure, checked: every text it draws, and its width.

:func:`figure_problems` lists what breaks the house rules of issue 13, item 7: an
internal id (``l1_unstructured``, ``tpr@1%fpr``, ``victim_pruner``, a bare registry key
such as ``samia``) in a title, label, legend, tick or annotation, or a width other than
a column's or the page's. The tests run it on every helper; a notebook test may run it
on every figure it saves.
"""

from __future__ import annotations

import re
from typing import Any

from matplotlib.figure import Figure
from matplotlib.text import Text

from miakit.plots.names import display_name
from miakit.plots.style import WIDTHS

__all__ = ["RAW_ID", "figure_problems", "figure_texts", "internal_ids"]

RAW_ID = re.compile(
    r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+"  # snake_case: l1_unstructured, victim_pruner
    r"|tpr@|%fpr"  # metric ids: tpr@1%fpr
)
"""A raw id inside a text: a ``snake_case`` name or a metric id such as ``tpr@1%fpr``."""


def figure_texts(fig: Figure) -> list[str]:
    """Every non-empty visible text the figure draws, after a layout pass.

    Titles (panel and figure), axis labels, tick labels, legend titles and entries,
    annotations and colour-bar labels: every :class:`matplotlib.text.Text`.
    """
    fig.draw_without_rendering()  # tick labels exist only once drawn
    texts = fig.findobj(lambda a: isinstance(a, Text) and a.get_visible())
    return [t.get_text() for t in texts if t.get_text().strip()]


def _registry_keys() -> set[str]:
    """Registry keys whose shown text is not the key itself (``samia`` is ``SAMIA``)."""
    from miakit.attacks import ATTACKS
    from miakit.data import DATASETS
    from miakit.defenses import DEFENSES
    from miakit.prune import PRUNERS

    keys: set[Any] = {*ATTACKS, *PRUNERS, *DEFENSES, *DATASETS}
    return {k for k in keys if display_name(k) != k}


def internal_ids(fig: Figure) -> list[str]:
    """The texts of ``fig`` that show an internal id instead of the paper's words.

    A text containing a ``snake_case`` name or a metric id (:data:`RAW_ID`), or a text
    that is exactly a registry key shown otherwise elsewhere (``"samia"``, ``"dpsgd"``).
    Mathtext (``$...$``, e.g. log-axis ticks) is not read as an id.
    """
    keys = _registry_keys()
    out = []
    for text in figure_texts(fig):
        plain = re.sub(r"\$[^$]*\$", "", text)
        if RAW_ID.search(plain) or plain.strip() in keys:
            out.append(text)
    return out


def figure_problems(fig: Figure) -> list[str]:
    """What breaks the figure rules: internal ids shown, a width that is not allowed.

    Returns:
        One line per problem (empty when the figure is fine).
    """
    problems = [f"internal id shown: {text!r}" for text in internal_ids(fig)]
    width = float(fig.get_size_inches()[0])
    if min(abs(width - w) for w in WIDTHS) > 1e-6:
        problems.append(
            f"width {width:g} in is neither a column ({WIDTHS[0]:g} in) nor the page "
            f"({WIDTHS[1]:g} in); pass figsize=(plots.COLUMN_WIDTH, h) or (plots.FULL_WIDTH, h)"
        )
    return problems
