"""Prediction with a trained model: logits, posteriors, accuracy and input sensitivity.

Evaluation runs the model in eval mode in device-sized chunks (:func:`eval_batch_size`).
The attack signals, :func:`logits` (hence :func:`predict` and :func:`accuracy`) and
:func:`sensitivity` (SAMIA's second feature, PAPER.md, "SAMIA"), are computed in
float32 on every device, whatever the training precision (:func:`full_precision`: no
autocast, TF32 and other reduced-precision float32 math off, a float32 copy of a
half-precision model), so a TPR at 0.1% FPR does not move with the GPU's matmul mode.
Only the training loop's dev accuracy (:func:`dev_accuracy`) runs under bf16 autocast
on CUDA (:func:`autocast`).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from miakit._util import as_model_input, model_device, resolve_device
from miakit.data import Data

__all__ = [
    "accuracy",
    "autocast",
    "dev_accuracy",
    "eval_batch_size",
    "float32_model",
    "full_precision",
    "logits",
    "predict",
    "sensitivity",
]


def eval_batch_size(device: torch.device) -> int:
    """Rows per forward when evaluating: large on CUDA, cache-sized on the CPU.

    On the CPU, 128-row chunks ran a small_cnn evaluation 1.4x faster than 1024-row ones.
    """
    return 1024 if device.type == "cuda" else 128


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; nothing at all elsewhere (a disabled autocast still costs)."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16)


_FP32_SETTINGS = (
    ("cuda", "matmul"),
    ("cudnn", "conv"),
    ("cudnn", "rnn"),
    ("mkldnn", "matmul"),
    ("mkldnn", "conv"),
    ("mkldnn", "rnn"),
)


def _fp32_settings() -> list[Any]:
    """The per-operation ``fp32_precision`` settings of torch >= 2.9's API, else ``[]``."""
    if not hasattr(torch.backends, "fp32_precision"):
        return []
    found = (getattr(getattr(torch.backends, a, None), b, None) for a, b in _FP32_SETTINGS)
    return [s for s in found if hasattr(s, "fp32_precision")]


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """Run a block in true float32: no autocast, no TF32, no reduced-precision float32 math.

    Inside, autocast is disabled (CPU, CUDA and any other device type torch knows),
    cuBLAS matmuls and cuDNN convolutions and RNNs run in IEEE float32 (TF32 off), and
    so do oneDNN's on the CPU (``set_float32_matmul_precision("medium")`` may let them
    use bf16). Every setting is restored on exit, also after an error. With torch >= 2.9
    the settings are the ``fp32_precision`` attributes of ``torch.backends`` (mixing
    them with the legacy ``allow_tf32`` flags is an error in torch); before, the legacy
    ``allow_tf32`` flags and ``torch.set_float32_matmul_precision``.

    Used for the attack signals (issue 11, item 6): posteriors and sensitivities must
    not depend on the GPU's matmul mode or on the precision the model was trained in.
    """
    b = torch.backends
    settings = _fp32_settings()
    saved = [s.fp32_precision for s in settings]
    legacy = None
    if not settings:
        legacy = (
            b.cuda.matmul.allow_tf32,
            b.cudnn.allow_tf32,
            torch.get_float32_matmul_precision(),
        )
    try:
        if settings:
            for s in settings:
                s.fp32_precision = "ieee"
        else:
            torch.set_float32_matmul_precision("highest")
            b.cuda.matmul.allow_tf32 = False
            b.cudnn.allow_tf32 = False
        with contextlib.ExitStack() as stack:
            for device_type in _autocast_device_types():
                stack.enter_context(torch.autocast(device_type=device_type, enabled=False))
            yield
    finally:
        for s, value in zip(settings, saved, strict=True):
            s.fp32_precision = value
        if legacy is not None:
            torch.set_float32_matmul_precision(legacy[2])
            b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32 = legacy[0], legacy[1]


def _autocast_device_types() -> list[str]:
    """The device types whose autocast :func:`full_precision` disables."""
    types = ["cpu"]
    if torch.cuda.is_available():
        types.append("cuda")
    return types


def float32_model(model: nn.Module) -> nn.Module:
    """``model`` itself if its floating parameters and buffers are float32, else a float32 copy.

    A model trained or stored in bf16/fp16 is evaluated through a deep copy cast to
    float32 (the caller's model is left as it is), so its signals are float32 maths on
    the same weights.
    """
    tensors = [*model.parameters(), *model.buffers()]
    if all(t.dtype == torch.float32 for t in tensors if torch.is_floating_point(t)):
        return model
    return copy.deepcopy(model).float()


