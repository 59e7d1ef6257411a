"""The paper's weight initialisation: Xavier-normal conv/linear weights, unit norm layers.

PAPER.md, "Models and training": every model is Xavier-initialised (the authors'
``weight_init``); :func:`miakit.models.build_model` applies :func:`xavier_init_`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["xavier_init_"]

_NORM_TYPES = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
)


def xavier_init_(model: nn.Module, *, seed: int | None = None) -> nn.Module:
    """Apply the paper's initialisation to ``model`` in place.

    PAPER.md, "Models and training": Xavier-normal weights for every convolution and
    linear layer (biases zero); normalisation layers get weight 1 and bias 0. This is
    the authors' ``weight_init`` applied with ``model.apply``.

    Args:
        model: Any module; its conv (``nn.Conv1d/2d/3d`` and transposed), ``nn.Linear``
            and normalisation submodules are re-initialised, other parameters untouched.
        seed: When given, weights are drawn from a private generator seeded with it (one
            per device), so the result does not depend on, and does not advance, the
            global torch RNG. Results are reproducible on the same device type. When
            ``None``, the global RNG is used (seed it with ``torch.manual_seed``).

    Returns:
        The same ``model``, for chaining.
    """
    generators: dict[torch.device, torch.Generator] = {}

    def generator_for(t: torch.Tensor) -> torch.Generator | None:
        if seed is None:
            return None
        if t.device not in generators:
            generators[t.device] = torch.Generator(device=t.device).manual_seed(seed)
        return generators[t.device]

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
                nn.init.xavier_normal_(module.weight, generator=generator_for(module.weight))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, _NORM_TYPES):
                if getattr(module, "weight", None) is not None:
                    nn.init.ones_(module.weight)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
    return model
