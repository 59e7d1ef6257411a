"""Architecture registry: the victim and shadow models of the paper.

PAPER.md, "Models and training": the image models are the authors' CIFAR variants of
huyvnphan/PyTorch_CIFAR10 (3x3 stride-1 first convolution): ResNet18 (11.17M parameters
at K = 10) and DenseNet121 (6.96M) keep a BN-ReLU-3x3 stride-2 max-pool stem, VGG16-BN
(33.6M) has the 512-4096-4096-K dropout classifier; module and parameter names are
torchvision's, as theirs. MobileNetV2 is miakit's own choice (the authors' code cannot
train it), written after kuangliu/pytorch-cifar. The tabular model is the column FC
in-256-128-K with ReLU and dropout 0.1. Two small nets serve the embedded data of the
``quick`` and ``smoke`` profiles (DESIGN.md): ``mlp`` for the ``mnist1d`` signals and
``small_cnn`` (conv + BatchNorm, so that every pruning method applies) for the 8x8
``digits`` images. Every model is Xavier-initialised.

Example:
    >>> model = build_model("resnet18", num_classes=10, input_shape=(3, 32, 32))
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])

The image models end in adaptive average pooling, as the authors' do, so one definition
serves 32x32 CIFAR images and smaller ones (down to each ``ArchSpec.min_spatial``: 15 for
DenseNet121, 8 for the others). They work under ``channels_last`` and ``torch.autocast``
(no in-place operations on autograd tensors).

Modules: :mod:`~miakit.models.registry` (``ArchSpec``, ``ARCHS``, ``build_model``),
:mod:`~miakit.models.init` (``xavier_init_``), one module per architecture family
(:mod:`~miakit.models.resnet`, :mod:`~miakit.models.densenet`, :mod:`~miakit.models.vgg`,
:mod:`~miakit.models.mobilenet`, :mod:`~miakit.models.small`) and
:mod:`~miakit.models.traits` (``is_convnet``, ``has_batchnorm``).
"""

from __future__ import annotations

from miakit.models.densenet import Bottleneck, DenseNet, Transition
from miakit.models.init import xavier_init_
from miakit.models.mobilenet import InvertedResidual, MobileNetV2
from miakit.models.registry import ARCHS, ArchSpec, Builder, build_model
from miakit.models.resnet import BasicBlock, ResNet
from miakit.models.small import MLP, ColumnFC, SignalCNN, SmallCNN
from miakit.models.traits import has_batchnorm, is_convnet
from miakit.models.vgg import VGG, VGG16_CFG

__all__ = [
    "ARCHS",
    "MLP",
    "VGG",
    "VGG16_CFG",
    "ArchSpec",
    "BasicBlock",
    "Bottleneck",
    "Builder",
    "ColumnFC",
    "DenseNet",
    "InvertedResidual",
    "MobileNetV2",
    "ResNet",
    "SignalCNN",
    "SmallCNN",
    "Transition",
    "build_model",
    "has_batchnorm",
    "is_convnet",
    "xavier_init_",
]
