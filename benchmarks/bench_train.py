"""miakit's training loop against a plain textbook PyTorch loop, in one run.

Both train the same freshly initialised model (same seed) on the same data
for the same number of epochs with the same optimizer (Adam, PAPER.md
settings) and evaluate dev accuracy once per epoch. The textbook loop is the
torchvision-tutorial style: a ``DataLoader`` over a ``TensorDataset`` with
batch 128 and shuffling, and ``loss.item()`` every step. miakit's loop keeps
the data on the device, gathers batches by index and reads the loss once per
epoch.

    python benchmarks/bench_train.py                 # embedded-data models
    python benchmarks/bench_train.py --epochs 10 --repeats 3

The last line is ``ratio: X`` = textbook time / miakit time (higher is better).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from miakit.data import Data, load_dataset
from miakit.models import build_model
from miakit.train import TrainConfig, fit, resolve_device

CASES = {"mlp": ("mnist1d", {"num_samples": 8000}), "small_cnn": ("digits", {})}


def textbook_fit(
    model: torch.nn.Module, train: Data, dev: Data, epochs: int, batch: int, device: torch.device
) -> None:
    """The plain loop a tutorial would write."""
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
    loader = DataLoader(TensorDataset(train.x, train.y), batch_size=batch, shuffle=True)
    dev_loader = DataLoader(TensorDataset(dev.x, dev.y), batch_size=batch)
    for _ in range(epochs):
        model.train()
        running = 0.0
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            running += loss.item()
        model.eval()
        correct = 0
        with torch.no_grad():
            for xb, yb in dev_loader:
                correct += (model(xb.to(device)).argmax(1) == yb.to(device)).sum().item()


def bench_case(arch: str, epochs: int, repeats: int, device: torch.device) -> tuple[float, float]:
    name, opts = CASES[arch]
    data = load_dataset(name, **opts)
    n = len(data)
    train, dev = data.subset(torch.arange(0, n // 2)), data.subset(torch.arange(n // 2, n))
    shape = tuple(data.x.shape[1:])
    t_text, t_mia = [], []
    for r in range(repeats):
        torch.manual_seed(r)
        model = build_model(arch, data.num_classes, shape)
        t0 = time.perf_counter()
        textbook_fit(model, train, dev, epochs, 128, device)
        t_text.append(time.perf_counter() - t0)

        torch.manual_seed(r)
        model = build_model(arch, data.num_classes, shape)
        t0 = time.perf_counter()
        fit(model, train, dev, TrainConfig(epochs=epochs, patience=0, seed=r), device=device)
        t_mia.append(time.perf_counter() - t0)
    return statistics.median(t_text), statistics.median(t_mia)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(CASES), action="append")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads for both loops (default: torch's own)",
    )
    args = parser.parse_args()
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    total_text = total_mia = 0.0
    print(
        f"device={device} threads={torch.get_num_threads()} epochs={args.epochs} "
        f"repeats={args.repeats} (median)"
    )
    for arch in args.arch or sorted(CASES):
        t_text, t_mia = bench_case(arch, args.epochs, args.repeats, device)
        total_text += t_text
        total_mia += t_mia
        print(
            f"{arch:10s} textbook {t_text:7.3f} s   miakit {t_mia:7.3f} s   x{t_text / t_mia:.2f}"
        )
    print(f"ratio: {total_text / total_mia:.2f}")


if __name__ == "__main__":
    main()
