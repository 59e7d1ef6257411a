"""Membership-inference attacks, one interface (PAPER.md, "The eight existing attacks", "SAMIA").

Every attack is an :class:`~miakit.attacks.base.Attack`: ``fit`` on pooled shadow
signals (:class:`~miakit.attacks.base.AttackInputs`), then ``score`` victim samples
(higher = member) and ``decide`` at its threshold. LiRA and RMIA (beyond the
paper) take the shadows' signals on the target samples at construction instead.

=============  ===========================================================  =============
name           attack                                                       module
=============  ===========================================================  =============
``gap``        member iff correctly classified                              threshold
``conf``       class-wise threshold on p_y                                  threshold
``xent``       class-wise threshold on prediction entropy                   threshold
``mentr``      class-wise threshold on modified entropy (Song & Mittal)     threshold
``top1_conf``  global threshold on the largest posterior                    threshold
``nn``         attack MLP on the posterior vector                           neural
``top3_nn``    attack MLP on the three largest posteriors                   neural
``nncls``      attack MLP on posterior + one-hot label                      neural
``samia``      self-attention over (p_c, s_c, y_c) tokens (the paper's)     samia
``lira``       offline LiRA (Carlini et al. 2022)                           lira
``rmia``       offline RMIA (Zarifzadeh et al. 2024)                        rmia
=============  ===========================================================  =============
"""

from __future__ import annotations

from typing import Any

from miakit.attacks.base import Attack, AttackInputs
from miakit.attacks.lira import LiRA
from miakit.attacks.neural import NN, NNCls, Top3NN
from miakit.attacks.rmia import RMIA
from miakit.attacks.samia import SAMIA
from miakit.attacks.threshold import Conf, Gap, Mentr, Top1Conf, Xent

__all__ = [
    "ATTACKS",
    "BASELINES",
    "Attack",
    "AttackInputs",
    "make_attack",
]

ATTACKS: dict[str, type[Attack]] = {
    cls.name: cls
    for cls in (Gap, Conf, Xent, Mentr, Top1Conf, NN, Top3NN, NNCls, SAMIA, LiRA, RMIA)
}
"""Every attack by name, in the paper's order, then the attacks beyond the paper."""

BASELINES: tuple[str, ...] = ("gap", "conf", "xent", "mentr", "top1_conf", "nn", "top3_nn", "nncls")
"""The paper's eight existing attacks (PAPER.md, "The eight existing attacks")."""


def make_attack(name: str, **options: Any) -> Attack:
    """Build the attack called ``name`` with its options.

    Raises:
        ValueError: an unknown name (the message lists the known ones) or an option
            the attack does not take.

    Example:
        >>> make_attack("samia", epochs=10, use_sensitivity=False).name
        'samia'
    """
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; known attacks: {', '.join(ATTACKS)}")
    try:
        return ATTACKS[name](**options)
    except TypeError as err:
        raise ValueError(f"attack {name!r} does not accept these options: {err}") from err
