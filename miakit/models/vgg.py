"""CIFAR VGG16 with batch norm (PAPER.md, "Models and training").

After kuangliu/pytorch-cifar ``models/vgg.py``, with ceil-mode max-pools and an adaptive
trailing pool so that inputs from 8x8 up reach the classifier.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["VGG", "VGG16_CFG"]

VGG16_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip


class VGG(nn.Module):
    """CIFAR VGG with batch norm: conv3x3-BN-ReLU stacks, five max-pools, Linear(512, K).

    PAPER.md, "Models and training" (VGG16-BN). The max-pools use ``ceil_mode=True``,
    which equals kuangliu's floor mode on 32x32 inputs (all sizes even) and lets
    smaller or odd-sized inputs (8x8, 28x28) reach the classifier; the trailing pool is
    adaptive (kuangliu's ``AvgPool2d(1)`` is the identity on his 1x1 map).
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
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
