"""Compaction (beyond the paper): remove pruned channels physically, and time the gain.

PAPER.md, "Pruning" keeps masks. :func:`compact` folds the masks of a structured-pruned
model into a copy and removes its dead channels with Torch-Pruning's ``DependencyGraph``;
:func:`compaction_report` compares parameters and measured latency before and after.

    >>> small = compact(l1_structured(model, 0.5), train.x[:2])  # doctest: +SKIP
    >>> compaction_report(model, small, train.x[:128]).speedup  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from miakit.prune._layers import BATCHNORM, WEIGHT_LAYERS
from miakit.prune.masks import make_permanent, refresh_masked_tensors
from miakit.prune.sparsity import dead_output_channels

__all__ = ["CompactionReport", "compact", "compaction_report"]


def _import_torch_pruning() -> Any:
    try:
        import torch_pruning
    except ImportError as err:
        raise ImportError(
            "compact() removes pruned channels with Torch-Pruning, which is not installed: "
            "pip install torch-pruning"
        ) from err
    return torch_pruning


def _output_layer(model: nn.Module, x: Tensor) -> nn.Module | None:
    """The last Conv/Linear layer run by a forward pass: the classifier, never pruned."""
    order: list[nn.Module] = []
    handles = [
        m.register_forward_hook(lambda mod, *_: order.append(mod))
        for m in model.modules()
        if isinstance(m, WEIGHT_LAYERS)
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return order[-1] if order else None


def _zero_channels(tp: Any, layer: Any, idxs: list[int]) -> Tensor:
    """For an out-channel dependency: which of ``idxs`` are produced as exact zeros."""
    n = len(idxs)
    if isinstance(layer, tp.ops._OutputOp) or not isinstance(layer, nn.Module):
        return torch.zeros(n, dtype=torch.bool)  # a model output, or an unwrapped parameter
    if isinstance(layer, WEIGHT_LAYERS) or (isinstance(layer, BATCHNORM) and layer.affine):
        return dead_output_channels(layer).cpu()[idxs]
    if next(iter(layer.parameters(recurse=False)), None) is None:
        return torch.ones(n, dtype=torch.bool)  # parameter-free (concat, add, reshape...)
    return torch.zeros(n, dtype=torch.bool)  # other parametrised layers: keep


@torch.no_grad()
def _zero_wasted_filters(dg: Any, out_layer: nn.Module | None) -> None:
    """Zero each Conv/Linear filter whose only consumer is a BN channel with gamma=beta=0."""
    for module, node in dg.module2node.items():
        if not isinstance(module, WEIGHT_LAYERS) or module is out_layer:
            continue
        if len(node.outputs) != 1 or not isinstance(node.outputs[0].module, BATCHNORM):
            continue
        dead = dead_output_channels(node.outputs[0].module)
        if dead is None or dead.numel() != module.weight.shape[0] or not dead.any():
            continue
        module.weight[dead] = 0
        if module.bias is not None:
            module.bias[dead] = 0


def compact(model: nn.Module, example_input: Tensor) -> nn.Module:
    """A physically smaller copy of a structured-pruned model, with dead channels removed.

    Beyond the paper (PAPER.md, "Pruning" keeps masks). A deep copy of ``model`` gets its
    masks folded in (:func:`~miakit.prune.masks.make_permanent`); Torch-Pruning's
    ``DependencyGraph`` groups the channels that must be removed together (a conv's filters,
    its BN, the next layers' input channels, residual and concatenation partners), and every
    channel whose producing parameters are all zero in every layer of its group (conv/linear
    filter and bias, BN ``gamma`` and ``beta``) is removed; a filter that feeds only a
    zeroed BN channel counts as zero (network slimming). At least one channel of each group
    stays, and the classifier's outputs are never touched. The activations between layers
    must map 0 to 0 (ReLU-like), as in all registry architectures.

    Which channels go: after :func:`~miakit.prune.methods.l1_structured` (``mask_bn=True``)
    or :func:`~miakit.prune.methods.slimming` every pruned channel of a plain chain (VGG,
    ``small_cnn``, the inside of ResNet blocks); channels coupled by a residual addition or
    a concatenation, or running through a MobileNetV2 expansion and its depthwise conv, only
    where every coupled layer pruned them (the methods prune layers independently, as the
    paper does). For a plain chain the compacted model runs exactly the effective MACs of
    :func:`~miakit.prune.sparsity.sparsity_report`; elsewhere those are a lower bound.
    Unstructured masks remove little or nothing.

    Args:
        model: the masked model (left unchanged).
        example_input: a batch for tracing, e.g. ``train.x[:2]``, on the model's device.

    Returns:
        The compacted model, in eval mode, with plain (unmasked) weights.

    Raises:
        ImportError: Torch-Pruning is not installed (``pip install torch-pruning``).
        RuntimeError: if the compacted model's outputs differ from ``model``'s (eval
            mode) beyond float tolerance; that means a removed channel was not dead.
    """
    tp = _import_torch_pruning()
    was_training = model.training
    refresh_masked_tensors(model)
    model.eval()
    try:
        with torch.no_grad():
            reference = model(example_input)
        small = make_permanent(copy.deepcopy(model)).eval()
    finally:
        model.train(was_training)
    out_layer = _output_layer(small, example_input)
    dg = tp.DependencyGraph().build_dependency(small, example_inputs=example_input, verbose=False)
    _zero_wasted_filters(dg, out_layer)

    plan = []
    ignored = [out_layer] if out_layer is not None else []
    for group in dg.get_all_groups(ignored_layers=ignored, root_module_types=WEIGHT_LAYERS):
        root = group[0].dep
        n = len(group[0].idxs)
        live_votes = torch.zeros(n)
        for item in group.items:
            if not dg.is_out_channel_pruning_fn(item.dep.handler):
                continue
            zero = _zero_channels(tp, item.dep.target.module, list(item.idxs))
            live_votes.index_add_(0, torch.as_tensor(item.root_idxs), (~zero).float())
        dead = (live_votes == 0).nonzero().flatten().tolist()
        if len(dead) == n:
            dead = dead[1:]  # keep one channel per group
        if dead:
            plan.append((root.target.module, root.handler, dead))
    for module, handler, idxs in plan:
        dg.get_pruning_group(module, handler, idxs).prune()

    small.eval()
    with torch.no_grad():
        got = small(example_input)
    if got.shape != reference.shape or not torch.allclose(got, reference, atol=1e-4, rtol=1e-4):
        diff = (got - reference).abs().max().item() if got.shape == reference.shape else "n/a"
        raise RuntimeError(
            f"compaction changed the outputs of {type(model).__name__} (max |diff| {diff}); a "
            "removed channel was not exactly zero (an activation that does not map 0 to 0?). "
            "Use the masked model"
        )
    return small


@dataclass(frozen=True)
class CompactionReport:
    """Size and speed of a masked model against its :func:`compact` version.

    Attributes:
        params_before: parameters of the masked model (masked entries included).
        params_after: parameters of the compacted model.
        latency_before_ms: median forward time of the masked model (ms, eval mode).
        latency_after_ms: the same for the compacted model.
        speedup: ``latency_before_ms / latency_after_ms``.
    """

    params_before: int
    params_after: int
    latency_before_ms: float
    latency_after_ms: float
    speedup: float


@torch.no_grad()
def _latency_ms(model: nn.Module, x: Tensor, repeats: int, warmup: int) -> float:
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        model(x)
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def compaction_report(
    masked: nn.Module,
    compacted: nn.Module,
    example_input: Tensor,
    *,
    repeats: int = 20,
    warmup: int = 3,
) -> CompactionReport:
    """Parameters and measured latency before and after :func:`compact`.

    Both models run ``example_input`` in eval mode without autograd, on their device (the
    CPU for the figures the kit reports), ``warmup`` times untimed and then ``repeats``
    times timed; the median is reported. Their train/eval modes are restored.

    Args:
        masked: the masked model (its mask hooks run in every forward).
        compacted: the result of ``compact(masked, ...)``.
        example_input: the batch to time, e.g. 128 samples.
        repeats: timed forwards per model (>= 1).
        warmup: untimed forwards first.

    Returns:
        A :class:`CompactionReport`.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    modes = masked.training, compacted.training
    masked.eval()
    compacted.eval()
    try:
        before = _latency_ms(masked, example_input, repeats, warmup)
        after = _latency_ms(compacted, example_input, repeats, warmup)
    finally:
        masked.train(modes[0])
        compacted.train(modes[1])
    return CompactionReport(
        params_before=sum(p.numel() for p in masked.parameters()),
        params_after=sum(p.numel() for p in compacted.parameters()),
        latency_before_ms=before,
        latency_after_ms=after,
        speedup=before / after if after > 0 else math.inf,
    )
