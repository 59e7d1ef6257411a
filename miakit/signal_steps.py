"""The signal steps of the cached pipeline: what attacks read from the cached models.

:class:`SignalSteps` adds to :class:`~miakit.steps.ModelSteps` each model's signals on a
sample set (posteriors, logits, labels, membership and SAMIA's sensitivity, PAPER.md
"SAMIA"), the shadows' pooled signals, and the reference matrices of LiRA and RMIA
(samples x models, beyond the paper) from the shadows or from the reference models;
:class:`~miakit.experiment.Experiment` adds the attacks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from miakit._util import num_threads
from miakit.attacks import ATTACKS, AttackInputs, ReferenceSignals
from miakit.keys import derives_key
from miakit.steps import ModelSteps
from miakit.train import logits, sensitivity
from miakit.variants import ORIGINAL, Variant

__all__ = ["SignalSteps"]


class SignalSteps(ModelSteps):
    """Signals and reference matrices of one config's cached models (see ``Experiment``)."""

    def _sample_set(self, role: str, samples: str) -> np.ndarray:
        """Pool indices of a named sample set.

        ``"own"``: the role's members (train) then non-members (test), the set its
        attacks are fitted or evaluated on. ``"victim"``: the victim's members and
        non-members; ``"population"``: the victim's dev split (non-members of every
        model), RMIA's population.
        """
        if samples == "own":
            s = self._split(role)
        elif samples == "victim":
            s = self._split("victim")
        elif samples == "population":
            return self._split("victim").dev
        else:
            raise ValueError(f"unknown sample set {samples!r}; use 'own', 'victim' or 'population'")
        return np.concatenate([s.train, s.test])

    def sensitivity_of(self, model: torch.nn.Module, x: torch.Tensor, desc: str) -> torch.Tensor:
        """SAMIA's per-class sensitivity of ``model`` on ``x`` with the config's ``m``,
        ``eps`` and seed (PAPER.md, "SAMIA"): the one place the pipeline and the audit
        compute it, so both give the same feature for the same model."""
        c = self.config
        return sensitivity(
            model,
            x,
            m=c.sensitivity_m,
            eps=c.sensitivity_eps,
            seed=c.seed,
            device=self.device,
            progress=self.progress,
            desc=desc,
        )

    def signals(self, role: str, variant: Variant = ORIGINAL, samples: str = "own") -> AttackInputs:
        """Posteriors, logits, labels and sensitivity of a model on a sample set (cached).

        Computed once per (model, sample set); every attack reads them.
        Sensitivity follows PAPER.md, "SAMIA" (m perturbations of scale eps); only the
        ``"own"`` set carries it (SAMIA's shadows and target): the ``"victim"`` and
        ``"population"`` sets feed LiRA and RMIA, which read logits alone, so they are
        the cheaper ``logits`` step (``sensitivity=None``).
        ``membership`` is 1 where the sample is in the training set of THIS role's
        model, by the role's own split, for every sample set: a shadow's signals
        on the victim's samples are all OUT.
        """
        key = self._signals_key(role, variant, samples)
        idx = self._sample_set(role, samples)
        membership = np.isin(idx, self._split(role).train).astype(np.int64)

        def create() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            model = self.model(role, variant).model
            x = self.data.x[torch.as_tensor(idx)]
            out = logits(model, x, device=self.device)
            if samples != "own":
                return {"logits": out}, {}
            sens = self.sensitivity_of(model, x, f"sensitivity {role} ({variant.label}, {samples})")
            return {"logits": out, "sensitivity": sens}, {}

        with num_threads(self.threads):
            tensors, _ = self._cached("signals", key, create)
        out = tensors["logits"].double()
        return AttackInputs(
            posteriors=out.softmax(1).numpy(),
            labels=self.data.y[torch.as_tensor(idx)].numpy().astype(np.int64),
            sensitivity=tensors["sensitivity"].double().numpy()
            if "sensitivity" in tensors
            else None,
            membership=membership,
            logits=out.numpy(),
            sample_ids=idx,
        )

    @derives_key
    def _signals_key(self, role: str, variant: Variant, samples: str) -> dict[str, Any]:
        step = "signals" if samples == "own" else "logits"
        return self.step_key(step, {"model": self._model_key(role, variant)}, samples=samples)

    def shadow_signals(self, variant: Variant = ORIGINAL) -> AttackInputs:
        """All shadows' signals on their own members and non-members, pooled."""
        roles = self.roles()[1:]
        self.prefetch(roles, variant)
        return AttackInputs.concat([self.signals(r, variant) for r in roles])

    def attack_names(self) -> list[str]:
        """Every attack this experiment can run: :data:`~miakit.attacks.ATTACKS`, less the
        online ones (``"reference_models"`` in ``uses``) when ``num_references`` is 0."""
        refs = self.config.num_references > 0
        return [n for n, cls in ATTACKS.items() if refs or "reference_models" not in cls.uses]

    def attack_roles(self, name: str = "lira") -> list[str]:
        """The models whose signals form attack ``name``'s :class:`ReferenceSignals`.

        The shadows (all OUT on the victim's samples) for the offline attacks, as the
        kit has always run them; the ``num_references`` reference models (IN for about
        half the victim's samples, :func:`~miakit.splits.reference_split`) for those
        whose ``uses`` holds ``"reference_models"`` (online LiRA and RMIA).

        Raises:
            ValueError: an online attack with ``num_references = 0``.
        """
        if "reference_models" not in ATTACKS[name].uses:
            return self.roles()[1:]
        if not self.config.num_references:
            raise ValueError(
                f"{name} needs reference models that trained on half the victim's samples; "
                "set num_references >= 2 (the quick profile uses 16)"
            )
        return self.reference_roles()

    def references(
        self, victim: Variant = ORIGINAL, shadows: Variant | None = None, attack: str = "lira"
    ) -> ReferenceSignals:
        """The reference models on the victim's samples and on the population.

        LiRA's and RMIA's input (samples x models): each reference model's signals on
        the victim's members and non-members (``is_in`` from its own split: the
        ``num_references`` models of :func:`~miakit.splits.reference_split` are IN for
        about half of them, shadows for none), each one's and the victim's ``p_y`` on
        the population (the victim's dev split, non-members of every model). The
        models are :meth:`attack_roles` of ``attack`` (offline: the shadows; online: the
        reference models), in the ``shadows`` variant (default: the victim's).
        """
        shadows = victim if shadows is None else shadows
        roles = self.attack_roles(attack)
        self.prefetch(roles, shadows)
        return ReferenceSignals.from_inputs(
            [self.signals(r, shadows, "victim") for r in roles],
            [self.signals(r, shadows, "population") for r in roles],
            self.signals("victim", victim, "population"),
        )
