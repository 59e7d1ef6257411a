"""The ``miakit`` command.

``miakit run --profile quick`` runs the cached pipeline of a profile (victim,
shadows, pruning, attacks, defense) and prints its tables. ``--set key=value``
overrides any :class:`~miakit.experiment.ExperimentConfig` field (nested
training fields as ``train.epochs=3``).
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from miakit.experiment import ORIGINAL, PROFILES, Experiment, profile
from miakit.store import Store

__all__ = ["main", "parse_set"]


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """Parse ``key=value`` overrides; values are Python literals, else strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {item!r}")
        try:
            value: Any = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        out[key.strip()] = value
    return out


def _print_table(title: str, frame: pd.DataFrame) -> None:
    print(f"\n{title}")
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def _summary(frame: pd.DataFrame) -> pd.DataFrame:
    cols = ["attack", "balanced_accuracy", "auc", "tpr@1%fpr"]
    return frame[cols].rename(columns={"balanced_accuracy": "acc"})


def _run(args: argparse.Namespace) -> int:
    cfg = profile(args.profile, **parse_set(args.set))
    exp = Experiment(
        cfg,
        store=Store(args.cache) if args.cache else None,
        device=args.device,
        data_root=args.data_root,
        progress=not args.quiet,
    )
    t0 = time.perf_counter()
    print(
        f"miakit run: profile={args.profile} dataset={cfg.dataset} arch={cfg.arch} "
        f"pruner={cfg.pruner}@{cfg.sparsity:g} device={exp.device} cache={exp.store.root}"
    )
    pruned = exp.variant()
    defended = exp.variant(defense="ppb")
    _print_table(
        "Accuracy before and after pruning (members = train, non-members = test)",
        exp.variants_table([ORIGINAL, pruned]),
    )
    original = _summary(exp.attack_table(ORIGINAL))
    after = _summary(exp.attack_table(pruned))
    _print_table(
        f"Attacks on the victim: original vs pruned ({pruned.label}); shadows pruned alike",
        original.merge(after, on="attack", suffixes=("_original", "_pruned")),
    )
    _print_table(
        f"PPB defense (lambda={cfg.defense_lambda:g}) during fine-tuning: accuracy",
        exp.variants_table([defended])[["model", "train_acc", "test_acc", "gap", "sparsity"]],
    )
    nonadaptive = _summary(exp.attack_table(defended, shadows=pruned))
    adaptive = _summary(exp.attack_table(defended))
    _print_table(
        "Attacks before (pruned) and after the defense: non-adaptive (shadows undefended) "
        "and adaptive (shadows defended)",
        after.merge(nonadaptive, on="attack", suffixes=("_pruned", "_nonadaptive")).merge(
            adaptive.rename(columns={c: f"{c}_adaptive" for c in adaptive.columns[1:]}),
            on="attack",
        ),
    )
    print(f"\ndone in {time.perf_counter() - t0:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="miakit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a profile's cached pipeline and print its tables")
    run.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. sparsity=0.5 or train.epochs=3",
    )
    run.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda")
    run.add_argument("--cache", default=None, help="cache folder (default: MIAKIT_CACHE)")
    run.add_argument("--data-root", default=None, help="dataset folder (default: MIAKIT_DATA)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.set_defaults(func=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``miakit`` console command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, KeyError, FileNotFoundError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"miakit: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
