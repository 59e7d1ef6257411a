"""The ``miakit`` command.

``miakit run --profile quick`` runs the cached pipeline of a profile (victim,
shadows, pruning, attacks, PPB defense), prints its tables, then executes every
numbered notebook with papermill (executed copies in ``runs/<profile>/``,
figures in ``figures/<profile>/``). ``--only 03,04`` executes just those
notebooks; ``--no-notebooks`` prints the tables only. ``--set key=value``
overrides any :class:`~miakit.experiment.ExperimentConfig` field (nested
training fields as ``train.epochs=3``), in the tables and the notebooks alike.

``miakit cache info|verify|prune`` shows the cache's size per step, checks every
entry's checksum, and removes entries no current code reaches (:mod:`miakit.cachetool`).

``miakit signals --profile quick --out signals.npz`` writes the profile's pruned
victim's and shadows' signals and every attack's scores to one ``.npz``
(:mod:`miakit.export`), for Privacy Meter or one's own code. ``--original`` exports
the unpruned model; ``--pruner``, ``--sparsity``, ``--defense`` and ``--option``
choose another variant; ``--attacks conf,samia`` limits the attacks.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import torch

from miakit import cachetool, claims, collect, sweepcli, tables
from miakit._util import close_progress_bars
from miakit.audit import cli as audit_cli
from miakit.config import ExperimentConfig, profile, profile_names
from miakit.experiment import Experiment
from miakit.export import check_attacks, export_signals
from miakit.keys import STEP_VERSIONS
from miakit.plots import figures_root
from miakit.run import NotebookError, find_notebooks, run_notebooks, store_outputs
from miakit.store import CacheError, Store, default_cache_dir
from miakit.threads import apply_thread_budget
from miakit.train import resolve_device
from miakit.variants import ORIGINAL, Variant

__all__ = ["main", "parse_set"]


def parse_set(items: Sequence[str], flag: str = "--set") -> dict[str, Any]:
    """Parse ``key=value`` overrides; values are Python literals, else strings.

    ``flag`` names the option in the error message (``--set``, ``--option``).
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} expects key=value, got {item!r}")
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


#: The columns of the accuracy tables ``miakit run`` prints.
_MODEL_COLUMNS = [
    "model",
    "variant",
    "train_acc",
    "test_acc",
    "gap",
    "realised_sparsity",
    "epsilon",
]


def _summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Each attack's mean over seeds, with the AUC's 95% interval (tables.summarise)."""
    cols = ["attack", "balanced_accuracy", "auc", "auc_low", "auc_high", "tpr@0.1%fpr", "tpr@1%fpr"]
    return tables.summarise(frame)[cols].rename(columns={"balanced_accuracy": "acc"})


def _config(args: argparse.Namespace) -> tuple[ExperimentConfig, dict[str, Any]]:
    """The profile's config with the ``--set`` overrides (each validated), and those overrides."""
    overrides = parse_set(args.set)
    return profile(args.profile, **overrides), overrides


def _store(args: argparse.Namespace) -> Store:
    """The cache of ``--cache`` (else ``MIAKIT_CACHE``), checked writable before any work."""
    store = Store(args.cache) if args.cache else Store()
    store.check_writable()
    return store


def _experiment(args: argparse.Namespace, cfg: ExperimentConfig) -> Experiment:
    """The :class:`Experiment` of ``cfg`` on ``--cache``, ``--device`` and ``--data-root``."""
    return Experiment(
        cfg,
        store=_store(args),
        device=args.device,
        data_root=args.data_root,
        progress=not args.quiet,
    )


def _run(args: argparse.Namespace) -> int:
    cfg, overrides = _config(args)  # validates every override before any work
    resolve_device(args.device)  # and the device
    books = [] if args.no_notebooks else find_notebooks(args.notebooks, args.only)
    t0 = time.perf_counter()
    if not args.only:
        _pipeline_tables(args, cfg)
    if args.no_notebooks:
        return 0
    _store(args)
    print(f"\nExecuting {len(books)} notebook(s) with papermill ({args.profile} profile)")
    os.environ["MIAKIT_SET"] = json.dumps(overrides)
    if args.cache:
        os.environ["MIAKIT_CACHE"] = str(Path(args.cache).resolve())
    if args.data_root:
        os.environ["MIAKIT_DATA"] = str(Path(args.data_root).resolve())
    done = run_notebooks(
        books,
        profile=args.profile,
        parameters={"device": args.device},
        output_dir=args.runs,
        progress=not args.quiet,
        jobs=args.jobs,
    )
    for book, path in zip(books, done, strict=True):
        print(f"  executed {path}")
        if args.store_outputs:
            store_outputs(path, book)
            print(f"  stored its outputs in {book}")
    print(f"figures: {figures_root() / args.profile}")
    print(f"\ndone in {time.perf_counter() - t0:.1f} s")
    return 0


