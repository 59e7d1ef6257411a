"""N models trained together (``fit_many``) against one after another (``fit``), in one run.

Both sides train the same N freshly initialised models (model ``i`` under seed ``i``)
on the same data (model ``i`` on its own random train/dev draw, as shadows and
reference models are) for the same number of epochs with early stopping off, so
they do the same work. "One after another" is miakit's own single-model loop, timed
at one torch thread (what the pipeline uses for the tiny models on a CPU) and at the
thread budget; the ratio is against the faster of the two, so batching is not credited
with what an extra thread gives a single model.

    python benchmarks/bench_many.py                        # mlp, N = 16, embedded data
    python benchmarks/bench_many.py --arch signal_cnn --n 16
    python benchmarks/bench_many.py --arch column_fc --n 64 --device cuda   # GPU target 20x
    python benchmarks/bench_many.py --arch resnet18 --n 8 --device cuda     # GPU target 2x

The embedded models train on their embedded data (``mlp``/``signal_cnn``: mnist1d at
the quick profile's sizes, 1800 train and 400 dev; ``small_cnn``: digits); the paper's
models on synthetic data of their datasets' shapes (``column_fc``: Purchase100's 600
binary features and 100 classes; the image nets: CIFAR-10's 3x32x32). The last line
is ``ratio: X`` = one-after-another time / together time (higher is better).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from miakit._util import num_threads
from miakit.data import Data, load_dataset
from miakit.models import build_model
from miakit.train import ModelData, TrainConfig, fit, fit_many, random_draws, resolve_device

EMBEDDED = {"mlp": ("mnist1d", 8000), "signal_cnn": ("mnist1d", 8000), "small_cnn": ("digits", 0)}
SYNTHETIC = {"column_fc": ((600,), 100)}


def pool_for(arch: str, n_train: int, n_dev: int) -> Data:
    """The data a case trains on: embedded, or synthetic of the paper dataset's shape."""
    if arch in EMBEDDED:
        name, size = EMBEDDED[arch]
        return load_dataset(name, **({"num_samples": size} if size else {}))
    shape, k = SYNTHETIC.get(arch, ((3, 32, 32), 10))
    gen = torch.Generator().manual_seed(0)
    n = 2 * (n_train + n_dev)
    x = torch.randn(n, *shape, generator=gen)
    if arch == "column_fc":
        x = (x > 0).float()
    return Data(x, torch.randint(0, k, (n,), generator=gen), k)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mlp")
    parser.add_argument("--n", type=int, default=16, help="number of models")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=1800)
    parser.add_argument("--n-dev", type=int, default=400)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    pool = pool_for(args.arch, args.n_train, args.n_dev)
    n_train = min(args.n_train, len(pool) * 2 // 3)
    n_dev = min(args.n_dev, len(pool) - n_train)
    trains, devs = random_draws(pool, args.n, n_train, n_dev, seed=1)
    shape = tuple(pool.x.shape[1:])
    models = []
    for i in range(args.n):
        torch.manual_seed(i)
        models.append(build_model(args.arch, pool.num_classes, shape))
    cfg = TrainConfig(epochs=args.epochs, patience=0)
    budget = torch.get_num_threads()
    print(
        f"{args.arch} x{args.n} on {device}: {n_train} train / {n_dev} dev each, "
        f"{args.epochs} epochs, batch {cfg.batch_size}, thread budget {budget}"
    )

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def one_after_another(threads: int | None) -> float:
        copies = [copy.deepcopy(m) for m in models]
        with num_threads(threads):
            sync()
            t0 = time.perf_counter()
            for i, (m, tr, dv) in enumerate(zip(copies, trains, devs, strict=True)):
                fit(m, tr, dv, TrainConfig(epochs=args.epochs, patience=0, seed=i), device=device)
            sync()
            return time.perf_counter() - t0

    def together() -> float:
        copies = [copy.deepcopy(m) for m in models]
        sync()
        t0 = time.perf_counter()
        fit_many(copies, sets, cfg, list(range(args.n)), device=device)
        sync()
        return time.perf_counter() - t0

    warm = [copy.deepcopy(m) for m in models[:2]]  # kernels, allocator, vmap's first trace
    sets = ModelData.from_sets(trains, devs)
    warm_sets = ModelData.from_sets(trains[:2], devs[:2])
    fit_many(warm, warm_sets, TrainConfig(epochs=1), [0, 1], device=device)
    times = {}
    for threads in sorted({1, budget}) if device.type == "cpu" else [None]:
        times[threads] = one_after_another(threads)
        label = f"{threads} thread(s)" if threads else "default"
        print(f"one after another ({label}): {times[threads]:8.3f} s")
    best = min(times.values())
    t_many = together()
    print(f"together (fit_many, {budget} thread(s)):  {t_many:8.3f} s")
    print(f"per model: one after another {best / args.n:.3f} s, together {t_many / args.n:.3f} s")
    print(f"ratio: {best / t_many:.2f}")


if __name__ == "__main__":
    main()
