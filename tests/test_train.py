"""Tests of the training loop, prediction and sensitivity (miakit.train)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from miakit.data import Data
from miakit.train import (
    EarlyStopping,
    TrainConfig,
    accuracy,
    fit,
    logits,
    predict,
    resolve_device,
    sensitivity,
)


def _blobs(n: int = 256, seed: int = 0, k: int = 3, d: int = 6) -> Data:
    """Gaussian blobs around fixed centres; ``seed`` draws the samples only."""
    centers = torch.randn(k, d, generator=torch.Generator().manual_seed(123)) * 3
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    x = centers[y] + torch.randn(n, d, generator=g)
    return Data(x.float(), y, k, "blobs")


def _net(d: int = 6, k: int = 3) -> nn.Module:
    return nn.Sequential(nn.Linear(d, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, k))


def test_fit_learns_and_keeps_best_dev_weights():
    train, dev = _blobs(256, 0), _blobs(128, 1)
    torch.manual_seed(0)
    model = _net()
    res = fit(model, train, dev, TrainConfig(epochs=8, patience=0, seed=0))
    assert res.epochs_run == 8 and len(res.history) == 8
    assert res.best_dev_acc == max([h["dev_acc"] for h in res.history] + [res.best_dev_acc])
    # the model holds the best-dev weights, so its dev accuracy is exactly the recorded best
    assert accuracy(model, dev) == pytest.approx(res.best_dev_acc, abs=1e-6)
    assert res.best_dev_acc > 0.8
    assert not model.training


def test_fit_is_bit_for_bit_repeatable_on_cpu():
    train, dev = _blobs(200, 0), _blobs(64, 1)
    states = []
    for _ in range(2):
        torch.manual_seed(3)
        model = _net()
        fit(model, train, dev, TrainConfig(epochs=3, patience=0, seed=5))
        states.append(model.state_dict())
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k


def _frozen_sgd(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """An optimizer that never moves the weights: dev accuracy is the same every epoch."""
    return torch.optim.SGD(model.parameters(), lr=0.0)


@pytest.mark.parametrize("patience", [1, 2, 5])
def test_early_stopping_counts_as_the_authors(patience):
    """Stop once the non-improving epochs exceed the patience: patience + 1 of them."""
    train, dev = _blobs(64, 0), _blobs(64, 1)
    cfg = TrainConfig(epochs=50, patience=patience, seed=0)
    res = fit(_net(), train, dev, cfg, optimizer_factory=_frozen_sgd)
    # epoch 0 (the initial weights) is the best; epochs 1..patience+1 do not improve
    assert res.stopped_early and res.best_epoch == 0
    assert res.epochs_run == patience + 1 == len(res.history)
    # without epoch 0, epoch 1 is the best and patience + 1 more epochs follow
    res = fit(_net(), train, dev, cfg, optimizer_factory=_frozen_sgd, keep_initial=False)
    assert res.stopped_early and res.best_epoch == 1
    assert res.epochs_run == patience + 2 == len(res.history)


def test_early_stopping_counter_is_reset_by_an_improvement():
    stopper = EarlyStopping(2)
    model = _net()
    accs = [0.5, 0.4, 0.4, 0.6, 0.6, 0.6]  # epoch 0..5: best at 0, then at 3
    stops = []
    for epoch, acc in enumerate(accs):
        stopper.update(epoch, acc, model)
        stops.append(stopper.should_stop)
    # epochs 1, 2 stale (2 = patience, not more), 3 improves, 4, 5 stale: never exceeds
    assert stops == [False] * 6 and stopper.best_epoch == 3 and stopper.stale == 2
    stopper.update(6, 0.1, model)
    assert stopper.should_stop  # a third stale epoch in a row exceeds patience 2
    assert not EarlyStopping(0, stale=1000).should_stop  # patience 0: never stop


def test_early_stopping_without_the_initial_weights():
    model = _net()
    stopper = EarlyStopping(5, keep_initial=False)
    assert not stopper.update(0, 0.9, model)  # the pruned model never counts
    assert stopper.best_state is None and stopper.stale == 0
    assert stopper.update(1, 0.1, model) and stopper.best_epoch == 1
    again = EarlyStopping.from_state(5, stopper.state())
    assert again == stopper and not again.keep_initial


def test_fit_without_initial_keeps_a_trained_epoch_even_if_worse():
    """keep_initial=False: a trained epoch is kept even when the start was better on dev."""
    train, dev = _blobs(128, 0), _blobs(64, 1)
    torch.manual_seed(0)
    model = _net()
    fit(model, train, dev, TrainConfig(epochs=10, patience=0, seed=0))
    start = accuracy(model, dev)

    def ascent(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -nn.functional.cross_entropy(model(x), y)  # every epoch gets worse

    cfg = TrainConfig(epochs=3, patience=0, lr=0.05, seed=0)
    kept = _net()
    kept.load_state_dict(model.state_dict())
    res = fit(kept, train, dev, cfg, objective=ascent)
    assert res.best_epoch == 0 and accuracy(kept, dev) == pytest.approx(start)
    res = fit(model, train, dev, cfg, objective=ascent, keep_initial=False)
    assert all(h["dev_acc"] < start for h in res.history), "precondition: every epoch worse"
    assert res.best_epoch >= 1 and accuracy(model, dev) == pytest.approx(res.best_dev_acc)


def test_a_checkpoint_with_the_other_keep_initial_is_refused(tmp_path, monkeypatch):
    import miakit.train.loop as T

    train, dev = _blobs(64, 0), _blobs(32, 1)
    cfg, ckpt = TrainConfig(epochs=3, seed=0), tmp_path / "ft.ckpt"

    def stop(path, state):
        T.save_checkpoint(path, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(T, "_save_checkpoint", stop)
    with pytest.raises(KeyboardInterrupt):
        fit(_net(), train, dev, cfg, checkpoint=ckpt, keep_initial=False)
    saved = T.load_checkpoint(ckpt)
    assert saved["keep_initial"] is False and saved["best_epoch"] == 1
    monkeypatch.setattr(T, "_save_checkpoint", T.save_checkpoint)
    with pytest.raises(RuntimeError, match="written by another run"):
        fit(_net(), train, dev, cfg, checkpoint=ckpt)
    res = fit(_net(), train, dev, cfg, checkpoint=ckpt, keep_initial=False)
    assert res.epochs_run == 3 and res.best_epoch >= 1


def test_fit_resumes_from_checkpoint(tmp_path):
    train, dev = _blobs(200, 0), _blobs(64, 1)
    cfg = TrainConfig(epochs=4, patience=0, seed=1)
    torch.manual_seed(0)
    ref = _net()
    fit(ref, train, dev, cfg)

    # a "killed" run: 2 epochs with a checkpoint that we keep, then resume to 4
    ckpt = tmp_path / "run.ckpt"
    torch.manual_seed(0)
    model = _net()
    import miakit.train.loop as T

    saved = {}
    orig = T._save_checkpoint

    def keep(path, state):
        orig(path, state)
        if state["epoch"] == 2:
            saved["bytes"] = path.read_bytes()
            raise KeyboardInterrupt

    T._save_checkpoint = keep
    try:
        with pytest.raises(KeyboardInterrupt):
            fit(model, train, dev, cfg, checkpoint=ckpt)
    finally:
        T._save_checkpoint = orig
    assert ckpt.exists()
    model2 = _net()
    res = fit(model2, train, dev, cfg, checkpoint=ckpt)
    assert res.epochs_run == 4 and len(res.history) == 4
    assert not ckpt.exists()
    for k, v in ref.state_dict().items():
        assert torch.equal(v, model2.state_dict()[k]), k


def test_corrupt_checkpoint_is_an_error(tmp_path):
    ckpt = tmp_path / "bad.ckpt"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="unreadable"):
        fit(_net(), _blobs(32), _blobs(32, 1), TrainConfig(epochs=1), checkpoint=ckpt)


def test_predict_returns_posteriors():
    model, data = _net(), _blobs(50)
    p = predict(model, data.x, batch_size=7)
    assert p.shape == (50, 3) and p.dtype == torch.float32
    assert torch.allclose(p.sum(1), torch.ones(50), atol=1e-5)
    assert torch.allclose(p, logits(model, data.x).softmax(1))


def test_sensitivity_matches_loop_definition():
    """Batched sensitivity equals PAPER.md's definition computed perturbation by perturbation."""
    torch.manual_seed(0)
    model, data = _net().eval(), _blobs(10)
    m, eps = 4, 1e-3
    s = sensitivity(model, data.x, m=m, eps=eps, seed=11, batch_size=10)
    g = torch.Generator().manual_seed(11)
    noise = torch.randn((m, *data.x.shape), generator=g)
    with torch.no_grad():
        base = model(data.x).softmax(1)
        ref = sum((model(data.x + eps * noise[j]).softmax(1) - base).abs() for j in range(m)) / m
    assert torch.allclose(s, ref / eps, atol=1e-4)
    assert s.shape == (10, 3) and (s >= 0).all()


def test_sensitivity_rejects_bad_arguments():
    with pytest.raises(ValueError, match="m >= 1"):
        sensitivity(_net(), torch.zeros(2, 6), m=0)


def test_bad_config_and_device_errors():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="seed"):
        TrainConfig(seed=-1)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    assert TrainConfig(epochs=100).halved().epochs == 50
