"""The paper's four claims, checked: one row per claim, with the kit's figure and a verdict.

PAPER.md lists four claims (its title section). :func:`claims_table` measures each on
one experiment, over all its seeds (:meth:`~miakit.experiment.Experiment.replicates`),
as a *paired* difference with a 95% interval (:func:`miakit.tables.difference`,
:func:`miakit.metrics.intervals.seed_interval`), and gives a verdict by one stated rule
(:func:`verdict`): **holds** when the interval excludes 0 in the paper's direction,
**reversed** when it excludes 0 the other way, **not shown** otherwise. Where PAPER.md
reports a number for the claim (the confidence means of the divergence analysis) it is
beside the kit's, from :mod:`miakit.reported`; PAPER.md reports no attack accuracy or
PPB trade-off figure, so those rows give the paper's direction only.

:func:`claims_markdown` renders the table as the sentences a notebook or the README
shows, so no number in them is typed by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from miakit import reported, tables
from miakit.attacks import BASELINES
from miakit.experiment import Experiment
from miakit.metrics.intervals import Interval, seed_interval
from miakit.plots.style import display_name
from miakit.variants import ORIGINAL, Variant

__all__ = [
    "CLAIM_ATTACK",
    "CLAIMS_COLUMNS",
    "VERDICTS",
    "ACCURACY_TOLERANCE",
    "README_END",
    "README_START",
    "claims_markdown",
    "claims_table",
    "read_claims",
    "verdict",
    "with_claims_block",
]

#: The attack the pruning and defense claims are measured with: Conf, the strongest
#: threshold attack of the paper's eight on every profile measured so far, which needs
#: no attack network (PAPER.md, "The eight existing attacks").
CLAIM_ATTACK = "conf"

#: How much test accuracy a defense may cost and still "keep the pruned model's
#: accuracy" (claim 4): two points, stated here because PAPER.md gives no threshold.
ACCURACY_TOLERANCE = 0.02

#: The verdicts of :func:`verdict`.
VERDICTS: tuple[str, ...] = ("holds", "reversed", "not shown")

CLAIMS_COLUMNS: tuple[str, ...] = (
    "claim",
    "statement",
    "measure",
    "paper",
    "kit",
    "kit_low",
    "kit_high",
    "seeds",
    "rule",
    "verdict",
)


def verdict(interval: Interval, direction: int = 1, margin: float = 0.0) -> str:
    """The verdict on a claim from its paired difference's interval.

    Args:
        interval: the paired difference's interval.
        direction: ``+1`` when the paper says the difference is positive, ``-1`` negative.
        margin: the bound the interval must clear in ``direction`` (0: a difference at
            all; negative: a tolerated loss, as for claim 4's accuracy).

    Returns:
        ``"holds"`` when the whole interval lies beyond ``margin`` in ``direction``;
        ``"reversed"`` when it lies entirely on the other side of 0; else ``"not shown"``
        (also when the interval is undefined: one seed without a sampling error).
    """
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction!r}")
    low, high = (interval.low, interval.high) if direction == 1 else (-interval.high, -interval.low)
    if not (np.isfinite(low) and np.isfinite(high)):
        return "not shown"
    if low > margin:
        return "holds"
    if high < 0:
        return "reversed"
    return "not shown"


def _row(claim: int, statement: str, measure: str, frame: pd.DataFrame, **kw: Any) -> dict:
    """One claims row from a per-seed frame of paired differences (``value``, ``value_se``)."""
    iv = seed_interval(frame["value"].to_numpy(), frame["value_se"].to_numpy())
    direction, margin = kw.get("direction", 1), kw.get("margin", 0.0)
    sign = ">" if direction == 1 else "<"
    rule = kw.get("rule") or f"holds if the 95% interval lies {sign} {margin:g}"
    return {
        "claim": claim,
        "statement": statement,
        "measure": measure,
        "paper": kw.get("paper", np.nan),
        "kit": iv.mean,
        "kit_low": iv.low,
        "kit_high": iv.high,
        "seeds": iv.seeds,
        "rule": rule,
        "verdict": verdict(iv, direction, margin),
    }


def _auc_difference(exp: Experiment, victim: Variant, baseline: Variant, **kw: Any) -> pd.DataFrame:
    diff = tables.difference(exp, victim, baseline, [kw.pop("attack", CLAIM_ATTACK)], **kw)
    return diff.rename(columns={"auc": "value", "auc_se": "value_se"})


def _gap_difference(exp: Experiment, victim: Variant, baseline: Variant) -> pd.DataFrame:
    """Per seed: the change of the member - non-member confidence gap, paired per sample."""
    rows = []
    for rep in exp.replicates():
        a, b = rep.signals("victim", victim), rep.signals("victim", baseline)
        delta = a.p_y - b.p_y
        members = a.membership == 1
        dm, dn = delta[members], delta[~members]
        se = np.hypot(dm.std(ddof=1) / np.sqrt(dm.size), dn.std(ddof=1) / np.sqrt(dn.size))
        rows.append({"seed": rep.config.seed, "value": dm.mean() - dn.mean(), "value_se": se})
    return pd.DataFrame(rows)


def _accuracy_difference(exp: Experiment, victim: Variant, baseline: Variant) -> pd.DataFrame:
    """Per seed: the change of test accuracy (non-members), paired per sample."""
    rows = []
    for rep in exp.replicates():
        a, b = rep.signals("victim", victim), rep.signals("victim", baseline)
        test = a.membership == 0
        right_a = a.posteriors[test].argmax(1) == a.labels[test]
        right_b = b.posteriors[test].argmax(1) == b.labels[test]
        delta = right_a.astype(float) - right_b.astype(float)
        se = delta.std(ddof=1) / np.sqrt(delta.size)
        rows.append({"seed": rep.config.seed, "value": delta.mean(), "value_se": se})
    return pd.DataFrame(rows)


def claims_table(
    exp: Experiment,
    *,
    pruned: Variant | None = None,
    sparsities: Sequence[float] | None = None,
    defended: Variant | None = None,
    control: Variant | None = None,
) -> pd.DataFrame:
    """The four claims of PAPER.md, each measured on ``exp`` with an interval and a verdict.

    Rows (``claim`` 1-4; see :data:`CLAIMS_COLUMNS`):

    1. Conf AUC, pruned minus original; the member - non-member confidence gap, pruned
       minus original (the paper: 0.96 - 0.73 minus 0.81 - 0.67, from
       :data:`miakit.reported.DIVERGENCE_MEANS`); with ``control`` (the same fine-tuning
       at sparsity 0), also pruned minus fine-tuned only: what sparsity adds.
    2. SAMIA's AUC minus the strongest of the eight existing attacks on the pruned model.
    3. Conf AUC at the highest minus the lowest of ``sparsities`` (risk depends on the
       sparsity: a difference either way counts).
    4. Conf AUC, PPB-defended minus undefended pruned (should fall), and the test
       accuracy, defended minus undefended (kept: within :data:`ACCURACY_TOLERANCE`).

    Args:
        exp: the experiment (all its seeds).
        pruned: the pruned victim (default ``exp.variant()``, the config's).
        sparsities: claim 3's sparsities (default the config's sparsity and 0.9 or 0.5).
        defended: claim 4's defended variant (default PPB at its default lambda).
        control: the fine-tuned-only variant, for claim 1's control row.
    """
    pruned = pruned or exp.variant()
    defended = defended or exp.variant(defense="ppb")
    rows = [
        _row(
            1,
            "Pruning makes a model leak more",
            f"{display_name(CLAIM_ATTACK)} AUC, pruned - original",
            _auc_difference(exp, pruned, ORIGINAL),
        ),
        _row(
            1,
            "Members and non-members drift apart after pruning",
            "member - non-member confidence gap, pruned - original",
            _gap_difference(exp, pruned, ORIGINAL),
            paper=_paper_gap_change(),
        ),
    ]
    if control is not None:
        rows.append(
            _row(
                1,
                "The extra leak comes from sparsity, not from fine-tuning",
                f"{display_name(CLAIM_ATTACK)} AUC, pruned - fine-tuned only",
                _auc_difference(exp, pruned, control),
            )
        )
    names = [a for a in BASELINES if a in exp.attack_names()]
    base = tables.summarise(tables.attack_table(exp, pruned, attacks=names))
    strongest = str(base.loc[base["auc"].idxmax(), "attack"])
    vs = tables.difference(exp, pruned, attacks=["samia"], against=strongest)
    rows.append(
        _row(
            2,
            "SAMIA beats the eight existing attacks on pruned models",
            f"SAMIA AUC - {display_name(strongest)} AUC (the strongest of the eight)",
            vs.rename(columns={"auc": "value", "auc_se": "value_se"}),
        )
    )
    levels = sorted(sparsities or {pruned.sparsity, 0.9 if pruned.sparsity < 0.9 else 0.5})
    low, high = (Variant(pruned.pruner, s, pruned.defense) for s in (levels[0], levels[-1]))
    spread = _row(
        3,
        "The risk depends on the sparsity",
        f"{display_name(CLAIM_ATTACK)} AUC, sparsity {levels[-1]:g} - {levels[0]:g}",
        _auc_difference(exp, high, low),
        rule="holds if the 95% interval excludes 0 (either way)",
    )
    if spread["verdict"] == "reversed":
        spread["verdict"] = "holds"
    rows.append(spread)
    rows.append(
        _row(
            4,
            "PPB cuts the attack back",
            f"{display_name(CLAIM_ATTACK)} AUC, PPB - undefended pruned",
            _auc_difference(exp, defended, pruned),
            direction=-1,
        )
    )
    rows.append(
        _row(
            4,
            "PPB keeps the pruned model's accuracy",
            "test accuracy, PPB - undefended pruned",
            _accuracy_difference(exp, defended, pruned),
            margin=-ACCURACY_TOLERANCE,
            rule=f"holds if the 95% interval lies > -{ACCURACY_TOLERANCE:g}",
        )
    )
    return pd.DataFrame(rows, columns=list(CLAIMS_COLUMNS))


def _paper_gap_change() -> float:
    means = reported.DIVERGENCE_MEANS
    gap = {
        m: means[m, "member"].value - means[m, "non-member"].value for m in ("original", "pruned")
    }
    return round(gap["pruned"] - gap["original"], 4)


def claims_markdown(claims: pd.DataFrame, digits: int = 3) -> str:
    """The claims table as a Markdown table and one sentence per verdict, for notebooks.

    Every number comes from ``claims`` (:func:`claims_table`); nothing is typed.
    """
    lines = [
        "| claim | measure | paper | kit (95% interval) | seeds | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in claims.iterrows():
        paper = "direction only" if pd.isna(r["paper"]) else f"{r['paper']:+.{digits}f}"
        if np.isfinite(r["kit_low"]):
            kit = (
                f"{r['kit']:+.{digits}f} [{r['kit_low']:+.{digits}f}, {r['kit_high']:+.{digits}f}]"
            )
        else:
            kit = f"{r['kit']:+.{digits}f} (no interval)"
        lines.append(
            f"| {r['claim']}. {r['statement']} | {r['measure']} | {paper} | {kit} "
            f"| {r['seeds']} | **{r['verdict']}** |"
        )
    counts = claims["verdict"].value_counts()
    summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)
    noun = "check" if len(claims) == 1 else "checks"
    lines += ["", f"Of {len(claims)} {noun}: {summary} (rule: see the `rule` column)."]
    return "\n".join(lines)


#: The lines around the claims table in the README, which ``miakit claims --readme``
#: rewrites from the committed table (figures/<profile>/00_claims.csv): never typed.
README_START = "<!-- claims:start (written by `miakit claims --readme README.md`) -->"
README_END = "<!-- claims:end -->"


def read_claims(path: str | Path) -> pd.DataFrame:
    """A claims table saved by notebook 00 (``figures/<profile>/00_claims.csv``).

    Raises:
        FileNotFoundError: no such file (with the command that writes it).
        ValueError: the file is not a claims table.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no claims table at {path}; notebook 00 writes it: miakit run --only 00 "
            "--profile PROFILE"
        )
    frame = pd.read_csv(path)
    missing = [c for c in CLAIMS_COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"{path} is not a claims table: it lacks the columns {missing}")
    return frame[list(CLAIMS_COLUMNS)]


def with_claims_block(text: str, markdown: str) -> str:
    """``text`` (a README) with the block between :data:`README_START` and
    :data:`README_END` replaced by ``markdown``.

    Raises:
        ValueError: the markers are missing, repeated or out of order.
    """
    if text.count(README_START) != 1 or text.count(README_END) != 1:
        raise ValueError(
            f"the README needs exactly one {README_START!r} line and one {README_END!r} "
            "line around its claims table"
        )
    head, rest = text.split(README_START)
    if README_END not in rest:
        raise ValueError(f"{README_END!r} comes before {README_START!r} in the README")
    _, tail = rest.split(README_END)
    return f"{head}{README_START}\n{markdown}\n{README_END}{tail}"