def _pipeline_tables(args: argparse.Namespace, cfg: ExperimentConfig) -> None:
    exp = _experiment(args, cfg)
    t0 = time.perf_counter()
    print(
        f"miakit run: profile={args.profile} dataset={cfg.dataset} arch={cfg.arch} "
        f"pruner={cfg.pruner}@{cfg.sparsity:g} device={exp.device} cache={exp.store.root}"
    )
    pruned = exp.variant()
    defended = exp.variant(defense="ppb")
    _print_table(
        "Accuracy before and after pruning (members = train, non-members = test)",
        tables.summarise(tables.variants_table(exp, [ORIGINAL, pruned]))[_MODEL_COLUMNS],
    )
    original = _summary(tables.attack_table(exp, ORIGINAL))
    after = _summary(tables.attack_table(exp, pruned))
    _print_table(
        f"Attacks on the victim: original vs pruned ({pruned.label}); shadows pruned alike",
        original.merge(after, on="attack", suffixes=("_original", "_pruned")),
    )
    _print_table(
        f"PPB defense (lambda={defended.defense.lam:g}) during fine-tuning: accuracy",
        tables.summarise(tables.variants_table(exp, defended))[
            ["model", "train_acc", "test_acc", "gap", "realised_sparsity"]
        ],
    )
    nonadaptive = _summary(tables.attack_table(exp, defended, shadows=pruned))
    adaptive = _summary(tables.attack_table(exp, defended))
    _print_table(
        "Attacks before (pruned) and after the defense: non-adaptive (shadows undefended) "
        "and adaptive (shadows defended)",
        after.merge(nonadaptive, on="attack", suffixes=("_pruned", "_nonadaptive")).merge(
            adaptive.rename(columns={c: f"{c}_adaptive" for c in adaptive.columns[1:]}),
            on="attack",
        ),
    )
    print(f"\npipeline tables in {time.perf_counter() - t0:.1f} s")


def _victim(args: argparse.Namespace, exp: Experiment) -> Variant:
    """The variant ``miakit signals`` exports: the profile's pruned one unless told otherwise."""
    options = parse_set(args.option, "--option")
    if args.original:
        given = [
            flag
            for flag, value in (
                ("--pruner", args.pruner),
                ("--sparsity", args.sparsity),
                ("--defense", args.defense),
                ("--option", options or None),
            )
            if value is not None
        ]
        if given:
            raise ValueError(
                f"--original is the unpruned model; drop {', '.join(given)} or --original"
            )
        return ORIGINAL
    if options and args.defense is None:
        raise ValueError("--option sets a defense's option; give the defense with --defense")
    return exp.variant(args.pruner, args.sparsity, args.defense or "none", **options)


def _signals(args: argparse.Namespace) -> int:
    cfg, _ = _config(args)
    attacks = check_attacks(args.attacks)  # before any model is trained
    exp = _experiment(args, cfg)
    victim = _victim(args, exp)
    path = export_signals(exp, args.out, victim, attacks=attacks)
    with np.load(path, allow_pickle=False) as data:
        n_target, n_shadow = len(data["target_labels"]), len(data["shadow_labels"])
    print(
        f"miakit signals: wrote {path} ({victim.label}: {n_target} target and {n_shadow} "
        f"shadow samples; attacks: {', '.join(attacks) or 'none'})"
    )
    return 0


def _add_experiment_options(parser: argparse.ArgumentParser) -> None:
    """The options every subcommand that builds an :class:`Experiment` takes."""
    parser.add_argument("--profile", default="quick", choices=sorted(profile_names()))
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. sparsity=0.5 or train.epochs=3",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda")
    parser.add_argument("--cache", default=None, help="cache folder (default: MIAKIT_CACHE)")
    parser.add_argument("--data-root", default=None, help="dataset folder (default: MIAKIT_DATA)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value!r}")
    return number


