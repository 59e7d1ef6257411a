"""Tests of the attack MLP trainer, NN / Top3-NN / NNCls and SAMIA (PAPER.md, "SAMIA")."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from miakit.attacks.attack_net import FastDropout
from miakit.attacks.base import AttackInputs, AttackSettings
from miakit.attacks.neural import (
    NN,
    AttackMLP,
    NNCls,
    Top3NN,
    lr_milestones,
    member_probability,
    seeded,
    train_attack_model,
)
from miakit.attacks.samia import SAMIA, EncoderLayer, SAMIANet, samia_features

K = 10
# Few epochs and a larger learning rate than the paper's 1e-3 keep these tests fast; the
# schedule's shape (SGD + momentum, x0.1 at 1/2 and 3/4 of the epochs) is the paper's.
# SAMIA: attention learns quickly; from the authors' Xavier-normal init, lr 0.05 can diverge.
FAST = {"epochs": 12, "lr": 0.02, "device": "cpu"}
# The MLP must learn "peakedness" of p, a nonlinear feature.
FAST_MLP = {**FAST, "epochs": 30, "lr": 0.05}


def _fast(cls: type) -> dict:
    return FAST if cls is SAMIA else FAST_MLP


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny attack models run fastest on one thread; intra-op threads only contend on CI."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _synthetic(
    n: int,
    seed: int,
    *,
    posterior_signal: bool = True,
    sensitivity_signal: bool = True,
    num_classes: int = K,
) -> AttackInputs:
    """Balanced members / non-members with a controllable signal.

    Members (when a signal is on) have peaked posteriors on their label and/or tiny
    sensitivity; non-members have flat posteriors and/or large sensitivity. With a
    signal off, that feature is drawn from one distribution for everyone (each sample
    independently peaked or flat, unrelated to membership).
    """
    rng = np.random.default_rng(seed)
    membership = rng.permutation(np.arange(n) % 2)
    labels = rng.integers(0, num_classes, n)
    coin = rng.integers(0, 2, n)
    peaked = membership if posterior_signal else coin
    logits = rng.normal(size=(n, num_classes))
    logits[np.arange(n), labels] += np.where(peaked == 1, 7.0, 0.5)
    posteriors = torch.softmax(torch.from_numpy(logits), 1).numpy().astype(np.float32)
    calm = membership if sensitivity_signal else rng.integers(0, 2, n)
    scale = np.where(calm == 1, 0.05, 1.0)[:, None]
    sens = (np.abs(rng.normal(size=(n, num_classes))) * scale).astype(np.float32)
    return AttackInputs(
        posteriors=posteriors, labels=labels, sensitivity=sens, membership=membership
    )


def _auc(attack, target: AttackInputs) -> float:
    return float(roc_auc_score(target.membership, attack.score(target).scores))


ATTACKS = [NN, Top3NN, NNCls, SAMIA]


# --- features and network layout ---------------------------------------------------------


def test_baseline_features_are_the_papers() -> None:
    p = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]], dtype=np.float32)
    inputs = AttackInputs(posteriors=p, labels=np.array([2, 0]))
    assert torch.equal(NN().features(inputs), torch.from_numpy(p))
    assert torch.equal(Top3NN().features(inputs), torch.tensor([[0.6, 0.3, 0.1], [0.5, 0.3, 0.2]]))
    expected = torch.tensor(
        [[0.1, 0.6, 0.3, 0.0, 0.0, 1.0], [0.5, 0.2, 0.3, 1.0, 0.0, 0.0]], dtype=torch.float32
    )
    assert torch.equal(NNCls().features(inputs), expected)
    two = AttackInputs(posteriors=np.array([[0.3, 0.7]], dtype=np.float32), labels=np.array([0]))
    assert torch.equal(Top3NN().features(two), torch.tensor([[0.7, 0.3, 0.0]]))


def test_attack_mlp_shape_matches_paper() -> None:
    net = AttackMLP(7)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (7, 512),
        (512, 256),
        (256, 128),
        (128, 2),
    ]
    drops = [m.p for m in net if isinstance(m, FastDropout)]
    assert drops == [0.2, 0.2]
    assert net(torch.zeros(4, 7)).shape == (4, 2)


def test_samia_forward_shape() -> None:
    inputs = _synthetic(6, seed=0)
    x = samia_features(inputs)
    assert x.shape == (6, 3 * K)
    net = SAMIANet(K)
    assert net(x).shape == (6, 2)
    net.eval()
    assert net(x[:1]).shape == (1, 2)
    x2 = samia_features(inputs, use_sensitivity=False)
    assert x2.shape == (6, 2 * K)
    assert SAMIANet(K, token_features=2)(x2).shape == (6, 2)
    with pytest.raises(ValueError, match="expects"):
        net(x2)


def test_samia_token_layout_is_exact() -> None:
    """With BatchNorm as the identity, the tokens are exactly (p_c, s_c, y_c)."""
    inputs = _synthetic(5, seed=1, num_classes=4)
    net = SAMIANet(4).eval()
    net.norm.eps = 0.0  # eval BN with mean 0, var 1, weight 1, bias 0 is then x -> x exactly
    x = samia_features(inputs)
    tokens = net.tokens(x)
    p = torch.from_numpy(inputs.posteriors)
    s = torch.from_numpy(inputs.sensitivity)
    y = torch.nn.functional.one_hot(torch.from_numpy(inputs.labels), 4).float()
    assert tokens.shape == (5, 4, 3)
    assert torch.equal(tokens, torch.stack([p, s, y], dim=2))
    # Relabelling the classes consistently in p, s and y permutes the tokens, nothing else.
    perm = np.array([2, 0, 3, 1])
    relabel = np.argsort(perm)[inputs.labels]
    permuted = AttackInputs(
        posteriors=inputs.posteriors[:, perm],
        labels=relabel,
        sensitivity=inputs.sensitivity[:, perm],
    )
    assert torch.equal(net.tokens(samia_features(permuted)), tokens[:, perm])
    # Without sensitivity the tokens are (p_c, y_c).
    net2 = SAMIANet(4, token_features=2).eval()
    net2.norm.eps = 0.0
    assert torch.equal(
        net2.tokens(samia_features(inputs, use_sensitivity=False)), torch.stack([p, y], dim=2)
    )


def test_samia_network_is_the_papers() -> None:
    net = SAMIANet(K)
    assert net.norm.num_features == 3 * K
    assert (net.embed[0].in_features, net.embed[0].out_features) == (3, 64)
    assert isinstance(net.embed[1], torch.nn.GELU)
    layers = list(net.encoder)
    assert len(layers) == 3 and all(isinstance(layer, EncoderLayer) for layer in layers)
    layer = layers[0]
    assert (layer.qkv.in_features, layer.qkv.out_features, layer.nhead) == (64, 192, 4)
    assert (layer.linear1.out_features, layer.drop.p) == (128, 0.2)
    linears = [m for m in net.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(K * 64, 64), (64, 2)]
    assert not any("pos" in name for name, _ in net.named_parameters())


def _torch_layer_with_weights_of(layer: EncoderLayer) -> torch.nn.TransformerEncoderLayer:
    torch_layer = torch.nn.TransformerEncoderLayer(
        64, 4, 128, layer.drop.p, activation="gelu", batch_first=True
    )
    weights = {
        "self_attn.in_proj_weight": layer.qkv.weight,
        "self_attn.in_proj_bias": layer.qkv.bias,
        "self_attn.out_proj.weight": layer.out.weight,
        "self_attn.out_proj.bias": layer.out.bias,
    }
    for name in ("linear1", "linear2", "norm1", "norm2"):
        for key, value in getattr(layer, name).state_dict().items():
            weights[f"{name}.{key}"] = value
    torch_layer.load_state_dict(weights)
    return torch_layer


@pytest.mark.parametrize("mode", ["eval", "train without dropout"])
def test_encoder_layer_computes_what_torchs_layer_computes(mode) -> None:
    """Same weights: SAMIA's written-out layer equals ``nn.TransformerEncoderLayer`` (post-norm,
    GELU), forward and gradients; in training with dropout 0 (the dropouts are the only
    randomness), and in eval (PyTorch's fused fast path)."""
    torch.manual_seed(0)
    ours = EncoderLayer(64, 4, 128, 0.0 if mode != "eval" else 0.2)
    theirs = _torch_layer_with_weights_of(ours)
    for net in (ours, theirs):
        net.train(mode != "eval")
    x = torch.randn(33, K, 64, requires_grad=True)
    out_ours, out_theirs = ours(x), theirs(x)
    torch.testing.assert_close(out_ours, out_theirs, atol=2e-6, rtol=1e-5)
    if mode != "eval":
        g_ours = torch.autograd.grad(out_ours.square().sum(), (x, ours.qkv.weight))
        g_theirs = torch.autograd.grad(
            out_theirs.square().sum(), (x, theirs.self_attn.in_proj_weight)
        )
        for a, b in zip(g_ours, g_theirs, strict=True):
            torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)


