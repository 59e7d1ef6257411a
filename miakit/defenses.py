"""Defenses applied during post-pruning fine-tuning: PPB and the two baselines.

PAPER.md, "The defense": the pruned model is fine-tuned (the halved schedule,
:meth:`miakit.train.TrainConfig.halved`) under one of

- ``"none"``: plain fine-tuning with early stopping (the undefended baseline);
- ``"ppb"``: pair-based posterior balancing, the paper's defense (:func:`ppb_loss`,
  :class:`PPB`), lambda in :data:`LAMBDAS`, default 4;
- ``"advreg"``: adversarial regularisation (Nasr et al. 2018,
  :class:`AdversarialRegularization`), theta in :data:`THETAS`;
- ``"dpsgd"``: DP-SGD fine-tuning with Opacus (:func:`dp_finetune`), clip 1.0, noise
  multiplier in :data:`NOISE_MULTIPLIERS`, with epsilon reported for every run.

PPB and adversarial regularisation are objectives (:class:`miakit.train.Objective`) run
by the one training loop :func:`miakit.train.fit`; DP-SGD needs per-sample gradients and
Poisson sampling and has its own loop with the same early stopping. The uniform entry
point is :func:`finetune_defended` (or :func:`make_defense` then
:meth:`Defense.finetune`), which returns a :class:`DefenseResult` for caching and
tables.

The authors' versions of the two baselines have bugs that this module does not copy
(PAPER.md, "The defense"): their inference model trains on one minibatch per epoch (here:
``k`` steps on every classifier step), and their DP fine-tuning runs far too long, in
eval mode, and never reports epsilon (here: the halved schedule with early stopping,
train mode, and epsilon from Opacus's RDP accountant for every run).

Example:
    >>> cfg = TrainConfig().halved()  # doctest: +SKIP
    >>> result = finetune_defended(pruned, train, dev, cfg, "ppb", lam=4.0)  # doctest: +SKIP
    >>> result.record()  # doctest: +SKIP
    {'defense': 'ppb', 'lam': 4.0, 'epochs_run': 12, 'best_dev_acc': 0.71, ...}
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import prune

from miakit.data import Data
from miakit.prune import finetune
from miakit.train import (
    EarlyStopping,
    TrainConfig,
    dev_accuracy,
    make_optimizer,
    resolve_device,
    seed_everything,
)

__all__ = [
    "DEFENSES",
    "LAMBDAS",
    "NOISE_MULTIPLIERS",
    "THETAS",
    "PPB",
    "AdversarialRegularization",
    "DPResult",
    "Defense",
    "DefenseResult",
    "InferenceModel",
    "default_delta",
    "dp_finetune",
    "finetune_defended",
    "make_defense",
    "ppb_divergence",
    "ppb_loss",
]

LAMBDAS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
"""PPB's lambda sweep (PAPER.md, "The defense"); the default is 4."""

THETAS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
"""Adversarial regularisation's theta sweep (PAPER.md, "The defense")."""

NOISE_MULTIPLIERS: tuple[float, ...] = (0.01, 0.1, 1.0)
"""DP-SGD's noise-multiplier sweep (PAPER.md, "The defense"); clip norm 1.0."""

#: RDP orders searched for the tightest (epsilon, delta) conversion: Opacus's defaults plus
#: orders near 1 (tight for small noise multipliers) and large ones (tight for large noise).
_RDP_ORDERS: list[float] = (
    [1.0 + x / 100.0 for x in range(1, 10)]
    + [1.0 + x / 10.0 for x in range(1, 100)]
    + [float(a) for a in range(12, 64)]
    + [64.0, 80.0, 96.0, 128.0, 192.0, 256.0]
)


