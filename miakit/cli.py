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

from miakit.experiment import PROFILES, Experiment, profile
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
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


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
        f"device={exp.device} cache={exp.store.root}"
    )
    _print_table(
        "Victim and shadow accuracy (members = train, non-members = test)", exp.accuracy_table()
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
