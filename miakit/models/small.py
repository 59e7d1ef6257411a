"""Small models: the paper's tabular column FC and the embedded-data stand-ins.

PAPER.md, "Models and training": :class:`ColumnFC` is the tabular model (in-256-128-K,
ReLU, dropout 0.1). :class:`MLP`, :class:`SignalCNN` and :class:`SmallCNN` are not in the
paper: they serve the embedded data of the ``quick`` and ``smoke`` profiles (DESIGN.md),
the two convnets with the conv + BatchNorm layers that every pruning method acts on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLP", "ColumnFC", "SignalCNN", "SmallCNN"]


class ColumnFC(nn.Module):
    """Column FC for tabular data: in-256-128-K, ReLU, dropout 0.1 after each hidden layer.

    PAPER.md, "Models and training" (Location, Purchase100, Texas100); the layout of
    the authors' ``ColumnFC``.
    """

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, 256)
        self.drop1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(256, 128)
        self.drop2 = nn.Dropout(dropout)
        self.fc3 = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(F.relu(self.fc1(x)))
        x = self.drop2(F.relu(self.fc2(x)))
        return self.fc3(x)


class MLP(nn.Module):
    """Small MLP for the embedded ``mnist1d`` signals: in-256-256-K, ReLU, no dropout.

    Not in the paper: the ``quick`` profile's stand-in for the image models (DESIGN.md,
    "Profiles and the embedded default"). Dropout is left out on purpose: the profile
    needs a victim that memorises its training set, as the paper's victims do.
    """

    def __init__(self, in_features: int, num_classes: int, hidden: int = 256) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class SmallCNN(nn.Module):
    """Small convnet for the embedded 8x8 ``digits`` images.

    conv3x3(C->32)-BN-ReLU, conv3x3(32->64)-BN-ReLU, 2x2 max-pool, conv3x3(64->64)-BN-ReLU,
    global average pooling, Linear(64, K). Not in the paper: the ``smoke``/``quick``
    stand-in (DESIGN.md) that still has the conv + BatchNorm layers that structured
    filter pruning and network slimming act on (PAPER.md, "Pruning").
    """

    def __init__(self, num_classes: int, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class SignalCNN(nn.Module):
    """Small 1-D convnet for the embedded ``mnist1d`` signals, built from ``Conv2d``.

    The ``(F,)`` signal is viewed as a ``1 x 1 x F`` image and convolved with ``1 x 5``
    kernels: conv(1->32)-BN-ReLU, conv(32->64)-BN-ReLU, 1x2 max-pool, conv(64->64)-BN-
    ReLU, global average pooling, Linear(64, K). Not in the paper: the ``quick``
    profile's stand-in for the image models, with the conv filters and BatchNorm
    channels that all four of the paper's pruning methods act on (PAPER.md,
    "Pruning"); ``Conv2d`` rather than ``Conv1d`` so that filter pruning, slimming
    and compaction treat it exactly like the paper's image nets.
    """

    def __init__(self, in_features: int, num_classes: int, width: int = 64) -> None:
        super().__init__()
        half = width // 2
        self.in_features = in_features
        self.features = nn.Sequential(
            nn.Conv2d(1, half, (1, 5), padding=(0, 2), bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(),
            nn.Conv2d(half, width, (1, 5), padding=(0, 2), bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d((1, 2)),
            nn.Conv2d(width, width, (1, 5), padding=(0, 2), bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], 1, 1, self.in_features)
        return self.classifier(torch.flatten(self.features(x), 1))
