"""ResNet18-CIFAR training throughput: miakit's step vs a textbook loop, and MFU, in one run.

The paper's CIFAR-10 training setting (PAPER.md, "Models and training": the authors'
CIFAR ResNet18, 11.17M parameters at K = 10, Adam lr 1e-3 and weight decay 5e-4,
batch 128) on synthetic CIFAR-shaped data (3x32x32, 10 classes). Both loops train a
fresh, identically initialised model and are timed one after the other in this process:

* textbook: a ``DataLoader`` (shuffle, batch 128) over a ``TensorDataset`` in CPU
  memory, ``.to(device)`` per batch, float32, ``loss.item()`` every step (as
  ``benchmarks/bench_train.py``'s ``textbook_fit``).
* miakit: :func:`miakit.train.loop.train_epoch`, the step :func:`miakit.train.fit` runs
  (data kept on the device, batches gathered by index, bf16 autocast and channels_last
  on CUDA, fused Adam, one host sync per epoch); eager, and on a ``torch.compile``-d
  model unless ``--compile off`` (on CUDA by default mode ``reduce-overhead``, which
  replays forward and backward as CUDA graphs; a failing mode falls back to
  ``default``, then to eager).

Images per second are counted over a ``--seconds`` window after warm-up steps
(compilation and CUDA-graph recording excluded), with the device synchronised before and
after. Model FLOPs utilisation (MFU) = training FLOPs per image (one forward and backward
counted by ``torch.utils.flop_counter.FlopCounterMode``; the Adam update is not counted)
x images/s / the device's dense bf16 peak (:data:`PEAK_BF16` by device name, or
``--peak-tflops``).

    python benchmarks/gpu_resnet18.py              # CUDA if available; < 5 min on an H200
    python benchmarks/gpu_resnet18.py --smoke      # CPU, tiny, a few seconds (tests run it)

The last line is ``ratio: X`` = miakit images/s / textbook images/s (higher is better;
miakit's faster figure, eager or compiled, named on the ``MFU:`` line above it).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from miakit.models import build_model
from miakit.train import TrainConfig, resolve_device
from miakit.train.config import cross_entropy
from miakit.train.loop import batches, make_optimizer, prepare, train_epoch

NUM_CLASSES = 10
SHAPE = (3, 32, 32)

#: Dense (no sparsity) bf16 tensor-core peaks in FLOP/s, matched in order: every word of
#: an entry must occur in the upper-cased device name (so "H100 PCIe" before "H100").
PEAK_BF16: tuple[tuple[tuple[str, ...], float], ...] = (
    (("H100", "PCIE"), 756e12),
    (("H100", "NVL"), 835e12),
    (("H200", "NVL"), 835e12),
    (("H100",), 989e12),
    (("H200",), 989e12),  # also GH200
    (("B200",), 2250e12),
    (("A100",), 312e12),
    (("L40S",), 362e12),
    (("L40",), 181e12),
    (("L4",), 121e12),
)


def peak_flops(name: str) -> float | None:
    """The dense bf16 peak of the device called ``name``, ``None`` if not in the table."""
    upper = name.upper()
    for words, peak in PEAK_BF16:
        if all(w in upper for w in words):
            return peak
    return None


def train_flops_per_image(shape: tuple[int, ...], num_classes: int = NUM_CLASSES) -> float:
    """FLOPs of one training forward + backward per image, counted on the meta device."""
    model = build_model("resnet18", num_classes, shape, seed=0).to("meta")
    n = 2  # BatchNorm in training mode needs more than one value per channel
    x = torch.empty((n, *shape), device="meta")
    y = torch.zeros(n, dtype=torch.long, device="meta")
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / n


def synthetic(n: int, shape: tuple[int, ...], seed: int = 0) -> tuple[Tensor, Tensor]:
    """``n`` standard-normal images of ``shape`` and uniform labels, on the CPU."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *shape), generator=gen)
    return x, torch.randint(0, NUM_CLASSES, (n,), generator=gen)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(chunk: Callable[[], int], device: torch.device, warmup: int, seconds: float) -> float:
    """Images/s of repeated ``chunk()`` calls (each returns its image count) after warm-up.

    Each chunk must end with a host sync (a ``.item()`` or a read of the epoch's loss),
    so checking the clock between chunks adds none.
    """
    for _ in range(warmup):
        chunk()
    sync(device)
    images, t0 = 0, time.perf_counter()
    while True:
        images += chunk()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    sync(device)
    return images / (time.perf_counter() - t0)


def textbook_chunk(
    model: nn.Module, x: Tensor, y: Tensor, batch: int, device: torch.device
) -> Callable[[], int]:
    """One step of the plain loop a tutorial would write, per call."""
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)

    def forever() -> Iterator[tuple[Tensor, Tensor]]:
        while True:
            yield from loader

    stream = forever()

    def step() -> int:
        xb, yb = next(stream)
        xb, yb = xb.to(device), yb.to(device)
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        loss.item()
        return len(yb)

    return step


def miakit_chunk(
    model: nn.Module, x: Tensor, y: Tensor, batch: int, device: torch.device, mode: str | None
) -> Callable[[], int]:
    """One epoch of miakit's step (:func:`train_epoch`) per call; compiled if ``mode``."""
    prepare(model, device)
    xd = x.to(device).contiguous(memory_format=torch.channels_last)  # as fit's as_model_input
    yd = y.to(device)
    opt = make_optimizer(model, TrainConfig(batch_size=batch))
    net = model if mode is None else torch.compile(model, mode=mode)
    gen = torch.Generator().manual_seed(0)

    def epoch() -> int:
        total = train_epoch(net, cross_entropy, opt, xd, yd, batches(len(yd), batch, gen, device))
        float(total)  # fit reads the epoch's loss once
        return len(yd)

    return epoch