def test_fast_dropout_drops_at_its_rate_and_keeps_the_expectation() -> None:
    torch.manual_seed(0)
    drop = FastDropout(0.2)
    y = drop(torch.ones(400_000))
    zero = float((y == 0).float().mean())
    assert abs(zero - 13107 / 65536) < 5 * (0.2 * 0.8 / 400_000) ** 0.5  # 5 standard errors
    kept = torch.tensor(65536 / (65536 - 13107), dtype=torch.float32).item()
    assert set(torch.unique(y).tolist()) == {0.0, kept}
    assert abs(float(y.mean()) - 1) < 5 * (0.2 / 0.8 / 400_000) ** 0.5
    # each of the four 16-bit lanes of a 64-bit draw is used: no lane is biased
    lanes = (y.view(-1, 4) == 0).float().mean(0)
    assert torch.all((lanes - 0.2).abs() < 5 * (0.16 / 100_000) ** 0.5), lanes
    # same seed, same mask; a gradient flows through the kept entries only
    x = torch.randn(3, 50, requires_grad=True)
    torch.manual_seed(4)
    first = drop(x)
    torch.manual_seed(4)
    assert torch.equal(first, drop(x))
    (grad,) = torch.autograd.grad(first.sum(), x)
    assert torch.equal(grad == 0, first == 0)
    assert torch.equal(drop.eval()(x), x) and torch.equal(FastDropout(0.0).train()(x), x)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        FastDropout(1.0)


