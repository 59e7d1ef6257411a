"""Fidelity to the authors' code: threshold attacks on identical posteriors, signal precision.

Issue 11, "Done when": on identical posteriors, miakit's Conf, Xent, Mentr and (the
paper's) Top1-conf reach the authors' shadow-side optimum exactly and victim accuracies
within 0.5 points. The authors' procedure is written out here (PAPER.md, "The eight
existing attacks"): their signals, their threshold scan (every observed shadow value of
the group is a candidate; member iff value >= candidate, on the negated entropies for
Xent and Mentr; the first candidate with the strictly highest balanced accuracy wins),
per ground-truth class for Conf/Xent/Mentr and one global scan on ``p_y`` for
Top1-conf, and their victim accuracy (pooled over classes).

Issue 11, item 6: the attack signals (``logits``, ``sensitivity``) are float32 maths
with autocast and TF32 off, whatever the model's precision or the caller's settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from miakit.attacks import ATTACKS, AttackInputs
from miakit.train import evaluate
from miakit.train.evaluate import full_precision, logits, sensitivity

K = 5
CLIP = 1e-30  # the authors' small_value in -log(max(p, small_value))


# --------------------------------------------------------------------------------------------------
# seeded synthetic posteriors
# --------------------------------------------------------------------------------------------------


def synthetic(seed: int, n: int) -> AttackInputs:
    """Members' true-class logit boosted, per class differently; some saturate to p_y = 1.

    Posteriors are computed in float32, as a model gives them, so ties (p_y == 1.0, the
    other classes 0) occur among the most confident members.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, n)
    membership = rng.integers(0, 2, n)
    z = rng.normal(size=(n, K)) * 1.5
    boost = np.linspace(0.5, 2.5, K)[labels] * membership + rng.exponential(1.0, n)
    z[np.arange(n), labels] += boost
    z[rng.random(n) < 0.05 * membership, :] *= 40.0  # overconfident members
    p = torch.softmax(torch.from_numpy(z).float(), 1).double().numpy()
    return AttackInputs(posteriors=p, labels=labels, membership=membership)


@pytest.fixture(scope="module")
def shadow_victim() -> tuple[AttackInputs, AttackInputs]:
    return synthetic(101, 3000), synthetic(202, 3000)


# --------------------------------------------------------------------------------------------------
# the authors' procedure, written independently of miakit
# --------------------------------------------------------------------------------------------------