def run(
    label: str, make: Callable[[], Callable[[], int]], warmup: int, args: argparse.Namespace
) -> float | None:
    """Images/s of one loop, ``None`` (with the reason printed) if it ran out of memory."""
    try:
        return measure(make(), args.device, warmup, args.seconds)
    except torch.cuda.OutOfMemoryError:
        print(f"{label}: out of GPU memory at batch {args.batch}; try a smaller --batch")
        return None
    finally:
        gc.collect()
        if args.device.type == "cuda":
            torch.cuda.empty_cache()


def compiled_rate(
    x: Tensor, y: Tensor, args: argparse.Namespace
) -> tuple[str | None, float | None]:
    """Images/s of miakit's step on a compiled model: the requested mode, else ``default``."""
    modes = [args.compile] + (["default"] if args.compile != "default" else [])
    for mode in modes:
        torch._dynamo.reset()
        model = build_model("resnet18", NUM_CLASSES, args.shape, seed=0)
        t0 = time.perf_counter()
        try:
            rate = run(
                f"miakit compile={mode}",
                lambda m=model, md=mode: miakit_chunk(m, x, y, args.batch, args.device, md),
                2,  # epochs: compilation, then CUDA-graph recording
                args,
            )
        except Exception as err:  # a compiler failure: report it and fall back
            print(f"torch.compile mode={mode} failed ({type(err).__name__}: {str(err)[:300]})")
            continue
        print(f"  (compile + warm-up + window: {time.perf_counter() - t0:.0f} s)")
        return mode, rate
    return None, None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window per loop")
    parser.add_argument("--batch", type=int, default=128, help="batch size (paper: 128)")
    parser.add_argument("--images", type=int, default=12800, help="synthetic training images")
    parser.add_argument(
        "--compile",
        default="auto",
        choices=["auto", "off", "default", "reduce-overhead", "max-autotune"],
        help="torch.compile mode of the miakit run (auto: reduce-overhead on CUDA, off on CPU)",
    )
    parser.add_argument(
        "--cudnn-benchmark",
        action="store_true",
        help="let cuDNN time its convolution algorithms (all loops; miakit does not set it)",
    )
    parser.add_argument("--peak-tflops", type=float, default=None, help="device bf16 peak")
    parser.add_argument("--smoke", action="store_true", help="CPU, 8x8 images, a few steps")
    args = parser.parse_args(argv)
    args.shape = SHAPE
    if args.smoke:
        args.device, args.shape, args.batch, args.images = "cpu", (3, 8, 8), 4, 8
        args.seconds = min(args.seconds, 0.2)
    if args.batch < 2 or args.images < args.batch or args.seconds <= 0:
        parser.error("need --batch >= 2 (BatchNorm), --images >= --batch and --seconds > 0")
    args.device = resolve_device(args.device)
    args.images -= args.images % args.batch  # whole batches: one compiled shape
    if args.compile == "auto":
        args.compile = "reduce-overhead" if args.device.type == "cuda" else "off"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = args.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = peak_flops(name) if device.type == "cuda" else None
    if args.peak_tflops:
        peak = args.peak_tflops * 1e12
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    flops = train_flops_per_image(args.shape)
    x, y = synthetic(args.images, args.shape)
    print(
        f"device: {name} ({device}), torch {torch.__version__}, batch {args.batch}, "
        f"{args.images} synthetic {'x'.join(map(str, args.shape))} images, "
        f"window {args.seconds:g} s per loop, cudnn.benchmark={args.cudnn_benchmark}"
    )
    print(f"training FLOPs per image (forward + backward): {flops / 1e9:.3f} GFLOP")

    def mfu(rate: float | None) -> str:
        return "" if rate is None or peak is None else f"   MFU {100 * rate * flops / peak:5.1f}%"

    def show(label: str, rate: float | None) -> None:
        figure = "n/a" if rate is None else f"{rate:10.0f} images/s"
        print(f"{label:44s} {figure}{mfu(rate)}")

    text = run(
        "textbook",
        lambda: textbook_chunk(
            build_model("resnet18", NUM_CLASSES, args.shape, seed=0), x, y, args.batch, device
        ),
        min(20, args.images // args.batch),  # steps
        args,
    )
    show("textbook (DataLoader, fp32, .item()/step)", text)
    eager = run(
        "miakit",
        lambda: miakit_chunk(
            build_model("resnet18", NUM_CLASSES, args.shape, seed=0), x, y, args.batch, device, None
        ),
        1,  # epoch
        args,
    )
    show("miakit train_epoch (eager)", eager)
    best, best_label = eager, "miakit eager"
    if args.compile != "off":
        mode, rate = compiled_rate(x, y, args)
        if mode is not None:
            show(f"miakit train_epoch (torch.compile {mode})", rate)
            if rate is not None and (best is None or rate > best):
                best, best_label = rate, f"miakit compile={mode}"
    if peak is None or best is None:
        print("MFU: n/a (unknown peak)" if best is not None else "MFU: n/a (no miakit figure)")
    else:
        print(f"MFU: {100 * best * flops / peak:.1f}% ({best_label}; peak {peak / 1e12:g} TFLOP/s)")
    if text is None or best is None:
        print("ratio: n/a")
    else:
        print(f"ratio: {best / text:.2f}")


if __name__ == "__main__":
    main()
