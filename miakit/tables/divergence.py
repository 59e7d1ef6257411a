"""Prediction divergence (PAPER.md, "Prediction divergence (the analysis)"): member vs
non-member signals, their means and per-class gaps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from miakit.experiment import Experiment
from miakit.metrics import divergence_stats
from miakit.tables.models import VariantsArg, _variants

__all__ = ["class_gaps", "divergence", "divergence_means"]


def divergence(exp: Experiment, variants: VariantsArg, role: str = "victim") -> pd.DataFrame:
    """Per-sample true-class confidence and sensitivity, members vs non-members.

    PAPER.md, "Prediction divergence (the analysis)": the signals behind the
    histograms. One row per sample and variant: the variant's columns
    (``victim_pruner``, ...), ``variant`` (display label), ``membership``, ``label``,
    ``confidence`` (p_y) and ``sensitivity`` (s_y).
    """
    frames = []
    for variant in _variants(variants):
        sig = exp.signals(role, variant)
        rows = np.arange(sig.num_samples)
        frame = pd.DataFrame(
            {
                "membership": sig.membership,
                "label": sig.labels,
                "confidence": sig.p_y,
                "sensitivity": sig.sensitivity[rows, sig.labels],
            }
        )
        for i, (k, v) in enumerate({**variant.columns("victim"), "variant": variant.label}.items()):
            frame.insert(i, k, v)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def divergence_means(
    exp: Experiment, variants: VariantsArg, signal: str | Sequence[str] = "confidence"
) -> pd.DataFrame:
    """Member and non-member means of a signal, and their gap, per variant.

    PAPER.md, "Prediction divergence (the analysis)" (on CIFAR-10 DenseNet121 the
    confidence means go 0.81/0.67 -> 0.96/0.73: :data:`miakit.reported.DIVERGENCE_MEANS`).
    One row per variant x signal (variant by variant): the variant's columns
    (``victim_pruner``, ...), ``variant`` (display label), ``signal`` (``"confidence"``
    or ``"sensitivity"``, the columns of :func:`divergence`), ``member_mean``,
    ``nonmember_mean`` and ``gap`` (member - non-member), one row per seed of the
    pipeline (``seed``; the experiment's replicates) with each mean's standard error
    over the samples (``member_mean_se``, ``nonmember_mean_se``, ``gap_se``), so
    :func:`~miakit.tables.summarise` gives their intervals over seeds.
    """
    signals = [signal] if isinstance(signal, str) else list(signal)
    rows = []
    for rep in exp.replicates():
        for variant in _variants(variants):
            d = divergence(rep, variant)
            members = d["membership"].to_numpy() == 1
            for name in signals:
                values = d[name].to_numpy()
                a, b = values[members], values[~members]
                m, n = float(a.mean()), float(b.mean())
                # Standard errors of the means over the samples (the sampling error).
                se_m, se_n = a.std(ddof=1) / np.sqrt(a.size), b.std(ddof=1) / np.sqrt(b.size)
                rows.append(
                    {
                        **rep.columns(),
                        **variant.columns("victim"),
                        "variant": variant.label,
                        "signal": name,
                        "member_mean": m,
                        "nonmember_mean": n,
                        "gap": m - n,
                        "member_mean_se": float(se_m),
                        "nonmember_mean_se": float(se_n),
                        "gap_se": float(np.hypot(se_m, se_n)),
                    }
                )
    return pd.DataFrame(rows)


def class_gaps(
    exp: Experiment,
    variants: VariantsArg,
    signal: str = "confidence",
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-class member - non-member mean of a signal, one column per variant.

    PAPER.md, "Prediction divergence": the per-class gap bar charts. Columns:
    ``class`` and one per variant, named by ``names`` (default: the display labels),
    e.g. ``names=("original", "pruned")`` for :func:`miakit.plots.class_gap_bars`.
    """
    vs = _variants(variants)
    names = list(names) if names is not None else [v.label for v in vs]
    if len(names) != len(vs):
        raise ValueError(f"class_gaps got {len(vs)} variants but {len(names)} names")
    out = None
    for v, name in zip(vs, names, strict=True):
        d = divergence(exp, v)
        stats = divergence_stats(d[signal].to_numpy(), d["membership"], d["label"])
        col = stats[["class", "gap"]].rename(columns={"gap": name})
        out = col if out is None else out.merge(col, on="class")
    return out
