"""The audit's report: one self-contained HTML file (issue 15, item 5).

:func:`render_html` writes what :func:`~miakit.audit.run.audit` measured as one page that
opens anywhere: the figures are PNGs embedded as ``data:`` URIs, the style is inline, and
there is no script and no link to fetch, so it reads the same offline, in a mail
attachment or in a browser with JavaScript off. It opens with the plain-language summary
(:func:`~miakit.audit.summary.plain_summary`), then the model and data, the per-layer
sparsity, every attack's metrics with their 95% intervals, realised FPRs and counts, the
log-log ROC curves (PAPER.md, "Reporting"), the per-class vulnerability and, with a
dense checkpoint, the classes and members that pruning exposed more and the
dense-plus-pruned attack against the single-model ones. The JSON beside it
(:func:`miakit.audit.cli.to_json`) holds every number.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from miakit import __version__
from miakit._util import atomic_write
from miakit.audit.summary import plain_summary
from miakit.plots import FULL_WIDTH, attack_bars, png_bytes, roc_loglog, style_context
from miakit.plots.names import display_name

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from miakit.audit.run import AuditResult

__all__ = ["figures", "render_html", "report_html"]

#: The models of an audit, as the report names them.
MODELS = {
    "pruned": "the audited (pruned) model",
    "dense": "the dense original",
    "pair": "both models together",
}

#: The ROC figure draws this many strongest attacks per model (the table has them all).
ROC_TOP = 5

CHANGE_HEADERS = [
    "class", "attack", "members", "non-members", "AUC dense", "AUC pruned", "change", "low",
    "high",
]  # fmt: skip

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;
max-width:62rem;margin:2rem auto;padding:0 1.2rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;
border-bottom:1px solid #ddd;padding-bottom:.2rem}
.sub{color:#555;margin-top:0}.summary{background:#f5f7fa;border-left:4px solid #0072b2;
padding:.6rem 1.2rem;margin:1.2rem 0}.verdict{font-size:1.15rem;font-weight:600}
table{border-collapse:collapse;margin:.6rem 0;font-size:13px}
th,td{padding:.25rem .6rem;border-bottom:1px solid #e3e3e3;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.ci{color:#666;font-size:12px}h3{font-size:1rem;margin:1.2rem 0 .2rem}th{background:#fafafa}
img{max-width:100%;height:auto;display:block;margin:.6rem 0}
.caption{color:#555;font-size:13px}footer{color:#777;font-size:12px;margin-top:3rem}
"""


def _png(fig: Figure) -> str:
    return base64.b64encode(png_bytes(fig)).decode("ascii")


def _roc_figure(result: AuditResult) -> Figure:
    import matplotlib.pyplot as plt

    panels = [m for m in ("pruned", "dense") if (result.attacks["model"] == m).any()]
    with style_context():
        fig, axes = plt.subplots(
            1, len(panels), figsize=(FULL_WIDTH, 3.6), squeeze=False, layout="constrained"
        )
        for ax, model in zip(axes[0], panels, strict=True):
            rows = result.attacks[result.attacks["model"] == model].nlargest(ROC_TOP, "auc")
            rows = pd.concat([rows, result.attacks[result.attacks["model"] == "pair"]])
            curves = {r.attack: result.roc[f"{r.model}/{r.attack}"] for r in rows.itertuples()}
            aucs = dict(zip(rows["attack"], rows["auc"], strict=True))
            n = int(rows["n_nonmembers"].iloc[0])
            roc_loglog(curves, aucs=aucs, n=n, ax=ax, title=MODELS[model].capitalize())
    return fig


def _class_figure(result: AuditResult) -> Figure:
    frame = result.per_class.assign(model=result.per_class["model"].map(MODELS))
    with style_context():
        return attack_bars(frame, metric="auc", by="class", hue="model", figsize=(FULL_WIDTH, 2.8))


def figures(result: AuditResult) -> dict[str, str]:
    """The report's figures as base64 PNGs: ``roc`` and ``per_class``."""
    return {"roc": _png(_roc_figure(result)), "per_class": _png(_class_figure(result))}