def _check_weight(name: str, value: float, *, positive: bool = False) -> float:
    """Validate a loss weight or noise level: a finite real number, >= 0 (or > 0)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        bound = "> 0" if positive else ">= 0"
        raise ValueError(
            f"{name}={value!r} is invalid: expected a finite number {bound}; "
            f"pass e.g. {name}=1.0 (the paper's sweeps are in LAMBDAS, THETAS and "
            "NOISE_MULTIPLIERS of miakit.defenses)"
        )
    return float(value)


# ----------------------------------------------------------------------------------------
# PPB: pair-based posterior balancing (the paper's defense)
# ----------------------------------------------------------------------------------------


def _upcast(logits: Tensor) -> Tensor:
    """Half-precision (autocast) logits to float32; float32/float64 kept as they are."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def ppb_divergence(logits: Tensor) -> Tensor:
    """PPB's balancing term: KL between the sorted posteriors of the two half-batches.

    PAPER.md, "The defense": the even part of the minibatch is split into halves A
    (first ``n // 2`` rows) and B (the next ``n // 2`` rows; an odd last row is left out
    of this term); each row's logits are sorted in descending order, and the term is
    ``KL(P || Q)`` averaged over the ``n // 2`` pairs ``(A_i, B_i)``, with the reference
    distribution ``P = softmax(sort z_B)`` and ``Q = softmax(sort z_A)``::

        KL(P || Q) = sum_c P_c (log P_c - log Q_c)

    In PyTorch ``F.kl_div(input=log Q, target=P, reduction="batchmean")`` computes
    exactly this; here the target is passed as ``log P`` with ``log_target=True`` for
    numerical stability. Gradients flow through BOTH halves (the target ``P`` is not
    detached), so each pair pulls the two sorted posteriors towards each other. Sorting
    makes the term class-agnostic: it balances the *shape* of the posteriors (how
    confident), not which class is predicted.

    Args:
        logits: ``(n, K)`` pre-softmax outputs of one minibatch.

    Returns:
        A 0-d tensor (float32 for half-precision logits); ``0`` when ``n < 2`` (no pair).
    """
    if logits.ndim != 2:
        raise ValueError(f"PPB expects (batch, classes) logits, got shape {tuple(logits.shape)}")
    z = _upcast(logits)
    half = z.shape[0] // 2
    if half == 0:
        return z.sum() * 0.0  # keeps the graph; no pair to balance
    sorted_a = z[:half].sort(dim=1, descending=True).values
    sorted_b = z[half : 2 * half].sort(dim=1, descending=True).values
    log_q = F.log_softmax(sorted_a, dim=1)  # Q = softmax(sort z_A): the "input" of kl_div
    log_p = F.log_softmax(sorted_b, dim=1)  # P = softmax(sort z_B): the reference (target)
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)


def ppb_loss(logits: Tensor, y: Tensor, lam: float) -> Tensor:
    """The PPB loss ``CE(logits, y) + lam * KL(softmax(sort z_B) || softmax(sort z_A))``.

    PAPER.md, "The defense" (pair-based posterior balancing): cross-entropy over the
    WHOLE minibatch (an odd last sample included) plus ``lam`` times
    :func:`ppb_divergence` over the pairs of its even part, batch-mean, gradients
    through both halves. Half-precision (bf16 autocast) logits are upcast to float32.

    Args:
        logits: ``(n, K)`` pre-softmax outputs.
        y: ``(n,)`` int64 labels.
        lam: weight of the balancing term, finite and >= 0 (paper: 4; sweep
            :data:`LAMBDAS`); ``0`` gives plain cross-entropy.

    Returns:
        The 0-d loss tensor.

    Raises:
        ValueError: if ``lam`` is negative, NaN or infinite.

    Example:
        >>> z = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 3.0], [0.0, 0.5, 0.0]])
        >>> ppb_loss(z, torch.tensor([0, 1, 2, 1]), lam=4.0).shape
        torch.Size([])
    """
    lam = _check_weight("lam", lam)
    ce = F.cross_entropy(_upcast(logits), y)
    if lam == 0.0:
        return ce
    return ce + lam * ppb_divergence(logits)


class PPB:
    """Pair-based posterior balancing as a :class:`miakit.train.Objective`.

    PAPER.md, "The defense": used during post-pruning fine-tuning only;
    ``objective(model, x, y) = ppb_loss(model(x), y, lam)``. ``fit`` draws each
    minibatch from a fresh random permutation, so the pairs (A_i, B_i) are random pairs
    of training samples.

    Args:
        lam: weight of the KL term (paper default 4; sweep :data:`LAMBDAS`).

    Example:
        >>> fit(pruned, train, dev, cfg.halved(), objective=PPB(lam=4.0))  # doctest: +SKIP
    """

    def __init__(self, lam: float = 4.0) -> None:
        self.lam = _check_weight("lam", lam)

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """The PPB loss of ``model`` on the minibatch ``(x, y)``."""
        return ppb_loss(model(x), y, self.lam)

    def __repr__(self) -> str:
        return f"PPB(lam={self.lam})"


# ----------------------------------------------------------------------------------------
# Adversarial regularisation (Nasr, Shokri and Houmansadr, CCS 2018)
# ----------------------------------------------------------------------------------------


class InferenceModel(nn.Module):
    """Nasr et al.'s inference model ``h(y, f(x))``: is this (posterior, label) a member?

    An MLP on the concatenation ``[softmax posterior (K), one-hot label (K)]``:
    ``2K -> 256 -> 64 -> 1`` with ReLU, returning the member logit (sigmoid gives
    ``h``). This is a compact single-branch version of Nasr et al.'s design (which
    processes the posterior and the label in two branches, 1024-512-64 and 512-64,
    then a joint 256-64-1 head); the inputs and the output are the same.

    Args:
        num_classes: K.
        hidden: widths of the hidden layers.
    """

    def __init__(self, num_classes: int, hidden: tuple[int, ...] = (256, 64)) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"the inference model needs num_classes >= 2, got {num_classes}")
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        width = 2 * num_classes
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        """Member logits ``(N,)`` of ``features = [posterior, one-hot label]`` ``(N, 2K)``."""
        return self.net(features).squeeze(1)