def _float32_input(xb: Tensor, device: torch.device) -> Tensor:
    """A batch on ``device`` in the models' layout, floating inputs as float32."""
    if torch.is_floating_point(xb) and xb.dtype != torch.float32:
        xb = xb.to(torch.float32)
    return as_model_input(xb, device)


@torch.no_grad()
def dev_accuracy(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Accuracy of ``model`` (eval mode) on device-resident ``x, y`` as a 0-d device tensor.

    No host synchronisation: the caller reads it once per epoch.
    """
    model.eval()
    device = y.device
    correct = torch.zeros((), device=device)
    step = eval_batch_size(device)
    for xb, yb in zip(x.split(step), y.split(step), strict=True):
        with autocast(device):
            out = model(xb)
        correct += (out.argmax(1) == yb).sum()
    return correct / max(1, y.numel())


@torch.no_grad()
def logits(
    model: nn.Module,
    x: Tensor,
    *,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
) -> Tensor:
    """Pre-softmax outputs of ``model`` (eval mode) on ``x``, float32 on the CPU.

    Computed in float32 on every device (:func:`full_precision`, :func:`float32_model`),
    whatever the training precision or an autocast active around the call.
    ``batch_size`` rows per forward (default :func:`eval_batch_size` of the device).
    """
    dev_ = resolve_device(device) if device is not None else model_device(model)
    model.eval()
    net = float32_model(model).eval()
    outs = []
    with full_precision():
        for xb in x.split(batch_size or eval_batch_size(dev_)):
            outs.append(net(_float32_input(xb, dev_)).float())
    return torch.cat(outs).cpu() if outs else torch.empty(0)


def predict(
    model: nn.Module,
    x: Tensor,
    *,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
) -> Tensor:
    """Posteriors (softmax outputs, the paper's "prediction") of ``model`` on ``x``: (N, K)."""
    return logits(model, x, batch_size=batch_size, device=device).softmax(dim=1)


def accuracy(model: nn.Module, data: Data, *, device: str | torch.device | None = None) -> float:
    """Top-1 accuracy of ``model`` on ``data``."""
    if len(data) == 0:
        raise ValueError("accuracy of an empty dataset is undefined")
    out = logits(model, data.x, device=device)
    return float((out.argmax(1) == data.y.cpu()).float().mean())


def sensitivity(
    model: nn.Module,
    x: Tensor,
    *,
    m: int = 10,
    eps: float = 1e-3,
    seed: int = 0,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool = False,
    desc: str = "sensitivity",
) -> Tensor:
    """Per-class input sensitivity, SAMIA's second feature (PAPER.md, "SAMIA").

    For ``m`` Gaussian perturbations ``u ~ N(0, I)`` in normalised input space,
    ``s = mean_j |softmax(f(x + eps u_j)) - softmax(f(x))| / eps`` per class,
    with the model in eval mode. The samples go in chunks of ``batch_size``
    (which bounds memory: ``m * batch_size`` rows per forward), and all ``m``
    perturbed copies of a chunk go through ONE batched forward (no Python loop
    over perturbations). Float32 on every device (:func:`full_precision`,
    :func:`float32_model`): the ``eps = 1e-3`` differences vanish under bf16 and
    move under TF32.

    Args:
        model: the model (evaluated in eval mode, on ``device`` or its own).
        x: ``(N, ...)`` normalised inputs.
        m: perturbations per sample (PAPER.md: 10).
        eps: perturbation scale (PAPER.md: 1e-3).
        seed: seeds the perturbations (a CPU generator, the same on every device).
        batch_size: samples per chunk.
        device: where to compute; default the model's device.
        progress: show a tqdm bar over the chunks, labelled ``desc``.
        desc: the bar's label, e.g. ``"sensitivity shadow0 (original)"``.

    Returns:
        ``(N, K)`` float32 tensor on the CPU.
    """
    if m < 1 or not eps > 0:
        raise ValueError(f"sensitivity needs m >= 1 and eps > 0, got m={m}, eps={eps}")
    dev_ = resolve_device(device) if device is not None else model_device(model)
    model.eval()
    net = float32_model(model).eval()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    step = max(1, batch_size)
    chunks = x.split(step)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc=desc, unit="chunk", leave=False)
    outs = []
    with torch.no_grad(), full_precision():
        for xb in chunks:
            xb = xb.to(dev_, dtype=torch.float32)
            noise = torch.randn((m, *xb.shape), generator=gen).to(dev_)
            pert = (xb.unsqueeze(0) + eps * noise).reshape(m * xb.shape[0], *xb.shape[1:])
            base = net(xb).float().softmax(1)
            moved = net(pert).float().softmax(1).view(m, xb.shape[0], -1)
            outs.append(((moved - base.unsqueeze(0)).abs().mean(0) / eps).cpu())
    return torch.cat(outs) if outs else torch.empty(0)
