"""CIFAR DenseNet121 (PAPER.md, "Models and training").

After kuangliu/pytorch-cifar ``models/densenet.py``: DenseNet-BC with a 3x3 stem,
growth 32, blocks 6-12-24-16 and compression 0.5; parameter names as in kuangliu's
code, trailing pool adaptive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Bottleneck", "DenseNet", "Transition"]


class Bottleneck(nn.Module):
    """DenseNet-BC layer: BN-ReLU-1x1 conv (4k) then BN-ReLU-3x3 conv (k), concatenated."""

    def __init__(self, in_planes: int, growth_rate: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4 * growth_rate, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth_rate)
        self.conv2 = nn.Conv2d(4 * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    """DenseNet transition: BN-ReLU-1x1 conv (compression), then 2x2 average pooling."""

    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet(nn.Module):
    """CIFAR DenseNet-BC: 3x3 stem of 2k channels, four dense blocks, three transitions.

    PAPER.md, "Models and training" (DenseNet121: growth k = 32, blocks 6-12-24-16,
    compression 0.5, bottleneck layers).
    """

    def __init__(
        self,
        num_blocks: Sequence[int],
        num_classes: int,
        in_channels: int = 3,
        growth_rate: int = 32,
        reduction: float = 0.5,
    ) -> None:
        super().__init__()
        self.growth_rate = growth_rate
        planes = 2 * growth_rate
        self.conv1 = nn.Conv2d(in_channels, planes, 3, padding=1, bias=False)

        self.dense1 = self._make_dense(planes, num_blocks[0])
        planes += num_blocks[0] * growth_rate
        out_planes = math.floor(planes * reduction)
        self.trans1 = Transition(planes, out_planes)
        planes = out_planes

        self.dense2 = self._make_dense(planes, num_blocks[1])
        planes += num_blocks[1] * growth_rate
        out_planes = math.floor(planes * reduction)
        self.trans2 = Transition(planes, out_planes)
        planes = out_planes

        self.dense3 = self._make_dense(planes, num_blocks[2])
        planes += num_blocks[2] * growth_rate
        out_planes = math.floor(planes * reduction)
        self.trans3 = Transition(planes, out_planes)
        planes = out_planes

        self.dense4 = self._make_dense(planes, num_blocks[3])
        planes += num_blocks[3] * growth_rate
        self.bn = nn.BatchNorm2d(planes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(planes, num_classes)

    def _make_dense(self, in_planes: int, num_layers: int) -> nn.Sequential:
        layers = []
        for _ in range(num_layers):
            layers.append(Bottleneck(in_planes, self.growth_rate))
            in_planes += self.growth_rate
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.trans1(self.dense1(out))
        out = self.trans2(self.dense2(out))
        out = self.trans3(self.dense3(out))
        out = self.dense4(out)
        out = self.pool(F.relu(self.bn(out)))
        return self.linear(torch.flatten(out, 1))
