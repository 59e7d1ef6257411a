"""Many same-architecture models trained in one step: :func:`fit_many`.

The workload of membership inference is dozens of near-identical models (a victim, its
shadows, reference models, their pruned copies). :func:`fit_many` trains ``N`` of them
together: their parameters and buffers are stacked along a new leading axis
(:func:`torch.func.stack_module_state`) and one :func:`torch.func.vmap` of
:func:`torch.func.functional_call` runs all ``N`` forwards and backwards per step, so a
GPU sees one large grouped kernel instead of ``N`` small ones.

It is :func:`miakit.train.fit` for each model, computed together (PAPER.md, "Models and
training"): every model keeps its own data (its own train and dev sets), its own
batch order (a generator seeded by its own seed, the permutation ``fit`` would draw),
its own Adam state (Adam is elementwise, so one Adam over the stacked tensors is
``N`` independent Adams), its own BatchNorm statistics (stacked buffers), its own
pruning masks (the masks are buffers too, applied by the same forward pre-hooks) and
its own early stopping: a model whose patience ran out stops updating and keeps its
best-dev weights (or, with ``restore_best=False``, those of the epoch it stopped at),
and the group shrinks to the models still training. The results equal one-at-a-time
:func:`~miakit.train.fit` up to float rounding (``tests/test_many.py`` compares best
epochs, weights and dev accuracies).

What it cannot batch: objectives with state of their own (adversarial regularisation's
inference model), DP-SGD's per-sample clipping (its own loop), models of different
architectures or data sizes (:func:`batch_groups` groups by what must match). Dropout
draws independent masks per model (``vmap(randomness="different")``), the same
distribution as ``fit`` but other draws, so only dropout-free models match exactly.

Whether it pays (:func:`batching_pays`): on CUDA, always; on the CPU, never by default.
On 2 cores the fully connected ``mlp`` batched 16 at a time ran only 1.35x faster than
one after another (the step is near one core's matmul peak; batching just used the second
core), and the convnets ran slower (grouped convolutions 0.57x for ``small_cnn``; unfold
plus one GEMM per model 0.36x for ``signal_cnn``, ``unfold`` having no batching rule under
``vmap``). And batched results equal one-at-a-time training only up to float rounding,
which early stopping can amplify: the quick profile's victim, trained with its 16
reference models, stopped at best epoch 22 (train accuracy 0.829) where trained alone it
stops at 31 (0.898), under the same cache key. On the CPU, where the gain is small, the
kit therefore trains one at a time unless told to batch (``Experiment(batch=True)``); on
CUDA, where batching is the point, a cache keeps whichever result was computed first.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from miakit._util import progress_bar, resolve_device
from miakit.checkpoint import (
    check_same_run,
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)
from miakit.prune import refresh_masked_tensors
from miakit.train.config import Objective, TrainConfig, cross_entropy
from miakit.train.evaluate import autocast, eval_batch_size
from miakit.train.groups import ModelData, batch_groups
from miakit.train.loop import EarlyStopping, FitResult, StatefulObjective

__all__ = ["ModelData", "batch_groups", "batching_pays", "fit_many"]


# the name fit_many calls (tests interrupt a run by patching it)
_save_checkpoint = save_checkpoint


def batching_pays(model: nn.Module, device: str | torch.device | None, count: int) -> bool:
    """Whether :func:`fit_many` beats one-at-a-time training for ``count`` such models.

    On CUDA for two models or more; never on the CPU, where it gains at most 1.35x and
    float rounding can change an early-stopped model (see the module docstring for the
    measurements). ``model`` is kept for rules that depend on the architecture.
    """
    del model  # the rule depends on the device alone today
    return count >= 2 and resolve_device(device).type == "cuda"


class _Functional:
    """A callable standing in for one model inside ``vmap``: ``functional_call`` on a template."""

    def __init__(self, template: nn.Module, params: dict[str, Tensor], buffers: dict[str, Tensor]):
        self.template, self.params, self.buffers = template, params, buffers

    def __call__(self, x: Tensor) -> Tensor:
        return functional_call(self.template, (self.params, self.buffers), (x,))


class _Slice:
    """Model ``i`` of the stack, with the ``state_dict()`` that :class:`EarlyStopping` copies."""

    def __init__(self, tensors: dict[str, Tensor], keys: Sequence[str], i: int) -> None:
        self.tensors, self.keys, self.i = tensors, keys, i

    def state_dict(self) -> dict[str, Tensor]:
        return {k: self.tensors[k][self.i].detach() for k in self.keys}


def _check(models: Sequence[nn.Module], data: ModelData, seeds: Sequence[int]) -> None:
    if not models:
        raise ValueError("fit_many needs at least one model")
    if not len(models) == data.num_models == len(seeds):
        raise ValueError(
            f"fit_many needs one train set, dev set and seed per model; got {len(models)} "
            f"models, {data.num_models} train and dev sets and {len(seeds)} seeds"
        )
    shapes = {k: v.shape for k, v in models[0].state_dict().items()}
    for i, m in enumerate(models[1:], 1):
        other = {k: v.shape for k, v in m.state_dict().items()}
        if other != shapes:
            raise ValueError(
                f"fit_many trains models of one architecture: model {i}'s tensors differ from "
                "model 0's (names or shapes); train them in separate groups (batch_groups)"
            )


def fit_many(
    models: Sequence[nn.Module],
    data: ModelData,
    cfg: TrainConfig,
    seeds: Sequence[int],
    *,
    objective: Objective | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    checkpoint: str | Path | None = None,
    desc: str = "train",
    keep_initial: bool = True,
) -> list[FitResult]:
    """Train ``models`` together, each as :func:`miakit.train.fit` would alone.

    Args:
        models: same-architecture networks (same tensor names and shapes, masks
            included), each trained in place and left in eval mode with its best-dev
            weights (its last epoch's with ``cfg.restore_best=False``).
        data: each model's training and dev rows of one pool (:class:`ModelData`;
            ``ModelData.from_sets(trains, devs)`` for separate sets).
        cfg: hyper-parameters shared by all (``cfg.seed`` is ignored: see ``seeds``).
        seeds: each model's batch-order seed, as ``fit``'s ``cfg.seed``; the first also
            seeds torch's global RNG (dropout).
        objective: ``(model, x, y) -> loss`` as for ``fit``; it must call the model
            only as ``model(x)`` and hold no state of its own.
        device: ``"auto"``/``None`` (CUDA if available), ``"cpu"``, ``"cuda"``...
        progress: a tqdm bar over epochs (postfix: models still training, best dev).
        checkpoint: optional file; the whole group's state is saved after every epoch
            (tensors only, atomically) and a killed run resumes from it with an
            identical result; deleted at the end.
        desc: label of the progress bar.
        keep_initial: as for ``fit`` (``False`` for post-pruning fine-tuning).

    Returns:
        One :class:`~miakit.train.FitResult` per model, in order.

    Raises:
        ValueError: on mismatched models or data sizes, or a stateful objective.
        RuntimeError: if ``checkpoint`` belongs to another run (delete it to restart).
    """
    _check(models, data, seeds)
    objective = objective or cross_entropy
    if isinstance(objective, StatefulObjective):
        raise ValueError(
            f"fit_many cannot batch the stateful objective {objective!r}; train with fit"
        )
    dev_ = resolve_device(device)
    n, count = int(data.train.shape[1]), len(models)
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    torch.manual_seed(int(seeds[0]))
    px, py = data.pool.x.to(dev_), data.pool.y.to(dev_)
    train_rows, dev_rows = data.train.to(dev_), data.dev.to(dev_)
    keys = list(models[0].state_dict())
    template = _template(models[0])
    stacked_params, stacked_buffers = stack_module_state(list(models))
    trainable = {k for k, p in models[0].named_parameters() if p.requires_grad}
    params = {
        k: v.detach().to(dev_).requires_grad_(k in trainable) for k, v in stacked_params.items()
    }
    buffers = {k: v.detach().to(dev_) for k, v in stacked_buffers.items()}

    def losses(p: dict[str, Tensor], b: dict[str, Tensor], xb: Tensor, yb: Tensor) -> Tensor:
        return objective(_Functional(template, p, b), xb, yb)  # type: ignore[arg-type]

    step_losses = vmap(losses, randomness="different")
    opt = _adam(params, cfg)
    active = list(range(count))  # models still training, in stack order
    stoppers = [
        EarlyStopping(cfg.patience, keep_initial=keep_initial, restore_best=cfg.restore_best)
        for _ in models
    ]
    histories: list[list[dict[str, float]]] = [[] for _ in models]
    done: dict[int, tuple[int, bool]] = {}  # model -> (epochs run, stopped early)
    run = {**asdict(cfg), "seeds": [int(s) for s in seeds], "n_train": n}
    run["n_dev"] = int(data.dev.shape[1])
    run["keep_initial"] = keep_initial
    ckpt = Path(checkpoint) if checkpoint is not None else None
    state = load_checkpoint(ckpt) if ckpt is not None else None
    start = 0
    if state is not None:
        check_same_run(ckpt, state, run)
        start, active = int(state["epoch"]), [int(i) for i in state["active"].tolist()]
        params = {k: v.to(dev_).requires_grad_(k in trainable) for k, v in state["params"].items()}
        buffers = {k: v.to(dev_) for k, v in state["buffers"].items()}
        opt = _adam(params, cfg)
        opt.load_state_dict(state["optimizer"])
        for g, s in zip(gens, state["generators"], strict=True):
            g.set_state(s)
        restore_rng_state(state, dev_)
        stoppers = [
            EarlyStopping.from_state(cfg.patience, s, cfg.restore_best) for s in state["stoppers"]
        ]
        histories = [_rows(h) for h in state["histories"]]
        done = {int(i): (int(e), bool(s)) for i, e, s in state["done"].tolist()}
    elif keep_initial:
        for j, (i, acc) in enumerate(
            zip(active, _dev_accs(template, params, buffers, px, py, dev_rows), strict=True)
        ):
            stoppers[i].update(0, acc, _Slice({**params, **buffers}, keys, j))

    bar = progress_bar(progress, cfg.epochs, start, desc)
    epoch = start
    for epoch in range(start + 1, cfg.epochs + 1):
        keep = [j for j, i in enumerate(active) if not stoppers[i].should_stop]
        for j, i in enumerate(active):
            if j not in keep:
                done[i] = (epoch - 1, True)
        if not keep:
            epoch -= 1
            break
        if len(keep) < len(active):  # the finished models leave the stack
            active = [active[j] for j in keep]
            params, buffers, opt = _shrink(params, buffers, opt, keep, cfg)
        rows = torch.tensor(active, device=dev_)
        own_train, own_dev = train_rows[rows], dev_rows[rows]
        template.train()
        total = torch.zeros(len(active), device=dev_)
        for idx in _batches(n, cfg.batch_size, [gens[i] for i in active], dev_):
            ids = own_train.gather(1, idx)  # (models, batch) pool rows
            xb, yb = px[ids], py[ids]
            with autocast(dev_):
                loss = step_losses(params, buffers, xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            total += loss.detach().float() * idx.shape[1]
        accs = _dev_accs(template, params, buffers, px, py, own_dev)
        losses_ = (total / n).tolist()
        tensors = {**params, **buffers}
        for j, i in enumerate(active):
            histories[i].append({"epoch": epoch, "train_loss": losses_[j], "dev_acc": accs[j]})
            stoppers[i].update(epoch, accs[j], _Slice(tensors, keys, j))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(training=len(active), best=f"{max(s.best_acc for s in stoppers):.3f}")
        if ckpt is not None:
            _save_checkpoint(
                ckpt,
                {
                    "run": run,
                    "epoch": epoch,
                    "active": torch.tensor(active),
                    "params": {k: v.detach() for k, v in params.items()},
                    "buffers": buffers,
                    "optimizer": opt.state_dict(),
                    "generators": [g.get_state() for g in gens],
                    **rng_state(dev_),
                    "stoppers": [s.state() for s in stoppers],
                    "histories": [_history_tensor(h) for h in histories],
                    "done": torch.tensor([[i, e, int(s)] for i, (e, s) in sorted(done.items())]),
                },
            )
    for i in active:
        done.setdefault(i, (epoch, False))
    if bar is not None:
        bar.close()
    results = []
    for i, model in enumerate(models):
        stop = stoppers[i]
        model.to(dev_)
        if stop.best_state is not None:
            model.load_state_dict(stop.best_state)
        model.eval()
        epochs_run, early = done[i]
        results.append(FitResult(*stop.kept(histories[i]), epochs_run, histories[i], early))
    if ckpt is not None:
        ckpt.unlink(missing_ok=True)
    return results


def _template(model: nn.Module) -> nn.Module:
    """A weightless copy of ``model`` (meta tensors) whose forward ``functional_call`` drives."""
    refresh_masked_tensors(model)  # a masked tensor left by a forward is not deep-copyable
    return copy.deepcopy(model).to("meta")


def _adam(params: dict[str, Tensor], cfg: TrainConfig) -> torch.optim.Optimizer:
    """:func:`miakit.train.make_optimizer`'s Adam over the stacked tensors (elementwise, so
    one Adam over ``N`` stacked models is ``N`` independent ones)."""
    trainable = [p for p in params.values() if p.requires_grad]
    return torch.optim.Adam(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


def _shrink(
    params: dict[str, Tensor],
    buffers: dict[str, Tensor],
    opt: torch.optim.Optimizer,
    keep: list[int],
    cfg: TrainConfig,
) -> tuple[dict[str, Tensor], dict[str, Tensor], torch.optim.Optimizer]:
    """The stack of the models at positions ``keep``, with their Adam state."""
    rows = torch.tensor(keep, device=next(iter(params.values())).device)
    new = {k: v.detach()[rows].clone().requires_grad_(v.requires_grad) for k, v in params.items()}
    new_opt = _adam(new, cfg)
    for k, old in params.items():
        state = opt.state.get(old)
        if state:
            new_opt.state[new[k]] = {
                name: value if value.dim() == 0 else value[rows].clone()
                for name, value in state.items()
            }
    return new, {k: v[rows].clone() for k, v in buffers.items()}, new_opt


def _batches(
    n: int, batch_size: int, generators: Sequence[torch.Generator], device: torch.device
) -> list[Tensor]:
    """``(models, batch)`` index tensors of one epoch: row ``i`` is the permutation that
    :func:`miakit.train.batches` draws from generator ``i``, cut the same way."""
    perms = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(device)
    return list(perms.split(batch_size, dim=1))


@torch.no_grad()
def _dev_accs(
    template: nn.Module,
    params: dict[str, Tensor],
    buffers: dict[str, Tensor],
    x: Tensor,
    y: Tensor,
    rows: Tensor,
) -> list[float]:
    """Each stacked model's accuracy (eval mode) on its pool ``rows``, read with one sync."""
    template.eval()
    device = y.device

    def predict(p: dict[str, Tensor], b: dict[str, Tensor], xb: Tensor) -> Tensor:
        return functional_call(template, (p, b), (xb,)).argmax(1)

    run = vmap(predict)
    correct = torch.zeros(rows.shape[0], device=device)
    for chunk in rows.split(eval_batch_size(device), dim=1):
        with autocast(device):
            correct += (run(params, buffers, x[chunk]) == y[chunk]).sum(1)
    return (correct / rows.shape[1]).tolist()


_HISTORY_KEYS = ("epoch", "train_loss", "dev_acc")


def _history_tensor(history: list[dict[str, float]]) -> Tensor:
    rows = [[h[k] for k in _HISTORY_KEYS] for h in history]
    return torch.tensor(rows, dtype=torch.float64).reshape(-1, len(_HISTORY_KEYS))


def _rows(t: Tensor) -> list[dict[str, float]]:
    return [
        {**dict(zip(_HISTORY_KEYS, row, strict=True)), "epoch": int(row[0])} for row in t.tolist()
    ]
