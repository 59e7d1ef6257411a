"""miakit: membership-inference privacy in pruned neural networks.

A research kit reproducing, and going beyond, Yuan & Zhang, "Membership Inference
Attacks and Defenses in Neural Network Pruning" (USENIX Security 2022).

The handful of names most users need are available here, loaded on first use so
that ``import miakit`` (and ``import miakit.data``) stays light::

    import miakit

    exp = miakit.Experiment(miakit.profile("quick"))
    pruned = exp.variant()                         # the profile's pruner and sparsity
    scores = exp.attack_scores("samia", pruned)    # fitted on pruned shadows
    print(scores.result().auc)

Everything else lives in one module per concept: ``data``, ``splits``, ``models``,
``train``, ``prune``, ``attacks``, ``defenses``, ``metrics``, ``store``, ``config``,
``variants``, ``experiment``, ``tables``, ``sweep``, ``plots``, ``reported``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> the module that defines it (imported lazily by ``__getattr__``).
_FACADE: dict[str, str] = {
    "Experiment": "miakit.experiment",
    "from_parameters": "miakit.experiment",
    "ExperimentConfig": "miakit.config",
    "profile": "miakit.config",
    "grid": "miakit.config",
    "Variant": "miakit.variants",
    "ORIGINAL": "miakit.variants",
    "FINETUNED": "miakit.variants",
    "make_attack": "miakit.attacks",
    "make_defense": "miakit.defenses",
    "prune_model": "miakit.prune",
    "evaluate_attack": "miakit.metrics",
    "load_dataset": "miakit.data",
    "build_model": "miakit.models",
}

__all__ = ["__version__", *_FACADE]


def __getattr__(name: str) -> Any:
    if name in _FACADE:
        value = getattr(importlib.import_module(_FACADE[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'miakit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
