"""Membership-inference attacks, one interface (PAPER.md, "The eight existing attacks", "SAMIA").

Every attack is an :class:`~miakit.attacks.base.Attack` with one protocol: options in
the constructor (or :meth:`~miakit.attacks.base.Attack.from_settings`), data in
``fit(shadows, references)``, as its ``uses`` declares (pooled shadow signals,
:class:`~miakit.attacks.base.AttackInputs`, or the reference models' signals on the
target samples, :class:`~miakit.attacks.base.ReferenceSignals`), then ``score`` of
a target model's signals returns :class:`~miakit.attacks.base.AttackScores`
(higher = member). Each class declares its ``family``: ``"threshold"``,
``"neural"`` (fitted state kept through ``state()``/``from_state()``) or
``"reference"``; :func:`family` lists the names of one family.

===============  ===========================================================  ===========
name             attack                                                       module
===============  ===========================================================  ===========
``gap``          member iff correctly classified                              threshold
``conf``         class-wise threshold on p_y                                  threshold
``xent``         class-wise threshold on prediction entropy                   threshold
``mentr``        class-wise threshold on modified entropy (Song & Mittal)     threshold
``top1_conf``    global threshold on p_y (the paper's Top1-conf, see below)   threshold
``nn``           attack MLP on the posterior vector                           neural
``top3_nn``      attack MLP on the three largest posteriors                   neural
``nncls``        attack MLP on posterior + one-hot label                      neural
``samia``        self-attention over (p_c, s_c, y_c) tokens (the paper's)     samia
``max_conf``     global threshold on the largest posterior (not the paper's)  threshold
``lira``         offline LiRA (Carlini et al. 2022)                           lira
``lira_online``  online LiRA, per-sample IN and OUT Gaussians                 lira_online
``rmia``         offline RMIA (Zarifzadeh et al. 2024)                        rmia
``rmia_online``  online RMIA, ``Pr(x)`` over IN and OUT references            rmia_online
===============  ===========================================================  ===========

The paper's eight existing attacks are :data:`BASELINES`. ``top1_conf`` is the
paper's Top1-conf as the authors' code computes it, one global threshold on the
ground-truth-class probability ``p_y`` (PAPER.md, "The eight existing attacks", 5);
``max_conf`` is the largest-probability attack that the name "Top1-conf" suggests,
miakit's own, and not in :data:`BASELINES`.
"""

from __future__ import annotations

from typing import Any

from miakit.attacks.base import (
    Attack,
    AttackInputs,
    AttackScores,
    AttackSettings,
    ReferenceSignals,
)
from miakit.attacks.lira import LiRA
from miakit.attacks.lira_online import LiRAOnline
from miakit.attacks.neural import NN, NNCls, Top3NN
from miakit.attacks.rmia import RMIA
from miakit.attacks.rmia_online import RMIAOnline
from miakit.attacks.samia import SAMIA
from miakit.attacks.threshold import Conf, Gap, MaxConf, Mentr, Top1Conf, Xent
from miakit.attacks.threshold_search import ThresholdFit, best_threshold

__all__ = [
    "ATTACKS",
    "BASELINES",
    "FAMILIES",
    "Attack",
    "AttackInputs",
    "AttackScores",
    "AttackSettings",
    "ReferenceSignals",
    "ThresholdFit",
    "best_threshold",
    "family",
    "make_attack",
]

ATTACKS: dict[str, type[Attack]] = {
    cls.name: cls
    for cls in (
        *(Gap, Conf, Xent, Mentr, Top1Conf, NN, Top3NN, NNCls, SAMIA),
        *(MaxConf, LiRA, LiRAOnline, RMIA, RMIAOnline),
    )
}
"""Every attack by name, in the paper's order (:data:`BASELINES`, then SAMIA), then the
attacks beyond the paper (Max-conf, LiRA offline and online, RMIA offline and online)."""

BASELINES: tuple[str, ...] = ("gap", "conf", "xent", "mentr", "top1_conf", "nn", "top3_nn", "nncls")
"""The paper's eight existing attacks (PAPER.md, "The eight existing attacks").

``top1_conf`` here is the paper's (a global threshold on ``p_y``); ``max_conf`` is not
one of the eight."""


FAMILIES: tuple[str, ...] = ("threshold", "neural", "reference")
"""The attack families, as declared by each class's ``family``."""


def family(name: str) -> tuple[str, ...]:
    """The names of the attacks of one family, in :data:`ATTACKS` order.

    Example:
        >>> family("threshold")
        ('gap', 'conf', 'xent', 'mentr', 'top1_conf', 'max_conf')
    """
    if name not in FAMILIES:
        raise ValueError(f"unknown attack family {name!r}; families: {', '.join(FAMILIES)}")
    return tuple(k for k, cls in ATTACKS.items() if cls.family == name)


def make_attack(name: str, *, settings: AttackSettings | None = None, **options: Any) -> Attack:
    """Build the attack called ``name`` with its options.

    Args:
        name: a key of :data:`ATTACKS`.
        settings: training settings for the attacks that train something
            (:meth:`Attack.from_settings`); ``None`` leaves the attack's defaults.
        **options: the attack's own options.

    Raises:
        ValueError: an unknown name (the message lists the known ones) or an option
            the attack does not take.

    Example:
        >>> make_attack("samia", epochs=10, use_sensitivity=False).name
        'samia'
    """
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; known attacks: {', '.join(ATTACKS)}")
    cls = ATTACKS[name]
    try:
        return cls(**options) if settings is None else cls.from_settings(settings, **options)
    except TypeError as err:
        raise ValueError(f"attack {name!r} does not accept these options: {err}") from err