# --- the authors' initialisation (PAPER.md, "Models and training", last bullet) ----------


def _authors_weight_init(m: torch.nn.Module) -> None:
    """The authors' ``weight_init`` as they wrote it: by class name, applied with ``apply``."""
    classname = m.__class__.__name__
    if classname.startswith("Conv") or classname == "Linear":
        if getattr(m, "bias", None) is not None:
            torch.nn.init.constant_(m.bias, 0.0)
        if getattr(m, "weight", None) is not None:
            torch.nn.init.xavier_normal_(m.weight)
    elif "Norm" in classname:
        if getattr(m, "weight", None) is not None:
            m.weight.data.fill_(1)
        if getattr(m, "bias", None) is not None:
            m.bias.data.zero_()


@pytest.mark.parametrize(
    "build", [lambda: AttackMLP(2 * K), lambda: SAMIANet(K)], ids=["mlp", "samia"]
)
def test_attack_networks_get_the_authors_init(build, monkeypatch) -> None:
    """Same seed: miakit's network equals PyTorch's default one re-initialised by the authors."""
    import miakit.attacks.attack_net as attack_net
    import miakit.attacks.samia as samia

    torch.manual_seed(3)
    ours = build()
    monkeypatch.setattr(attack_net, "attack_init_", lambda net: net)
    monkeypatch.setattr(samia, "attack_init_", lambda net: net)
    torch.manual_seed(3)
    default = build()
    torch.manual_seed(3)
    theirs = build().apply(_authors_weight_init)
    ours_sd, default_sd, theirs_sd = ours.state_dict(), default.state_dict(), theirs.state_dict()
    assert ours_sd.keys() == theirs_sd.keys()
    for name, value in ours_sd.items():
        assert torch.equal(value, theirs_sd[name]), name
    # the init changed something: PyTorch's default Linear init is not Xavier
    assert any(not torch.equal(ours_sd[k], default_sd[k]) for k in ours_sd if "weight" in k)