def _attack_features(posteriors: Tensor, y: Tensor, num_classes: int) -> Tensor:
    return torch.cat([posteriors, F.one_hot(y, num_classes).to(posteriors.dtype)], dim=1)


def _as_model_input(x: Tensor, device: torch.device) -> Tensor:
    """Inputs as :func:`miakit.train.fit` feeds them (channels_last images on CUDA)."""
    x = x.to(device, non_blocking=True)
    if device.type == "cuda" and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


class AdversarialRegularization:
    """Adversarial regularisation (Nasr et al. 2018) as a :class:`miakit.train.Objective`.

    PAPER.md, "The defense", baseline. Nasr et al.'s min-max game, with ``f`` the
    classifier, ``h`` the inference model, ``D`` the training set (members), ``D'`` a
    reference set of non-members (here the dev split) and ``lambda`` (here ``theta``)::

        min_f max_h  L_D(f) + theta * G_f(h),
        G_f(h) = E_{(x,y) in D} log h(x, y, f(x)) + E_{(x',y') in D'} log(1 - h(x', y', f(x')))

    On each classifier step (each minibatch ``(x, y)`` of ``fit``):

    1. Draw a non-member minibatch ``(x', y')`` of the same size from the dev data
       (device-resident; without replacement when it is large enough, a new draw every
       step).
    2. Train ``h`` for ``k`` Adam steps (lr ``lr``) to maximise the gain ``G`` on this
       step's members vs non-members, i.e. minimise the binary cross-entropy
       ``BCE_inf = -mean log h(members) - mean log(1 - h(non-members))``. The posteriors
       fed to ``h`` here are eval-mode and detached (what an attacker queries); dev data
       never reaches the classifier's gradients or its BatchNorm statistics.
    3. Return the classifier loss, with ``h`` frozen for this term::

           L(f) = CE(f(x), y) + theta * mean_i log h(x_i, y_i, f(x_i))
                = CE(f(x), y) - theta * BCE(h(f(x), y), member)

       i.e. the classifier is rewarded when the attacker is wrong on its members. (Like
       Nasr's ``log h`` this term is unbounded below; ``h`` keeps adapting, which is the
       game.)

    The authors' implementation trained the inference model on only one minibatch per
    epoch, a bug (PAPER.md, "The defense"); here it trains ``k`` steps on every
    classifier step. ``__call__`` never synchronises with the host.

    Args:
        dev: non-member reference data (the victim's or shadow's dev split).
        num_classes: K.
        theta: weight of the adversarial gain (sweep :data:`THETAS`), finite and >= 0.
        k: inference-model steps per classifier step, >= 1.
        lr: Adam learning rate of the inference model.
        seed: seeds the inference model's initialisation and the non-member draws.

    Attributes:
        inference_model: the :class:`InferenceModel` ``h``.
        optimizer: its Adam optimizer.
        inference_steps: number of inference-model updates so far (a Python int).
        last_inference_loss: detached ``BCE_inf`` of the latest update (device tensor).

    Example:
        >>> reg = AdversarialRegularization(dev, num_classes=10, theta=1.0)  # doctest: +SKIP
        >>> fit(pruned, train, dev, cfg.halved(), objective=reg)  # doctest: +SKIP
    """

    def __init__(
        self,
        dev: Data,
        num_classes: int,
        theta: float = 1.0,
        k: int = 1,
        lr: float = 1e-3,
        seed: int = 0,
    ) -> None:
        self.theta = _check_weight("theta", theta)
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k={k!r} is invalid: expected an int >= 1 (inference steps/step)")
        self.k = k
        self.lr = _check_weight("lr", lr, positive=True)
        if len(dev) == 0:
            raise ValueError("adversarial regularisation needs non-empty dev (non-member) data")
        if dev.num_classes != num_classes:
            raise ValueError(
                f"dev has num_classes={dev.num_classes} but num_classes={num_classes} was given"
            )
        self.num_classes = num_classes
        self.seed = seed
        self.dev = dev
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.inference_model = InferenceModel(num_classes)
        self.optimizer = torch.optim.Adam(self.inference_model.parameters(), lr=self.lr)
        self.inference_steps = 0
        self.last_inference_loss: Tensor | None = None
        self._device: torch.device | None = None
        self._dev_x: Tensor | None = None
        self._dev_y: Tensor | None = None
        self._generator: torch.Generator | None = None

    def _setup(self, device: torch.device) -> None:
        if self._device == device:
            return
        self.inference_model.to(device)  # parameters moved in place: optimizer stays valid
        for state in self.optimizer.state.values():
            for key, value in state.items():
                if isinstance(value, Tensor) and key != "step":
                    state[key] = value.to(device)
        self._dev_x = _as_model_input(self.dev.x, device)
        self._dev_y = self.dev.y.to(device)
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        self._device = device

    def _nonmember_indices(self, b: int) -> Tensor:
        n = self._dev_y.shape[0]
        if b <= n:
            return torch.randperm(n, generator=self._generator, device=self._device)[:b]
        return torch.randint(n, (b,), generator=self._generator, device=self._device)

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """One inference-model round (``k`` steps), then the classifier's loss on ``(x, y)``."""
        device = x.device
        self._setup(device)
        b = x.shape[0]
        idx = self._nonmember_indices(b)
        xn, yn = self._dev_x[idx], self._dev_y[idx]

        was_training = model.training
        model.eval()
        with torch.no_grad():
            post_m = model(x).float().softmax(1)
            post_n = model(xn).float().softmax(1)
        model.train(was_training)
        features = torch.cat(
            [
                _attack_features(post_m, y, self.num_classes),
                _attack_features(post_n, yn, self.num_classes),
            ]
        )
        target = torch.cat([torch.ones(b, device=device), torch.zeros(b, device=device)])
        with torch.enable_grad(), torch.autocast(device_type=device.type, enabled=False):
            for _ in range(self.k):
                self.optimizer.zero_grad(set_to_none=True)
                inf_loss = F.binary_cross_entropy_with_logits(
                    self.inference_model(features), target
                )
                inf_loss.backward()
                self.optimizer.step()
                self.inference_steps += 1
        self.last_inference_loss = inf_loss.detach()

        out = model(x).float()
        ce = F.cross_entropy(out, y)
        frozen = {name: p.detach() for name, p in self.inference_model.named_parameters()}
        with torch.autocast(device_type=device.type, enabled=False):
            member_logit = torch.func.functional_call(
                self.inference_model,
                frozen,
                (_attack_features(out.softmax(1), y, self.num_classes),),
            )
            attacker_loss = F.binary_cross_entropy_with_logits(
                member_logit, torch.ones_like(member_logit)
            )
        return ce - self.theta * attacker_loss

    def __repr__(self) -> str:
        return (
            f"AdversarialRegularization(theta={self.theta}, k={self.k}, lr={self.lr}, "
            f"seed={self.seed}, inference_steps={self.inference_steps})"
        )


