"""SAMIA, the self-attention membership inference attack (PAPER.md, "SAMIA").

SAMIA reads, per sample with K classes, the posterior ``p`` (K, unsorted), the
per-class input sensitivity ``s`` (K; computed by
:func:`miakit.train.sensitivity`, not here) and the one-hot label ``y`` (K),
treats each class as a token ``(p_c, s_c, y_c)`` and lets a small Transformer
encoder attend across classes. That is what lets it pick up the class-dependent
"prediction divergence" that pruning causes.

Feature layout: the 3K vector is **class-major (interleaved)**,
``[p_0, s_0, y_0, p_1, s_1, y_1, ..., p_{K-1}, s_{K-1}, y_{K-1}]``, so that
``x.view(N, K, 3)`` is exactly the K tokens ``(p_c, s_c, y_c)``. BatchNorm1d
normalises each of the 3K entries separately, which leaves this view intact.
With ``use_sensitivity=False`` the layout is ``[p_0, y_0, p_1, y_1, ...]``
(tokens of two features).

Network (PAPER.md, "SAMIA"): BatchNorm1d(3K) -> view (K, 3) -> Linear(3, 64)
+ GELU -> TransformerEncoder (3 layers, d_model 64, 4 heads, feed-forward 128,
dropout 0.2, GELU, batch_first, no positional encoding) -> flatten K*64 ->
Linear 64 + ReLU -> Linear 2, initialised as the authors do
(:func:`~miakit.attacks.attack_net.attack_init_`: Xavier-normal linear layers,
zero biases, unit norm layers; PAPER.md, "Models and training"). Trained with the
attack-model schedule (:func:`miakit.attacks.attack_net.train_attack_model`).
Each encoder layer (:class:`EncoderLayer`) computes what
``torch.nn.TransformerEncoderLayer`` computes (post-norm), written out so that its
four dropouts, the attention weights' among them, draw the cheap CPU mask of
:class:`~miakit.attacks.attack_net.FastDropout`: dropout inside
``scaled_dot_product_attention`` and ``nn.Dropout`` were a quarter of SAMIA's
training time on the CPU.

Example (the shadow and victim ``AttackInputs`` must carry ``sensitivity``):
    >>> attack = SAMIA(epochs=20).fit(shadow_inputs)  # doctest: +SKIP
    >>> scores = attack.score(victim_inputs).scores  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from miakit.attacks.attack_net import AttackMLP, FastDropout, attack_init_
from miakit.attacks.base import AttackInputs
from miakit.attacks.neural import NeuralAttack

__all__ = ["SAMIA", "EncoderLayer", "SAMIANet", "samia_features"]


def samia_features(inputs: AttackInputs, *, use_sensitivity: bool = True) -> Tensor:
    """SAMIA's per-sample input vector in the class-major token layout.

    PAPER.md, "SAMIA": posterior ``p`` (unsorted), sensitivity ``s`` and the
    one-hot label ``y``, arranged as ``[p_0, s_0, y_0, p_1, s_1, y_1, ...]`` so
    that ``view(N, K, 3)`` gives the tokens ``(p_c, s_c, y_c)``.

    Args:
        inputs: Model signals; ``inputs.sensitivity`` is required when
            ``use_sensitivity`` is true.
        use_sensitivity: ``False`` drops ``s`` (the ablation): tokens ``(p_c, y_c)``.

    Returns:
        ``(N, T*K)`` float32 tensor, ``T = 3`` (or 2 without sensitivity).

    Raises:
        ValueError: If sensitivity is needed but ``inputs.sensitivity`` is None.
    """
    p = torch.as_tensor(np.asarray(inputs.posteriors), dtype=torch.float32)
    labels = torch.as_tensor(np.asarray(inputs.labels), dtype=torch.int64)
    y = torch.nn.functional.one_hot(labels, inputs.num_classes).to(torch.float32)
    parts = [p]
    if use_sensitivity:
        if inputs.sensitivity is None:
            raise ValueError(
                "SAMIA needs the per-class input sensitivity (PAPER.md, 'SAMIA'), but these "
                "AttackInputs have sensitivity=None. Compute it with "
                "miakit.train.sensitivity(model, x) for every shadow and the victim and pass "
                "AttackInputs(..., sensitivity=...), or run the ablation "
                "SAMIA(use_sensitivity=False)."
            )
        parts.append(torch.as_tensor(np.asarray(inputs.sensitivity), dtype=torch.float32))
    parts.append(y)
    # (N, K, T) -> (N, K*T): class-major, the T features of class c are adjacent.
    return torch.stack(parts, dim=2).reshape(p.shape[0], -1)


def _softmax(scores: Tensor) -> Tensor:
    """Softmax over the last axis, as ``torch.softmax`` (to 1e-7), 2.6x faster forward and
    backward on the CPU at SAMIA's 10 tokens (measured 0.57 vs 1.50 ms at 128 x 4 x 10 x 10)."""
    e = (scores - scores.detach().amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)


class _Projection(nn.Linear):
    """The attention's input and output projections: a ``Linear`` subclass, so the exact-class
    rule of :func:`~miakit.attacks.attack_net.attack_init_` leaves their own init alone."""