def test_attack_mlp_weights_are_xavier_normal_with_zero_bias() -> None:
    torch.manual_seed(0)
    net = AttackMLP(300)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 4
    for m in linears:
        fan_out, fan_in = m.weight.shape
        std = (2.0 / (fan_in + fan_out)) ** 0.5
        w = m.weight.detach()
        tol = 5 / (2 * w.numel()) ** 0.5  # five standard errors of the sample std
        assert abs(float(w.std()) / std - 1) < tol, (fan_in, fan_out)
        assert torch.count_nonzero(m.bias) == 0
    # normal, not uniform with the same std (|w| <= sqrt(3) std): the 300x512 layer has tails
    first = linears[0].weight.detach()
    assert float(first.abs().max()) > 3 * (2.0 / (300 + 512)) ** 0.5


def test_samia_network_init_biases_zero_norms_unit() -> None:
    torch.manual_seed(0)
    net = SAMIANet(K)
    for name, module in net.named_modules():
        if type(module) is torch.nn.Linear:
            assert torch.count_nonzero(module.bias) == 0, name
            fan_out, fan_in = module.weight.shape
            std = (2.0 / (fan_in + fan_out)) ** 0.5
            tol = 5 / (2 * module.weight.numel()) ** 0.5
            assert abs(float(module.weight.detach().std()) / std - 1) < tol, name
        elif isinstance(module, (torch.nn.BatchNorm1d, torch.nn.LayerNorm)):
            assert torch.all(module.weight == 1) and torch.count_nonzero(module.bias) == 0, name
    # the attention projections keep PyTorch's MultiheadAttention init, as the authors' do:
    # input Xavier-uniform, output Linear's default (kaiming-uniform, a = sqrt 5), biases 0
    layer = net.encoder[0]
    assert float(layer.qkv.weight.detach().abs().max()) <= (6 / (64 + 192)) ** 0.5
    assert float(layer.qkv.weight.detach().abs().max()) > 0.95 * (6 / (64 + 192)) ** 0.5
    assert float(layer.out.weight.detach().abs().max()) <= 64**-0.5
    assert float(layer.out.weight.detach().abs().max()) > 0.95 * 64**-0.5
    assert torch.count_nonzero(layer.qkv.bias) == torch.count_nonzero(layer.out.bias) == 0


# --- the trainer -------------------------------------------------------------------------


def test_lr_milestones() -> None:
    assert lr_milestones(100) == [50, 75]
    assert lr_milestones(20) == [10, 15]
    assert lr_milestones(1) == []


def test_train_attack_model_reduces_loss() -> None:
    data = _synthetic(400, seed=2)
    x = NN().features(data)
    y = torch.from_numpy(data.membership)
    with seeded(0):
        net = AttackMLP(K)
    before = torch.nn.functional.cross_entropy(net.eval()(x), y).item()
    history: list[float] = []
    train_attack_model(net, x, y, epochs=20, lr=0.1, device="cpu", history=history)
    assert not net.training
    after = torch.nn.functional.cross_entropy(net(x), y).item()
    assert len(history) == 20
    assert history[-1] < 0.5 * history[0]
    assert after < 0.5 * before


