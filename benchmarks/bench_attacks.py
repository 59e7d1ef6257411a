"""Class-wise threshold search: miakit's O(n log n) search vs the authors' O(n^2) scan.

Conf, Xent and Mentr choose one threshold per ground-truth class to maximise
balanced accuracy on the pooled shadow data (PAPER.md, "The eight existing
attacks"). The authors' code (after Song & Mittal) tries every shadow value
of a class as the threshold and re-counts the whole class for each:
O(n_k^2) per class. ``miakit.attacks.threshold.best_threshold`` sorts once
and reads every candidate's accuracy from cumulative counts, all classes at
once. Both search the same candidate cuts, so they must find the same
accuracy; this script checks that and prints the speed-up.

Usage::

    python benchmarks/bench_attacks.py [--n 100000] [--classes 10] [--seed 0]

The last line printed is ``ratio: X`` (quadratic scan time / miakit time).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from miakit.attacks.threshold import best_threshold  # noqa: E402


def authors_threshold(tr_values: np.ndarray, te_values: np.ndarray) -> tuple[float, float]:
    """The authors' per-class threshold scan, restated faithfully.

    Every member (``tr``) and non-member (``te``) value is tried as the
    threshold "member iff value >= threshold"; for each, both sets are
    re-counted in full. The first strictly better accuracy wins.

    Returns:
        ``(threshold, balanced accuracy)``.
    """
    value_list = np.concatenate((tr_values, te_values))
    thre, max_acc = 0.0, 0.0
    for value in value_list:
        tr_ratio = np.sum(tr_values >= value) / (len(tr_values) + 0.0)
        te_ratio = np.sum(te_values < value) / (len(te_values) + 0.0)
        acc = 0.5 * (tr_ratio + te_ratio)
        if acc > max_acc:
            thre, max_acc = float(value), float(acc)
    return thre, max_acc


def synthetic_confidences(
    n: int, classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ground-truth-class confidences of a leaky model: members are more confident.

    Returns float32-rounded values (like real posteriors, so ties occur), 0/1
    membership (half members) and labels, with a different leak per class.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    membership = rng.permutation(np.arange(n) < n // 2).astype(np.int64)
    a_member = np.linspace(3.0, 8.0, classes)[labels]
    a_non = np.linspace(1.5, 4.0, classes)[labels]
    values = rng.beta(np.where(membership == 1, a_member, a_non), 1.0)
    return values.astype(np.float32).astype(np.float64), membership, labels


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the timings; the last line is ``ratio: X``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="shadow samples (default 100000)")
    parser.add_argument("--classes", type=int, default=10, help="classes (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    parser.add_argument(
        "--repeats", type=int, default=20, help="miakit timing repeats, best kept (default 20)"
    )
    parser.add_argument(
        "--quadratic-budget",
        type=float,
        default=60.0,
        help="run the quadratic scan in full only if its projected time is below this many "
        "seconds; otherwise time its first class and extrapolate by n_k^2 (default 60)",
    )
    args = parser.parse_args(argv)

    values, m, labels = synthetic_confidences(args.n, args.classes, args.seed)
    print(f"data: n={args.n} classes={args.classes} seed={args.seed} (members {int(m.sum())})")

    best_threshold(values[:1000], m[:1000], labels[:1000])  # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fit = best_threshold(values, m, labels, higher_is_member=True)
        times.append(time.perf_counter() - t0)
    t_miakit = min(times)
    print(f"miakit best_threshold (all classes, best of {args.repeats}): {t_miakit:.4f} s")

    classes = fit.groups.tolist()
    sizes = np.array([(labels == c).sum() for c in classes], dtype=np.float64)
    per_class_time: list[float] = []
    authors_acc: list[float] = []
    extrapolated = False
    for i, c in enumerate(classes):
        sel = labels == c
        t0 = time.perf_counter()
        _, acc = authors_threshold(values[sel & (m == 1)], values[sel & (m == 0)])
        per_class_time.append(time.perf_counter() - t0)
        authors_acc.append(acc)
        if i == 0:
            projected = per_class_time[0] * float((sizes**2).sum() / sizes[0] ** 2)
            if projected > args.quadratic_budget:
                extrapolated = True
                break
    done = len(per_class_time)
    if extrapolated:
        t_quadratic = per_class_time[0] * float((sizes**2).sum() / sizes[0] ** 2)
        print(
            f"authors' quadratic scan: EXTRAPOLATED, not measured in full: class {classes[0]} "
            f"({int(sizes[0])} samples) took {per_class_time[0]:.2f} s; scaled by n_k^2 to all "
            f"{len(classes)} classes: {t_quadratic:.2f} s (projected above "
            f"--quadratic-budget {args.quadratic_budget:g} s)"
        )
    else:
        t_quadratic = sum(per_class_time)
        print(f"authors' quadratic scan (all classes, measured in full): {t_quadratic:.4f} s")

    ours = fit.balanced_accuracy[:done]
    diff = np.abs(ours - np.array(authors_acc))
    print(
        f"balanced accuracy per class (first {done} classes compared): "
        f"miakit {np.round(ours, 6).tolist()}"
    )
    print(f"max |miakit - authors| balanced accuracy: {diff.max():.3g}")
    if not (diff <= 1e-12).all():
        raise SystemExit("the two searches disagree on the best balanced accuracy")
    print("same best balanced accuracy: yes")
    print(f"ratio: {t_quadratic / t_miakit:.1f}")


if __name__ == "__main__":
    main()