# ----------------------------------------------------------------------------------------
# DP-SGD fine-tuning (Opacus)
# ----------------------------------------------------------------------------------------


def default_delta(n_train: int) -> float:
    """The default DP delta: ``1/n_train`` rounded down to a power of ten, at most ``1e-5``.

    ``delta = min(1e-5, 10 ** -ceil(log10(n_train)))``: 1e-5 for the quick profile and
    CIFAR-10's 13500 training samples, 1e-6 from 100001 samples up. It is always
    ``<= 1/n_train``, the usual requirement for a meaningful guarantee.
    """
    if n_train < 1:
        raise ValueError(f"default_delta needs n_train >= 1, got {n_train}")
    return min(1e-5, 10.0 ** -math.ceil(math.log10(n_train)))


@dataclass
class DPResult:
    """What :func:`dp_finetune` did, with its privacy guarantee.

    Attributes:
        model: the trained model (the input object unless Opacus had to convert
            modules; then a converted copy). Always use this one.
        epsilon: epsilon of the whole run (every step taken, also those after the
            best epoch) at ``delta``, from Opacus's RDP accountant.
        delta: the delta used.
        noise_multiplier: sigma of the Gaussian noise, in units of ``max_grad_norm``.
        max_grad_norm: per-sample gradient clipping norm.
        epochs_run: epochs trained before stopping.
        converted: modules Opacus replaced, as ``"name: BatchNorm2d -> GroupNorm(32, 64)"``.
        best_epoch: 1-based epoch whose weights were kept (0 = the initial ones).
        best_dev_acc: dev accuracy of the kept weights.
        history: one dict per epoch: ``epoch``, ``train_loss``, ``dev_acc``, ``epsilon``.
        stopped_early: whether patience ran out.
        steps: optimizer (noisy) steps taken.
        sample_rate: Poisson sampling rate ``q = 1 / ceil(n / batch_size)``.
        accountant: the privacy accountant (``"rdp"``).
    """

    model: nn.Module = field(repr=False)
    epsilon: float
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    epochs_run: int
    converted: list[str]
    best_epoch: int
    best_dev_acc: float
    history: list[dict[str, float]] = field(default_factory=list, repr=False)
    stopped_early: bool = False
    steps: int = 0
    sample_rate: float = 0.0
    accountant: str = "rdp"


