"""Where one epoch's time goes in ``bench_train.py``'s two loops, part by part, on the CPU.

Times each part of an epoch of miakit's :func:`~miakit.train.fit` and of the textbook
loop (``bench_train.textbook_fit``) on the same model and data: the forward + backward
(in each loop's memory layout), the Adam step (miakit's fused kernel, the textbook's
default ``foreach`` one), miakit's batch gather by index against the ``DataLoader``'s
collation, ``loss.item()``, and the once-per-epoch dev evaluation. Times are CPU time of
this thread (``time.thread_time``), so other processes on a shared machine inflate them
less than wall time; run it with one thread::

    OMP_NUM_THREADS=1 python benchmarks/profile_train.py

The sums give the ratio the two loops can reach on this machine (textbook epoch / miakit
epoch); ``bench_train.py`` measures the real one.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from bench_train import CASES
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from miakit.data import load_dataset
from miakit.models import build_model, is_convnet
from miakit.train.evaluate import dev_accuracy


def per_call_ms(fn: Callable[[], object], reps: int) -> float:
    """Thread CPU milliseconds of one ``fn()`` call, after three untimed calls."""
    for _ in range(3):
        fn()
    t0 = time.thread_time()
    for _ in range(reps):
        fn()
    return (time.thread_time() - t0) / reps * 1e3


def _step_parts(model: torch.nn.Module, xb: Tensor, yb: Tensor, fused: bool, reps: int):
    """ms per step of the forward + backward, the Adam step and zero_grad."""

    def fwd_bwd() -> None:
        F.cross_entropy(model(xb), yb).backward()

    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4, fused=fused or None)
    fwd_bwd()
    return {
        "forward+backward": per_call_ms(fwd_bwd, reps),
        "Adam step": per_call_ms(opt.step, reps),
        "zero_grad": per_call_ms(opt.zero_grad, reps),
    }


def miakit_parts(model, x, y, dx, dy, idx, steps: int, reps: int) -> dict[str, float]:
    """ms per epoch of fit's parts: channels_last convnets, fused Adam, gather by index."""
    if is_convnet(model):  # fit's prepare / as_model_input
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        dx = dx.contiguous(memory_format=torch.channels_last)
    got = {k: v * steps for k, v in _step_parts(model, x[idx], y[idx], True, reps).items()}
    got["batches"] = per_call_ms(lambda: (x[idx], y[idx]), reps) * steps
    got["loss.item() / accumulate"] = per_call_ms(lambda: torch.zeros(()) + 1.0 * 128, reps) * steps
    got["dev eval"] = per_call_ms(lambda: dev_accuracy(model, dx, dy), max(1, reps // 8))
    return got


def textbook_parts(model, x, y, dx, dy, idx, steps: int, reps: int) -> dict[str, float]:
    """ms per epoch of textbook_fit's parts: DataLoader collation, default Adam, .item()."""
    got = {k: v * steps for k, v in _step_parts(model, x[idx], y[idx], False, reps).items()}
    loader = DataLoader(TensorDataset(x, y), batch_size=len(idx), shuffle=True)
    dev_loader = DataLoader(TensorDataset(dx, dy), batch_size=len(idx))
    got["batches"] = per_call_ms(lambda: list(loader), 3)
    loss = torch.ones((), requires_grad=True) * 1.0
    got["loss.item() / accumulate"] = per_call_ms(loss.item, reps) * steps

    @torch.no_grad()
    def evaluate() -> None:
        model.eval()
        for a, b in dev_loader:
            (model(a).argmax(1) == b).sum().item()
        model.train()

    got["dev eval"] = per_call_ms(evaluate, max(1, reps // 8))
    return got


def profile_case(arch: str, batch: int, reps: int) -> None:
    """Print the per-epoch parts of both loops for one ``bench_train`` case."""
    name, opts = CASES[arch]
    data = load_dataset(name, **opts)
    n = len(data)
    x, y, dx, dy = data.x[: n // 2], data.y[: n // 2], data.x[n // 2 :], data.y[n // 2 :]
    steps = -(-len(y) // batch)
    idx = torch.randperm(len(y))[:batch]
    rows = {}
    for label, parts in (("miakit", miakit_parts), ("textbook", textbook_parts)):
        torch.manual_seed(0)
        model = build_model(arch, data.num_classes, tuple(data.x.shape[1:]))
        rows[label] = parts(model, x, y, dx, dy, idx, steps, reps)
    print(f"\n{arch} on {name}: {len(y)} train, {len(dy)} dev, {steps} steps of {batch} per epoch")
    print(f"{'ms per epoch':28s} {'miakit':>9s} {'textbook':>9s}")
    for part in rows["miakit"]:
        print(f"{part:28s} {rows['miakit'][part]:9.1f} {rows['textbook'][part]:9.1f}")
    mia, text = (sum(rows[k].values()) for k in ("miakit", "textbook"))
    print(f"{'total':28s} {mia:9.1f} {text:9.1f}   textbook / miakit = {text / mia:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(CASES), action="append")
    parser.add_argument("--reps", type=int, default=40, help="timed calls per part")
    args = parser.parse_args()
    print(f"threads={torch.get_num_threads()} (thread CPU time; set OMP_NUM_THREADS=1)")
    for arch in args.arch or sorted(CASES):
        profile_case(arch, 128, args.reps)


if __name__ == "__main__":
    main()
