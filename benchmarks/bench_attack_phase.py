"""The attack phase of one variant against training one shadow model (issue 12, item 3).

On the quick profile's data (``mnist1d``, 8000 samples, the ``mlp``), this times

(a) training one shadow model with :func:`miakit.train.fit` under the profile's
    :class:`~miakit.train.TrainConfig` (the cost the pipeline pays per model), and
(b) the whole attack phase of one variant from already-trained models: every
    signal the attacks read (logits and sensitivity of the victim and of each
    shadow on its own members and non-members, on the victim's samples and on
    the population, as :meth:`miakit.experiment.Experiment.signals` computes
    them), then fitting and scoring every attack of :data:`miakit.attacks.ATTACKS`
    with the profile's attack settings, the online LiRA and RMIA excepted: they read
    reference models trained for them (``num_references``), a cost of their own
    that ``benchmarks/bench_many.py`` measures.

The models are built here directly (no cache). The victim and the other shadows
are trained with the same loop but only their cost in (b) matters, so with
``--small`` they train for a few epochs on a subsample, to make a test run in
seconds.

Usage::

    python benchmarks/bench_attack_phase.py            # the quick profile's sizes
    python benchmarks/bench_attack_phase.py --small    # seconds; what the test runs

The last line printed is ``ratio: X`` = shadow-training time / attack-phase time
(the issue's target: the attack phase costs less than one shadow, X >= 1).

Where the time goes (quick profile, CPU): the four attack networks dominate, and
each is compute-bound in its own layers (matmuls and dropout's random masks; no
host syncs, no DataLoader, features built once). Their schedule is fixed by
PAPER.md ("The eight existing attacks", "SAMIA": batch 128, the attack MLP and
SAMIA's encoder), and on the pooled 18000 shadow samples each takes 1410 steps
against a shadow's 900 steps of a much smaller MLP; SAMIA's step costs about
0.8 GFLOP against the shadow MLP's 0.06. So on a CPU X stays far below 1 at this
shape; the profile with fewer attack epochs or the paper profile's large shadow
models are where the attack phase is the cheaper part.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from miakit.attacks import (  # noqa: E402
    ATTACKS,
    AttackInputs,
    AttackSettings,
    ReferenceSignals,
    make_attack,
)
from miakit.config import profile  # noqa: E402
from miakit.data import Data, load_dataset  # noqa: E402
from miakit.models import build_model  # noqa: E402
from miakit.splits import Split, paper_splits  # noqa: E402
from miakit.train import fit, logits, resolve_device, sensitivity  # noqa: E402


def signals(
    model: torch.nn.Module,
    data: Data,
    idx: np.ndarray,
    members: np.ndarray,
    m: int,
    eps: float,
    seed: int,
    device: torch.device,
) -> AttackInputs:
    """One model's signals on pool rows ``idx``, as ``Experiment.signals`` computes them."""
    x = data.x[torch.as_tensor(idx)]
    out = logits(model, x, device=device).double()
    sens = sensitivity(model, x, m=m, eps=eps, seed=seed, device=device)
    return AttackInputs(
        posteriors=out.softmax(1).numpy(),
        labels=data.y[torch.as_tensor(idx)].numpy().astype(np.int64),
        sensitivity=sens.double().numpy(),
        membership=np.isin(idx, members).astype(np.int64),
        logits=out.numpy(),
        sample_ids=idx,
    )


