"""Auditing a user's own (pruned) model (issue 15): ``miakit audit`` and :func:`audit`.

* :mod:`~miakit.audit.checkpoints` reads checkpoints as users have them (a plain or
  ``torch.nn.utils.prune``-masked ``state_dict``, a safetensors file, a dict wrapping a
  ``state_dict``) without executing code, and fits them to an architecture with one
  clear error when they do not fit;
* :mod:`~miakit.audit.members` says who the model trained on (a members file, or the
  paper's split at a stated seed) and picks as many non-members;
* :mod:`~miakit.audit.target` reads the model's attack signals on them;
* :mod:`~miakit.audit.pair` is the dense-plus-pruned attack, and
  :mod:`~miakit.audit.compare` the paired comparisons (pair against single, pruned
  against dense, per class);
* :mod:`~miakit.audit.run` is :func:`audit` itself, returning an :class:`AuditResult`;
* :mod:`~miakit.audit.summary` says it in plain words, :mod:`~miakit.audit.report`
  renders the self-contained HTML report, :mod:`~miakit.audit.cli` the command line.
"""

from __future__ import annotations

from miakit.audit.checkpoints import CheckpointError, LoadedWeights, load_weights, read_weights
from miakit.audit.members import Membership, membership, read_index_file
from miakit.audit.report import render_html, report_html
from miakit.audit.run import AuditResult, audit
from miakit.audit.summary import Summary, plain_summary

__all__ = [
    "AuditResult",
    "CheckpointError",
    "LoadedWeights",
    "Membership",
    "Summary",
    "audit",
    "load_weights",
    "membership",
    "plain_summary",
    "read_index_file",
    "read_weights",
    "render_html",
    "report_html",
]