def test_train_attack_model_is_deterministic_on_cpu() -> None:
    data = _synthetic(130, seed=3)  # 130 % 128 == 2: a final partial batch too
    x, y = samia_features(data), torch.from_numpy(data.membership)

    def run(seed: int) -> dict[str, torch.Tensor]:
        with seeded(0):
            net = SAMIANet(K)
        train_attack_model(net, x, y, epochs=2, lr=0.05, seed=seed, device="cpu")
        return net.state_dict()

    a, b, c = run(0), run(0), run(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_seeded_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with seeded(0):
        torch.rand(5)
    assert torch.equal(torch.rand(3), expected)


def test_train_attack_model_skips_single_sample_batch_and_validates() -> None:
    data = _synthetic(129, seed=4)  # 129 % 128 == 1: BatchNorm cannot train on one sample
    x, y = samia_features(data), torch.from_numpy(data.membership)
    train_attack_model(SAMIANet(K), x, y, epochs=1, device="cpu")
    with pytest.raises(ValueError, match="only 0"):
        train_attack_model(AttackMLP(3 * K), x, y + 1, epochs=1, device="cpu")
    with pytest.raises(ValueError, match="NaN"):
        train_attack_model(AttackMLP(3 * K), x * float("nan"), y, epochs=1, device="cpu")
    with pytest.raises(ValueError, match="features must be"):
        train_attack_model(AttackMLP(3 * K), x, y[:-1], epochs=1, device="cpu")
    with pytest.raises(ValueError, match="batch_size >= 2"):
        train_attack_model(AttackMLP(3 * K), x, y, batch_size=1, device="cpu")


def test_member_probability_is_softmax_of_member_logit() -> None:
    net = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, -1.0]]))
    probs = member_probability(net, torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 50.0]]))
    assert probs.dtype == np.float64
    np.testing.assert_allclose(probs, [0.5, 1 / (1 + np.exp(-1.0)), np.exp(-50.0)], rtol=1e-6)


# --- attacks: separation and the null ----------------------------------------------------


@pytest.fixture(scope="module")
def separable() -> tuple[AttackInputs, AttackInputs]:
    return _synthetic(384, seed=10), _synthetic(400, seed=11)


@pytest.fixture(scope="module")
def null() -> tuple[AttackInputs, AttackInputs]:
    kw = {"posterior_signal": False, "sensitivity_signal": False}
    return _synthetic(384, seed=12, **kw), _synthetic(600, seed=13, **kw)


@pytest.mark.parametrize("cls", ATTACKS, ids=lambda c: c.name)
def test_attack_separates_members(cls, separable) -> None:
    shadow, target = separable
    attack = cls(**_fast(cls)).fit(shadow)
    assert attack.threshold == 0.5
    scores = attack.score(target).scores
    assert scores.shape == (target.num_samples,) and scores.dtype == np.float64
    assert ((scores >= 0) & (scores <= 1)).all()
    assert _auc(attack, target) > 0.9
    decisions = attack.decide(target)
    assert (decisions == target.membership).mean() > 0.8


@pytest.mark.parametrize("cls", ATTACKS, ids=lambda c: c.name)
def test_attack_is_chance_without_signal(cls, null) -> None:
    shadow, target = null
    attack = cls(**_fast(cls)).fit(shadow)
    assert abs(_auc(attack, target) - 0.5) < 0.1


def test_attack_names() -> None:
    assert [c.name for c in ATTACKS] == ["nn", "top3_nn", "nncls", "samia"]


# --- SAMIA ablations and errors ----------------------------------------------------------


@pytest.fixture(scope="module")
def sensitivity_only() -> tuple[AttackInputs, AttackInputs]:
    kw = {"posterior_signal": False}
    return _synthetic(320, seed=20, **kw), _synthetic(400, seed=21, **kw)