def _comma_list(value: str) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="miakit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run a profile's cached pipeline and print its tables")
    _add_experiment_options(run)
    run.add_argument(
        "--only",
        type=lambda v: [x for x in v.split(",") if x],
        default=None,
        metavar="NN,NN",
        help="execute only these notebooks, e.g. 03,04 (no tables)",
    )
    run.add_argument(
        "--no-notebooks",
        action="store_true",
        help="print the pipeline tables only, execute no notebook",
    )
    run.add_argument("--notebooks", default="notebooks", help="folder of the numbered notebooks")
    run.add_argument(
        "--store-outputs",
        action="store_true",
        help="write each run's outputs back into the notebook, clean for git",
    )
    run.add_argument("--runs", default="runs", help="where executed copies go (runs/<profile>/)")
    run.add_argument(
        "--jobs",
        type=_positive_int,
        default=1,
        metavar="N",
        help="notebooks executed at once, sharing the CPUs and the cache (default 1)",
    )
    run.set_defaults(func=_run)

    sig = sub.add_parser(
        "signals", help="write a victim's and its shadows' signals and attack scores to .npz"
    )
    _add_experiment_options(sig)
    sig.add_argument("--pruner", default=None, help="pruning method (default: the profile's)")
    sig.add_argument(
        "--sparsity", type=float, default=None, help="sparsity (default: the profile's)"
    )
    sig.add_argument("--defense", default=None, help="defense during fine-tuning, e.g. ppb")
    sig.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of --defense, e.g. lam=2.0",
    )
    sig.add_argument("--original", action="store_true", help="export the unpruned model")
    sig.add_argument(
        "--attacks",
        type=_comma_list,
        default=None,
        metavar="A,B",
        help="attacks to score, e.g. conf,samia (default: all)",
    )
    sig.add_argument("--out", required=True, help="the .npz file to write")
    sig.set_defaults(func=_signals)

    cl = sub.add_parser(
        "claims", help="print the paper's four claims as checked by notebook 00 (Markdown)"
    )
    cl.add_argument("--profile", default="quick", choices=profile_names())
    cl.add_argument("--figures", default=None, help="figures folder (default: MIAKIT_FIGURES)")
    cl.add_argument("--readme", default=None, help="rewrite this file's claims block instead")
    cl.set_defaults(func=_claims)

    cachetool.add_parser(sub, is_current=_is_current)
    for module in (sweepcli, audit_cli, collect):
        module.add_parser(sub)
    collect.add_report_parser(sub)
    return parser


def _claims(args: argparse.Namespace) -> int:
    folder = Path(args.figures) if args.figures else figures_root()
    text = claims.claims_markdown(claims.read_claims(folder / args.profile / "00_claims.csv"))
    if args.readme is None:
        print(text)
        return 0
    readme = Path(args.readme)
    readme.write_text(claims.with_claims_block(readme.read_text(), text))
    print(f"wrote the {args.profile} claims table into {readme}")
    return 0


def _is_current(kind: str, key: dict[str, Any]) -> bool:
    """Whether a cache entry's key is one the current code can still ask for."""
    return STEP_VERSIONS.get(key.get("step")) == key.get("version")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``miakit: error: ...; see miakit run --help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"miakit: error: {message}; see {self.prog} --help\n")


#: The failures a user can cause (bad input, data, cache, device, a failed notebook);
#: each is reported as one line and exit status 2. Anything else is a bug: traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    KeyError,
    OSError,
    CacheError,
    NotebookError,
    torch.OutOfMemoryError,
)


def _one_line(err: BaseException) -> str:
    if isinstance(err, torch.OutOfMemoryError):
        return "out of device memory; use a smaller batch, another GPU or --device cpu"
    msg = err.args[0] if isinstance(err, KeyError) and err.args else err
    lines = [line.strip() for line in str(msg).splitlines() if line.strip()]
    return " ".join(lines) or type(err).__name__


def _one_line_warning(
    message: Warning | str, category: type[Warning], *args: Any, **kw: Any
) -> None:
    """Show a miakit warning (a healed cache entry, ...) as one line on stderr."""
    text = _one_line(Warning(str(message))).removeprefix("miakit ")
    print(f"miakit: warning: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``miakit`` console command.

    Applies the thread budget first (:func:`miakit.threads.apply_thread_budget`).
    Returns 0 on success, 2 with one ``miakit: error:`` line on an expected failure
    (:data:`EXPECTED_ERRORS`), 130 with one line on Ctrl-C.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        apply_thread_budget()  # torch, BLAS and the notebook kernels' env (miakit.threads)
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            return int(args.func(args))
    except EXPECTED_ERRORS as err:
        close_progress_bars()
        print(f"miakit: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        close_progress_bars()
        root = Path(args.cache) if getattr(args, "cache", None) else default_cache_dir()
        print(
            f"miakit: interrupted; every finished artifact is saved in the cache ({root}) "
            "and a training run stopped mid-way resumes from its last epoch: run the same "
            "command again to continue",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
