"""The neural attacks NN, Top3-NN and NNCls, and their base class :class:`NeuralAttack`.

The paper's three neural baselines (PAPER.md, "The eight existing attacks",
6-8) train one binary classifier on the shadow models' outputs (shadow train =
member, shadow test = non-member, all shadows pooled) and apply it to the
victim's outputs:

- **NN** (``"nn"``): the full posterior vector ``p`` (K values).
- **Top3-NN** (``"top3_nn"``): the three largest posteriors, sorted descending.
- **NNCls** (``"nncls"``): ``p`` concatenated with the one-hot label (2K values).

All three use the *attack MLP* (in-512-256-128-2, ReLU, dropout 0.2 after the
first two layers) trained by :func:`~miakit.attacks.attack_net.train_attack_model`
with the paper's schedule: SGD (momentum 0.9, lr 1e-3, weight decay 5e-4), batch
128, 100 epochs, learning rate x0.1 at epochs 50 and 75, cross-entropy (both in
:mod:`miakit.attacks.attack_net`). SAMIA (:mod:`miakit.attacks.samia`) reuses the
same trainer and base class. NNCls's features, :func:`posterior_and_label`, are
also adversarial regularisation's inference-model input.

The score of a sample is the attack model's predicted P(member) (softmax of
its two logits), so the hard decision threshold is 0.5.

Example:
    >>> attack = NN(epochs=20).fit(shadow_inputs)  # doctest: +SKIP
    >>> attack.score(victim_inputs).scores  # (N,) P(member)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miakit._util import resolve_device, seeded
from miakit.attacks.attack_net import (
    ATTACK_MOMENTUM,
    ATTACK_WEIGHT_DECAY,
    AttackMLP,
    lr_milestones,
    member_probability,
    train_attack_model,
)
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
    "posterior_and_label",
    "seeded",
    "train_attack_model",
]

# Re-exported for existing imports: the attack MLP and its trainer
# (:mod:`miakit.attacks.attack_net`) and ``_util.seeded``.

#: The paper's attack-model schedule (PAPER.md, "The eight existing attacks"), the defaults.
_PAPER = AttackSettings()


def posterior_and_label(posteriors: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """The posterior concatenated with the one-hot label, ``[p, onehot(y)]`` ``(N, 2K)``.

    NNCls's features (PAPER.md, "The eight existing attacks", 8), and the input of
    adversarial regularisation's inference model (:mod:`miakit.defenses.advreg`).
    The one-hot part takes the dtype and device of ``posteriors``; gradients flow
    through ``posteriors``.

    Args:
        posteriors: ``(N, K)`` float softmax outputs.
        labels: ``(N,)`` int64 class indices in ``[0, K)``, on the device of ``posteriors``.
        num_classes: K.

    Returns:
        ``(N, 2K)``: columns ``p_0..p_{K-1}``, then ``y_0..y_{K-1}``.

    Raises:
        ValueError: if the shapes do not match ``(N, K)``, ``(N,)`` and ``num_classes``.
    """
    if posteriors.dim() != 2 or posteriors.shape[1] != num_classes:
        raise ValueError(
            f"posteriors must be (N, {num_classes}), got {tuple(posteriors.shape)}; "
            "pass softmax outputs of the K-class model"
        )
    if labels.shape != (posteriors.shape[0],):
        raise ValueError(
            f"labels must be ({posteriors.shape[0]},) to match posteriors, "
            f"got {tuple(labels.shape)}"
        )
    return torch.cat([posteriors, F.one_hot(labels, num_classes).to(posteriors.dtype)], dim=1)


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
        progress: show progress bars while training (over epochs) and scoring.
        label: what the attack is fitted for (e.g. the shadows' variant), in the
            bars' labels: ``"fit samia (l1_unstructured@0.7)"``. Neither this nor
            ``progress`` changes a result.
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
    progress: bool = field(default=False, repr=False, compare=False)
    label: str = field(default="", repr=False, compare=False)
    model_: nn.Module | None = field(default=None, init=False, repr=False, compare=False)
    num_classes_: int | None = field(default=None, init=False, repr=False)
    num_features_: int | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: AttackSettings, **options: Any) -> Self:
        """The attack trained with ``settings`` (epochs, lr, batch size, seed, device, bars).

        ``options`` are the attack's own options (e.g. SAMIA's ``use_sensitivity``);
        one that repeats a setting overrides it.
        """
        trained = {
            "epochs": settings.epochs,
            "lr": settings.lr,
            "batch_size": settings.batch_size,
            "seed": settings.seed,
            "device": settings.device,
            "progress": settings.progress,
            "label": settings.label,
        }
        return cls(**{**trained, **options})

    def features(self, inputs: AttackInputs) -> Tensor:  # pragma: no cover - interface
        """``(N, F)`` float32 attack features of ``inputs``."""
        raise NotImplementedError

    def describe(self, action: str) -> str:
        """A progress bar's label: ``"fit samia (l1_unstructured@0.7)"``."""
        return f"{action} {self.name}" + (f" ({self.label})" if self.label else "")

    def build_network(self, num_features: int, num_classes: int) -> nn.Module:
        """A fresh, untrained attack network for ``num_features`` inputs (K = ``num_classes``)."""
        return AttackMLP(num_features)

    def fit(
        self,
        shadows: AttackInputs | None = None,
        references: ReferenceSignals | None = None,
        *,
        checkpoint: str | Path | None = None,
    ) -> NeuralAttack:
        """Train the attack network on pooled shadow signals (member = shadow train).

        Args:
            shadows: Pooled shadow outputs with ``membership`` set.
            references: not used.
            checkpoint: optional file for :func:`train_attack_model`'s per-epoch
                checkpoint: a killed fit resumes from it, losing at most one epoch,
                with an identical network; deleted when training ends.

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
            checkpoint=checkpoint,
            progress=self.progress,
            desc=self.describe("fit"),
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
        return member_probability(
            self.model_,
            self.features(target),
            progress=self.progress,
            desc=self.describe("score"),
        )

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


def _labels(inputs: AttackInputs) -> Tensor:
    return torch.as_tensor(np.asarray(inputs.labels), dtype=torch.int64)


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
        return posterior_and_label(_posteriors(inputs), _labels(inputs), inputs.num_classes)