def _cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        text = "" if np.isnan(value) else f"{value:.3f}"
        return f'<td class="n">{text}</td>'
    if isinstance(value, (int, np.integer)):
        return f'<td class="n">{value:,}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _rows_html(heads: Sequence[str], rows: Iterable[Iterable[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _table(frame: pd.DataFrame, headers: Sequence[str] | None = None) -> str:
    heads = headers or [str(c) for c in frame.columns]
    return _rows_html(heads, ([_cell(v) for v in row] for row in frame.itertuples(index=False)))


def _with_interval(row: pd.Series, metric: str, fpr: str | None = None) -> str:
    low, high = row[f"{metric}_low"], row[f"{metric}_high"]
    text = f"{row[metric]:.3f}"
    if not (np.isnan(low) or np.isnan(high)):
        text += f' <span class="ci">[{low:.3f}, {high:.3f}]</span>'
    if fpr is not None:
        text += (
            f'<br><span class="ci">at FPR {row[f"realised_fpr{fpr}"]:.4f}, '
            f"{int(row[f'fp{fpr}'])} FP</span>"
        )
    return f'<td class="n">{text}</td>'


ATTACK_HEADS = ["attack", "balanced accuracy", "AUC", "TPR at 0.1% FPR", "TPR at 1% FPR"]


def _attacks(result: AuditResult) -> str:
    parts = []
    for model in MODELS:
        rows = result.attacks[result.attacks["model"] == model]
        if rows.empty:
            continue
        first = rows.iloc[0]
        parts.append(
            f"<h3>{html.escape(MODELS[model].capitalize())} "
            f'<span class="ci">({int(first["n_members"])} members, '
            f"{int(first['n_nonmembers'])} non-members)</span></h3>"
        )
        cells = (
            [
                f"<td>{html.escape(display_name(r['attack']))}</td>",
                _with_interval(r, "balanced_accuracy"),
                _with_interval(r, "auc"),
                _with_interval(r, "tpr@0.1%fpr", "@0.1%fpr"),
                _with_interval(r, "tpr@1%fpr", "@1%fpr"),
            ]
            for _, r in rows.sort_values("auc", ascending=False).iterrows()
        )
        parts.append(_rows_html(ATTACK_HEADS, cells))
    return "\n".join(parts)


def _layers(result: AuditResult) -> str:
    columns = ["name", "type", "params", "zeros", "fraction_zero", "channels", "dead_channels"]
    frame = result.sparsity.layers[columns]
    heads = ["layer", "type", "parameters", "zeros", "fraction zero", "channels", "dead"]
    return _table(frame, heads)


def _model_table(result: AuditResult) -> str:
    s = result.sparsity
    shadows = display_name(result.shadows) + (" (read from the checkpoint)" * result.inferred)
    rows = [
        ("checkpoint", f"{result.checkpoint.name} ({result.format})"),
        ("architecture", display_name(result.arch)),
        ("dataset", display_name(result.dataset)),
        ("members", result.membership),
        ("sparsity (prunable weights)", f"{s.sparsity:.3f} ({s.zero_weights:,} of {s.weights:,})"),
        ("parameters left", f"{s.params_effective:,} of {s.params_dense:,}"),
        ("accuracy on members", f"{result.accuracy['members']:.3f}"),
        ("accuracy on held-out samples", f"{result.accuracy['nonmembers']:.3f}"),
        ("shadow models pruned as", shadows),
    ]
    return _table(pd.DataFrame(rows, columns=["", ""]), ["what", "value"])


def _paragraphs(items: Iterable[str], tag: str = "p") -> str:
    return "".join(f"<{tag}>{html.escape(t)}</{tag}>" for t in items)


