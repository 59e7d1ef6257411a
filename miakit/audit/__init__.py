"""Auditing a user's own (pruned) model (issue 15).

:mod:`~miakit.audit.checkpoints` reads checkpoints as users have them (a plain or
``torch.nn.utils.prune``-masked ``state_dict``, a safetensors file, a dict wrapping a
``state_dict``) without executing code, and fits them to an architecture with one clear
error when they do not fit.
"""

from __future__ import annotations

from miakit.audit.checkpoints import CheckpointError, LoadedWeights, load_weights, read_weights

__all__ = ["CheckpointError", "LoadedWeights", "load_weights", "read_weights"]
