"""Sparsity accounting: zero weights, effective parameters and MACs of a (pruned) model.

PAPER.md, "Pruning": sparsity is the fraction of pruned (zero) weights. Values are the
effective ones (``w_orig * w_mask`` for masked tensors), so a masked, a
:func:`~miakit.prune.masks.make_permanent` and a compacted model report the same numbers.
Effective MACs follow dead channels through the model with a ``torch.fx`` interpreter
(:class:`_MacTracer`), falling back to per-layer forward hooks when tracing fails.

    >>> pruned = prune_model(model, "l1_unstructured", 0.7)  # doctest: +SKIP
    >>> round(sparsity_report(pruned, (3, 32, 32)).sparsity, 3)  # doctest: +SKIP
    0.7
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from miakit._util import model_device
from miakit.prune._layers import BATCHNORM, WEIGHT_LAYERS
from miakit.prune.masks import effective_parameters, effective_tensor

__all__ = ["SparsityReport", "dead_output_channels", "sparsity_report"]


@dataclass(frozen=True, eq=False)
class SparsityReport:
    """How sparse a (pruned) model is, per layer and overall.

    PAPER.md, "Pruning": sparsity is the fraction of pruned (zero) weights.

    Attributes:
        layers: one row per Conv/Linear/BatchNorm layer: ``name``, ``type``, ``params``
            (its weight and bias elements), ``zeros`` (exact zeros among them, effective
            values ``w_orig * w_mask``), ``fraction_zero``, ``channels`` (output
            channels/features), ``dead_channels`` (output channels whose parameters are
            all zero: conv/linear filter and bias, or BN ``gamma`` and ``beta``),
            ``macs`` and ``effective_macs`` (0 for BN).
        weights: elements of all Conv/Linear weight tensors (the prunable weights).
        zero_weights: exact zeros among them.
        sparsity: ``zero_weights / weights``, the paper's sparsity.
        params_dense: all parameters of the model (each shared tensor once).
        params_effective: non-zero parameters.
        sparsity_all: ``1 - params_effective / params_dense``.
        macs_dense: multiply-accumulates of all Conv/Linear layers for one input.
        macs_effective: those not removed by pruning (see :func:`sparsity_report`).
        traced: whether dead input channels were traced (``torch.fx``); if ``False`` the
            effective MACs only reflect each layer's own zero weights.
    """

    layers: pd.DataFrame
    weights: int
    zero_weights: int
    sparsity: float
    params_dense: int
    params_effective: int
    sparsity_all: float
    macs_dense: int
    macs_effective: int
    traced: bool

    @property
    def channel_sparsity(self) -> float:
        """Fraction of BatchNorm channels with ``gamma = beta = 0`` (NaN without BatchNorm).

        Network slimming's sparsity; filter pruning with ``mask_bn=True`` gives the same
        fraction over the BNs that follow a conv directly.
        """
        bn = self.layers[self.layers["type"].str.startswith("BatchNorm")]
        total = int(bn["channels"].sum())
        return int(bn["dead_channels"].sum()) / total if total else math.nan

    @property
    def macs_fraction(self) -> float:
        """``macs_effective / macs_dense`` (1.0 for a dense model)."""
        return self.macs_effective / self.macs_dense if self.macs_dense else 1.0

    def summary(self) -> dict[str, float | int | bool]:
        """The scalar fields as a dict (one row of a results table)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "layers"}
        out["channel_sparsity"] = self.channel_sparsity
        out["macs_fraction"] = self.macs_fraction
        return out


_PASS_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Hardtanh,
    nn.Hardswish, nn.Identity, nn.Flatten, nn.modules.dropout._DropoutNd,
    nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd,
)  # fmt: skip
_PASS_FUNCTIONS = {
    F.relu, torch.relu, F.relu6, F.leaky_relu, F.elu, F.gelu, F.silu, torch.tanh, F.hardtanh,
    F.hardswish, F.dropout, torch.flatten, F.avg_pool1d, F.avg_pool2d, F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d, F.max_pool1d, F.max_pool2d, F.adaptive_max_pool2d,
}  # fmt: skip
_PASS_METHODS = {"relu", "relu_", "flatten", "view", "reshape", "contiguous", "clone"}
_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}


