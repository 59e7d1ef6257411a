"""miakit: membership-inference privacy in pruned neural networks.

A research kit reproducing, and going beyond, Yuan & Zhang, "Membership
Inference Attacks and Defenses in Neural Network Pruning" (USENIX Security
2022). One module per concept: ``data``, ``models``, ``train``, ``prune``,
``attacks``, ``defenses``, ``metrics``, ``store``, ``plots``, ``experiment``.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