def authors_signal(name: str, p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The value the authors threshold, member iff value >= threshold (entropies negated)."""
    rows = np.arange(y.size)
    if name in ("conf", "top1_conf"):
        return p[rows, y]
    log_p = -np.log(np.maximum(p, CLIP))
    if name == "xent":
        return -np.sum(p * log_p, axis=1)
    log_rev = -np.log(np.maximum(1 - p, CLIP))
    mod_p, mod_log = p.copy(), log_rev.copy()
    mod_p[rows, y] = 1 - p[rows, y]
    mod_log[rows, y] = log_p[rows, y]
    return -np.sum(mod_p * mod_log, axis=1)


def authors_scan(tr: np.ndarray, te: np.ndarray) -> tuple[float, Fraction]:
    """Every observed value as candidate; the first with the highest accuracy (exact)."""
    best_t, best = 0.0, Fraction(0)
    values = np.concatenate([tr, te])
    flagged_tr = (tr[None, :] >= values[:, None]).sum(1)
    rejected_te = (te[None, :] < values[:, None]).sum(1)
    for t, a, b in zip(values, flagged_tr, rejected_te, strict=True):
        acc = Fraction(int(a), 2 * tr.size) + Fraction(int(b), 2 * te.size)
        if acc > best:
            best_t, best = float(t), acc
    return best_t, best


def authors_attack(
    name: str, shadow: AttackInputs, victim: AttackInputs
) -> tuple[list[Fraction], float]:
    """Shadow-side optimum per group (one group for top1_conf) and the victim accuracy."""
    s = authors_signal(name, shadow.posteriors, shadow.labels)
    v = authors_signal(name, victim.posteriors, victim.labels)
    sm, vm = shadow.membership == 1, victim.membership == 1
    groups = [None] if name == "top1_conf" else list(range(K))
    optima, mem, non = [], 0, 0
    for c in groups:
        sg = np.ones_like(sm) if c is None else shadow.labels == c
        vg = np.ones_like(vm) if c is None else victim.labels == c
        t, acc = authors_scan(s[sg & sm], s[sg & ~sm])
        optima.append(acc)
        mem += int((v[vg & vm] >= t).sum())
        non += int((v[vg & ~vm] < t).sum())
    return optima, 0.5 * (mem / vm.sum() + non / (~vm).sum())


# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["conf", "xent", "mentr", "top1_conf"])
def test_threshold_attack_reaches_the_authors_optimum(name, shadow_victim) -> None:
    shadow, victim = shadow_victim
    optima, authors_victim = authors_attack(name, shadow, victim)
    attack = ATTACKS[name]().fit(shadow)
    fitted = attack.shadow_fit
    assert fitted.balanced_accuracy.size == len(optima)
    # exact: the same maximal shadow accuracy in every class (or the one global group)
    assert fitted.balanced_accuracy.tolist() == [float(a) for a in optima]
    # miakit's own decisions on the shadow data realise that accuracy
    d, m = attack.decide(shadow), shadow.membership
    groups = [np.ones(m.size, bool)] if len(optima) == 1 else [shadow.labels == c for c in range(K)]
    for g, acc in zip(groups, optima, strict=True):
        tp, tn = int((d[g] & m[g]).sum()), int(((1 - d[g]) & (1 - m[g])).sum())
        assert Fraction(tp, 2 * int(m[g].sum())) + Fraction(tn, 2 * int((1 - m[g]).sum())) == acc
    ours = attack.score(victim).result().balanced_accuracy
    assert abs(ours - authors_victim) <= 0.005
    assert authors_victim > 0.55  # the synthetic data carry a membership signal


def test_the_papers_top1_conf_is_not_the_max_probability_attack(shadow_victim) -> None:
    """The two global attacks differ on these posteriors, so the test above tells them apart."""
    shadow, victim = shadow_victim
    paper = ATTACKS["top1_conf"]().fit(shadow).score(victim).scores
    max_conf = ATTACKS["max_conf"]().fit(shadow).score(victim).scores
    assert not np.array_equal(paper, max_conf)
    assert np.array_equal(paper, victim.p_y)
    assert np.array_equal(max_conf, victim.posteriors.max(1))


# --------------------------------------------------------------------------------------------------
# precision of the attack signals (issue 11, item 6)
# --------------------------------------------------------------------------------------------------

NEW_API = hasattr(torch.backends, "fp32_precision")
SETTINGS = [
    ("cuda", "matmul"),
    ("cudnn", "conv"),
    ("cudnn", "rnn"),
    ("mkldnn", "matmul"),
    ("mkldnn", "conv"),
    ("mkldnn", "rnn"),
]


def precision_state() -> dict[str, object]:
    """What a forward sees: autocast and the float32-precision settings of the backends."""
    state: dict[str, object] = {"autocast_cpu": torch.is_autocast_enabled("cpu")}
    if NEW_API:
        for a, b in SETTINGS:
            state[f"{a}.{b}"] = getattr(getattr(torch.backends, a), b).fp32_precision
    else:
        state["matmul.allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
        state["cudnn.allow_tf32"] = torch.backends.cudnn.allow_tf32
        state["matmul_precision"] = torch.get_float32_matmul_precision()
    return state


@pytest.fixture
def reduced_precision() -> Iterator[dict[str, object]]:
    """TF32 (and oneDNN bf16 matmuls) switched on for the test; everything restored after."""
    if NEW_API:
        saved = {(a, b): getattr(getattr(torch.backends, a), b).fp32_precision for a, b in SETTINGS}
        for a, b in SETTINGS:
            value = "bf16" if a == "mkldnn" and b == "matmul" else "tf32"
            getattr(getattr(torch.backends, a), b).fp32_precision = value
    else:
        saved = (
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            torch.get_float32_matmul_precision(),
        )
        torch.set_float32_matmul_precision("medium")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    try:
        yield precision_state()
    finally:
        if NEW_API:
            for (a, b), value in saved.items():
                getattr(getattr(torch.backends, a), b).fp32_precision = value
        else:
            torch.set_float32_matmul_precision(saved[2])
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]


def full_precision_state() -> dict[str, object]:
    if NEW_API:
        return {"autocast_cpu": False, **{f"{a}.{b}": "ieee" for a, b in SETTINGS}}
    return {
        "autocast_cpu": False,
        "matmul.allow_tf32": False,
        "cudnn.allow_tf32": False,
        "matmul_precision": "highest",
    }


class Probe(nn.Module):
    """A small conv net that records, at each forward, the precision state and dtypes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 6 * 6, K)
        self.seen: list[dict[str, object]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append({**precision_state(), "input": x.dtype, "weight": self.fc.weight.dtype})
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def reference(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Plain float32 forward of a float32 copy, outside any autocast, in full precision."""
    net = Probe()
    net.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    with torch.no_grad(), full_precision():
        return net.eval()(x.float())


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(20, 3, 6, 6, generator=torch.Generator().manual_seed(1))


def test_logits_are_float32_without_autocast_or_tf32(reduced_precision, x) -> None:
    model = Probe()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = logits(model, x, batch_size=8)
        assert torch.is_autocast_enabled("cpu")  # the caller's autocast is back
    assert out.dtype == torch.float32
    assert len(model.seen) == 3
    for seen in model.seen:
        assert seen == {**full_precision_state(), "input": torch.float32, "weight": torch.float32}
    assert precision_state() == reduced_precision  # restored
    # float32 maths (batching and memory layout aside: 1e-6), not the caller's bf16 (1e-2)
    assert (out - reference(model, x)).abs().max() < 1e-6
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert (model(x).float() - out).abs().max() > 1e-4


def test_a_bf16_model_is_evaluated_in_float32_on_a_copy(reduced_precision, x) -> None:
    model = Probe().to(torch.bfloat16)
    out = logits(model, x.to(torch.bfloat16))
    assert out.dtype == torch.float32
    assert model.fc.weight.dtype == torch.bfloat16  # the caller's model is untouched
    assert model.seen == []  # the forward ran on the float32 copy
    assert (out - reference(model, x.to(torch.bfloat16))).abs().max() < 1e-6
    sens = sensitivity(model, x, m=3)
    assert sens.dtype == torch.float32 and model.fc.weight.dtype == torch.bfloat16
    assert precision_state() == reduced_precision


def test_sensitivity_runs_in_full_precision(reduced_precision, x) -> None:
    model = Probe()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sens = sensitivity(model, x, m=4, seed=3, batch_size=8)
    assert sens.dtype == torch.float32 and sens.shape == (20, K)
    assert model.seen and all(
        {k: v for k, v in s.items() if k not in ("input", "weight")} == full_precision_state()
        for s in model.seen
    )
    assert precision_state() == reduced_precision
    # the caller's autocast changes nothing: the same numbers as without it
    assert torch.equal(sens, sensitivity(Probe(), x, m=4, seed=3, batch_size=8))


def test_full_precision_restores_the_settings_after_an_error(reduced_precision) -> None:
    with pytest.raises(RuntimeError, match="boom"), full_precision():
        assert precision_state() == full_precision_state()
        raise RuntimeError("boom")
    assert precision_state() == reduced_precision


def test_float32_model_copies_only_when_needed() -> None:
    model = Probe()
    assert evaluate.float32_model(model) is model
    half = Probe().half()
    copy = evaluate.float32_model(half)
    assert copy is not half and copy.fc.weight.dtype == torch.float32
    assert half.fc.weight.dtype == torch.float16