def _dead_filters(live: Tensor, bias: Tensor | None) -> Tensor:
    """Filters (rows of ``live``) without a live weight, whose bias is zero too."""
    dead = ~live.reshape(live.shape[0], -1).any(dim=1)
    return dead & (bias == 0) if bias is not None else dead


def _positions(module: nn.Module, out: Tensor) -> int:
    """Output positions per sample of a Conv/Linear layer (spatial size; 1 for a vector)."""
    channels = (
        module.out_channels
        if isinstance(module, nn.modules.conv._ConvNd)
        else (module.out_features)
    )
    return out.numel() // (out.shape[0] * channels)


def _dead_from(module: nn.Module, weight: Tensor | None, bias: Tensor | None) -> Tensor | None:
    """Output channels that ``module`` zeroes by these (effective) parameters alone."""
    if weight is None:
        return None
    if isinstance(module, WEIGHT_LAYERS):
        return _dead_filters(weight != 0, bias)
    if isinstance(module, BATCHNORM) and bias is not None:
        return (weight == 0) & (bias == 0)
    return None


def dead_output_channels(module: nn.Module) -> Tensor | None:
    """Output channels of ``module`` that are zero by its own parameters alone."""
    return _dead_from(module, effective_tensor(module, "weight"), effective_tensor(module, "bias"))


def _live_weights(module: nn.Module, in_dead: Tensor | None) -> Tensor:
    """Boolean mask of the weights that multiply a non-zero value: ``w != 0``, live input."""
    w = effective_tensor(module, "weight")
    live = w != 0
    if in_dead is None:
        return live
    groups = getattr(module, "groups", 1)
    in_dead = in_dead.to(live.device)
    if in_dead.numel() != live.shape[1] * groups:
        return live
    per_filter = in_dead.view(groups, -1).repeat_interleave(live.shape[0] // groups, dim=0)
    return live & ~per_filter.view(*per_filter.shape, *([1] * (live.dim() - 2)))


class _MacTracer(fx.Interpreter):
    """Runs the traced model on one input, counting MACs and tracking exactly-zero channels.

    ``dead[node]`` is a boolean vector over dim 1 of the node's output (channels for
    ``(N, C, ...)``, features for ``(N, F)``), ``True`` where the value is zero for every
    input because of zeroed parameters; ``None`` when unknown (treated as live).
    """

    def __init__(self, gm: fx.GraphModule, modules: dict[str, nn.Module]) -> None:
        super().__init__(gm)
        self.modules = modules
        self.dead: dict[fx.Node, Tensor | None] = {}
        self.macs: dict[str, list[int]] = {}

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        self.dead[n] = self._dead(n, out) if isinstance(out, Tensor) and out.dim() >= 2 else None
        return out

    def _arg(self, n: fx.Node, i: int = 0) -> tuple[Tensor | None, Tensor | None]:
        a = n.args[i] if len(n.args) > i else None
        if not isinstance(a, fx.Node) or not isinstance(self.env.get(a), Tensor):
            return None, None
        return self.env[a], self.dead.get(a)

    @staticmethod
    def _pass(x: Tensor | None, dead: Tensor | None, out: Tensor) -> Tensor | None:
        if x is None or dead is None or x.dim() < 2:
            return None
        if out.shape[:2] == x.shape[:2]:
            return dead
        if out.dim() == 2 and out.shape[0] == x.shape[0] and out.shape[1] == x[0].numel():
            return dead.repeat_interleave(x[0, 0].numel())  # flatten (N, C, H, W) -> (N, CHW)
        return None

    def _dead(self, n: fx.Node, out: Tensor) -> Tensor | None:
        if n.op == "call_module":
            module = self.modules[n.target]
            if isinstance(module, WEIGHT_LAYERS):
                return self._weight_layer(n, module, out)
            if isinstance(module, BATCHNORM):
                return dead_output_channels(module)
            if isinstance(module, _PASS_MODULES):
                return self._pass(*self._arg(n), out)
            return None
        if (n.op == "call_function" and n.target in _ADD_FUNCTIONS) or (
            n.op == "call_method" and n.target in ("add", "add_")
        ):
            return self._add(n, out)
        if n.op == "call_function" and n.target is torch.cat:
            return self._cat(n, out)
        if (n.op == "call_function" and n.target in _PASS_FUNCTIONS) or (
            n.op == "call_method" and n.target in _PASS_METHODS
        ):
            return self._pass(*self._arg(n), out)
        return None

    def _weight_layer(self, n: fx.Node, module: nn.Module, out: Tensor) -> Tensor | None:
        x, in_dead = self._arg(n)
        vector = out.dim() == 2  # (N, F) for a Linear, never a conv output
        if isinstance(module, nn.Linear) and (x is None or x.dim() != 2):
            in_dead = None
        live = _live_weights(module, in_dead)
        dead_out = _dead_filters(live, effective_tensor(module, "bias"))
        # Filters whose only consumer is a BatchNorm that zeroes their channel are wasted.
        wasted = torch.zeros_like(dead_out)
        users = list(n.users)
        if len(users) == 1 and users[0].op == "call_module":
            bn_dead = dead_output_channels(self.modules[users[0].target])
            if bn_dead is not None and bn_dead.numel() == wasted.numel():
                wasted = bn_dead.to(wasted.device)
        row = self.macs.setdefault(n.target, [0, 0])
        positions = _positions(module, out)
        row[0] += positions * live.numel()
        row[1] += positions * int(live[~wasted].sum())
        return dead_out if vector or isinstance(module, nn.modules.conv._ConvNd) else None

    def _add(self, n: fx.Node, out: Tensor) -> Tensor | None:
        dead = None
        for a in n.args:
            if isinstance(a, fx.Node) and isinstance(self.env.get(a), Tensor):
                x, d = self.env[a], self.dead.get(a)
                if d is None or x.dim() < 2 or x.shape[1] != out.shape[1]:
                    return None
                dead = d if dead is None else dead & d
            elif a != 0:
                return None
        return dead

    def _cat(self, n: fx.Node, out: Tensor) -> Tensor | None:
        tensors = n.args[0]
        dim = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else 0)
        if not isinstance(tensors, (list, tuple)) or dim % out.dim() != 1:
            return None
        parts = []
        for a in tensors:
            x = self.env.get(a) if isinstance(a, fx.Node) else None
            if not isinstance(x, Tensor):
                return None
            d = self.dead.get(a)
            parts.append(
                d if d is not None else torch.zeros(x.shape[1], dtype=torch.bool, device=x.device)
            )
        return torch.cat([p.to(parts[0].device) for p in parts])


