"""SAMIA's attack-network training: miakit against the textbook PyTorch loop.

Both train SAMIA's network (PAPER.md, "SAMIA": BatchNorm over the 3K features, K tokens,
Linear(3, 64) + GELU, 3 encoder layers of d_model 64, 4 heads, feed-forward 128, dropout
0.2, GELU, the head) with the paper's attack schedule (SGD, momentum 0.9, weight decay
5e-4, batch 128) on the same random features:

- textbook: ``nn.TransformerEncoder`` of ``nn.TransformerEncoderLayer`` (its dropouts
  ``nn.Dropout`` and the attention's inside ``scaled_dot_product_attention``), batches
  from a ``DataLoader`` over a ``TensorDataset``, ``loss.item()`` every step;
- miakit: :func:`miakit.attacks.attack_net.train_attack_model` on
  :class:`miakit.attacks.samia.SAMIANet` (the written-out encoder layer with
  :class:`~miakit.attacks.attack_net.FastDropout`'s cheap CPU mask, the features on the
  device, batches by index, no host sync per step).

Usage::

    python benchmarks/bench_samia.py            # the quick profile's size: 9000 samples
    python benchmarks/bench_samia.py --small    # seconds; what the test runs

The last line printed is ``ratio: X`` = textbook time / miakit time (> 1: miakit faster).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from miakit.attacks.attack_net import train_attack_model  # noqa: E402
from miakit.attacks.samia import SAMIANet  # noqa: E402
from miakit.train import resolve_device  # noqa: E402

K = 10  # classes, i.e. tokens


class TextbookSAMIA(nn.Module):
    """SAMIA's network the way a tutorial writes it, with PyTorch's encoder layer."""

    def __init__(self, num_classes: int = K) -> None:
        super().__init__()
        self.k = num_classes
        self.norm = nn.BatchNorm1d(3 * num_classes)
        self.embed = nn.Sequential(nn.Linear(3, 64), nn.GELU())
        layer = nn.TransformerEncoderLayer(64, 4, 128, 0.2, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(num_classes * 64, 64), nn.ReLU(), nn.Linear(64, 2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.norm(x).view(x.shape[0], self.k, 3)
        return self.head(self.encoder(self.embed(tokens)))


def textbook_train(x: torch.Tensor, y: torch.Tensor, epochs: int, device: torch.device) -> None:
    """The plain loop: DataLoader batches, optimizer step, ``loss.item()`` per step."""
    net = TextbookSAMIA().to(device).train()
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9, weight_decay=5e-4)
    loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True, drop_last=True)
    for _ in range(epochs):
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = nn.functional.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()


def bench(n: int, epochs: int, repeats: int, device: torch.device) -> tuple[float, float]:
    """Median seconds of the textbook loop and of miakit's, on ``n`` random samples."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3 * K, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    t_text, t_mia = [], []
    for r in range(repeats):
        torch.manual_seed(r)
        start = time.perf_counter()
        textbook_train(x, y, epochs, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t_text.append(time.perf_counter() - start)
        torch.manual_seed(r)
        start = time.perf_counter()
        train_attack_model(SAMIANet(K), x, y, epochs=epochs, lr=1e-2, seed=r, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t_mia.append(time.perf_counter() - start)
    return statistics.median(t_text), statistics.median(t_mia)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="600 samples, 1 epoch, 1 repeat")
    parser.add_argument("--samples", type=int, default=9000, help="pooled shadow samples")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.small:
        args.samples, args.epochs, args.repeats = 600, 1, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    t_text, t_mia = bench(args.samples, args.epochs, args.repeats, device)
    steps = args.epochs * (args.samples // 128)
    print(
        f"device={device} threads={torch.get_num_threads()} samples={args.samples} "
        f"epochs={args.epochs} repeats={args.repeats} (median)"
    )
    print(f"textbook  {t_text:8.3f} s   {steps / t_text:7.1f} steps/s")
    print(f"miakit    {t_mia:8.3f} s   {steps / t_mia:7.1f} steps/s")
    print(f"ratio: {t_text / t_mia:.2f}")


if __name__ == "__main__":
    main()
