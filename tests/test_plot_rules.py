"""The figure rules of issue 13, item 7, each checked on the helpers that must follow it.

One style per attack in every figure; log-log ROC axes from one non-member, with bands;
chance lines on TPR panels; the dataset and architecture named; no internal ids; a
column's or the page's width only; heat maps centred on chance; epsilon on every DP point;
seeds averaged into intervals.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from miakit import plots
from miakit.attacks import ATTACKS
from miakit.data import DATASETS
from miakit.metrics import roc_curve


@pytest.fixture(autouse=True)
def _clean_matplotlib():
    with mpl.rc_context():
        yield
    plt.close("all")


def _rgb(color) -> tuple[float, ...]:
    return tuple(round(c, 4) for c in mpl.colors.to_rgb(color))


def _curves(names, n: int = 400) -> dict:
    rng = np.random.default_rng(1)
    membership = np.r_[np.ones(n), np.zeros(n)]
    out = {}
    for i, name in enumerate(names):
        fpr, tpr, _ = roc_curve(membership, rng.normal(size=2 * n) + 0.2 * (i + 1) * membership)
        out[name] = (fpr, tpr)
    return out


def _attack_table(attacks=("conf", "samia", "lira"), **extra) -> pd.DataFrame:
    rows = []
    for k, attack in enumerate(attacks):
        for victim_pruner in ("none", "l1_unstructured"):
            for sparsity in (0.5, 0.7):
                rows.append(
                    {"attack": attack, "victim_pruner": victim_pruner}
                    | {"victim_sparsity": sparsity, "auc": 0.55 + 0.05 * k + 0.1 * sparsity}
                    | {"tpr@1%fpr": 0.02 + 0.01 * k, "tpr@0.1%fpr": 0.003}
                    | extra
                )
    return pd.DataFrame(rows)


def _finetune_table(attacks=("conf", "samia")) -> pd.DataFrame:
    rows = []
    for attack in attacks:
        for pruner, sparsity in (("none", 0.0), ("finetuned", 0.0), ("l1_unstructured", 0.7)):
            for epochs in (0, 10, 30):
                value = 0.6 + (0.0 if pruner == "none" else 0.002 * epochs)
                rows.append(
                    {"attack": attack, "victim_pruner": pruner, "victim_sparsity": sparsity}
                    | {"victim_defense": "none", "finetune_epochs": epochs, "auc": value}
                    | {"tpr_at_1pct_fpr": value / 10, "dataset": "mnist1d", "arch": "mlp"}
                )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# 1. one colour and marker per attack, in every figure
# --------------------------------------------------------------------------------------------------


def test_attack_styles_are_fixed_by_the_registry_and_distinct() -> None:
    styles = {name: plots.attack_style(name) for name in ATTACKS}
    assert len({(s.color, s.marker) for s in styles.values()}) == len(ATTACKS)
    assert len({(repr(s.linestyle), s.marker) for s in styles.values()}) == len(ATTACKS)
    # Two attacks share a colour only with different line styles.
    for a in styles.values():
        for b in styles.values():
            if a is not b and a.color == b.color:
                assert a.linestyle != b.linestyle
    assert plots.attack_style("not_an_attack") is None
    # A column of attacks: registered ones keep their style, the others never repeat one.
    mixed = plots.series_styles("attack", ["samia", "my_variant", "conf"])
    assert mixed[0] == styles["samia"] and mixed[2] == styles["conf"]
    assert (mixed[1].color, mixed[1].marker) not in {(s.color, s.marker) for s in styles.values()}
    # Other columns keep the order styles.
    assert plots.series_styles("victim", ["a", "b"]) == [plots.level_style(0), plots.level_style(1)]


def _roc_style(fig, name):
    (line,) = [ln for ln in fig.axes[0].lines if ln.get_gid() == f"roc {name}"]
    return _rgb(line.get_color()), line.get_marker()


def test_one_attack_looks_the_same_in_every_helper() -> None:
    table = _attack_table()
    expected = {
        a: (_rgb(plots.attack_style(a).color), plots.attack_style(a).marker)
        for a in table.attack.unique()
    }
    # ROC: the same style whatever other curves share the figure.
    for names in (["conf", "samia", "lira"], ["samia"], ["lira", "conf"]):
        fig = plots.roc_loglog(_curves(names))
        assert {n: _roc_style(fig, n) for n in names} == {n: expected[n] for n in names}
    # Bars with the attack as hue: each container is one attack.
    ax = plots.attack_bars(table, by="victim_pruner", hue="attack").axes[0]
    bars = [c for c in ax.containers if hasattr(c, "patches")]
    colours = [_rgb(c.patches[0].get_edgecolor()) for c in bars]
    assert colours == [expected[a][0] for a in ("conf", "samia", "lira")]
    # Bars with the attack along x and no hue: each bar its attack's colour.
    ax = plots.attack_bars(table, by="attack", hue=None).axes[0]
    (bars,) = [c for c in ax.containers if hasattr(c, "patches")]
    assert [_rgb(p.get_edgecolor()) for p in bars.patches] == [
        expected[a][0] for a in ("conf", "samia", "lira")
    ]
    # Lines with the attack as hue.
    ax = plots.metric_lines(
        table[table.victim_pruner != "none"], x="victim_sparsity", y="auc", hue="attack"
    ).axes[0]
    lines = {c.get_label(): c.lines[0] for c in ax.containers}
    got = {
        a: (
            _rgb(lines[plots.display_name(a)].get_color()),
            lines[plots.display_name(a)].get_marker(),
        )
        for a in expected
    }
    assert got == expected
    # Fine-tune curves: each panel's lines in its attack's colour.
    fig = plots.finetune_lines(_finetune_table(["samia", "conf"]))
    for ax, attack in zip(fig.axes, ["samia", "conf"], strict=True):
        drawn = {
            _rgb(ln.get_color()) for ln in ax.lines if ln.get_marker() not in (None, "None", "")
        }
        assert drawn == {expected[attack][0]}


def test_other_hue_columns_keep_the_order_styles() -> None:
    table = _attack_table()
    ax = plots.attack_bars(table[table.victim_sparsity == 0.5], hue="victim_pruner").axes[0]
    bars = [c for c in ax.containers if hasattr(c, "patches")]
    assert [_rgb(c.patches[0].get_edgecolor()) for c in bars] == [
        _rgb(plots.level_style(i).color) for i in range(2)
    ]


# --------------------------------------------------------------------------------------------------
# 2. log-log ROC axes from one non-member; bands
# --------------------------------------------------------------------------------------------------


def test_roc_axes_start_at_one_nonmember() -> None:
    n = 400
    fig = plots.roc_loglog(_curves(["conf", "samia"], n=n))
    assert fig.axes[0].get_xlim() == pytest.approx((1 / n, 1.0))
    assert fig.axes[0].get_ylim() == pytest.approx((1 / n, 1.0))
    fig = plots.roc_loglog(_curves(["conf"], n=n), n=2500)
    assert fig.axes[0].get_xlim() == pytest.approx((1 / 2500, 1.0))
    (diagonal,) = [ln for ln in fig.axes[0].lines if ln.get_gid() == "chance"]
    assert list(diagonal.get_xdata()) == list(diagonal.get_ydata()) == [1 / 2500, 1.0]
    with pytest.raises(ValueError, match="non-members"):
        plots.roc_loglog(_curves(["conf"]), n=0)


def _bands(n: int = 200, seeds: int = 3) -> pd.DataFrame:
    grid = np.unique(np.r_[np.geomspace(1 / n, 1, 12), 1.0])
    rows = []
    for k, attack in enumerate(("conf", "samia")):
        tpr = np.minimum(1.0, grid ** (0.8 - 0.1 * k))
        width = 0.1 * tpr if seeds > 1 else np.full_like(tpr, np.nan)
        rows.append(
            pd.DataFrame(
                {"attack": attack, "fpr": grid, "tpr": tpr, "tpr_low": tpr - width}
                | {"tpr_high": np.minimum(1.0, tpr + width), "seeds": seeds}
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_roc_draws_the_bands_of_a_roc_bands_table() -> None:
    bands = _bands()
    ax = plots.roc_loglog(bands).axes[0]
    assert ax.get_xlim() == pytest.approx((1 / 200, 1.0))
    drawn = {c.get_gid(): c for c in ax.collections if isinstance(c, PolyCollection)}
    assert set(drawn) == {"band conf", "band samia"}
    for attack in ("conf", "samia"):
        rows = bands[bands.attack == attack]
        ys = drawn[f"band {attack}"].get_paths()[0].vertices[:, 1]
        floor = 1 / 200
        assert ys.min() == pytest.approx(max(floor, rows.tpr_low.min()))
        assert ys.max() == pytest.approx(rows.tpr_high.max())
        (line,) = [ln for ln in ax.lines if ln.get_gid() == f"roc {attack}"]
        np.testing.assert_allclose(line.get_ydata(), np.clip(rows.tpr, floor, 1))
    # One seed: no interval, no band.
    ax = plots.roc_loglog(_bands(seeds=1)).axes[0]
    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
    with pytest.raises(ValueError, match="one victim"):
        plots.roc_loglog(pd.concat([bands, bands]))


# --------------------------------------------------------------------------------------------------
# 3. chance lines on TPR panels
# --------------------------------------------------------------------------------------------------


def test_chance_levels() -> None:
    assert plots.chance_value("auc") == plots.chance_value("balanced_accuracy") == 0.5
    assert plots.chance_value("tpr@1%fpr") == pytest.approx(0.01)
    assert plots.chance_value("tpr@0.1%fpr") == pytest.approx(0.001)
    assert plots.chance_value("tpr_at_1pct_fpr") == pytest.approx(0.01)
    assert plots.chance_value("tpr_at_0_1pct_fpr") == pytest.approx(0.001)
    assert plots.chance_value("auc_low") == 0.5
    assert plots.chance_value("test_acc") is None


@pytest.mark.parametrize("metric", ["tpr@1%fpr", "tpr@0.1%fpr"])
def test_tpr_panels_draw_their_chance_line(metric: str) -> None:
    level = plots.chance_value(metric)
    table = _attack_table()
    for fig in (
        plots.attack_bars(table, metric=metric, hue="victim_pruner"),
        plots.metric_lines(table, x="victim_sparsity", y=metric, hue="attack"),
        plots.metric_lines(
            table, x="victim_sparsity", y=metric, hue="victim_pruner", style="attack"
        ),
    ):
        ax = fig.axes[0]
        (chance,) = [ln for ln in ax.lines if ln.get_gid() == "chance"]
        assert list(chance.get_ydata()) == [level, level]
        assert f"chance (TPR = {100 * level:g}% FPR)" in [
            t.get_text() for t in ax.get_legend().get_texts()
        ]
    fig = plots.finetune_lines(_finetune_table(), metric="tpr_at_1pct_fpr")
    for ax in fig.axes:
        (chance,) = [ln for ln in ax.lines if ln.get_gid() == "chance"]
        assert list(chance.get_ydata()) == [0.01, 0.01]


# --------------------------------------------------------------------------------------------------
# 4. the dataset and architecture named
# --------------------------------------------------------------------------------------------------


def test_every_architecture_has_a_display_name() -> None:
    from miakit.models import ARCHS

    assert set(plots.ARCH_NAMES) == set(ARCHS)


def test_figures_comparing_methods_name_dataset_and_arch() -> None:
    expected = f"{DATASETS['cifar10'].title}, {plots.ARCH_NAMES['densenet121']}"
    table = _attack_table(dataset="cifar10", arch="densenet121")
    assert plots.setting_text(table) == expected
    defended = pd.DataFrame(
        {"victim_defense": ["none", "ppb"], "victim_test_acc": [0.7, 0.6], "auc": [0.8, 0.6]}
        | {"dataset": "cifar10", "arch": "densenet121"}
    )
    figures = [
        plots.attack_bars(table, hue="victim_pruner"),
        plots.metric_lines(table, x="victim_sparsity", y="auc", hue="attack"),
        plots.heatmap(table, index="victim_pruner", columns="attack", values="auc"),
        plots.heatmap(
            table, index="victim_pruner", columns="victim_sparsity", values="auc", facet="attack"
        ),
        plots.privacy_utility(defended),
    ]
    assert [fig.get_suptitle() for fig in figures] == [expected] * len(figures)
    assert plots.attack_bars(table.drop(columns=["dataset", "arch"]), hue=None).get_suptitle() == ""
    # Two panels of one setting name it once; of two settings, both.
    fig, axes = plt.subplots(1, 2)
    plots.attack_bars(table, hue="victim_pruner", ax=axes[0])
    plots.attack_bars(table, hue="victim_pruner", ax=axes[1])
    assert fig.get_suptitle() == expected
    plots.attack_bars(table.assign(dataset="mnist1d", arch="mlp"), hue=None, ax=axes[1])
    assert fig.get_suptitle() == f"{expected}; {DATASETS['mnist1d'].title}, MLP"


# --------------------------------------------------------------------------------------------------
# 5. no internal ids
# --------------------------------------------------------------------------------------------------


def _every_helper() -> dict:
    table = _attack_table(dataset="cifar10", arch="small_cnn")
    table["auc_change"] = table["auc"] - 0.5
    accuracy = pd.DataFrame(
        {"model": ["victim", "victim"], "split": ["train_acc", "test_acc"], "accuracy": [0.9, 0.7]}
    )
    defended = pd.DataFrame(
        {"victim_defense": ["none", "ppb", "dpsgd"], "victim_test_acc": [0.7, 0.6, 0.5]}
        | {"auc": [0.8, 0.6, 0.55], "victim_epsilon": [np.nan, np.nan, 4.0]}
        | {"victim_delta": [np.nan, np.nan, 1e-5], "parameter": ["none", "λ=1", "σ=1"]}
    )
    gaps = pd.DataFrame({"class": [0, 1], "original": [0.1, 0.2], "pruned": [0.3, 0.1]})
    member = np.array([1, 1, 0, 0])
    return {
        "roc_loglog": plots.roc_loglog(_curves(["l1_unstructured", "top3_nn", "lira_online"])),
        "roc_loglog bands": plots.roc_loglog(_bands()),
        "attack_bars": plots.attack_bars(table, metric="tpr@1%fpr", hue="victim_pruner"),
        "attack_bars by": plots.attack_bars(
            table, metric="auc_change", by="victim_pruner", hue="attack"
        ),
        "attack_bars split": plots.attack_bars(
            accuracy, metric="accuracy", by="model", hue="split"
        ),
        "metric_lines": plots.metric_lines(
            table, x="victim_sparsity", y="tpr@0.1%fpr", hue="victim_pruner", style="attack"
        ),
        "heatmap": plots.heatmap(
            table, index="victim_pruner", columns="attack", values="tpr@1%fpr"
        ),
        "heatmap facet": plots.heatmap(
            table, index="victim_pruner", columns="victim_sparsity", values="auc", facet="attack"
        ),
        "privacy_utility": plots.privacy_utility(defended, label="parameter"),
        "finetune_lines": plots.finetune_lines(_finetune_table(["top1_conf", "max_conf"])),
        "class_gap_bars": plots.class_gap_bars(gaps),
        "divergence_histograms": plots.divergence_histograms(
            [0.9, 0.8, 0.3, 0.2], [0.95, 0.9, 0.4, 0.2], member, member
        ),
    }


def test_no_figure_shows_an_internal_id() -> None:
    figures = _every_helper()
    shown = {name: plots.internal_ids(fig) for name, fig in figures.items()}
    assert shown == dict.fromkeys(figures, [])
    # Every figure drew texts (the check read something), and the check can fail.
    assert all(len(plots.figure_texts(fig)) >= 3 for fig in figures.values())
    fig, ax = plt.subplots()
    ax.set_title("l1_unstructured")
    ax.set_xlabel("tpr@1%fpr")
    ax.legend(handles=[mpl.lines.Line2D([], [], label="samia")])
    assert sorted(plots.internal_ids(fig)) == ["l1_unstructured", "samia", "tpr@1%fpr"]


def test_readable_turns_ids_into_words() -> None:
    assert plots.readable("auc_change") == "attack AUC change"
    assert plots.readable("victim_pruner") == "pruning method"
    assert plots.readable("none", "victim_pruner") == "original"
    assert plots.readable("tpr_at_1pct_fpr") == plots.display_name("tpr@1%fpr")


# --------------------------------------------------------------------------------------------------
# 6. a column's or the page's width only
# --------------------------------------------------------------------------------------------------


def test_widths_are_a_column_or_the_page() -> None:
    assert plots.COLUMN_WIDTH == 3.3 and plots.FULL_WIDTH == 7.0
    figures = _every_helper()
    widths = {name: float(fig.get_size_inches()[0]) for name, fig in figures.items()}
    assert all(w in plots.WIDTHS for w in widths.values()), widths
    assert {n: plots.figure_problems(f) for n, f in figures.items()} == dict.fromkeys(figures, [])
    table = _attack_table()
    for asked, given in ((4.6, plots.COLUMN_WIDTH), (6.0, plots.FULL_WIDTH)):
        fig = plots.attack_bars(table, hue="victim_pruner", figsize=(asked, 2.4))
        assert fig.get_size_inches()[0] == given
    assert plots.figure_width(5.1) == plots.COLUMN_WIDTH and plots.figure_width(5.2) == 7.0


def test_save_figure_writes_only_allowed_widths(tmp_path: Path) -> None:
    from PIL import Image

    fig = plt.figure(figsize=(5.0, 2.0), layout="constrained")
    fig.add_subplot().plot([0, 1], [0, 1])
    assert plots.figure_problems(fig)  # 5 in: neither width
    png, _ = plots.save_figure(fig, "odd", profile="quick", root=tmp_path)
    with Image.open(png) as image:
        assert image.size == (round(plots.COLUMN_WIDTH * plots.PNG_DPI), 2 * plots.PNG_DPI)
    png, _ = plots.save_figure(
        plots.attack_bars(_attack_table(), hue=None, figsize=(7.0, 2.0)),
        "wide",
        profile="quick",
        root=tmp_path,
    )
    with Image.open(png) as image:
        assert image.size[0] == round(plots.FULL_WIDTH * plots.PNG_DPI)


# --------------------------------------------------------------------------------------------------
# 7. heat maps centred on chance
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["auc", "tpr@1%fpr"])
def test_heatmaps_are_centred_on_chance(metric: str) -> None:
    table = _attack_table()
    fig = plots.heatmap(table, index="victim_pruner", columns="attack", values=metric)
    mesh = fig.axes[0].collections[0]
    centre = plots.chance_value(metric)
    reach = (table[metric] - centre).abs().max()
    assert (mesh.norm.vmin, mesh.norm.vmax) == pytest.approx((centre - reach, centre + reach))
    # Diverging: chance is white-ish, the two ends are far from white and from each other.
    cmap = mesh.get_cmap()
    assert min(cmap(0.5)[:3]) > 0.9
    low, high = cmap(0.0)[:3], cmap(1.0)[:3]
    assert max(low) < 0.5 and max(high) < 0.5  # both ends dark
    assert low[2] > low[0] and high[0] > high[2]  # blue below chance, red above
    label = fig.axes[1].get_ylabel()
    assert plots.display_name(metric) in label and f"chance, {centre:g}" in label
    # Without a chance level: sequential cividis, the plain name.
    plain = plots.heatmap(table, index="victim_pruner", columns="attack", values="victim_sparsity")
    assert plain.axes[0].collections[0].get_cmap().name.startswith("cividis")
    assert plain.axes[1].get_ylabel() == plots.display_name("victim_sparsity")


# --------------------------------------------------------------------------------------------------
# 8. epsilon on every DP point; 9. seeds averaged into intervals
# --------------------------------------------------------------------------------------------------


def test_every_dp_point_shows_its_epsilon_at_its_delta() -> None:
    frame = pd.DataFrame(
        {
            "victim_defense": ["none", "dpsgd", "dpsgd", "dpsgd"],
            "victim_test_acc": [0.7, 0.6, 0.55, 0.5],
        }
        | {"auc": [0.8, 0.62, 0.58, 0.55], "victim_epsilon": [np.nan, 12.0, 4.5, 1.25]}
        | {"victim_delta": [np.nan, 1e-5, 1e-5, 1e-5]}
    )
    ax = plots.privacy_utility(frame).axes[0]
    texts = {t.xy: t.get_text() for t in ax.texts}
    dp = frame[frame.victim_defense == "dpsgd"]
    for x, y, e in zip(dp.victim_test_acc, dp.auc, dp.victim_epsilon, strict=True):
        assert texts[(x, y)] == f"ε={e:.3g}"
    assert len(texts) == len(dp)  # the undefended point has no epsilon
    assert "DP-SGD (ε at δ=1e-05)" in [t.get_text() for t in ax.get_legend().get_texts()]
    # Two deltas: each point names its own.
    two = frame.assign(victim_delta=[np.nan, 1e-5, 1e-6, 1e-5])
    ax = plots.privacy_utility(two).axes[0]
    assert sorted(t.get_text() for t in ax.texts) == [
        "ε=1.25, δ=1e-05",
        "ε=12, δ=1e-05",
        "ε=4.5, δ=1e-06",
    ]


def test_privacy_utility_averages_seeds_into_one_point_with_intervals() -> None:
    from miakit.metrics.intervals import seed_interval

    one = pd.DataFrame(
        {"victim_defense": ["none", "dpsgd", "dpsgd"], "parameter": ["none", "σ=1", "σ=2"]}
        | {"victim_test_acc": [0.7, 0.6, 0.5], "auc": [0.8, 0.62, 0.55]}
        | {"victim_epsilon": [np.nan, 8.0, 2.0], "victim_delta": [np.nan, 1e-5, 1e-5]}
    )
    seeds = pd.concat(
        [
            one.assign(seed=s, auc=one.auc + 0.01 * s, victim_epsilon=one.victim_epsilon + s)
            for s in range(3)
        ],
        ignore_index=True,
    )
    ax = plots.privacy_utility(seeds, label="parameter").axes[0]
    lines = {ln.get_label(): ln for ln in ax.lines if not ln.get_label().startswith("_")}
    dp = lines["DP-SGD (ε at δ=1e-05)"]
    expected = seeds[seeds.victim_defense == "dpsgd"].groupby("parameter", sort=False)["auc"].mean()
    np.testing.assert_allclose(dp.get_ydata(), expected.to_numpy())
    # Error bars: the seed interval of each setting.
    iv = seed_interval(seeds.loc[seeds.parameter == "σ=1", "auc"].to_numpy())
    segments = [seg for c in ax.collections for seg in c.get_segments()]
    assert any(
        np.allclose(seg[:, 1], [iv.low, iv.high]) or np.allclose(seg[:, 1], [iv.high, iv.low])
        for seg in segments
    )
    # The epsilon shown is the seeds' mean.
    assert "σ=1, ε=9" in [t.get_text() for t in ax.texts]