def _count_macs_hooks(model: nn.Module, x: Tensor) -> dict[str, list[int]]:
    """Fallback MAC count with forward hooks: each layer's own zero weights only."""
    macs: dict[str, list[int]] = {}
    names = {m: n for n, m in model.named_modules()}

    def hook(module: nn.Module, _inputs: Any, out: Tensor) -> None:
        live = effective_tensor(module, "weight") != 0
        positions = _positions(module, out)
        row = macs.setdefault(names[module], [0, 0])
        row[0] += positions * live.numel()
        row[1] += positions * int(live.sum())

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, WEIGHT_LAYERS)
    ]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return macs


def _check_sample_shape(input_shape: Any) -> tuple[int, ...]:
    """``input_shape`` as the shape of one sample: positive ints, no batch dimension."""
    try:
        shape = tuple(operator.index(d) for d in input_shape)
    except TypeError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise ValueError(
            f"input_shape must be the shape of one sample without the batch dimension, e.g. "
            f"(3, 32, 32) or (600,); got {input_shape!r}"
        )
    return shape


@torch.no_grad()
def sparsity_report(model: nn.Module, input_shape: tuple[int, ...]) -> SparsityReport:
    """Count zero weights, parameters and MACs of a (pruned) model.

    PAPER.md, "Pruning". Values are the effective ones (``w_orig * w_mask`` for masked
    tensors), so a masked and a :func:`make_permanent` model report the same numbers.

    What is counted:

    - Sparsity: exact zeros among all Conv/Linear weight tensors (biases, BN excluded).
    - Parameters: every parameter once; *effective* = non-zero ones.
    - MACs: one input of shape ``(1, *input_shape)`` runs through the model in eval mode.
      A Conv/Linear layer's dense MACs are ``positions * weight.numel()`` (``positions`` =
      output spatial size, 1 for a Linear on a vector); biases, BN, activations and
      pooling are not counted. Effective MACs count only weights that are non-zero, whose
      input channel is not dead, and whose filter is not wasted. An input channel is dead
      when the model's parameters make it exactly zero for every input: the output of a
      filter with zero weights (on live inputs) and zero bias, or of a BN channel with
      ``gamma = beta = 0``, carried through zero-preserving ops (ReLU-like activations,
      dropout, pooling, flatten, addition of dead channels, concatenation). A filter is
      wasted when its only consumer is a BN that zeroes its channel (network slimming).
      This needs ``torch.fx`` tracing; if that fails (``traced=False``), effective MACs
      scale each layer's MACs by its own non-zero weight fraction only.

    Args:
        model: any model (masked, compacted or dense), on any device.
        input_shape: the shape of one sample without the batch dimension, as given to
            :func:`~miakit.models.build_model`: ``(C, H, W)`` or ``(F,)``. Small spatial
            sizes are fine (e.g. ``(3, 8, 8)``); MACs scale with them.

    Returns:
        A :class:`SparsityReport`.
    """
    shape = _check_sample_shape(input_shape)
    x = torch.zeros(1, *shape, device=model_device(model))
    was_training = model.training
    model.eval()
    try:
        modules = dict(model.named_modules())
        try:  # trace, then run once; any failure falls back to plain forward hooks
            tracer = _MacTracer(fx.symbolic_trace(model), modules)
            tracer.run(x)
            macs, traced = tracer.macs, True
        except Exception:
            macs, traced = _count_macs_hooks(model, x), False
    finally:
        model.train(was_training)

    rows: dict[str, dict[str, Any]] = {}
    values: dict[tuple[str, str], Tensor] = {}
    params_dense = params_effective = weights = zero_weights = 0
    for mod_name, module, pname, value in effective_parameters(model):
        nz = int(torch.count_nonzero(value))
        params_dense += value.numel()
        params_effective += nz
        if isinstance(module, WEIGHT_LAYERS) and pname == "weight":
            weights += value.numel()
            zero_weights += value.numel() - nz
        if isinstance(module, (*WEIGHT_LAYERS, BATCHNORM)) and pname in ("weight", "bias"):
            values[mod_name, pname] = value
            row = rows.setdefault(mod_name, {"params": 0, "zeros": 0})
            row["params"] += value.numel()
            row["zeros"] += value.numel() - nz
    records = []
    for name, row in rows.items():
        module = modules[name]
        dead = _dead_from(module, values.get((name, "weight")), values.get((name, "bias")))
        mac = macs.get(name, [0, 0])
        records.append(
            {
                "name": name,
                "type": type(module).__name__,
                "params": row["params"],
                "zeros": row["zeros"],
                "fraction_zero": row["zeros"] / row["params"] if row["params"] else 0.0,
                "channels": int(dead.numel()) if dead is not None else 0,
                "dead_channels": int(dead.sum()) if dead is not None else 0,
                "macs": mac[0],
                "effective_macs": mac[1],
            }
        )
    columns = [
        "name",
        "type",
        "params",
        "zeros",
        "fraction_zero",
        "channels",
        "dead_channels",
        "macs",
        "effective_macs",
    ]
    return SparsityReport(
        layers=pd.DataFrame.from_records(records, columns=columns),
        weights=weights,
        zero_weights=zero_weights,
        sparsity=zero_weights / weights if weights else 0.0,
        params_dense=params_dense,
        params_effective=params_effective,
        sparsity_all=1.0 - params_effective / params_dense if params_dense else 0.0,
        macs_dense=sum(m[0] for m in macs.values()),
        macs_effective=sum(m[1] for m in macs.values()),
        traced=traced,
    )
