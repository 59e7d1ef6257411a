"""Adversarial regularisation (Nasr, Shokri and Houmansadr, CCS 2018), a baseline defense.

PAPER.md, "The defense": the classifier is fine-tuned in a min-max game against an
inference model that tries to tell its members from non-members; theta weighs the
adversary's gain in the classifier's loss and is swept over :data:`THETAS`.

Example:
    >>> AdvRegParams(theta=2.0).k
    1
    >>> reg = AdvRegParams(theta=1.0).objective(dev, num_classes=10)  # doctest: +SKIP
    >>> fit(pruned, train, dev, cfg.halved(), objective=reg)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miakit._util import as_model_input, seeded
from miakit.attacks.neural import posterior_and_label
from miakit.data import Data
from miakit.defenses.base import DefenseParams, check_weight

__all__ = ["THETAS", "AdvRegParams", "AdversarialRegularization", "InferenceModel"]

THETAS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
"""Adversarial regularisation's theta sweep (PAPER.md, "The defense")."""


@dataclass(frozen=True)
class AdvRegParams(DefenseParams):
    """Adversarial regularisation's options (PAPER.md, "The defense").

    Attributes:
        theta: weight of the adversarial gain, finite and >= 0 (sweep :data:`THETAS`).
        k: inference-model steps per classifier step, an int >= 1.
        lr: Adam learning rate of the inference model, finite and > 0.
        seed: seeds the inference model's initialisation and the non-member draws,
            an int >= 0.

    Raises:
        ValueError: at construction, on any invalid option.
    """

    name: ClassVar[str] = "advreg"
    title: ClassVar[str] = "AdvReg"

    theta: float = 1.0
    k: int = 1
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "theta", check_weight("theta", self.theta))
        object.__setattr__(self, "lr", check_weight("lr", self.lr, positive=True))
        k = self.k
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k={k!r} is invalid: expected an int >= 1 (inference steps/step)")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r} is invalid: expected an int >= 0")

    def objective(self, dev: Data, num_classes: int) -> AdversarialRegularization:
        """The min-max game as a :class:`miakit.train.Objective`, ``dev`` as non-members."""
        return AdversarialRegularization(dev, num_classes, **self.params())


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

    The game has state of its own (``h``, its optimizer, the non-member generator):
    :meth:`state_dict` and :meth:`load_state_dict` let :func:`miakit.train.fit`
    checkpoint it with the classifier, so a resumed run equals an uninterrupted one.

    Args:
        dev: non-member reference data (the victim's or shadow's dev split).
        num_classes: K.
        theta, k, lr, seed: as :class:`AdvRegParams` (its defaults, validated by it).

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
        theta: float = AdvRegParams.theta,
        k: int = AdvRegParams.k,
        lr: float = AdvRegParams.lr,
        seed: int = AdvRegParams.seed,
    ) -> None:
        params = AdvRegParams(theta=theta, k=k, lr=lr, seed=seed)
        self.theta, self.k, self.lr = params.theta, params.k, params.lr
        if len(dev) == 0:
            raise ValueError("adversarial regularisation needs non-empty dev (non-member) data")
        if dev.num_classes != num_classes:
            raise ValueError(
                f"dev has num_classes={dev.num_classes} but num_classes={num_classes} was given"
            )
        self.num_classes = num_classes
        self.seed = seed
        self.dev = dev
        with seeded(seed):
            self.inference_model = InferenceModel(num_classes)
        self.optimizer = torch.optim.Adam(self.inference_model.parameters(), lr=self.lr)
        self.inference_steps = 0
        self.last_inference_loss: Tensor | None = None
        self._device: torch.device | None = None
        self._dev_x: Tensor | None = None
        self._dev_y: Tensor | None = None
        self._generator: torch.Generator | None = None
        self._restored = False  # the generator came from a checkpoint: never re-seed it

    def state_dict(self) -> dict[str, Any]:
        """The game's state, tensors and plain values only (for checkpoints).

        ``inference_model`` and ``optimizer`` (their ``state_dict``), ``generator``
        (the non-member draws' generator state, ``None`` before the first step) and
        its ``generator_device``, ``inference_steps`` and ``last_inference_loss``.
        """
        gen = self._generator
        return {
            "inference_model": self.inference_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": None if gen is None else gen.get_state(),
            "generator_device": None if gen is None else str(gen.device),
            "inference_steps": self.inference_steps,
            "last_inference_loss": self.last_inference_loss,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (a resumed fine-tuning run).

        The next step continues the game exactly; it must run on the device the
        state was saved on.
        """
        self.inference_model.load_state_dict(state["inference_model"])
        self.optimizer.load_state_dict(state["optimizer"])  # moves its state to h's device
        self.inference_steps = int(state["inference_steps"])
        self.last_inference_loss = state["last_inference_loss"]
        self._generator, self._restored = None, False
        if state["generator"] is not None:
            self._generator = torch.Generator(device=state["generator_device"])
            self._generator.set_state(state["generator"])
            self._restored = True
        self._device = None  # _setup moves h, the optimizer and the dev data again

    def _setup(self, device: torch.device) -> None:
        if self._device == device:
            return
        self.inference_model.to(device)  # parameters moved in place: optimizer stays valid
        for state in self.optimizer.state.values():
            for key, value in state.items():
                if isinstance(value, Tensor) and key != "step":
                    state[key] = value.to(device)
        self._dev_x = as_model_input(self.dev.x, device)
        self._dev_y = self.dev.y.to(device)
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
                posterior_and_label(post_m, y, self.num_classes),
                posterior_and_label(post_n, yn, self.num_classes),
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
                (posterior_and_label(out.softmax(1), y, self.num_classes),),
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
