"""Fixtures shared by several test files."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from miakit.config import profile
from miakit.experiment import Experiment
from miakit.store import Store
from miakit.variants import ORIGINAL, Variant


@pytest.fixture(scope="session")
def audit_release(tmp_path_factory):
    """The smoke pipeline's victim, pruned, in every checkpoint format users have, and dense.

    ``pruned.pt``: a ``torch.nn.utils.prune`` masked state_dict (``weight_orig`` +
    ``weight_mask``); ``plain.pt``: the effective weights as a plain state_dict;
    ``pruned.safetensors``; ``trainer.ckpt``: ``{"state_dict": ..., "epoch", "optimizer"}``
    as training loops save it; ``wrapped.pth``: ``{"model": masked state_dict}``;
    ``dense.pth``: the unpruned victim under ``"model"``.
    """
    root = tmp_path_factory.mktemp("audit")
    store = Store(root / "cache")
    exp = Experiment(profile("smoke"), store=store, device="cpu")
    variant = Variant(exp.config.pruner, exp.config.sparsity)
    pruned = exp.model("victim", variant).model
    torch.save(pruned.state_dict(), root / "pruned.pt")  # weight_orig + weight_mask
    plain = {k: v.contiguous() for k, v in exp.model("victim", variant).model.state_dict().items()}
    effective = {}
    for key, value in plain.items():
        if key.endswith("_mask"):
            continue
        name = key.removesuffix("_orig")
        effective[name] = value * plain[name + "_mask"] if key.endswith("_orig") else value
    save_file(effective, str(root / "pruned.safetensors"))
    torch.save(effective, root / "plain.pt")
    optimizer = torch.optim.SGD(pruned.parameters(), lr=0.1, momentum=0.9)
    trainer = {"state_dict": effective, "epoch": 12, "optimizer": optimizer.state_dict()}
    torch.save(trainer, root / "trainer.ckpt")
    torch.save({"model": plain}, root / "wrapped.pth")
    torch.save({"model": exp.model("victim", ORIGINAL).model.state_dict()}, root / "dense.pth")
    return exp, variant, store, root
