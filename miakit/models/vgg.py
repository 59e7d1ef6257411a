"""CIFAR VGG16 with batch norm as the authors train it (PAPER.md, "Models and training").

The authors' model is huyvnphan/PyTorch_CIFAR10's ``vgg16_bn``: torchvision's 13
conv3x3-BN-ReLU layers with five 2x2 max-pools, then the three-layer classifier
Linear(512, 4096)-ReLU-Dropout(0.5)-Linear(4096, 4096)-ReLU-Dropout(0.5)-Linear(4096, K),
33.6M parameters at K = 10 (56% of them in the classifier). Module and parameter names
are torchvision's (``features.N``, ``classifier.0/3/6``), so the authors' state dicts
load into :class:`VGG`. The max-pools use ``ceil_mode=True``, which equals their floor
mode on 32x32 inputs (all sizes even) and lets smaller or odd-sized inputs (8x8, 28x28)
reach the classifier; the pool before the classifier is adaptive (1x1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["VGG", "VGG16_CFG"]

VGG16_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip
"""VGG16's configuration "D": conv widths, ``"M"`` for a 2x2 stride-2 max-pool."""

#: Width of the two hidden classifier layers (torchvision's and the authors' VGG).
HIDDEN = 4096


class VGG(nn.Module):
    """The authors' CIFAR VGG with batch norm: conv3x3-BN-ReLU stacks, 4096-4096-K head.

    PAPER.md, "Models and training" (VGG16-BN, 33.6M parameters at K = 10). On a 32x32
    input the five max-pools give 16, 8, 4, 2 and 1; the 512 channels of the 1x1 map
    feed ``classifier``: Linear(512, 4096), ReLU, Dropout(0.5), Linear(4096, 4096), ReLU,
    Dropout(0.5), Linear(4096, K).
    """

    def __init__(self, cfg: Sequence[int | str], num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
            else:
                assert isinstance(v, int)
                layers += [nn.Conv2d(channels, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
                channels = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(channels, HIDDEN),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(HIDDEN, HIDDEN),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(HIDDEN, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
