"""``miakit audit``: the command line of :func:`miakit.audit.run.audit` (issue 15, item 1).

It prints the strongest attack on each model in one line each, writes the report
``<out>/report.html`` (:mod:`~miakit.audit.report`) and ``<out>/audit.json`` with every
number of the :class:`~miakit.audit.run.AuditResult`:
the model and data, the per-layer sparsity table, accuracies, every attack's metrics with
intervals, realised FPRs and counts, per-class metrics, the exposed members and the
notes.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from miakit._util import atomic_write
from miakit.audit.report import render_html
from miakit.audit.run import AuditResult, audit
from miakit.audit.summary import plain_summary

__all__ = ["add_parser", "to_json"]


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None:
        return []
    return json.loads(frame.to_json(orient="records"))


def to_json(result: AuditResult) -> dict[str, Any]:
    """Every number of an audit as plain JSON (NaN as null)."""
    summary = {
        k: (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in result.sparsity.summary().items()
    }
    return {
        "checkpoint": str(result.checkpoint),
        "format": result.format,
        "arch": result.arch,
        "dataset": result.dataset,
        "membership": result.membership,
        "shadows": result.shadows,
        "shadows_inferred": result.inferred,
        "accuracy": result.accuracy,
        "sparsity": summary,
        "layers": _records(result.sparsity.layers),
        "attacks": _records(result.attacks),
        "per_class": _records(result.per_class),
        "exposed": _records(result.exposed),
        "differences": _records(result.differences),
        "class_change": _records(result.class_change),
        "summary": asdict(plain_summary(result)),
        "notes": list(result.notes),
    }


def _command(args: Any) -> int:
    result = audit(
        args.checkpoint,
        args.arch,
        args.dataset,
        members=args.members,
        dense_checkpoint=args.dense_checkpoint,
        pruner=args.pruner,
        sparsity=args.sparsity,
        profile=args.profile,
        seed=args.seed,
        attacks=[a for a in args.attacks.split(",") if a] if args.attacks else None,
        device=args.device,
        progress=not args.quiet,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_json(result), indent=1) + "\n"
    atomic_write(out / "audit.json", lambda tmp: tmp.write_text(text))
    page = render_html(result, out / "report.html")
    print(
        f"audited {result.checkpoint} ({result.format}; {result.arch} on {result.dataset}; "
        f"sparsity {result.sparsity.sparsity:.3f}); held-out accuracy "
        f"{result.accuracy['nonmembers']:.3f}; {result.membership}"
    )
    for model in dict.fromkeys(result.attacks["model"]):
        row = result.strongest(model)
        print(
            f"  {model}: strongest attack {row['attack']}, AUC {row['auc']:.3f} "
            f"[{row['auc_low']:.3f}, {row['auc_high']:.3f}], TPR at 1% FPR "
            f"{row['tpr@1%fpr']:.3f}"
        )
    for note in result.notes:
        print(f"  note: {note}")
    print(f"the report: {page}\nevery number: {out / 'audit.json'}")
    return 0


def add_parser(subparsers: Any) -> Any:
    """``miakit audit --checkpoint PATH --arch NAME --dataset NAME [...]``."""
    sub = subparsers.add_parser("audit", help="attack your own (pruned) checkpoint")
    sub.add_argument("--checkpoint", required=True, help="the model to audit")
    sub.add_argument("--arch", required=True, help="its architecture (a miakit arch name)")
    sub.add_argument("--dataset", required=True, help="the dataset it was trained on")
    sub.add_argument("--members", help="its training indices (text or .npy); default: the "
                     "paper's split at --seed")  # fmt: skip
    sub.add_argument("--dense-checkpoint", help="the dense original, when released too")
    sub.add_argument("--pruner", help="how it was pruned (the shadows copy it)")
    sub.add_argument("--sparsity", type=float, help="at what sparsity")
    sub.add_argument("--profile", default="quick", help="training of the shadows")
    sub.add_argument("--seed", type=int, help="the split seed (default the profile's)")
    sub.add_argument("--attacks", help="only these attacks, comma-separated")
    sub.add_argument("--device", default="auto")
    sub.add_argument("--out", default="audit", help="folder for report.html and audit.json")
    sub.add_argument("--quiet", action="store_true", help="no progress bars")
    sub.set_defaults(func=_command)
    return sub
