"""CIFAR DenseNet121 as the authors train it (PAPER.md, "Models and training").

The authors' models are huyvnphan/PyTorch_CIFAR10's CIFAR variants of torchvision's
DenseNet-BC: the 7x7 stride-2 stem conv becomes 3x3 stride 1, and the stem keeps
``conv0`` -> ``norm0`` -> ``relu0`` -> **3x3 stride-2 max-pool** (``pool0``) before
``denseblock1``, so on a 32x32 input the four dense blocks run at 16, 8, 4 and 2.
Growth 32, blocks 6-12-24-16, bottleneck width 4 x 32, compression 0.5: 6.96M
parameters at K = 10. Module and parameter names are torchvision's (``features.conv0``,
``features.denseblockN.denselayerI.conv1``, ``features.transitionN``,
``features.norm5``, ``classifier``) and each layer concatenates ``[input, new]`` as
theirs, so a state dict saved by the authors' code loads into :class:`DenseNet` and
computes the same function. The trailing pool is adaptive.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Bottleneck", "DenseNet", "Transition"]


class Bottleneck(nn.Module):
    """DenseNet-BC layer: BN-ReLU-1x1 conv (4k), BN-ReLU-3x3 conv (k); output ``[x, new]``.

    torchvision's ``_DenseLayer`` without dropout (the authors' ``drop_rate`` is 0).
    """

    def __init__(self, in_planes: int, growth_rate: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_planes, 4 * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(4 * growth_rate)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(4 * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu1(self.norm1(x)))
        out = self.conv2(self.relu2(self.norm2(out)))
        return torch.cat([x, out], 1)


class Transition(nn.Module):
    """DenseNet transition: BN-ReLU-1x1 conv (compression), then 2x2 average pooling."""

    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(self.relu(self.norm(x))))


class DenseNet(nn.Module):
    """The authors' CIFAR DenseNet-BC: conv0-norm0-relu0-max-pool stem, four dense blocks.

    PAPER.md, "Models and training" (DenseNet121: growth k = 32, blocks 6-12-24-16,
    6.96M parameters at K = 10). The stem has 2k channels; each transition halves the
    channels (floor) and the spatial size; ``norm5``, ReLU, adaptive average pool and
    ``classifier`` end it. Needs inputs of at least 15x15 (the max-pool and three
    transition pools take 15 to 8, 4, 2 and 1).
    """

    def __init__(
        self,
        num_blocks: Sequence[int],
        num_classes: int,
        in_channels: int = 3,
        growth_rate: int = 32,
    ) -> None:
        super().__init__()
        planes = 2 * growth_rate
        stages: OrderedDict[str, nn.Module] = OrderedDict(
            conv0=nn.Conv2d(in_channels, planes, 3, stride=1, padding=1, bias=False),
            norm0=nn.BatchNorm2d(planes),
            relu0=nn.ReLU(),
            pool0=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        for i, num_layers in enumerate(num_blocks, start=1):
            layers = OrderedDict(
                (f"denselayer{j + 1}", Bottleneck(planes + j * growth_rate, growth_rate))
                for j in range(num_layers)
            )
            stages[f"denseblock{i}"] = nn.Sequential(layers)
            planes += num_layers * growth_rate
            if i < len(num_blocks):
                stages[f"transition{i}"] = Transition(planes, planes // 2)
                planes //= 2
        stages["norm5"] = nn.BatchNorm2d(planes)
        self.features = nn.Sequential(stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.avgpool(F.relu(self.features(x)))
        return self.classifier(torch.flatten(out, 1))
