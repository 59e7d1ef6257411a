"""Attack results: :class:`AttackResult`, :func:`evaluate_attack`, tidy result frames.

One :class:`AttackResult` per attack on one model holds the paper's attack accuracy and
the low-FPR metrics (PAPER.md, "Reporting"); :func:`results_frame` stacks them into one
row each and :func:`per_class_results` splits one attack's metrics by class.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from miakit.metrics._checks import as_decisions, as_labels, as_membership, as_values
from miakit.metrics.accuracy import balanced_accuracy
from miakit.metrics.roc import TprAtFpr, roc_auc, tpr_at_fpr

__all__ = [
    "RESULT_COLUMNS",
    "AttackResult",
    "evaluate_attack",
    "per_class_results",
    "results_frame",
    "summary",
]

# The two low false-positive rates every AttackResult reports, with the column suffix used for them.
_LOW_FPRS: tuple[tuple[float, str], ...] = ((0.001, "@0.1%fpr"), (0.01, "@1%fpr"))

RESULT_COLUMNS: tuple[str, ...] = (
    "attack",
    "balanced_accuracy",
    "auc",
    *(f"{q}{suffix}" for _, suffix in _LOW_FPRS for q in ("tpr", "realised_fpr", "tp", "fp")),
    "n_members",
    "n_nonmembers",
)
"""Columns of :func:`results_frame` after the tag columns, in order."""


@dataclass(frozen=True)
class AttackResult:
    """One attack against one model: the paper's accuracy plus the modern metrics.

    Attributes:
        attack: the attack's name (e.g. ``"mentr"``, ``"samia"``).
        balanced_accuracy: balanced attack accuracy of the hard decisions
            (the paper's "attack accuracy"; PAPER.md, "Reporting").
        auc: ROC AUC of the continuous scores.
        at_fpr_0_1pct: TPR at 0.1% FPR with realised FPR and counts.
        at_fpr_1pct: TPR at 1% FPR with realised FPR and counts.
        n_members: members in the evaluation set.
        n_nonmembers: non-members in the evaluation set.
        tags: free-form labels of what was attacked (dataset, model,
            pruning method, sparsity, defense, ...); they become the leading
            columns of :func:`results_frame`. Keys must be strings that do
            not clash with :data:`RESULT_COLUMNS`.
    """

    attack: str
    balanced_accuracy: float
    auc: float
    at_fpr_0_1pct: TprAtFpr
    at_fpr_1pct: TprAtFpr
    n_members: int
    n_nonmembers: int
    tags: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        """Check the tag keys and keep a private copy of the tags."""
        tags = dict(self.tags)
        bad = [k for k in tags if not isinstance(k, str)]
        if bad:
            raise ValueError(f"tag keys must be strings, got {bad!r}")
        clash = sorted(set(tags) & set(RESULT_COLUMNS))
        if clash:
            raise ValueError(
                f"tag keys {clash} clash with result columns {list(RESULT_COLUMNS)}; rename them"
            )
        # A private copy, so later edits of the caller's dict do not leak into the result.
        object.__setattr__(self, "tags", tags)

    @property
    def tpr_at_0_1pct_fpr(self) -> float:
        """TPR at 0.1% FPR (realised FPR in ``at_fpr_0_1pct.fpr_realised``)."""
        return self.at_fpr_0_1pct.tpr

    @property
    def tpr_at_1pct_fpr(self) -> float:
        """TPR at 1% FPR (realised FPR in ``at_fpr_1pct.fpr_realised``)."""
        return self.at_fpr_1pct.tpr

    def metrics(self) -> dict[str, Any]:
        """The result as one flat row keyed by :data:`RESULT_COLUMNS` (tags excluded)."""
        row: dict[str, Any] = {
            "attack": self.attack,
            "balanced_accuracy": self.balanced_accuracy,
            "auc": self.auc,
        }
        for (_, suffix), low in zip(_LOW_FPRS, (self.at_fpr_0_1pct, self.at_fpr_1pct), strict=True):
            row[f"tpr{suffix}"] = low.tpr
            row[f"realised_fpr{suffix}"] = low.fpr_realised
            row[f"tp{suffix}"] = low.tp
            row[f"fp{suffix}"] = low.fp
        row["n_members"] = self.n_members
        row["n_nonmembers"] = self.n_nonmembers
        return row

    def to_row(self) -> dict[str, Any]:
        """Tags first, then :meth:`metrics`: one row of :func:`results_frame`."""
        return {**self.tags, **self.metrics()}


def evaluate_attack(
    name: str,
    membership: Any,
    scores: Any,
    decisions: Any,
    tags: Mapping[str, Any] | None = None,
) -> AttackResult:
    """Score one attack on one evaluation set (PAPER.md, "Reporting").

    Args:
        name: the attack's name, e.g. ``attack.name``.
        membership: ``(n,)`` 0/1 truth, 1 = member.
        scores: ``(n,)`` the attack's continuous scores (``attack.score(target)``),
            used for AUC and TPR at low FPR.
        decisions: ``(n,)`` the attack's hard 0/1 decisions (``attack.decide(target)``),
            used for balanced accuracy.
        tags: labels of what was attacked (model, pruning, sparsity, defense, ...).

    Returns:
        An :class:`AttackResult`.

    Raises:
        ValueError: on bad shapes or values, or a set lacking members or non-members.

    Example:
        >>> r = evaluate_attack("conf", [1, 0], [0.9, 0.2], [1, 0], tags={"model": "fc"})
        >>> (r.balanced_accuracy, r.auc, r.tpr_at_1pct_fpr)
        (1.0, 1.0, 1.0)
    """
    m = as_membership(membership)
    s = as_values(scores, m.size, "scores")
    d = as_decisions(decisions, m.size)
    n_members = int(m.sum())
    low = [tpr_at_fpr(m, s, target) for target, _ in _LOW_FPRS]
    return AttackResult(
        attack=str(name),
        balanced_accuracy=balanced_accuracy(m, d),
        auc=roc_auc(m, s),
        at_fpr_0_1pct=low[0],
        at_fpr_1pct=low[1],
        n_members=n_members,
        n_nonmembers=m.size - n_members,
        tags=dict(tags or {}),
    )


def results_frame(results: AttackResult | Iterable[AttackResult]) -> pd.DataFrame:
    """A tidy table of attack results: one row per attacked model x attack.

    The tag columns come first, in order of first appearance across
    ``results`` (a result without some tag gets NaN there), then
    :data:`RESULT_COLUMNS`.

    Args:
        results: one :class:`AttackResult` or any iterable of them.

    Returns:
        A ``pandas.DataFrame`` (empty, with the metric columns, for no results).

    Raises:
        ValueError: when an item is not an :class:`AttackResult`.
    """
    items = [results] if isinstance(results, AttackResult) else list(results)
    tag_keys: dict[str, None] = {}
    for r in items:
        if not isinstance(r, AttackResult):
            raise ValueError(
                f"results_frame takes AttackResult objects (from evaluate_attack), got {type(r)}"
            )
        tag_keys.update(dict.fromkeys(r.tags))
    columns = [*tag_keys, *RESULT_COLUMNS]
    return pd.DataFrame([r.to_row() for r in items], columns=columns)


def _nan_metrics() -> dict[str, Any]:
    row = {c: math.nan for c in RESULT_COLUMNS if c not in ("attack", "n_members", "n_nonmembers")}
    return row


def per_class_results(membership: Any, scores: Any, decisions: Any, labels: Any) -> pd.DataFrame:
    """Attack metrics computed separately for each ground-truth class.

    The paper finds that pruning changes privacy risk differently from class
    to class (PAPER.md, claim 1); this table shows it for any attack. A
    class whose evaluation samples are all members or all non-members gets
    its counts and NaN metrics.

    Args:
        membership: ``(n,)`` 0/1 truth, 1 = member.
        scores: ``(n,)`` the attack's continuous scores.
        decisions: ``(n,)`` the attack's hard 0/1 decisions.
        labels: ``(n,)`` ground-truth classes.

    Returns:
        A DataFrame with one row per class present in ``labels`` (sorted):
        ``class``, ``n_members``, ``n_nonmembers``, then the metric columns
        of :data:`RESULT_COLUMNS` (without ``attack``).

    Raises:
        ValueError: on bad shapes or values, or a set lacking members or non-members.
    """
    m = as_membership(membership)
    s = as_values(scores, m.size, "scores")
    d = as_decisions(decisions, m.size)
    y = as_labels(labels, m.size)
    classes, inverse = np.unique(y, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(classes.size + 1))
    metric_cols = [c for c in RESULT_COLUMNS if c not in ("attack", "n_members", "n_nonmembers")]
    rows = []
    for k, c in enumerate(classes.tolist()):
        idx = order[bounds[k] : bounds[k + 1]]
        mk = m[idx]
        n_members = int(mk.sum())
        row: dict[str, Any] = {"class": c, "n_members": n_members}
        row["n_nonmembers"] = idx.size - n_members
        if 0 < n_members < idx.size:
            row.update(evaluate_attack("", mk, s[idx], d[idx]).metrics())
        else:
            row.update(_nan_metrics())
        rows.append({key: row[key] for key in ("class", "n_members", "n_nonmembers", *metric_cols)})
    return pd.DataFrame(rows, columns=["class", "n_members", "n_nonmembers", *metric_cols])


def summary(frame: pd.DataFrame, *, by: Sequence[str] = ()) -> str:
    """A short text of a results frame, one line per row, for logs and the command line.

    In the spirit of TensorFlow Privacy's ``AttackResults.summary()``: each line names the
    attack (and the ``by`` columns, e.g. ``("victim_pruner", "victim_sparsity")``), then
    balanced accuracy, AUC and TPR at 1% FPR. The best AUC is named at the end.

    Raises:
        KeyError: ``frame`` lacks ``attack``, a metric column or a ``by`` column.
    """
    needed = ("attack", "balanced_accuracy", "auc", "tpr@1%fpr", *by)
    missing = [c for c in needed if c not in frame]
    if missing:
        raise KeyError(f"summary needs the columns {missing} (a results_frame has them)")
    lines = []
    for _, row in frame.iterrows():
        where = " ".join(f"{c}={row[c]}" for c in by)
        lines.append(
            f"{row['attack']:<10} {where + ' ' if where else ''}acc {row['balanced_accuracy']:.3f}"
            f"  AUC {row['auc']:.3f}  TPR@1%FPR {row['tpr@1%fpr']:.3f}"
        )
    if len(frame):
        best = frame.loc[frame["auc"].idxmax()]
        lines.append(f"best AUC: {best['attack']} ({best['auc']:.3f})")
    return "\n".join(lines)
