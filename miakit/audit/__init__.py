"""Auditing a user's own (pruned) model (issue 15).

:mod:`~miakit.audit.checkpoints` reads checkpoints as users have them (a plain or
``torch.nn.utils.prune``-masked ``state_dict``, a safetensors file, a dict wrapping a
``state_dict``) without executing code, and fits them to an architecture with one clear
error when they do not fit; :mod:`~miakit.audit.members` says who the model trained on
(a members file, or the paper's split at a stated seed) and picks as many non-members.
"""

from __future__ import annotations

from miakit.audit.checkpoints import CheckpointError, LoadedWeights, load_weights, read_weights
from miakit.audit.members import Membership, membership, read_index_file

__all__ = [
    "CheckpointError",
    "LoadedWeights",
    "Membership",
    "load_weights",
    "membership",
    "read_index_file",
    "read_weights",
]
