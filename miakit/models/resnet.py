"""CIFAR ResNet18 as the authors train it (PAPER.md, "Models and training").

The authors' models are huyvnphan/PyTorch_CIFAR10's CIFAR variants of torchvision's
ResNet: the 7x7 stride-2 stem conv becomes 3x3 stride 1, and the stem keeps
BN -> ReLU -> **3x3 stride-2 max-pool** before ``layer1``, so on a 32x32 input
``layer1`` runs at 16x16 and ``layer4`` at 2x2. Module and parameter names are
torchvision's (``conv1``, ``bn1``, ``maxpool``, ``layerN.i.downsample``, ``fc``), so a
state dict saved by the authors' code loads into :class:`ResNet`. ResNet18 has 11.17M
parameters at K = 10. The trailing pool is adaptive (as theirs), so any input from 8x8
up reaches the head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BasicBlock", "ResNet"]


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv-BN layers and an identity or projected shortcut.

    As torchvision's ``BasicBlock``: the shortcut is projected (1x1 conv + BN, named
    ``downsample``) when the stride or the channel count changes, identity otherwise.
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNet(nn.Module):
    """The authors' CIFAR ResNet: 3x3 stride-1 conv, BN, ReLU, 3x3 stride-2 max-pool stem.

    PAPER.md, "Models and training" (ResNet18 = ``BasicBlock``, ``[2, 2, 2, 2]``, 11.17M
    parameters at K = 10). Four stages of 64-128-256-512 channels, the last three
    starting with stride 2; adaptive average pool and ``fc``. Feature maps on a 32x32
    input: stem 32x32, after ``maxpool`` 16x16, ``layer1`` 16, ``layer2`` 8, ``layer3``
    4, ``layer4`` 2.
    """

    def __init__(self, num_blocks: Sequence[int], num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(512, num_blocks[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * BasicBlock.expansion, num_classes)

    def _make_layer(self, planes: int, num_blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes * BasicBlock.expansion
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(torch.flatten(self.avgpool(out), 1))
