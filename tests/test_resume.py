"""Every long training step resumes after a kill with a result identical to an uninterrupted run.

Covers :func:`miakit.train.fit` with a stateful objective (adversarial regularisation),
post-pruning fine-tuning under every defense (DP-SGD with its own loop and accountant),
and attack-model training (:func:`train_attack_model`, :meth:`NeuralAttack.fit`).
Interruptions in process raise ``KeyboardInterrupt`` from the (k+1)-th checkpoint write,
i.e. during epoch k+1 after epoch k was saved; one test SIGKILLs real processes at random
points. Everything runs on the CPU, where training is bit-for-bit repeatable.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import runpy
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from miakit.attacks import NN, AttackInputs
from miakit.attacks.attack_net import AttackMLP, train_attack_model
from miakit.data import Data
from miakit.defenses import (
    AdversarialRegularization,
    AdvRegParams,
    DPSGDParams,
    NoDefense,
    PPBParams,
    finetune,
)
from miakit.prune import l1_unstructured
from miakit.train import TrainConfig, fit
from miakit.train.loop import load_checkpoint

K, D = 3, 6
CPU = "cpu"  # bit-for-bit repeatable there


def _blobs(n: int, seed: int) -> Data:
    centers = torch.randn(K, D, generator=torch.Generator().manual_seed(123)) * 2
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, K, (n,), generator=g)
    return Data((centers[y] + torch.randn(n, D, generator=g)).float(), y, K, "blobs")


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(D, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, K))


def _interrupt_at_save(monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    """Make the (k+1)-th ``torch.save`` raise ``KeyboardInterrupt``: epoch k is on disk."""
    real, calls = torch.save, []

    def save(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) > k:
            raise KeyboardInterrupt
        real(*args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


def _assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_fit_resumes_advreg_with_its_inference_model(tmp_path, monkeypatch):
    train, dev = _blobs(160, 0), _blobs(64, 1)
    cfg = TrainConfig(epochs=4, batch_size=32, patience=0, seed=2)

    def run(checkpoint: Path | None) -> tuple[nn.Module, AdversarialRegularization, Any]:
        model = _net()
        reg = AdversarialRegularization(train, dev, theta=1.0, k=2, seed=3)
        return (
            model,
            reg,
            fit(model, train, dev, cfg, objective=reg, checkpoint=checkpoint, device=CPU),
        )

    ref_model, ref_reg, ref = run(None)
    ckpt = tmp_path / "advreg.ckpt"
    with monkeypatch.context() as m:
        _interrupt_at_save(m, 2)
        with pytest.raises(KeyboardInterrupt):
            run(ckpt)
    saved = load_checkpoint(ckpt)
    assert saved["epoch"] == 2 and saved["objective"]["inference_steps"] > 0
    model, reg, res = run(ckpt)
    assert not ckpt.exists()
    _assert_same_state(model, ref_model)
    _assert_same_state(reg.inference_model, ref_reg.inference_model)
    assert reg.inference_steps == ref_reg.inference_steps
    assert res == ref


def test_a_checkpoint_without_the_objectives_state_is_refused(tmp_path, monkeypatch):
    train, dev = _blobs(64, 0), _blobs(32, 1)
    cfg = TrainConfig(epochs=3, batch_size=32, seed=0)
    ckpt = tmp_path / "plain.ckpt"
    with monkeypatch.context() as m:
        _interrupt_at_save(m, 1)
        with pytest.raises(KeyboardInterrupt):
            fit(_net(), train, dev, cfg, checkpoint=ckpt, device=CPU)  # plain cross-entropy
    reg = AdversarialRegularization(train, dev)
    with pytest.raises(RuntimeError, match="holds no state of the objective.*delete it"):
        fit(_net(), train, dev, cfg, objective=reg, checkpoint=ckpt, device=CPU)


def test_a_checkpoint_of_another_run_is_refused(tmp_path, monkeypatch):
    train, dev = _blobs(64, 0), _blobs(32, 1)
    x, member = _attack_data(40)
    ckpt, attack_ckpt = tmp_path / "fit.ckpt", tmp_path / "attack.ckpt"
    with monkeypatch.context() as m:
        _interrupt_at_save(m, 1)
        with pytest.raises(KeyboardInterrupt):
            fit(_net(), train, dev, TrainConfig(epochs=3, seed=0), checkpoint=ckpt, device=CPU)
    with monkeypatch.context() as m:
        _interrupt_at_save(m, 1)
        with pytest.raises(KeyboardInterrupt):
            train_attack_model(
                AttackMLP(5), x, member, epochs=3, checkpoint=attack_ckpt, device=CPU
            )
    with pytest.raises(RuntimeError, match="written by another run.*delete it"):
        fit(_net(), train, dev, TrainConfig(epochs=3, seed=1), checkpoint=ckpt, device=CPU)
    with pytest.raises(RuntimeError, match="written by another training.*delete it"):
        train_attack_model(AttackMLP(5), x, member, epochs=4, checkpoint=attack_ckpt, device=CPU)


def _pruned() -> nn.Module:
    return l1_unstructured(_net(), 0.5)


@pytest.mark.parametrize(
    "defense",
    [
        NoDefense(),
        PPBParams(lam=4.0),
        AdvRegParams(theta=2.0, k=2),
        DPSGDParams(noise_multiplier=4.0),
    ],
    ids=lambda d: d.name,
)
def test_finetune_resumes_under_every_defense(tmp_path, monkeypatch, defense):
    train, dev = _blobs(128, 0), _blobs(48, 1)
    cfg = TrainConfig(epochs=4, batch_size=16, patience=2, seed=1)
    ref = finetune(_pruned(), train, dev, cfg, defense, device=CPU)
    ckpt = tmp_path / "ft.ckpt"
    with monkeypatch.context() as m:
        _interrupt_at_save(m, 2)
        with pytest.raises(KeyboardInterrupt):
            finetune(_pruned(), train, dev, cfg, defense, checkpoint=ckpt, device=CPU)
    assert load_checkpoint(ckpt)["epoch"] == 2
    res = finetune(_pruned(), train, dev, cfg, defense, checkpoint=ckpt, device=CPU)
    assert not ckpt.exists()
    _assert_same_state(res.model, ref.model)
    assert res.record() == ref.record()  # epsilon included for DP-SGD
    assert res.history == ref.history


def test_dp_finetune_resumes_its_accountant_and_generators(tmp_path, monkeypatch):
    """Interrupted at every epoch in turn: same weights, epsilon, steps and history."""
    train, dev = _blobs(128, 0), _blobs(32, 1)
    cfg = TrainConfig(epochs=4, batch_size=16, patience=0, seed=4)
    dp = DPSGDParams(noise_multiplier=4.0)
    ref = dp.finetune(_net(), train, dev, cfg, device=CPU)
    assert ref.epsilon > 0
    ckpt = tmp_path / "dp.ckpt"
    for k in range(cfg.epochs - 1):  # stop in epoch k + 2, resume, stop one epoch later...
        with monkeypatch.context() as m:
            _interrupt_at_save(m, 1)
            with pytest.raises(KeyboardInterrupt):
                dp.finetune(_net(), train, dev, cfg, checkpoint=ckpt, device=CPU)
        assert load_checkpoint(ckpt)["epoch"] == k + 1
        assert load_checkpoint(ckpt)["accountant"]["history"]
    res = dp.finetune(_net(), train, dev, cfg, checkpoint=ckpt, device=CPU)
    _assert_same_state(res.model, ref.model)
    assert (res.epsilon, res.history, res.epochs_run) == (ref.epsilon, ref.history, ref.epochs_run)
    assert [type(h["epoch"]) for h in res.history] == [int] * cfg.epochs


def _attack_data(n: int = 200, f: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    member = torch.randint(0, 2, (n,), generator=g)
    return torch.randn(n, f, generator=g) + member[:, None] * 0.5, member


def test_train_attack_model_resumes_identically(tmp_path, monkeypatch):
    x, member = _attack_data()
    # 6 epochs: the LR drops after epochs 3 and 4 (lr_milestones), dropout draws throughout
    opts = {"epochs": 6, "batch_size": 32, "lr": 0.05, "seed": 1, "device": "cpu"}

    def run(checkpoint: Path | None) -> tuple[nn.Module, list[float]]:
        torch.manual_seed(0)
        losses: list[float] = []
        net = train_attack_model(
            AttackMLP(5), x, member, history=losses, checkpoint=checkpoint, **opts
        )
        return net, losses

    ref_net, ref_losses = run(None)
    ckpt = tmp_path / "attack.ckpt"
    with monkeypatch.context() as m:
        _interrupt_at_save(m, 3)
        with pytest.raises(KeyboardInterrupt):
            run(ckpt)
    assert load_checkpoint(ckpt)["epoch"] == 3
    net, losses = run(ckpt)
    assert not ckpt.exists()
    _assert_same_state(net, ref_net)
    assert losses == ref_losses and len(losses) == 6


def test_neural_attack_fit_passes_its_checkpoint(tmp_path, monkeypatch):
    g = np.random.default_rng(0)
    post = g.dirichlet(np.ones(K), size=120).astype(np.float32)
    shadows = AttackInputs(post, g.integers(0, K, 120), membership=g.integers(0, 2, 120))
    ref = NN(epochs=4, batch_size=32, device=CPU).fit(shadows)
    ckpt = tmp_path / "nn.ckpt"
    with monkeypatch.context() as m:
        _interrupt_at_save(m, 2)
        with pytest.raises(KeyboardInterrupt):
            NN(epochs=4, batch_size=32, device=CPU).fit(shadows, checkpoint=ckpt)
    assert load_checkpoint(ckpt)["epoch"] == 2
    attack = NN(epochs=4, batch_size=32, device=CPU).fit(shadows, checkpoint=ckpt)
    assert not ckpt.exists()
    np.testing.assert_array_equal(attack.score_values(shadows), ref.score_values(shadows))


def test_a_checkpoint_removed_by_a_concurrent_run_is_not_an_error(tmp_path, monkeypatch):
    """Another process deletes the shared checkpoint just before this run's own cleanup."""
    real_unlink = Path.unlink

    def racing_unlink(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.exists():
            real_unlink(self)  # the other run won the race
        real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", racing_unlink)
    train, dev = _blobs(64, 0), _blobs(32, 1)
    cfg = TrainConfig(epochs=1, batch_size=16)
    fit(_net(), train, dev, cfg, checkpoint=tmp_path / "a.ckpt", device=CPU)
    DPSGDParams(noise_multiplier=4.0).finetune(
        _net(), train, dev, cfg, checkpoint=tmp_path / "b.ckpt", device=CPU
    )
    x, member = _attack_data(40)
    train_attack_model(AttackMLP(5), x, member, epochs=1, device=CPU, checkpoint=tmp_path / "c")
    assert not list(tmp_path.iterdir())


# --- a real kill loop -----------------------------------------------------------------

_SCRIPT = """
import os
import time
import torch

torch.set_num_threads(1)
from miakit.data import Data
from miakit.defenses import DPSGDParams, finetune
from miakit.prune import l1_unstructured
from miakit.train import TrainConfig

centers = torch.randn(3, 6, generator=torch.Generator().manual_seed(123)) * 2
def blobs(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    return Data((centers[y] + torch.randn(n, 6, generator=g)).float(), y, 3, "blobs")

torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
cfg = TrainConfig(epochs=EPOCHS, batch_size=16, patience=0, seed=5)
start = time.perf_counter()
res = finetune(l1_unstructured(net, 0.5), blobs(128, 0), blobs(32, 1), cfg,
               DPSGDParams(noise_multiplier=4.0), checkpoint=CKPT, device="cpu")
seconds = time.perf_counter() - start
out = {"state": res.model.state_dict(), "epsilon": res.epsilon, "history": res.history,
       "seconds": seconds}
torch.save(out, OUT + ".tmp")
os.replace(OUT + ".tmp", OUT)
"""


def _start(ctx: Any, script: Path, ckpt: Path | None, out: Path, epochs: int) -> Any:
    env = {"CKPT": None if ckpt is None else str(ckpt), "OUT": str(out), "EPOCHS": epochs}
    proc = ctx.Process(
        target=runpy.run_path,
        args=(str(script),),
        kwargs={"init_globals": env, "run_name": "__main__"},
    )
    proc.start()
    return proc


def _epoch(ckpt: Path) -> int:
    state = load_checkpoint(ckpt)  # a torn file would raise here: the writes are atomic
    return 0 if state is None else int(state["epoch"])


@pytest.mark.skipif(sys.platform == "win32", reason="uses the forkserver start method")
def test_sigkill_loop_makes_progress_and_ends_identical(tmp_path, monkeypatch):
    """Five SIGKILLs at random points of a DP-SGD fine-tuning, then a full run.

    The children are forked from a server that imported torch and Opacus once, so each
    start costs no import; they are real processes, killed with SIGKILL.
    """
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    ctx = multiprocessing.get_context("forkserver")
    # torch._dynamo: imported lazily by the first optimizer, 2 s of each start otherwise
    ctx.set_forkserver_preload(
        ["torch", "torch._dynamo", "opacus", "miakit.defenses", "miakit.prune"]
    )
    script, epochs = tmp_path / "train.py", 20
    script.write_text(_SCRIPT)

    ref_out = tmp_path / "ref.pt"
    proc = _start(ctx, script, None, ref_out, epochs)  # uninterrupted, no checkpoint
    proc.join(120)
    assert proc.exitcode == 0
    want = torch.load(ref_out, weights_only=True)
    per_epoch = want["seconds"] / epochs

    ckpt, out = tmp_path / "run.ckpt", tmp_path / "run.pt"
    rng, done = random.Random(10), 0
    for kill in range(5):
        proc = _start(ctx, script, ckpt, out, epochs)
        deadline = time.monotonic() + 60
        while proc.is_alive() and _epoch(ckpt) <= done:  # wait for this run's first epoch
            assert time.monotonic() < deadline, "no progress within 60 s"
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, per_epoch))  # then kill at a random point
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
        assert proc.exitcode == -signal.SIGKILL, f"run {kill} ended before its kill"
        epoch = _epoch(ckpt)
        assert epoch > done, f"no progress: checkpoint at epoch {epoch} after kill {kill}"
        done = epoch
    assert done < epochs and not out.exists()
    proc = _start(ctx, script, ckpt, out, epochs)  # the full run, from the last checkpoint
    proc.join(120)
    assert proc.exitcode == 0 and not ckpt.exists()
    got = torch.load(out, weights_only=True)
    assert got["epsilon"] == want["epsilon"] and got["history"] == want["history"]
    assert got["state"].keys() == want["state"].keys()
    for key in want["state"]:
        assert torch.equal(got["state"][key], want["state"][key]), key