def test_samia_reads_sensitivity_and_ablation_drops_it(sensitivity_only) -> None:
    shadow, target = sensitivity_only
    assert _auc(SAMIA(**FAST).fit(shadow), target) > 0.9
    assert _auc(SAMIA(mlp=True, **FAST).fit(shadow), target) > 0.9
    blind = SAMIA(use_sensitivity=False, **FAST).fit(shadow)
    assert abs(_auc(blind, target) - 0.5) < 0.1


def test_samia_ablation_networks() -> None:
    assert isinstance(SAMIA().build_network(3 * K, K), SAMIANet)
    assert SAMIA(use_sensitivity=False).build_network(2 * K, K).token_features == 2
    assert isinstance(SAMIA(mlp=True).build_network(3 * K, K), AttackMLP)
    with pytest.raises(ValueError, match="expected K\\*T"):
        SAMIA().build_network(2 * K, K)


def test_samia_without_sensitivity_is_a_clear_error() -> None:
    data = _synthetic(20, seed=30)
    bare = AttackInputs(posteriors=data.posteriors, labels=data.labels, membership=data.membership)
    with pytest.raises(ValueError, match="sensitivity=None.*miakit.train.sensitivity"):
        SAMIA(**FAST).fit(bare)
    # The ablation without sensitivity accepts it.
    fitted = SAMIA(use_sensitivity=False, epochs=1, device="cpu").fit(bare)
    assert fitted.score(bare).scores.shape == (20,)
    with pytest.raises(ValueError, match="sensitivity=None"):
        SAMIA(epochs=1, device="cpu").fit(data).score(bare)


def test_unfitted_and_mismatched_targets_are_errors() -> None:
    data = _synthetic(20, seed=31)
    with pytest.raises(ValueError, match="not fitted"):
        NN().score(data)
    with pytest.raises(ValueError, match="membership"):
        NN(epochs=1, device="cpu").fit(AttackInputs(posteriors=data.posteriors, labels=data.labels))
    fitted = NN(epochs=1, device="cpu").fit(data)
    other = _synthetic(20, seed=32, num_classes=5)
    with pytest.raises(ValueError, match="K=10 classes but the target has K=5"):
        fitted.score(other)


# --- the protocol: settings, persisted state ----------------------------------------------


def test_from_settings_reads_the_settings_and_options_override() -> None:
    settings = AttackSettings(epochs=3, lr=0.2, batch_size=16, seed=4, device="cpu")
    attack = SAMIA.from_settings(settings, use_sensitivity=False, seed=9)
    assert (attack.epochs, attack.lr, attack.batch_size, attack.seed) == (3, 0.2, 16, 9)
    assert attack.use_sensitivity is False and attack.device == "cpu"
    assert SAMIA.family == "neural" and SAMIA.persist and SAMIA.uses == {"shadows"}


@pytest.mark.parametrize("cls", [NNCls, SAMIA], ids=lambda c: c.name)
def test_state_round_trip_gives_identical_scores(cls) -> None:
    shadow, target = _synthetic(96, seed=40), _synthetic(50, seed=41)
    settings = AttackSettings(epochs=2, lr=0.05, seed=3, device="cpu")
    fitted = cls.from_settings(settings).fit(shadow)
    tensors, meta = fitted.state()
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())
    assert meta == {
        "num_features": 2 * K if cls is NNCls else 3 * K,
        "num_classes": K,
        "threshold": 0.5,
    }
    loaded = cls.from_state(tensors, meta, settings)
    np.testing.assert_array_equal(loaded.score(target).scores, fitted.score(target).scores)
    # The stored state is the trained network, not a fresh one.
    fresh = cls.from_settings(settings).build_network(meta["num_features"], K)
    assert any(not torch.equal(v, fresh.state_dict()[k]) for k, v in tensors.items())
    with pytest.raises(ValueError, match="not fitted"):
        cls.from_settings(settings).state()
