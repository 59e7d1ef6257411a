"""The audited model's signals on its targets (issue 15, item 4).

:func:`target_signals` computes what every attack reads (posteriors, logits and SAMIA's
sensitivity; PAPER.md, "SAMIA") for the audited model on the members and non-members of
a :class:`~miakit.audit.members.Membership`, with the experiment's sensitivity settings
and seed, so that auditing a checkpoint of the kit's own victim gives the pipeline's
scores exactly (tested).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from miakit.attacks import AttackInputs
from miakit.audit.members import Membership
from miakit.train import logits

if TYPE_CHECKING:
    from miakit.experiment import Experiment

__all__ = ["target_signals"]


def target_signals(model: nn.Module, exp: Experiment, targets: Membership) -> AttackInputs:
    """The model's signals on ``targets`` (members first), with their membership."""
    idx = targets.targets
    x = exp.data.x[torch.as_tensor(idx)]
    model = model.to(exp.device)
    out = logits(model, x, device=exp.device).double()
    sens = exp.sensitivity_of(model, x, "sensitivity of the audited model")
    return AttackInputs(
        posteriors=out.softmax(1).numpy(),
        labels=exp.data.y[torch.as_tensor(idx)].numpy().astype(np.int64),
        sensitivity=sens.double().numpy(),
        membership=targets.labels,
        logits=out.numpy(),
        sample_ids=idx,
    )
