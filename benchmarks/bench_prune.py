"""Cost of pruning masks in fine-tuning, and the speed-up of compaction (miakit.prune).

(a) Masked fine-tuning. One training step as :func:`miakit.train.fit` takes it
(forward, cross-entropy, backward, Adam step with the paper's settings) of a model
pruned with ``l1_unstructured`` at 0.7, whose masks are forward pre-hooks that
recompute ``w = w_orig * w_mask`` in every forward, against the same model dense, on
the same batches. Dense and masked steps alternate; after a warm-up the median step
time of each is taken. The data are random tensors shaped like the embedded datasets
(``digits`` 1x8x8 for ``small_cnn``, ``mnist1d`` 40 features for ``mlp``; CIFAR
3x32x32 for the image models): the values do not change the time of a step.

(b) Compaction (beyond the paper). ``l1_structured`` at 0.5 (half the filters of every
conv), then :func:`miakit.prune.compact`; the median eval-mode forward time of one
batch, masked model against the compacted one (:func:`miakit.prune.compaction_report`).

    python benchmarks/bench_prune.py                       # small_cnn and mlp
    python benchmarks/bench_prune.py --arch resnet18 --steps 5 --batch-size 32
    python benchmarks/bench_prune.py --threads 1           # steadier on a busy machine

The last line is ``ratio: X`` = masked / dense step time, the worst over the archs run
(lower is better; the target is <= 1.10).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from miakit.models import ARCHS, build_model, is_convnet
from miakit.prune import compact, compaction_report, l1_structured, l1_unstructured
from miakit.train import TrainConfig, make_optimizer, resolve_device

SHAPES = {"small_cnn": (1, 8, 8), "mlp": (40,), "fc": (600,)}
DEFAULT_ARCHS = ["small_cnn", "mlp"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_times(
    arch: str, steps: int, warmup: int, batch_size: int, device: torch.device
) -> tuple[float, float]:
    """Median seconds per training step of the dense and the masked (0.7) model."""
    shape = SHAPES.get(arch, (3, 32, 32))
    dense = build_model(arch, 10, shape, seed=0).to(device).train()
    masked = l1_unstructured(copy.deepcopy(dense), 0.7).train()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size * 4, *shape, generator=gen).to(device)
    y = torch.randint(0, 10, (batch_size * 4,), generator=gen).to(device)
    cfg = TrainConfig()
    runs = {name: (m, make_optimizer(m, cfg)) for name, m in (("dense", dense), ("masked", masked))}
    times: dict[str, list[float]] = {"dense": [], "masked": []}
    for i in range(warmup + steps):
        lo = (i % 4) * batch_size
        xb, yb = x[lo : lo + batch_size], y[lo : lo + batch_size]
        order = ("dense", "masked") if i % 2 == 0 else ("masked", "dense")
        for name in order:
            model, opt = runs[name]
            _sync(device)
            start = time.perf_counter()
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            _sync(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    masked_weights = [m.weight for m in masked.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert all(float((w == 0).float().mean()) >= 0.69 for w in masked_weights)  # still pruned
    return statistics.median(times["dense"]), statistics.median(times["masked"])


def compaction(arch: str, repeats: int, batch_size: int, device: torch.device) -> str:
    """One line: the compaction speed-up of ``arch`` at 50% filter sparsity."""
    shape = SHAPES.get(arch, (3, 32, 32))
    model = l1_structured(build_model(arch, 10, shape, seed=0).to(device), 0.5).eval()
    x = torch.randn(batch_size, *shape, generator=torch.Generator().manual_seed(1)).to(device)
    small = compact(model, x[:2])
    rep = compaction_report(model, small, x, repeats=repeats, warmup=3)
    return (
        f"{arch:<12s} compaction speed-up: {rep.speedup:.2f} (params {rep.params_before} -> "
        f"{rep.params_after}, {rep.latency_before_ms:.2f} ms -> {rep.latency_after_ms:.2f} ms "
        f"per batch of {batch_size})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--arch",
        nargs="+",
        default=DEFAULT_ARCHS,
        choices=sorted(ARCHS),
        help="architectures (default: small_cnn mlp)",
    )
    parser.add_argument("--steps", type=int, default=60, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (paper: 128)")
    parser.add_argument("--repeats", type=int, default=30, help="timed forwards in (b)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(
        f"device {device}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
        f"{args.steps} steps after {args.warmup} warm-up (median)"
    )

    ratios = []
    for arch in args.arch:
        dense, masked = step_times(arch, args.steps, args.warmup, args.batch_size, device)
        ratios.append(masked / dense)
        print(
            f"{arch:<12s} masked/dense step time: {masked / dense:.3f} "
            f"(dense {dense * 1e3:.3f} ms, masked {masked * 1e3:.3f} ms, l1_unstructured 0.7)"
        )
    for arch in args.arch:
        if is_convnet(build_model(arch, 10, SHAPES.get(arch, (3, 32, 32)))):
            print(compaction(arch, args.repeats, args.batch_size, device))
    print(f"ratio: {max(ratios):.3f}")


if __name__ == "__main__":
    main()
