"""Adversarial regularisation (Nasr, Shokri and Houmansadr, CCS 2018), a baseline defense.

PAPER.md, "The defense": the classifier is fine-tuned in a min-max game against an
inference model that tries to tell its members (train) from non-members (dev); theta
weighs the adversary's loss and is swept over :data:`THETAS`. As the authors implement
it, with their bug fixed: ``k`` (7) inference-model steps before every classifier step,
over whole epochs.

Example:
    >>> AdvRegParams(theta=2.0).k
    7
    >>> reg = AdvRegParams(theta=1.0).training_objective(train, dev)  # doctest: +SKIP
    >>> fit(pruned, train, dev, cfg.halved(), objective=reg)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miakit._util import as_model_input
from miakit.attacks.attack_net import AttackMLP
from miakit.attacks.neural import posterior_and_label
from miakit.data import Data
from miakit.defenses.base import DefenseParams, check_weight
from miakit.models import xavier_init_

__all__ = [
    "INFERENCE_WEIGHT_DECAY",
    "THETAS",
    "AdvRegParams",
    "AdversarialRegularization",
    "InferenceModel",
]

THETAS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
"""Adversarial regularisation's theta sweep (PAPER.md, "The defense")."""

INFERENCE_WEIGHT_DECAY = 5e-4
"""Adam weight decay of the inference model (the authors', PAPER.md, "The defense")."""


@dataclass(frozen=True)
class AdvRegParams(DefenseParams):
    """Adversarial regularisation's options (PAPER.md, "The defense").

    Attributes:
        theta: weight of the adversary's loss, finite and >= 0 (sweep :data:`THETAS`).
        k: inference-model steps before each classifier step, an int >= 1 (the
            authors' 7).
        lr: Adam learning rate of the inference model, finite and > 0 (the authors'
            1e-3; its weight decay is :data:`INFERENCE_WEIGHT_DECAY`).
        seed: seeds the inference model's initialisation and the member / non-member
            minibatch draws, an int >= 0.

    Raises:
        ValueError: at construction, on any invalid option.
    """

    name: ClassVar[str] = "advreg"
    title: ClassVar[str] = "AdvReg"

    theta: float = 1.0
    k: int = 7
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "theta", check_weight("theta", self.theta))
        object.__setattr__(self, "lr", check_weight("lr", self.lr, positive=True))
        k = self.k
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k={k!r} is invalid: expected an int >= 1 (inference steps/step)")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r} is invalid: expected an int >= 0")

    def objective(self, dev: Data, num_classes: int) -> AdversarialRegularization:
        """Refused: the game draws member minibatches from the training data.

        Raises:
            ValueError: always, saying to call :meth:`training_objective`.
        """
        raise ValueError(
            "adversarial regularisation needs the training data (its members) as well as "
            "dev: call AdvRegParams.training_objective(train, dev) instead of objective()"
        )

    def training_objective(self, train: Data, dev: Data) -> AdversarialRegularization:
        """The min-max game as a :class:`miakit.train.Objective`: members ``train``,
        non-members ``dev``."""
        return AdversarialRegularization(train, dev, **self.params())


class InferenceModel(AttackMLP):
    """The authors' inference model (their ``MIAFC``): is this (posterior, label) a member?

    PAPER.md, "The defense": an MLP on ``[softmax posterior (K), one-hot label (K)]``,
    ``2K -> 512 -> 256 -> 128 -> 2`` with ReLU, dropout 0.2 after the first two hidden
    layers (the authors' ``MIAFC`` default, the same network as the NN attacks'
    :class:`~miakit.attacks.attack_net.AttackMLP`), two logits (class 1 = member),
    Xavier-normal weights and zero biases (the authors' ``weight_init``). Nasr et al.'s
    own design (two branches, a sigmoid output) differs; the inputs are the same.

    Args:
        num_classes: K, >= 2.
        seed: seeds the initialisation (private generator; the global RNG is untouched).
    """

    def __init__(self, num_classes: int, seed: int = 0) -> None:
        if num_classes < 2:
            raise ValueError(f"the inference model needs num_classes >= 2, got {num_classes}")
        super().__init__(2 * num_classes, dropout=0.2)
        self.num_classes = num_classes
        xavier_init_(self, seed=seed)