def own(split: Split) -> np.ndarray:
    """A role's own sample set: its members then its non-members."""
    return np.concatenate([split.train, split.test])


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the timings; the last line is ``ratio: X``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small",
        "--quick",
        action="store_true",
        help="a seconds-long run on 1000 samples, 2 shadows, 2 epochs (for tests)",
    )
    parser.add_argument("--device", default="cpu", help="device (default cpu)")
    parser.add_argument("--progress", action="store_true", help="show the attack-phase bars")
    args = parser.parse_args(argv)

    cfg = profile("quick")
    samples = 1000 if args.small else dict(cfg.dataset_options)["num_samples"]
    if args.small:
        cfg = cfg.with_overrides(num_shadows=2, attack_epochs=2, sensitivity_m=2)
        cfg = cfg.with_overrides(train=replace(cfg.train, epochs=2))
    device = resolve_device(args.device)
    data = load_dataset(cfg.dataset, num_samples=samples)
    splits = paper_splits(len(data), seed=cfg.split_seed, num_shadows=cfg.num_shadows)
    shape = tuple(data.x.shape[1:])
    print(
        f"data: {cfg.dataset} n={len(data)} arch={cfg.arch} shadows={cfg.num_shadows} "
        f"attack_epochs={cfg.attack_epochs} sensitivity_m={cfg.sensitivity_m} device={device} "
        f"threads={torch.get_num_threads()}"
    )

    def train(split: Split, seed: int, train_cfg: object) -> tuple[torch.nn.Module, float]:
        torch.manual_seed(seed)
        model = build_model(cfg.arch, data.num_classes, shape)
        t0 = time.perf_counter()
        fit(model, data.subset(split.train), data.subset(split.dev), train_cfg, device=device)
        return model, time.perf_counter() - t0

    shadow0, t_shadow = train(splits.shadows[0], 1, cfg.train)
    print(
        f"(a) one shadow, {cfg.train.epochs} epochs on {len(splits.shadows[0].train)}: "
        f"{t_shadow:.2f} s"
    )
    # the other models: their training is not timed; only their signals' cost counts
    cheap = replace(cfg.train, epochs=min(cfg.train.epochs, 5))
    victim = train(splits.victim, 0, cheap)[0]
    shadows = [shadow0] + [train(s, i + 2, cheap)[0] for i, s in enumerate(splits.shadows[1:])]

    settings = AttackSettings(
        epochs=cfg.attack_epochs,
        lr=cfg.attack_lr,
        seed=cfg.seed,
        device=device,
        progress=args.progress,
        label="original",
    )
    sig = dict(m=cfg.sensitivity_m, eps=cfg.sensitivity_eps, seed=cfg.seed, device=device)
    population = splits.victim.dev
    t0 = time.perf_counter()
    target = signals(victim, data, own(splits.victim), splits.victim.train, **sig)
    target_pop = signals(victim, data, population, splits.victim.train, **sig)
    pooled, on_victim, on_pop = [], [], []
    for model, split in zip(shadows, splits.shadows, strict=True):
        pooled.append(signals(model, data, own(split), split.train, **sig))
        on_victim.append(signals(model, data, own(splits.victim), split.train, **sig))
        on_pop.append(signals(model, data, population, split.train, **sig))
    shadow_inputs = AttackInputs.concat(pooled)
    refs = ReferenceSignals.from_inputs(on_victim, on_pop, target_pop)
    t_signals = time.perf_counter() - t0
    print(f"(b) signals of {len(shadows) + 1} models: {t_signals:.2f} s")
    t_attacks = 0.0
    offline = {n: c for n, c in ATTACKS.items() if "reference_models" not in c.uses}
    for name, cls in offline.items():
        t1 = time.perf_counter()
        attack = make_attack(name, settings=settings if cls.persist else None)
        shadows_in = shadow_inputs if "shadows" in cls.uses else None
        refs_in = refs if "references" in cls.uses else None
        auc = attack.fit(shadows_in, refs_in).score(target).result().auc
        took = time.perf_counter() - t1
        t_attacks += took
        print(f"    {name:10s} fit+score {took:6.2f} s  (AUC {auc:.3f})")
    t_phase = t_signals + t_attacks
    shadow_steps = cfg.train.epochs * -(-len(splits.shadows[0].train) // cfg.train.batch_size)
    attack_steps = cfg.attack_epochs * -(-shadow_inputs.num_samples // settings.batch_size)
    print(
        f"optimizer steps: one shadow {shadow_steps} (batch {cfg.train.batch_size}); each of the "
        f"4 attack networks {attack_steps} (batch {settings.batch_size}, PAPER.md) on "
        f"{shadow_inputs.num_samples} pooled shadow samples"
    )
    print(f"(b) attack phase (signals + {len(offline)} attacks): {t_phase:.2f} s")
    print(f"ratio: {t_shadow / t_phase:.2f}")


if __name__ == "__main__":
    main()
