"""Neural attack models: the attack MLP, its trainer, and the NN, Top3-NN and NNCls attacks.

The paper's three neural baselines (PAPER.md, "The eight existing attacks",
6-8) train one binary classifier on the shadow models' outputs (shadow train =
member, shadow test = non-member, all shadows pooled) and apply it to the
victim's outputs:

- **NN** (``"nn"``): the full posterior vector ``p`` (K values).
- **Top3-NN** (``"top3_nn"``): the three largest posteriors, sorted descending.
- **NNCls** (``"nncls"``): ``p`` concatenated with the one-hot label (2K values).

All three use the *attack MLP* (in-512-256-128-2, ReLU, dropout 0.2 after the
first two layers) trained by :func:`train_attack_model` with the paper's
schedule: SGD (momentum 0.9, lr 1e-3, weight decay 5e-4), batch 128, 100
epochs, learning rate x0.1 at epochs 50 and 75, cross-entropy. SAMIA
(:mod:`miakit.attacks.samia`) reuses the same trainer and base class.

The score of a sample is the attack model's predicted P(member) (softmax of
its two logits), so the hard decision threshold is 0.5.

Example:
    >>> attack = NN(epochs=20).fit(shadow_inputs)  # doctest: +SKIP
    >>> attack.score(victim_inputs).scores  # (N,) P(member)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miakit._util import resolve_device, seeded
from miakit.attacks.base import Attack, AttackInputs, AttackSettings, ReferenceSignals

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "ATTACK_MOMENTUM",
    "ATTACK_WEIGHT_DECAY",
    "NN",
    "AttackMLP",
    "NNCls",
    "NeuralAttack",
    "Top3NN",
    "lr_milestones",
    "member_probability",
    "seeded",
    "train_attack_model",
]

#: SGD momentum of the attack-model schedule (PAPER.md, "The eight existing attacks").
ATTACK_MOMENTUM = 0.9
#: SGD weight decay of the attack-model schedule (PAPER.md, "The eight existing attacks").
ATTACK_WEIGHT_DECAY = 5e-4
#: The paper's attack-model schedule (PAPER.md, "The eight existing attacks"), the defaults.
_PAPER = AttackSettings()


class AttackMLP(nn.Sequential):
    """The attack MLP: in-512-256-128-2, ReLU, dropout 0.2 after the first two layers.

    PAPER.md, "The eight existing attacks" (the network behind NN, Top3-NN and
    NNCls; SAMIA's ``mlp=True`` ablation uses it too).

    Args:
        in_features: Length of the per-sample feature vector.
        dropout: Dropout probability after the first two hidden layers.
    """

    def __init__(self, in_features: int, dropout: float = 0.2) -> None:
        if in_features < 1:
            raise ValueError(f"AttackMLP needs in_features >= 1, got {in_features}")
        super().__init__(
            nn.Linear(in_features, 512),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(512, 256),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(256, 128),
            nn.ReLU(),
            nn.Linear(128, 2),
        )


def lr_milestones(epochs: int) -> list[int]:
    """Epochs at which the attack-model learning rate drops x0.1.

    The paper's schedule is 100 epochs with drops at 50 and 75; shorter runs
    (the kit's smoke/quick profiles) keep the same shape, dropping at half and
    three quarters of ``epochs``. ``lr_milestones(100) == [50, 75]``.
    """
    return [m for m in sorted({round(epochs * 0.5), round(epochs * 0.75)}) if 0 < m < epochs]


def _as_float_tensor(features: Tensor | np.ndarray) -> Tensor:
    x = torch.as_tensor(features)
    if not torch.is_floating_point(x):
        x = x.float()
    return x.to(torch.float32)


def train_attack_model(
    net: nn.Module,
    features: Tensor | np.ndarray,
    membership: Tensor | np.ndarray,
    *,
    epochs: int = 100,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device | None = None,
    history: list[float] | None = None,
) -> nn.Module:
    """Train a binary membership classifier with the paper's attack-model schedule.

    PAPER.md, "The eight existing attacks": SGD (momentum 0.9, weight decay
    5e-4), learning rate ``lr`` (1e-3) multiplied by 0.1 at epochs 50 and 75 of
    100 (:func:`lr_milestones` scales them for other ``epochs``), batch 128,
    cross-entropy on two logits (0 = non-member, 1 = member). SAMIA is trained
    the same way (PAPER.md, "SAMIA").

    The whole feature matrix lives on the device; each epoch's batches are
    gathered by index from a permutation drawn from a CPU generator seeded with
    ``seed`` (so the batch order is the same on every device), and the step
    never synchronises with the host. Dropout runs under a forked RNG seeded
    with ``seed``: on the CPU, the same inputs and seed give identical weights.
    A final batch of a single sample (``N % batch_size == 1``) is skipped,
    since BatchNorm (SAMIA) cannot train on one sample; the sample is in a
    different batch the next epoch.

    Args:
        net: The model to train, mapping ``(B, F)`` features to ``(B, 2)`` logits.
            Trained in place and moved to ``device``.
        features: ``(N, F)`` float features, one row per sample.
        membership: ``(N,)`` 0/1 labels, 1 = member.
        epochs: Number of passes over the data (paper: 100).
        batch_size: Minibatch size (paper: 128).
        lr: Initial SGD learning rate (paper: 1e-3).
        seed: Seeds the batch order and dropout.
        device: ``None``/``"auto"`` = CUDA when available, else CPU.
        history: If given, the mean training loss of each epoch is appended
            (read from the device once, after training).

    Returns:
        ``net``, trained, on ``device``, in eval mode.

    Raises:
        ValueError: If shapes disagree, labels are not 0/1, features are not
            finite, there are fewer than two samples, or ``batch_size < 2``.
    """
    if epochs < 0 or batch_size < 2 or not lr > 0:
        raise ValueError(
            f"need epochs >= 0, batch_size >= 2 and lr > 0; got {epochs}, {batch_size}, {lr}"
        )
    dev = resolve_device(device)
    x = _as_float_tensor(features)
    y = torch.as_tensor(membership).to(torch.int64)
    if x.dim() != 2 or y.shape != (x.shape[0],):
        raise ValueError(
            f"features must be (N, F) and membership (N,); got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"training an attack model needs at least 2 samples, got {n}")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("membership must hold only 0 (non-member) and 1 (member)")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("attack features contain NaN or inf; check the posteriors/sensitivity")
    x = x.to(dev)
    y = y.to(dev)
    net.to(dev).train()
    opt = torch.optim.SGD(
        net.parameters(), lr=lr, momentum=ATTACK_MOMENTUM, weight_decay=ATTACK_WEIGHT_DECAY
    )
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=lr_milestones(epochs), gamma=0.1)
    order = torch.Generator(device="cpu").manual_seed(seed)
    used = n - 1 if (n % batch_size == 1) else n
    epoch_losses: list[Tensor] = []
    with seeded(seed, dev):
        for _ in range(epochs):
            perm = torch.randperm(n, generator=order).to(dev, non_blocking=True)
            total = torch.zeros((), device=dev)
            for idx in perm.split(batch_size):
                if idx.numel() < 2:
                    continue
                loss = F.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total = total + loss.detach() * idx.numel()
            sched.step()
            epoch_losses.append(total / used)
    net.eval()
    if history is not None and epoch_losses:
        history.extend(torch.stack(epoch_losses).cpu().tolist())
    return net


@torch.inference_mode()
def member_probability(
    net: nn.Module, features: Tensor | np.ndarray, *, batch_size: int = 8192
) -> np.ndarray:
    """Predicted P(member) of a trained attack model, as float64 numpy.

    The probability is the softmax of the two logits, computed in float64 from
    the logit difference so that confident scores stay distinct (matters for
    TPR at low FPR). The model is put in eval mode and run on its own device.

    Args:
        net: A trained attack model mapping ``(B, F)`` to ``(B, 2)`` logits.
        features: ``(N, F)`` features.
        batch_size: Rows per forward pass.

    Returns:
        ``(N,)`` float64 array in ``[0, 1]``.
    """
    net.eval()
    param = next(iter(net.parameters()), None)
    dev = param.device if param is not None else torch.device("cpu")
    x = _as_float_tensor(features)
    outs = [net(xb.to(dev)).double() for xb in x.split(batch_size)]
    if not outs:
        return np.zeros(0, dtype=np.float64)
    logits = torch.cat(outs)
    return torch.sigmoid(logits[:, 1] - logits[:, 0]).cpu().numpy()


@dataclass
class NeuralAttack(Attack):
    """Base of the attacks that train a network on shadow outputs (NN, Top3-NN, NNCls, SAMIA).

    Subclasses define :meth:`features` (the per-sample input vector) and may
    override :meth:`build_network` (default: :class:`AttackMLP`). ``fit``
    trains on the pooled shadow signals with :func:`train_attack_model`;
    ``score`` returns P(member); ``threshold`` is 0.5. ``persist`` is True: the
    trained network round-trips through :meth:`state` and :meth:`from_state`
    (tensors only, no pickle).

    Attributes:
        epochs: Attack-model training epochs (paper: 100; profiles use fewer).
        batch_size: Minibatch size (paper: 128).
        lr: Initial SGD learning rate (paper: 1e-3).
        seed: Seeds weight initialisation, batch order and dropout.
        device: Training device; ``None`` = CUDA when available, else CPU.
        model_: The trained attack network (set by ``fit``).
        num_classes_: K seen by ``fit``; ``score`` checks the target matches.
        num_features_: the network's input width, set by ``fit``.
    """

    name: ClassVar[str] = "neural"
    family: ClassVar[str] = "neural"
    persist: ClassVar[bool] = True

    epochs: int = _PAPER.epochs
    batch_size: int = _PAPER.batch_size
    lr: float = _PAPER.lr
    seed: int = _PAPER.seed
    device: str | torch.device | None = _PAPER.device
    model_: nn.Module | None = field(default=None, init=False, repr=False, compare=False)
    num_classes_: int | None = field(default=None, init=False, repr=False)
    num_features_: int | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: AttackSettings, **options: Any) -> Self:
        """The attack trained with ``settings`` (epochs, lr, batch size, seed, device).

        ``options`` are the attack's own options (e.g. SAMIA's ``use_sensitivity``);
        one that repeats a setting overrides it.
        """
        trained = {
            "epochs": settings.epochs,
            "lr": settings.lr,
            "batch_size": settings.batch_size,
            "seed": settings.seed,
            "device": settings.device,
        }
        return cls(**{**trained, **options})

    def features(self, inputs: AttackInputs) -> Tensor:  # pragma: no cover - interface
        """``(N, F)`` float32 attack features of ``inputs``."""
        raise NotImplementedError

    def build_network(self, num_features: int, num_classes: int) -> nn.Module:
        """A fresh, untrained attack network for ``num_features`` inputs (K = ``num_classes``)."""
        return AttackMLP(num_features)

    def fit(
        self, shadows: AttackInputs | None = None, references: ReferenceSignals | None = None
    ) -> NeuralAttack:
        """Train the attack network on pooled shadow signals (member = shadow train).

        Args:
            shadows: Pooled shadow outputs with ``membership`` set.
            references: not used.

        Returns:
            ``self``, fitted.
        """
        shadow = self._need("pooled shadow signals", shadows)
        membership = shadow.require_membership()
        x = self.features(shadow)
        dev = resolve_device(self.device)
        with seeded(self.seed, dev):
            net = self.build_network(x.shape[1], shadow.num_classes)
        self.model_ = train_attack_model(
            net,
            x,
            membership,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=self.seed,
            device=dev,
        )
        self.num_classes_ = shadow.num_classes
        self.num_features_ = int(x.shape[1])
        self.threshold = 0.5
        return self

    def score_values(self, target: AttackInputs) -> np.ndarray:
        """P(member) for each target sample, ``(N,)`` float64 (higher = member)."""
        if self.model_ is None:
            raise ValueError(f"{type(self).__name__} is not fitted; call fit(shadow_inputs) first")
        if target.num_classes != self.num_classes_:
            raise ValueError(
                f"{type(self).__name__} was fitted on K={self.num_classes_} classes but the "
                f"target has K={target.num_classes}; use shadows of the victim's task"
            )
        return member_probability(self.model_, self.features(target))

    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The trained network's ``state_dict`` (on the CPU) and ``num_features``, ``num_classes``,
        ``threshold``."""
        if self.model_ is None:
            raise ValueError(f"{type(self).__name__} is not fitted; nothing to store")
        tensors = {k: v.detach().cpu() for k, v in self.model_.state_dict().items()}
        meta = {
            "num_features": int(self.num_features_),
            "num_classes": int(self.num_classes_),
            "threshold": float(self.threshold),
        }
        return tensors, meta

    @classmethod
    def from_state(
        cls,
        tensors: Mapping[str, Tensor],
        meta: Mapping[str, Any],
        settings: AttackSettings,
        **options: Any,
    ) -> Self:
        """The fitted attack that :meth:`state` described, on ``settings.device``."""
        attack = cls.from_settings(settings, **options)
        num_features, num_classes = int(meta["num_features"]), int(meta["num_classes"])
        net = attack.build_network(num_features, num_classes)
        net.load_state_dict(dict(tensors))
        attack.model_ = net.to(resolve_device(attack.device)).eval()
        attack.num_classes_ = num_classes
        attack.num_features_ = num_features
        attack.threshold = float(meta["threshold"])
        return attack


def _posteriors(inputs: AttackInputs) -> Tensor:
    return torch.as_tensor(np.asarray(inputs.posteriors), dtype=torch.float32)


def _one_hot(inputs: AttackInputs) -> Tensor:
    labels = torch.as_tensor(np.asarray(inputs.labels), dtype=torch.int64)
    return F.one_hot(labels, inputs.num_classes).to(torch.float32)


@dataclass
class NN(NeuralAttack):
    """NN attack: the attack MLP on the full posterior vector.

    PAPER.md, "The eight existing attacks", 6. Features: ``p`` (N, K).
    """

    name: ClassVar[str] = "nn"
    title: ClassVar[str] = "NN"

    def features(self, inputs: AttackInputs) -> Tensor:
        """The posterior vector, ``(N, K)``."""
        return _posteriors(inputs)


@dataclass
class Top3NN(NeuralAttack):
    """Top3-NN attack: the attack MLP on the three largest posteriors, sorted descending.

    PAPER.md, "The eight existing attacks", 7. With fewer than three classes
    the missing entries are zero.
    """

    name: ClassVar[str] = "top3_nn"
    title: ClassVar[str] = "Top3-NN"

    def features(self, inputs: AttackInputs) -> Tensor:
        """The top-3 posteriors in descending order, ``(N, 3)``."""
        p = _posteriors(inputs)
        top = p.topk(min(3, p.shape[1]), dim=1, sorted=True).values
        if top.shape[1] < 3:
            top = F.pad(top, (0, 3 - top.shape[1]))
        return top


@dataclass
class NNCls(NeuralAttack):
    """NNCls attack: the attack MLP on the posterior concatenated with the one-hot label.

    PAPER.md, "The eight existing attacks", 8. Features: ``[p, onehot(y)]`` (N, 2K).
    """

    name: ClassVar[str] = "nncls"
    title: ClassVar[str] = "NNCls"

    def features(self, inputs: AttackInputs) -> Tensor:
        """``[p_0..p_{K-1}, y_0..y_{K-1}]``, ``(N, 2K)``."""
        return torch.cat([_posteriors(inputs), _one_hot(inputs)], dim=1)