class EncoderLayer(nn.Module):
    """One post-norm Transformer encoder layer, the computation of PyTorch's.

    As ``torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout,
    activation="gelu", batch_first=True)`` (``norm_first=False``, LayerNorm eps 1e-5)::

        x = norm1(x + dropout(out(attention(x))))      attention weights dropped too
        x = norm2(x + dropout(linear2(dropout(gelu(linear1(x))))))

    with every dropout a :class:`~miakit.attacks.attack_net.FastDropout`. The
    initialisation follows PyTorch's attention as the authors' SAMIA gets it: the packed
    input projection Xavier-uniform, the output projection ``Linear``'s default, both
    biases zero; ``linear1``, ``linear2`` and the norms are left to
    :func:`~miakit.attacks.attack_net.attack_init_`.

    Args:
        d_model: token width.
        nhead: attention heads (``d_model`` must divide by it).
        dim_feedforward: feed-forward width.
        dropout: probability of every dropout.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"d_model={d_model} must be divisible by nhead={nhead}")
        self.nhead = nhead
        self.qkv = _Projection(d_model, 3 * d_model)
        self.out = _Projection(d_model, d_model)
        nn.init.xavier_uniform_(self.qkv.weight)
        nn.init.zeros_(self.qkv.bias)
        nn.init.zeros_(self.out.bias)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.drop = FastDropout(dropout)

    def attention(self, x: Tensor) -> Tensor:
        """Multi-head self-attention over the tokens of ``x`` ``(N, T, d_model)``."""
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.nhead, d // self.nhead).permute(2, 0, 3, 1, 4)
        weights = _softmax(q @ k.transpose(-2, -1) * (d // self.nhead) ** -0.5)
        return (self.drop(weights) @ v).transpose(1, 2).reshape(n, t, d)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, T, d_model)`` tokens in and out."""
        x = self.norm1(x + self.drop(self.out(self.attention(x))))
        ff = self.linear2(self.drop(nn.functional.gelu(self.linear1(x))))
        return self.norm2(x + self.drop(ff))


class SAMIANet(nn.Module):
    """SAMIA's attention network over K class tokens (PAPER.md, "SAMIA").

    Built with the authors' initialisation (:func:`~miakit.attacks.attack_net.attack_init_`),
    drawing from torch's global RNG (:class:`SAMIA` builds it under its ``seed``).

    Args:
        num_classes: K, the number of tokens.
        token_features: Features per token T (3 = ``(p_c, s_c, y_c)``; 2 without sensitivity).
        d_model: Token embedding width (paper: 64).
        nhead: Attention heads (paper: 4).
        dim_feedforward: Encoder feed-forward width (paper: 128).
        num_layers: Encoder layers (paper: 3).
        dropout: Encoder dropout (paper: 0.2).
        hidden: Width of the head's hidden layer (paper: 64).
    """

    def __init__(
        self,
        num_classes: int,
        token_features: int = 3,
        *,
        d_model: int = 64,
        nhead: int = 4,
        dim_feedforward: int = 128,
        num_layers: int = 3,
        dropout: float = 0.2,
        hidden: int = 64,
    ) -> None:
        super().__init__()
        if num_classes < 1 or token_features < 1:
            raise ValueError(
                f"SAMIANet needs num_classes >= 1 and token_features >= 1, got "
                f"{num_classes} and {token_features}"
            )
        self.num_classes = num_classes
        self.token_features = token_features
        self.norm = nn.BatchNorm1d(num_classes * token_features)
        self.embed = nn.Sequential(nn.Linear(token_features, d_model), nn.GELU())
        self.encoder = nn.Sequential(
            *(EncoderLayer(d_model, nhead, dim_feedforward, dropout) for _ in range(num_layers))
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(num_classes * d_model, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2),
        )
        attack_init_(self)

    def tokens(self, x: Tensor) -> Tensor:
        """BatchNorm over the ``(N, T*K)`` input, viewed as ``(N, K, T)`` tokens."""
        expected = self.num_classes * self.token_features
        if x.dim() != 2 or x.shape[1] != expected:
            raise ValueError(
                f"SAMIANet expects (N, {expected}) features (K={self.num_classes} tokens of "
                f"{self.token_features}), got {tuple(x.shape)}"
            )
        return self.norm(x).view(x.shape[0], self.num_classes, self.token_features)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, T*K)`` features -> ``(N, 2)`` logits (non-member, member)."""
        return self.head(self.encoder(self.embed(self.tokens(x))))


@dataclass
class SAMIA(NeuralAttack):
    """SAMIA: self-attention over per-class (posterior, sensitivity, label) tokens.

    PAPER.md, "SAMIA". Fitted on the pooled shadow signals (which must carry
    ``sensitivity``) like the neural baselines; the score is P(member).

    Attributes:
        use_sensitivity: ``False`` is the ablation without ``s`` (tokens ``(p_c, y_c)``).
        mlp: ``True`` is the ablation that replaces attention with the attack
            MLP (:class:`~miakit.attacks.attack_net.AttackMLP`) on the same features.
        epochs, batch_size, lr, seed, device: As :class:`~miakit.attacks.neural.NeuralAttack`.
    """

    name: ClassVar[str] = "samia"
    title: ClassVar[str] = "SAMIA"

    use_sensitivity: bool = True
    mlp: bool = False

    @property
    def token_features(self) -> int:
        """Features per class token: 3 (p, s, y) or 2 (p, y)."""
        return 3 if self.use_sensitivity else 2

    def features(self, inputs: AttackInputs) -> Tensor:
        """:func:`samia_features` of ``inputs`` (class-major token layout)."""
        return samia_features(inputs, use_sensitivity=self.use_sensitivity)

    def build_network(self, num_features: int, num_classes: int) -> nn.Module:
        """:class:`SAMIANet` (or the attack MLP when ``mlp=True``)."""
        if num_features != num_classes * self.token_features:
            raise ValueError(
                f"SAMIA features have {num_features} entries, expected K*T = "
                f"{num_classes}*{self.token_features}"
            )
        if self.mlp:
            return AttackMLP(num_features)
        return SAMIANet(num_classes, self.token_features)