def _strip_pruning(model: nn.Module) -> dict[tuple[str, str], Tensor]:
    """Make ``torch.nn.utils.prune`` reparametrisations permanent; return their masks.

    Opacus's per-sample-gradient hooks see a pruned layer's ``weight`` as a plain tensor
    (the trainable parameter is ``weight_orig``), so the masks are taken out here and
    re-imposed after every optimizer step instead.
    """
    masks: dict[tuple[str, str], Tensor] = {}
    for qualname, module in model.named_modules():
        hooks = [
            h for h in module._forward_pre_hooks.values() if isinstance(h, prune.BasePruningMethod)
        ]
        for hook in hooks:
            tensor_name = hook._tensor_name
            masks[(qualname, tensor_name)] = getattr(module, tensor_name + "_mask").detach().clone()
            prune.remove(module, tensor_name)
    return masks


def _restore_pruning(model: nn.Module, masks: Mapping[tuple[str, str], Tensor]) -> None:
    """Re-install the pruning reparametrisation (``weight_orig`` * ``weight_mask``)."""
    for (qualname, tensor_name), mask in masks.items():
        module = model.get_submodule(qualname)
        param = getattr(module, tensor_name)
        prune.custom_from_mask(module, tensor_name, mask.to(param.device))


def convert_for_opacus(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """An Opacus-compatible version of ``model`` and the list of modules converted.

    BatchNorm cannot be trained with per-sample gradients; Opacus's
    ``ModuleValidator.fix`` replaces it by GroupNorm, as Opacus recommends. A model
    that needs nothing is returned as is (``[]``); otherwise a converted copy.
    """
    from opacus.validators import ModuleValidator

    was_training = model.training
    model.train()  # Opacus validates train-mode models only; an eval-mode one is not an error
    try:
        if ModuleValidator.is_valid(model):
            return model, []
        fixed = ModuleValidator.fix(model)
    finally:
        model.train(was_training)
    fixed.train()  # a copy: BatchNorm -> GroupNorm(gcd(32, C), C)
    before = dict(model.named_modules())
    converted = []
    for name, new in fixed.named_modules():
        old = before.get(name)
        if old is not None and type(old) is not type(new):
            desc = repr(new).split("\n")[0]
            desc = re.sub(r", eps=.*\)$", ")", desc)
            converted.append(f"{name}: {type(old).__name__} -> {desc}")
    errors = ModuleValidator.validate(fixed, strict=False)
    if errors:
        raise ValueError(
            f"Opacus cannot train this model even after ModuleValidator.fix: {errors}; "
            "replace the listed modules by DP-compatible ones (see opacus.validators)"
        )
    return fixed, converted


def dp_finetune(
    model: nn.Module,
    train: Data,
    dev: Data,
    cfg: TrainConfig,
    *,
    noise_multiplier: float,
    max_grad_norm: float = 1.0,
    delta: float | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> DPResult:
    """Fine-tune a (pruned) model with DP-SGD (Opacus) and report its epsilon.

    PAPER.md, "The defense", DP-SGD baseline (clip 1.0, noise multiplier in
    :data:`NOISE_MULTIPLIERS`). Done properly, unlike the authors' version (which ran
    far too long, in eval mode, and never reported epsilon):

    - Opacus's ``PrivacyEngine.make_private`` with Poisson sampling (each training
      sample joins each step with probability ``q = 1/ceil(n/batch_size)``, so the
      expected batch is ``cfg.batch_size``), per-sample clipping to ``max_grad_norm``
      and Gaussian noise ``noise_multiplier * max_grad_norm``; the optimizer is Adam
      with ``cfg``'s lr and weight decay. The sampled batches are index tensors; the
      data stay on the device. Float32 throughout (no autocast).
    - The model is in train mode while training, eval mode for dev accuracy.
    - Early stopping on dev accuracy with ``cfg.patience``, best-dev weights kept, as
      :func:`miakit.train.fit` (``cfg`` is normally the halved fine-tuning schedule).
      Model selection on the dev split is post-processing of DP outputs.
    - epsilon at ``delta`` is computed with Opacus's RDP accountant (searching extra
      orders) over EVERY step run, after every epoch and at the end. The PRV accountant
      is not used: at the paper's small noise multipliers (0.1, 0.01) it overflows or
      tries to allocate tens of GiB. At 0.01 the RDP epsilon is astronomically large:
      such a run carries no meaningful formal guarantee, and the number says so.

    Models Opacus cannot train (BatchNorm) are converted with
    ``opacus.validators.ModuleValidator.fix`` (BatchNorm -> GroupNorm with
    ``gcd(32, C)`` groups and fresh affine parameters; running statistics are lost) and
    the conversions are listed in ``converted``. The converted model is a copy: the input
    is then left untouched and ``result.model`` is the one trained. Without conversion
    the input is trained in place (``result.model is model``).

    Pruned models: ``torch.nn.utils.prune`` reparametrisations (``weight_orig`` and
    ``weight_mask``) are made permanent for training, the masks are re-imposed on the
    weights after every optimizer step (the noisy gradient is dense), so pruned weights
    stay exactly zero, and the reparametrisation is re-installed at the end. Structurally
    pruned (smaller) models need nothing special.

    Args:
        model: the pruned model to fine-tune.
        train: the training set (the members; its size sets ``q`` and ``delta``).
        dev: dev data for early stopping.
        cfg: schedule and Adam settings; ``cfg.seed`` seeds the sampling and the noise
            (torch's PRNG, not a cryptographic one: a research setting).
        noise_multiplier: sigma, finite and > 0 (paper: 0.01, 0.1, 1).
        max_grad_norm: per-sample clipping norm C (paper: 1.0), finite and > 0.
        delta: target delta; default :func:`default_delta` of ``len(train)``.
        device: ``None``/``"auto"``, ``"cpu"``, ``"cuda"``...
        progress: show a tqdm bar over epochs.

    Returns:
        A :class:`DPResult`; ``result.model`` is left in eval mode with the best-dev
        weights.

    Raises:
        ValueError: on a non-positive or non-finite noise multiplier, clip norm or
            delta, empty data, or a model Opacus cannot handle even after conversion.
    """
    noise_multiplier = _check_weight("noise_multiplier", noise_multiplier, positive=True)
    max_grad_norm = _check_weight("max_grad_norm", max_grad_norm, positive=True)
    if len(train) == 0 or len(dev) == 0:
        raise ValueError(
            f"dp_finetune needs non-empty train and dev sets, got {len(train)} and {len(dev)}"
        )
    if delta is None:
        delta = default_delta(len(train))
    elif not (isinstance(delta, float) and 0.0 < delta < 1.0):
        raise ValueError(f"delta={delta!r} is invalid: expected a float in (0, 1), e.g. 1e-5")

    dev_ = resolve_device(device)
    gen = seed_everything(cfg.seed)
    work, converted = convert_for_opacus(model)
    work.to(dev_)
    masks = _strip_pruning(work)  # on the copy when converted: the input stays intact
    try:
        return _dp_train(
            work,
            train,
            dev,
            cfg,
            masks=masks,
            converted=converted,
            gen=gen,
            device=dev_,
            noise_multiplier=noise_multiplier,
            max_grad_norm=max_grad_norm,
            delta=delta,
            progress=progress,
        )
    finally:
        _restore_pruning(work, masks)
        work.eval()


def _dp_train(
    work: nn.Module,
    train: Data,
    dev: Data,
    cfg: TrainConfig,
    *,
    masks: Mapping[tuple[str, str], Tensor],
    converted: list[str],
    gen: torch.Generator,
    device: torch.device,
    noise_multiplier: float,
    max_grad_norm: float,
    delta: float,
    progress: bool,
) -> DPResult:
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    x, y = train.x.to(device), train.y.to(device)
    dx, dy = dev.x.to(device), dev.y.to(device)
    masked = [(getattr(work.get_submodule(q), t), m.to(device)) for (q, t), m in masks.items()]
    optimizer = make_optimizer(work, cfg)
    index_loader = DataLoader(
        TensorDataset(torch.arange(len(train))), batch_size=cfg.batch_size, generator=gen
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant="rdp")
    noise_gen = torch.Generator(device=device).manual_seed(cfg.seed)
    work.train()  # Opacus refuses eval-mode models (the pipeline hands over eval copies)
    gsm, dp_opt, poisson_loader = engine.make_private(
        module=work,
        optimizer=optimizer,
        data_loader=index_loader,
        noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm,
        poisson_sampling=True,
        noise_generator=noise_gen,
    )

    def epsilon() -> float:
        if engine.accountant.history == []:
            return 0.0
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Optimal order is the")
            return float(engine.accountant.get_epsilon(delta=delta, alphas=_RDP_ORDERS))

    stopper = EarlyStopping(cfg.patience)
    stopper.update(0, float(dev_accuracy(work, dx, dy)), work)
    steps, epoch = 0, 0
    history: list[dict[str, float]] = []
    stopped_early = False
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, desc="dp-sgd", leave=False)
    try:
        with warnings.catch_warnings():
            # Opacus's full backward hook on the first layer; harmless (inputs need no grad).
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            for epoch in range(1, cfg.epochs + 1):
                if stopper.should_stop:
                    stopped_early, epoch = True, epoch - 1
                    break
                gsm.train()
                total = torch.zeros((), device=device)
                for (idx,) in poisson_loader:  # Poisson-sampled training indices (CPU)
                    nb = idx.numel()
                    idx = idx.to(device, non_blocking=True)
                    out = gsm(x[idx])
                    # mean over the realised batch (Opacus rescales to per-sample grads);
                    # an empty batch still takes a noise-only step, as DP-SGD requires.
                    loss = F.cross_entropy(out, y[idx], reduction="sum") / max(nb, 1)
                    dp_opt.zero_grad(set_to_none=True)
                    loss.backward()
                    dp_opt.step()
                    with torch.no_grad():
                        for weight, mask in masked:
                            weight.mul_(mask)
                    total += loss.detach() * nb
                    steps += 1
                acc = float(dev_accuracy(work, dx, dy))
                history.append(
                    {
                        "epoch": epoch,
                        "train_loss": float(total) / len(train),
                        "dev_acc": acc,
                        "epsilon": epsilon(),
                    }
                )
                stopper.update(epoch, acc, work)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(dev_acc=f"{acc:.3f}", eps=f"{history[-1]['epsilon']:.3g}")
    finally:
        if bar is not None:
            bar.close()
        gsm.to_standard_module()  # removes Opacus's hooks and per-sample attributes
    stopper.restore(work)
    return DPResult(
        model=work,
        epsilon=epsilon(),
        delta=delta,
        noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm,
        epochs_run=epoch,
        converted=converted,
        best_epoch=stopper.best_epoch,
        best_dev_acc=stopper.best_acc,
        history=history,
        stopped_early=stopped_early,
        steps=steps,
        sample_rate=float(poisson_loader.sample_rate),
    )


# ----------------------------------------------------------------------------------------
# Registry and dispatcher
# ----------------------------------------------------------------------------------------

DEFENSES: dict[str, dict[str, Any]] = {
    "none": {},
    "ppb": {"lam": 4.0},
    "advreg": {"theta": 1.0, "k": 1, "lr": 1e-3, "seed": 0},
    "dpsgd": {"noise_multiplier": 1.0, "max_grad_norm": 1.0, "delta": None},
}
"""Defense names and their options with defaults (PAPER.md, "The defense").

``"none"`` is plain fine-tuning with early stopping (the undefended baseline).
"""


@dataclass
class DefenseResult:
    """The uniform outcome of a defended fine-tuning run, for caching and tables.

    Attributes:
        name: the defense (a key of :data:`DEFENSES`).
        params: its complete options (defaults filled in), e.g. ``{"lam": 4.0}``.
        epochs_run: epochs trained before stopping.
        best_dev_acc: dev accuracy of the kept (best-dev) weights.
        epsilon: DP epsilon of the run at ``delta`` (``"dpsgd"`` only, else ``None``).
        delta: DP delta (``"dpsgd"`` only, else ``None``).
        converted: modules Opacus converted (``"dpsgd"`` only; empty otherwise).
        best_epoch: 1-based epoch whose weights were kept (0 = the pruned model's own).
        stopped_early: whether patience ran out.
        history: per-epoch dicts (``epoch``, ``train_loss``, ``dev_acc``[, ``epsilon``]).
        model: the fine-tuned model: the input object, except for ``"dpsgd"`` when Opacus
            converted modules (then a converted copy). Not part of :meth:`record`.
    """

    name: str
    params: dict[str, Any]
    epochs_run: int
    best_dev_acc: float
    epsilon: float | None
    delta: float | None
    converted: list[str]
    best_epoch: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list, repr=False)
    model: nn.Module | None = field(default=None, repr=False, compare=False)

    def record(self) -> dict[str, Any]:
        """A flat, JSON-able row: ``defense``, the params, and the run's numbers."""
        return {
            "defense": self.name,
            **self.params,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "best_dev_acc": self.best_dev_acc,
            "stopped_early": self.stopped_early,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "converted": list(self.converted),
        }