class AdversarialRegularization:
    """Adversarial regularisation (Nasr et al. 2018) as a :class:`miakit.train.Objective`.

    PAPER.md, "The defense". With ``f`` the classifier, ``h`` the inference model, the
    training set (members) and the dev split (non-members): :func:`miakit.train.fit`
    calls this once per classifier minibatch ``(x, y)``, over every minibatch of every
    epoch, and each call does, as the authors' ``train_defend_adv`` does per step:

    1. ``k`` Adam steps of ``h`` (lr ``lr``, weight decay :data:`INFERENCE_WEIGHT_DECAY`,
       dropout on). Step ``j`` uses its own member minibatch, drawn from the training
       data, and its own non-member minibatch, drawn from dev, both of the size of
       ``x`` (each data set is walked through a shuffled order, reshuffled at each
       pass, as a shuffling data loader would). ``h`` sees ``[softmax f(.),
       onehot(y)]`` with ``f`` in eval mode and no gradient (what an attacker queries;
       dev never reaches ``f``'s gradients or BatchNorm statistics) and minimises the
       authors' weighting of its loss, ``theta * CE2(h(.), member / non-member)``
       (two-class cross-entropy, label 1 for members). The authors' dev loader does not
       shuffle; here both draws do.
    2. The classifier's loss on ``(x, y)``, with ``h`` frozen and in eval mode::

           L(f) = CE(f(x), y) - theta * CE2(h([softmax f(x), onehot y]), member)

       the authors' ``loss1 - privacy_theta * infer_loss``: the classifier is rewarded
       when the attacker misjudges its members (Nasr et al.'s ``L_D(f) + lambda *
       log h`` up to the two-logit parametrisation of ``h``). Unbounded below, as in
       Nasr et al.; ``h`` keeps adapting, which is the game.

    The authors' bug (PAPER.md, "The defense") was in the *classifier*: per epoch their
    code ran the 7 inference steps and then **one** classifier step on one minibatch,
    so the pruned classifier got at most one step per epoch (50 in all). Here the
    classifier trains on every minibatch and ``h`` takes ``k`` steps before each.
    ``__call__`` never synchronises with the host; the ``2k`` eval forwards of a call
    run as one batch (``f`` does not change during them).

    State of its own (``h``, its optimizer, the draws' generator and positions, the
    counters): :meth:`state_dict` / :meth:`load_state_dict` let :func:`miakit.train.fit`
    checkpoint it with the classifier, so a resumed run equals an uninterrupted one.

    Args:
        train: the members (the split the classifier is fine-tuned on).
        dev: the non-members (the victim's or shadow's dev split).
        theta, k, lr, seed: as :class:`AdvRegParams` (its defaults, validated by it).

    Attributes:
        inference_model: the :class:`InferenceModel` ``h``.
        optimizer: its Adam optimizer.
        inference_steps: ``h`` updates so far (a Python int).
        classifier_steps: calls so far, i.e. classifier minibatches (a Python int).
        last_inference_loss: detached ``h`` loss of the latest update (device tensor).

    Example:
        >>> reg = AdversarialRegularization(train, dev, theta=1.0)  # doctest: +SKIP
        >>> fit(pruned, train, dev, cfg.halved(), objective=reg)  # doctest: +SKIP
    """

    def __init__(
        self,
        train: Data,
        dev: Data,
        theta: float = AdvRegParams.theta,
        k: int = AdvRegParams.k,
        lr: float = AdvRegParams.lr,
        seed: int = AdvRegParams.seed,
    ) -> None:
        params = AdvRegParams(theta=theta, k=k, lr=lr, seed=seed)
        self.theta, self.k, self.lr, self.seed = params.theta, params.k, params.lr, seed
        if len(train) == 0 or len(dev) == 0:
            raise ValueError(
                "adversarial regularisation needs non-empty train (member) and dev "
                f"(non-member) data, got {len(train)} and {len(dev)} samples"
            )
        if dev.num_classes != train.num_classes:
            raise ValueError(
                f"train has num_classes={train.num_classes} but dev has {dev.num_classes}; "
                "pass the two splits of one data set"
            )
        self.num_classes = train.num_classes
        self.data = {"member": train, "nonmember": dev}
        self.inference_model = InferenceModel(self.num_classes, seed=seed)
        self.optimizer = torch.optim.Adam(  # fused: one kernel per step, same update rule
            self.inference_model.parameters(),
            lr=self.lr,
            weight_decay=INFERENCE_WEIGHT_DECAY,
            fused=True,
        )
        self.inference_steps = 0
        self.classifier_steps = 0
        self.last_inference_loss: Tensor | None = None
        self._device: torch.device | None = None
        self._x: dict[str, Tensor] = {}
        self._y: dict[str, Tensor] = {}
        self._order: dict[str, Tensor | None] = {"member": None, "nonmember": None}
        self._pos = {"member": 0, "nonmember": 0}
        self._generator: torch.Generator | None = None
        self._restored = False  # the generator came from a checkpoint: never re-seed it

    def state_dict(self) -> dict[str, Any]:
        """The game's state, tensors and plain values only (for checkpoints).

        ``inference_model`` and ``optimizer`` (their ``state_dict``), ``generator`` (the
        draws' generator state, ``None`` before the first call) and its
        ``generator_device``, the shuffled orders and positions of the member and
        non-member draws, ``inference_steps``, ``classifier_steps`` and
        ``last_inference_loss``.
        """
        gen = self._generator
        return {
            "inference_model": self.inference_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": None if gen is None else gen.get_state(),
            "generator_device": None if gen is None else str(gen.device),
            "order": dict(self._order),
            "position": dict(self._pos),
            "inference_steps": self.inference_steps,
            "classifier_steps": self.classifier_steps,
            "last_inference_loss": self.last_inference_loss,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (a resumed fine-tuning run).

        The next call continues the game exactly; it must run on the device the state
        was saved on.
        """
        self.inference_model.load_state_dict(state["inference_model"])
        self.optimizer.load_state_dict(state["optimizer"])  # moves its state to h's device
        self.inference_steps = int(state["inference_steps"])
        self.classifier_steps = int(state["classifier_steps"])
        self.last_inference_loss = state["last_inference_loss"]
        self._order = dict(state["order"])
        self._pos = {name: int(pos) for name, pos in state["position"].items()}
        self._generator, self._restored = None, False
        if state["generator"] is not None:
            self._generator = torch.Generator(device=state["generator_device"])
            self._generator.set_state(state["generator"])
            self._restored = True
        self._device = None  # _setup moves h, the optimizer, the data and the orders again

    def _setup(self, device: torch.device) -> None:
        if self._device == device:
            return
        self.inference_model.to(device)  # parameters moved in place: optimizer stays valid
        for state in self.optimizer.state.values():
            for key, value in state.items():
                if isinstance(value, Tensor) and key != "step":
                    state[key] = value.to(device)
        for name, data in self.data.items():
            self._x[name] = as_model_input(data.x, device)
            self._y[name] = data.y.to(device)
            order = self._order[name]
            self._order[name] = None if order is None else order.to(device)
        if self._generator is None or self._generator.device != device:
            if self._restored:
                raise RuntimeError(
                    f"adversarial regularisation's state was saved on "
                    f"{self._generator.device} but training now runs on {device}; resume on "
                    "the same device, or delete the checkpoint to restart the run"
                )
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        if self.last_inference_loss is not None:
            self.last_inference_loss = self.last_inference_loss.to(device)
        self._device = device

    def _draw(self, name: str, count: int) -> Tensor:
        """The next ``count`` indices of ``name``'s shuffled order, reshuffled at each pass."""
        n = self._y[name].shape[0]
        parts = []
        while count > 0:
            order, pos = self._order[name], self._pos[name]
            if order is None or pos >= n:
                order = torch.randperm(n, generator=self._generator, device=self._device)
                self._order[name], pos = order, 0
            take = min(count, n - pos)
            parts.append(order[pos : pos + take])
            self._pos[name], count = pos + take, count - take
        return torch.cat(parts)

    def _features(self, out: Tensor, y: Tensor) -> Tensor:
        """``h``'s input ``[softmax(out), onehot(y)]``, in float32."""
        return posterior_and_label(out.float().softmax(1), y, self.num_classes)

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """``k`` inference-model steps, then the classifier's loss on ``(x, y)``."""
        device = x.device
        self._setup(device)
        b, k = x.shape[0], self.k
        members, nonmembers = self._draw("member", k * b), self._draw("nonmember", k * b)
        # per step j: rows [j*b, (j+1)*b) of each; one eval forward for all 2k minibatches
        xs = torch.cat([self._x["member"][members], self._x["nonmember"][nonmembers]])
        ys = torch.cat([self._y["member"][members], self._y["nonmember"][nonmembers]])
        was_training = model.training
        model.eval()
        with torch.no_grad():
            feats = self._features(model(xs), ys)
        model.train(was_training)
        m_feats, n_feats = feats[: k * b].view(k, b, -1), feats[k * b :].view(k, b, -1)
        target = torch.cat([torch.ones(b, device=device), torch.zeros(b, device=device)]).long()
        h = self.inference_model
        h.train()
        with torch.enable_grad(), torch.autocast(device_type=device.type, enabled=False):
            for j in range(k):
                self.optimizer.zero_grad(set_to_none=True)
                logits = h(torch.cat([m_feats[j], n_feats[j]]))
                inf_loss = self.theta * F.cross_entropy(logits, target)
                inf_loss.backward()
                self.optimizer.step()
                self.inference_steps += 1
        self.last_inference_loss = inf_loss.detach()

        h.eval()  # no dropout in the classifier's term
        out = model(x).float()
        ce = F.cross_entropy(out, y)
        frozen = {name: p.detach() for name, p in h.named_parameters()}
        with torch.autocast(device_type=device.type, enabled=False):
            member_logits = torch.func.functional_call(h, frozen, (self._features(out, y),))
            attacker_loss = F.cross_entropy(member_logits, torch.ones_like(y))
        self.classifier_steps += 1
        return ce - self.theta * attacker_loss

    def __repr__(self) -> str:
        return (
            f"AdversarialRegularization(theta={self.theta}, k={self.k}, lr={self.lr}, "
            f"seed={self.seed}, inference_steps={self.inference_steps})"
        )