def _exposed_sections(result: AuditResult) -> list[str]:
    if result.differences is None:
        return []
    change = result.class_change.assign(attack=lambda d: d["attack"].map(display_name))
    diffs = result.differences.assign(
        of=lambda d: d["of"].map(_label), versus=lambda d: d["versus"].map(_label),
        metric=lambda d: d["metric"].map(display_name),
    )  # fmt: skip
    exposed = result.exposed.assign(attack=result.exposed["attack"].map(display_name))
    return [
        "<h2>Which classes pruning exposed</h2>",
        '<p class="caption">The strongest attack on the pruned model, per class: AUC on '
        "the pruned model minus on the dense one, with a paired 95% bootstrap interval; "
        "most exposed first.</p>",
        _table(change, CHANGE_HEADERS),
        f"<h2>The {len(exposed)} members pruning exposed most</h2>",
        '<p class="caption">Members whose attack score rose most from the dense to the '
        "pruned model (sample = index in the dataset's pool).</p>",
        _table(exposed, ["sample", "label", "attack", "dense score", "pruned score", "rise"]),
        "<h2>Both models together against either alone</h2>",
        '<p class="caption">Differences of each metric, with paired 95% bootstrap '
        "intervals over the same audited samples.</p>",
        _table(diffs, ["of", "minus", "metric", "difference", "low", "high"]),
    ]


def _label(name: str) -> str:
    model, attack = name.split("/", 1)
    return f"{display_name(attack)} on {MODELS[model]}"


def report_html(result: AuditResult, images: dict[str, str] | None = None) -> str:
    """The report's HTML text (see the module docstring)."""
    images = images if images is not None else figures(result)
    summary = plain_summary(result)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Membership-inference audit: {html.escape(result.checkpoint.name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Membership-inference audit of {html.escape(result.checkpoint.name)}</h1>",
        f'<p class="sub">{html.escape(display_name(result.arch))} on '
        f"{html.escape(display_name(result.dataset))}; can an attacker tell which samples "
        "this model was trained on?</p>",
        '<section class="summary">',
        f'<p class="verdict">{html.escape(summary.verdict)}</p>',
        _paragraphs(summary.exposure),
        _paragraphs(summary.comparison),
        "<p><strong>What to try</strong></p><ul>",
        _paragraphs(summary.advice, "li"),
        "</ul>",
        f'<p class="caption">{html.escape(summary.caveat)}</p>',
        "</section>",
        "<h2>The model and its data</h2>",
        _model_table(result),
        "<h2>Every attack</h2>",
        '<p class="caption">Each metric with its 95% bootstrap interval over the audited '
        "samples; TPR at a low FPR is the share of members found while accusing that "
        "share of non-members (realised FPR and false-positive count beside it).</p>",
        _attacks(result),
        "<h2>ROC curves, log-log</h2>",
        '<p class="caption">The strongest attacks on each model (the table above has them '
        "all), and the dense-plus-pruned attack when there is a dense model. The low "
        "false-positive end, bottom left, is where an attack is dangerous: it finds "
        "members while hardly ever accusing a non-member. The dotted diagonal is "
        "guessing.</p>",
        f'<img alt="ROC curves of the strongest attacks, log-log" '
        f'src="data:image/png;base64,{images["roc"]}">',
        "<h2>Which classes are most exposed</h2>",
        '<p class="caption">AUC of the strongest attack on each model, per class.</p>',
        f'<img alt="Per-class AUC of the strongest attacks" '
        f'src="data:image/png;base64,{images["per_class"]}">',
        *_exposed_sections(result),
        "<h2>Sparsity per layer</h2>",
        '<p class="caption">Read from the checkpoint itself (effective weights, masks '
        "applied).</p>",
        _layers(result),
        "<h2>Notes</h2>",
        "<ul>" + _paragraphs(result.notes or ["none"], "li") + "</ul>",
        f"<footer>miakit {html.escape(__version__)}; every number here is in audit.json "
        "beside this file.</footer>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def render_html(result: AuditResult, path: str | Path) -> Path:
    """Write the report to ``path`` (atomically) and return it."""
    path = Path(path)
    text = report_html(result)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path