@dataclass(frozen=True)
class Defense:
    """A validated defense configuration; build it with :func:`make_defense`.

    Attributes:
        name: a key of :data:`DEFENSES`.
        params: its complete options, defaults filled in (a stable cache key).
    """

    name: str
    params: dict[str, Any]

    def objective(self, dev: Data, num_classes: int) -> PPB | AdversarialRegularization | None:
        """The :class:`miakit.train.Objective` of this defense (``None`` = cross-entropy).

        Raises:
            ValueError: for ``"dpsgd"``, which is a training procedure, not a loss.
        """
        if self.name == "none":
            return None
        if self.name == "ppb":
            return PPB(**self.params)
        if self.name == "advreg":
            return AdversarialRegularization(dev, num_classes, **self.params)
        raise ValueError(
            f"defense {self.name!r} has no objective (it changes the optimizer, not the "
            "loss); run it with Defense.finetune or dp_finetune"
        )

    def finetune(
        self,
        model: nn.Module,
        train: Data,
        dev: Data,
        cfg: TrainConfig,
        *,
        device: str | torch.device | None = None,
        progress: bool = False,
    ) -> DefenseResult:
        """Fine-tune ``model`` (a pruned model) under this defense.

        PAPER.md, "The defense". ``cfg`` is the fine-tuning schedule (normally
        ``train_cfg.halved()``). ``"none"``, ``"ppb"`` and ``"advreg"`` train ``model``
        in place through :func:`miakit.train.fit`; ``"dpsgd"`` runs :func:`dp_finetune`.
        Use ``result.model`` afterwards (a converted copy when Opacus had to replace
        BatchNorm).
        """
        if self.name == "dpsgd":
            dp = dp_finetune(
                model, train, dev, cfg, device=device, progress=progress, **self.params
            )
            return DefenseResult(
                name=self.name,
                params=dict(self.params),
                epochs_run=dp.epochs_run,
                best_dev_acc=dp.best_dev_acc,
                epsilon=dp.epsilon,
                delta=dp.delta,
                converted=list(dp.converted),
                best_epoch=dp.best_epoch,
                stopped_early=dp.stopped_early,
                history=dp.history,
                model=dp.model,
            )
        objective = self.objective(dev, train.num_classes)
        # prune.finetune is fit plus a check that every pruned weight is still zero
        res = finetune(
            model, train, dev, cfg, objective=objective, device=device, progress=progress
        )
        return DefenseResult(
            name=self.name,
            params=dict(self.params),
            epochs_run=res.epochs_run,
            best_dev_acc=res.best_dev_acc,
            epsilon=None,
            delta=None,
            converted=[],
            best_epoch=res.best_epoch,
            stopped_early=res.stopped_early,
            history=res.history,
            model=model,
        )


def make_defense(name: str | None, **opts: Any) -> Defense:
    """Validate a defense name and its options; fill in the defaults.

    Args:
        name: ``"none"`` (or ``None``), ``"ppb"``, ``"advreg"`` or ``"dpsgd"``
            (case-insensitive).
        **opts: options of that defense (see :data:`DEFENSES`): ``lam`` for PPB;
            ``theta``, ``k``, ``lr``, ``seed`` for adversarial regularisation;
            ``noise_multiplier``, ``max_grad_norm``, ``delta`` for DP-SGD.

    Returns:
        A :class:`Defense`.

    Raises:
        ValueError: on an unknown name, an option the defense does not take, or an
            invalid value (negative or NaN lambda/theta, non-positive noise...).

    Example:
        >>> make_defense("ppb").params
        {'lam': 4.0}
    """
    key = "none" if name is None else str(name).strip().lower()
    if key not in DEFENSES:
        raise ValueError(
            f"unknown defense {name!r}; expected one of {sorted(DEFENSES)} "
            "('none' is plain fine-tuning)"
        )
    defaults = DEFENSES[key]
    unknown = sorted(set(opts) - set(defaults))
    if unknown:
        accepted = ", ".join(defaults) or "no options"
        raise ValueError(
            f"defense {key!r} does not take option(s) {unknown}; it accepts: {accepted}"
        )
    params = {**defaults, **opts}
    if key == "ppb":
        params["lam"] = _check_weight("lam", params["lam"])
    elif key == "advreg":
        params["theta"] = _check_weight("theta", params["theta"])
        params["lr"] = _check_weight("lr", params["lr"], positive=True)
        k = params["k"]
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k={k!r} is invalid: expected an int >= 1 (inference steps/step)")
        if not isinstance(params["seed"], int) or params["seed"] < 0:
            raise ValueError(f"seed={params['seed']!r} is invalid: expected an int >= 0")
    elif key == "dpsgd":
        params["noise_multiplier"] = _check_weight(
            "noise_multiplier", params["noise_multiplier"], positive=True
        )
        params["max_grad_norm"] = _check_weight(
            "max_grad_norm", params["max_grad_norm"], positive=True
        )
        d = params["delta"]
        if d is not None and not (isinstance(d, float) and 0.0 < d < 1.0):
            raise ValueError(f"delta={d!r} is invalid: expected None or a float in (0, 1)")
    return Defense(key, params)


def finetune_defended(
    model: nn.Module,
    train: Data,
    dev: Data,
    cfg: TrainConfig,
    defense: str | None,
    *,
    device: str | torch.device | None = None,
    progress: bool = False,
    **opts: Any,
) -> DefenseResult:
    """Fine-tune a pruned model under a named defense (PAPER.md, "The defense").

    Equivalent to ``make_defense(defense, **opts).finetune(model, train, dev, cfg, ...)``.

    ``defense=None`` or ``"none"`` is the undefended baseline
    (plain fine-tuning with early stopping).

    Example:
        >>> res = finetune_defended(pruned, train, dev, cfg.halved(), "dpsgd",
        ...                         noise_multiplier=1.0)  # doctest: +SKIP
        >>> res.epsilon, res.delta  # doctest: +SKIP
        (7.9, 1e-05)
    """
    spec = make_defense(defense, **opts)
    return spec.finetune(model, train, dev, cfg, device=device, progress=progress)
