"""Tests of miakit.plots: every helper on small synthetic inputs, deterministic files, errors.

Greyscale readability is checked structurally: series that differ in colour must also differ
in hatch, line style, marker or fill.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from miakit import plots
from miakit.metrics import evaluate_attack, results_frame, roc_curve

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_matplotlib():
    """Each test starts and ends with no open figures and the rc parameters it found."""
    with mpl.rc_context():
        yield
    plt.close("all")


def _check_labelled(ax) -> None:
    assert ax.get_xlabel().strip(), "x axis has no label"
    assert ax.get_ylabel().strip(), "y axis has no label"


def _legend_texts(legend) -> list[str]:
    assert legend is not None, "expected a legend"
    return [t.get_text() for t in legend.get_texts()]


def _dashes(patch) -> tuple:
    """A comparable form of a patch's line style (offset dropped; () = solid)."""
    _, pattern = patch.get_linestyle()
    return tuple(pattern) if pattern else ()


# --------------------------------------------------------------------------------------------------
# style
# --------------------------------------------------------------------------------------------------


def test_use_style_applies_the_house_rc_and_style_context_restores() -> None:
    before = mpl.rcParams["font.size"]
    with plots.style_context():
        assert mpl.rcParams["font.size"] == 8.0
        assert mpl.rcParams["svg.hashsalt"] == "miakit"
    assert mpl.rcParams["font.size"] == before
    plots.use_style()
    assert mpl.rcParams["font.size"] == 8.0
    assert mpl.rcParams["pdf.fonttype"] == 42
    assert mpl.rcParams["axes.prop_cycle"].by_key()["color"] == list(plots.PALETTE)
    assert tuple(mpl.rcParams["figure.figsize"]) == (plots.COLUMN_WIDTH, 2.4)


def test_member_and_original_styles_differ_without_colour() -> None:
    m, n = plots.MEMBER_STYLE, plots.NONMEMBER_STYLE
    assert m.hatch != n.hatch and m.linestyle != n.linestyle and m.filled != n.filled
    o, p = plots.ORIGINAL_STYLE, plots.PRUNED_STYLE
    assert o.hatch != p.hatch and o.linestyle != p.linestyle and o.marker != p.marker
    # A hatched face must be lighter than its hatch, or the hatch would vanish.
    face = p.bar_kwargs()["facecolor"]
    assert np.mean(face) > np.mean(mpl.colors.to_rgb(p.color))


def test_level_styles_never_repeat_line_style_and_marker_together() -> None:
    pairs = [(repr(s.linestyle), s.marker) for s in map(plots.level_style, range(63))]
    assert len(set(pairs)) == 63
    hatches = [plots.level_style(i).hatch for i in range(len(plots.HATCHES))]
    assert len(set(hatches)) == len(plots.HATCHES)


def test_display_name() -> None:
    assert plots.display_name("samia") == "SAMIA"
    assert plots.display_name("top3_nn") == "Top3-NN"
    assert plots.display_name("auc") == "attack AUC"
    assert plots.display_name("my_attack") == "my_attack"
    assert plots.display_name(0.70) == "0.7"
    assert plots.display_name(np.int64(3)) == "3"
    assert plots.display_name(np.bool_(True)) == "True"
    # Variant labels, which notebooks still pass, show their pruner's title.
    assert plots.display_name("l1_unstructured@0.7") == "L1 unstructured@0.7"
    assert plots.display_name("slimming@0.5+ppb(lam=4.0)") == "network slimming@0.5+ppb(lam=4.0)"
    assert plots.display_name("original@x") == "original@x"


# The texts every figure shows today; a registry title that differs would change the figures.
REGISTRY_TITLES = {
    "gap": "Gap",
    "conf": "Conf",
    "xent": "Xent",
    "mentr": "Mentr",
    "top1_conf": "Top1-conf",
    "nn": "NN",
    "top3_nn": "Top3-NN",
    "nncls": "NNCls",
    "samia": "SAMIA",
    "max_conf": "Max-conf",
    "lira": "LiRA",
    "lira_online": "LiRA (online)",
    "rmia": "RMIA",
    "rmia_online": "RMIA (online)",
    "l1_unstructured": "L1 unstructured",
    "l1_structured": "L1 structured",
    "l2_structured": "L2 structured",
    "slimming": "network slimming",
    "none": "no defense",
    "ppb": "PPB",
    "advreg": "AdvReg",
    "dpsgd": "DP-SGD",
}


def test_display_name_of_registry_keys() -> None:
    from miakit.attacks import ATTACKS
    from miakit.data import DATASETS
    from miakit.defenses import DEFENSES
    from miakit.prune import PRUNERS

    assert set(REGISTRY_TITLES) == {*ATTACKS, *PRUNERS, *DEFENSES}
    # The texts come from the registries' titles, not from a copy in DISPLAY_NAMES
    # (column titles only), so a changed title changes display_name and fails here.
    registry_keys = {*ATTACKS, *PRUNERS, *DEFENSES, *DATASETS}
    assert not registry_keys & set(plots.DISPLAY_NAMES), "DISPLAY_NAMES repeats registry keys"
    titles = {k: r[k].title for r in (ATTACKS, PRUNERS, DEFENSES) for k in r}
    assert titles == REGISTRY_TITLES
    assert {k: plots.display_name(k) for k in REGISTRY_TITLES} == REGISTRY_TITLES


def test_display_name_reads_registry_titles(monkeypatch: pytest.MonkeyPatch) -> None:
    from miakit.attacks import ATTACKS
    from miakit.data import DATASETS

    monkeypatch.setattr(ATTACKS["samia"], "title", "SAMIA (test)", raising=False)
    assert plots.display_name("samia") == "SAMIA (test)"
    assert DATASETS["cifar10"].title == "CIFAR-10"
    assert plots.display_name("cifar10") == "CIFAR-10"
    # An entry without a title shows its key as it is (DISPLAY_NAMES has no registry keys).
    monkeypatch.setattr(ATTACKS["samia"], "title", "", raising=False)
    assert plots.display_name("samia") == "samia"
    assert plots.display_name("l1_unstructured@0.7") == "L1 unstructured@0.7"
    # ... unless a notebook adds a DISPLAY_NAMES entry for it.
    monkeypatch.setitem(plots.DISPLAY_NAMES, "samia", "SAMIA (notebook)")
    assert plots.display_name("samia") == "SAMIA (notebook)"


def _backend_in_subprocess(code: str, **env_set: str) -> str:
    """The matplotlib backend a fresh interpreter without a display reports after ``code``."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("MPLBACKEND", None)
    env.update(env_set, PYTHONPATH=str(ROOT))
    code += "; import matplotlib; print(matplotlib.get_backend())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip().lower()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="headless fallback is Linux's")
def test_backend_is_agg_without_a_display() -> None:
    assert _backend_in_subprocess("import miakit.plots") == "agg"


def test_backend_chosen_by_the_user_stays_without_a_display() -> None:
    code = "from miakit import plots; plots.use_style()"
    assert _backend_in_subprocess(code, MPLBACKEND="svg") == "svg"


def test_default_figures_are_column_wide() -> None:
    frame = _results()
    gaps = pd.DataFrame({"class": [0, 1], "original": [0.1, 0.2], "pruned": [0.3, 0.1]})
    figures = {
        "divergence_histograms": plots.divergence_histograms(
            CONF_ORIG, CONF_PRUNED, MEMBERS, MEMBERS
        ),
        "class_gap_bars": plots.class_gap_bars(gaps),
        "roc_loglog": plots.roc_loglog(_curves(2)[0]),
        "roc_loglog (many curves)": plots.roc_loglog(_curves(8)[0]),
        "attack_bars": plots.attack_bars(frame),
        "metric_lines": plots.metric_lines(_sweep(), x="sparsity", y="auc", hue="pruner"),
        "privacy_utility": plots.privacy_utility(
            pd.DataFrame(
                {
                    "victim_defense": ["none", "ppb"],
                    "victim_test_acc": [0.7, 0.6],
                    "auc": [0.8, 0.6],
                }
            )
        ),
        "heatmap": plots.heatmap(frame, index="victim", columns="attack", values="auc"),
    }
    widths = {name: fig.get_size_inches()[0] for name, fig in figures.items()}
    assert widths == dict.fromkeys(figures, plots.COLUMN_WIDTH)
    plots.use_style()  # ad-hoc figures match the helpers
    assert plt.figure().get_size_inches()[0] == plots.COLUMN_WIDTH
    fig = plots.attack_bars(frame, figsize=(plots.FULL_WIDTH, 2.0))
    assert fig.get_size_inches()[0] == plots.FULL_WIDTH


def test_saved_png_reports_png_dpi(tmp_path: Path) -> None:
    from PIL import Image

    fig = plots.roc_loglog(_curves(2)[0])
    width_in = fig.get_size_inches()[0]
    png, pdf = plots.save_figure(fig, "roc", profile="quick", root=tmp_path)
    with Image.open(png) as image:
        dpi = image.info["dpi"]  # PNG stores pixels per metre: 150 dpi reads back as 150.01
        pixels = image.size[0]
    assert dpi == pytest.approx((plots.PNG_DPI, plots.PNG_DPI), abs=0.1)
    # bbox_inches="tight" trims the margin, so the width is at most the figure's at PNG_DPI.
    assert 0.8 * width_in * plots.PNG_DPI <= pixels <= width_in * plots.PNG_DPI + 1
    # Written through a temporary file, then given the mode of an ordinary file.
    assert {p.stat().st_mode & 0o777 for p in (png, pdf)} == {0o644}


# --------------------------------------------------------------------------------------------------
# prediction divergence
# --------------------------------------------------------------------------------------------------

# Members' confidences have mean 0.8 then 0.95; non-members' 0.6 then 0.7.
CONF_ORIG = np.array([0.7, 0.9, 0.8, 0.8, 0.5, 0.7, 0.6, 0.6])
CONF_PRUNED = np.array([0.95, 1.0, 0.9, 0.95, 0.6, 0.8, 0.7, 0.7])
MEMBERS = np.array([1, 1, 1, 1, 0, 0, 0, 0])


def test_divergence_histograms_panels_means_and_greyscale_cues() -> None:
    fig = plots.divergence_histograms(CONF_ORIG, CONF_PRUNED, MEMBERS, MEMBERS)
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 2
    assert [ax.get_title() for ax in axes] == ["original", "pruned"]
    assert fig.get_supxlabel() == "ground-truth-class confidence"
    assert axes[0].get_ylabel() == "density"
    assert _legend_texts(fig.legends[0]) == ["member", "non-member"]
    for ax, (mean_m, mean_n) in zip(axes, [(0.8, 0.6), (0.95, 0.7)], strict=True):
        by_label = {p.get_label(): p for p in ax.patches}
        member, nonmember = by_label["member"], by_label["non-member"]
        # Distinguishable without colour: hatch, line style and fill all differ.
        assert member.get_hatch() and not nonmember.get_hatch()
        assert _dashes(member) != _dashes(nonmember)
        assert member.get_fill() and not nonmember.get_fill()
        lines = {line.get_gid(): line for line in ax.lines}
        assert lines["mean member"].get_xdata()[0] == pytest.approx(mean_m)
        assert lines["mean non-member"].get_xdata()[0] == pytest.approx(mean_n)
        text = ax.texts[0].get_text()
        assert f"member {mean_m:.2f}" in text and f"non-member {mean_n:.2f}" in text
    assert axes[1].get_yscale() == "linear"


def test_divergence_histograms_log_and_errors() -> None:
    fig = plots.divergence_histograms(
        CONF_ORIG, CONF_PRUNED, MEMBERS, MEMBERS, log=True, xlabel="sensitivity"
    )
    assert fig.axes[0].get_yscale() == "log"
    assert fig.axes[0].get_ylabel() == "density (log)"
    assert fig.get_supxlabel() == "sensitivity"
    with pytest.raises(ValueError, match="same length"):
        plots.divergence_histograms(CONF_ORIG, CONF_PRUNED[:-1], MEMBERS, MEMBERS)
    with pytest.raises(ValueError, match="both members"):
        plots.divergence_histograms(CONF_ORIG, CONF_PRUNED, MEMBERS, np.ones(8))
    with pytest.raises(ValueError, match="only 0"):
        plots.divergence_histograms(CONF_ORIG, CONF_PRUNED, MEMBERS * 2, MEMBERS)
    with pytest.raises(ValueError, match="finite"):
        plots.divergence_histograms(CONF_ORIG * np.nan, CONF_PRUNED, MEMBERS, MEMBERS)


def test_class_gap_bars_original_vs_pruned() -> None:
    gaps = pd.DataFrame(
        {"class": [0, 1, 2], "original": [0.1, 0.2, -0.05], "pruned": [0.3, 0.1, 0]}
    )
    fig = plots.class_gap_bars(gaps)
    ax = fig.axes[0]
    _check_labelled(ax)
    assert ax.get_ylabel() == "member - non-member mean"
    assert _legend_texts(ax.get_legend()) == ["original", "pruned"]
    original, pruned = ax.containers
    assert [b.get_height() for b in original] == [0.1, 0.2, -0.05]
    assert [b.get_height() for b in pruned] == [0.3, 0.1, 0.0]
    # Greyscale: the pruned bars are hatched, the original ones are not.
    assert all(not b.get_hatch() for b in original)
    assert all(b.get_hatch() for b in pruned)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    with pytest.raises(KeyError, match="pruned"):
        plots.class_gap_bars(gaps.drop(columns="pruned"))


def test_class_gap_bars_thins_many_class_labels() -> None:
    k = 100
    gaps = pd.DataFrame({"class": range(k), "original": np.zeros(k), "pruned": np.ones(k)})
    ax = plots.class_gap_bars(gaps).axes[0]
    shown = [t.get_text() for t in ax.get_xticklabels()]
    assert 2 <= len(shown) <= 25 and shown[0] == "0"


# --------------------------------------------------------------------------------------------------
# ROC
# --------------------------------------------------------------------------------------------------


def _curves(k: int, n: int = 500) -> tuple[dict, dict]:
    rng = np.random.default_rng(0)
    membership = np.r_[np.ones(n), np.zeros(n)]
    curves, aucs = {}, {}
    for i in range(k):
        fpr, tpr, _ = roc_curve(membership, rng.normal(size=2 * n) + 0.3 * i * membership)
        curves[f"attack{i}"] = (fpr, tpr)
        aucs[f"attack{i}"] = 0.5 + 0.01 * i
    return curves, aucs


def test_roc_loglog_axes_legend_and_distinct_styles() -> None:
    curves, aucs = _curves(4)
    fig = plots.roc_loglog(curves, aucs=aucs, title="pruned")
    ax = fig.axes[0]
    _check_labelled(ax)
    assert "FPR" in ax.get_xlabel() and "TPR" in ax.get_ylabel()
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    # 500 non-members: the axes start at one non-member, FPR 1/500.
    assert ax.get_xlim() == pytest.approx((1 / 500, 1.0))
    assert ax.get_ylim() == pytest.approx((1 / 500, 1.0))
    assert ax.get_title() == "pruned"
    assert _legend_texts(ax.get_legend()) == [
        f"attack{i} (AUC {0.5 + 0.01 * i:.3f})" for i in range(4)
    ]
    curve_lines = [line for line in ax.lines if line.get_gid() != "chance"]
    assert len(curve_lines) == 4
    cues = {(line.get_linestyle(), line.get_marker()) for line in curve_lines}
    assert len(cues) == 4, "curves must differ in line style and marker, not only colour"
    assert any(line.get_gid() == "chance" for line in ax.lines)
    # Points below the floor are drawn on the axis edge rather than dropped.
    assert min(line.get_xdata().min() for line in curve_lines) == pytest.approx(1 / 500)


def test_roc_loglog_many_curves_floor_and_errors() -> None:
    curves, _ = _curves(8)
    fig = plots.roc_loglog(curves, floor=1e-4)
    assert fig.axes[0].get_xlim() == pytest.approx((1e-4, 1.0))
    assert fig.axes[0].get_legend() is None and len(_legend_texts(fig.legends[0])) == 8
    with pytest.raises(ValueError, match="at least one curve"):
        plots.roc_loglog({})
    with pytest.raises(ValueError, match="same length"):
        plots.roc_loglog({"a": ([0, 1], [0, 0.5, 1])})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plots.roc_loglog({"a": ([0, 2], [0, 1])})
    with pytest.raises(ValueError, match="floor"):
        plots.roc_loglog({"a": ([0, 1], [0, 1])}, floor=0)


# --------------------------------------------------------------------------------------------------
# results tables
# --------------------------------------------------------------------------------------------------


def _results() -> pd.DataFrame:
    """A results_frame of 3 attacks x 2 victims with known AUCs."""
    m = np.array([1, 1, 0, 0])
    scores = {
        "conf": [0.9, 0.2, 0.5, 0.1],  # AUC 0.75
        "mentr": [0.9, 0.8, 0.5, 0.1],  # AUC 1.0
        "samia": [0.1, 0.2, 0.5, 0.9],  # AUC 0.0
    }
    results = []
    for victim in ("original", "l1_unstructured@0.7"):
        for name, s in scores.items():
            results.append(evaluate_attack(name, m, s, [1, 0, 0, 0], tags={"victim": victim}))
    return results_frame(results)


def test_attack_bars_from_results_frame() -> None:
    frame = _results()
    fig = plots.attack_bars(frame)
    ax = fig.axes[0]
    _check_labelled(ax)
    assert ax.get_ylabel() == "attack AUC" and ax.get_xlabel() == "attack"
    legend = ax.get_legend()
    assert _legend_texts(legend) == ["original", "L1 unstructured@0.7", "chance (0.5)"]
    assert legend.get_title().get_text() == "victim"
    bars = [c for c in ax.containers if hasattr(c, "patches")]
    assert len(bars) == 2
    np.testing.assert_allclose([b.get_height() for b in bars[0]], [0.75, 1.0, 0.0])
    # Greyscale: the two victims' bars differ in hatch.
    assert {b.get_hatch() for b in bars[0]} != {b.get_hatch() for b in bars[1]}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Conf", "Mentr", "SAMIA"]
    assert any(list(line.get_ydata()) == [0.5, 0.5] for line in ax.lines)


def test_attack_bars_averages_repeats_and_draws_tpr_chance() -> None:
    frame = pd.DataFrame(
        {
            "attack": ["conf", "conf", "samia", "samia"],
            "victim": ["original"] * 4,
            "seed": [0, 1, 0, 1],
            "tpr@1%fpr": [0.1, 0.3, 0.2, 0.2],
        }
    )
    ax = plots.attack_bars(frame, metric="tpr@1%fpr").axes[0]
    bars = [c for c in ax.containers if hasattr(c, "patches")]
    np.testing.assert_allclose([b.get_height() for b in bars[0]], [0.2, 0.2])
    assert bars[0].errorbar is not None, "repeats should draw error bars"
    assert ax.get_ylabel() == "TPR at 1% FPR"
    # A guess's TPR at 1% FPR is 1%: the chance line is there, not at 0.5.
    (chance,) = [line for line in ax.lines if line.get_label().startswith("chance")]
    assert list(chance.get_ydata()) == [0.01, 0.01]
    ax = plots.attack_bars(frame, metric="tpr@1%fpr", hue=None).axes[0]
    assert len([c for c in ax.containers if hasattr(c, "patches")]) == 1
    with pytest.raises(KeyError, match="'auc'"):
        plots.attack_bars(frame)
    with pytest.raises(ValueError, match="empty"):
        plots.attack_bars(frame.iloc[:0], metric="tpr@1%fpr")


def _sweep() -> pd.DataFrame:
    rows = []
    for p, pruner in enumerate(["l1_unstructured", "slimming", "l2_structured"]):
        for sparsity in (0.9, 0.5, 0.7):  # unsorted on purpose
            for attack in ("samia", "conf"):
                auc = 0.6 + 0.2 * sparsity + 0.01 * p + (0.05 if attack == "samia" else 0)
                rows.append({"pruner": pruner, "sparsity": sparsity, "attack": attack, "auc": auc})
    return pd.DataFrame(rows)


def test_metric_lines_markers_and_styles_per_level() -> None:
    frame = _sweep()
    ax = plots.metric_lines(frame[frame.attack == "samia"], x="sparsity", y="auc", hue="pruner")
    ax = ax.axes[0]
    _check_labelled(ax)
    assert ax.get_xlabel() == "sparsity" and ax.get_ylabel() == "attack AUC"
    assert _legend_texts(ax.get_legend()) == [
        "L1 unstructured",
        "network slimming",
        "L2 structured",
        "chance (0.5)",
    ]
    lines = {c.get_label(): c.lines[0] for c in ax.containers}  # errorbar containers
    assert list(lines["L1 unstructured"].get_xdata()) == [0.5, 0.7, 0.9]
    np.testing.assert_allclose(lines["L1 unstructured"].get_ydata(), [0.75, 0.79, 0.83])
    assert len({(line.get_linestyle(), line.get_marker()) for line in lines.values()}) == 3


def test_metric_lines_with_style_column() -> None:
    fig = plots.metric_lines(
        _sweep(), x="sparsity", y="auc", hue="pruner", style="attack", xlabel="sparsity (%)"
    )
    ax = fig.axes[0]
    assert ax.get_xlabel() == "sparsity (%)"
    texts = _legend_texts(ax.get_legend())
    assert texts[:3] == ["L1 unstructured", "network slimming", "L2 structured"]
    assert texts[3:5] == ["SAMIA", "Conf"]
    lines = {c.get_label(): c.lines[0] for c in ax.containers}
    assert len(lines) == 6
    samia, conf = lines["L1 unstructured, SAMIA"], lines["L1 unstructured, Conf"]
    assert samia.get_linestyle() != conf.get_linestyle()
    assert samia.get_marker() == conf.get_marker()
    with pytest.raises(ValueError, match="numeric"):
        plots.metric_lines(_sweep(), x="pruner", y="auc", hue="attack")


def test_privacy_utility_markers_and_annotations() -> None:
    frame = pd.DataFrame(
        {
            "victim_defense": ["none", "ppb", "ppb", "ppb", "advreg", "advreg"],
            "lam": [np.nan, 1, 4, 16, 1, 8],
            "victim_test_acc": [0.71, 0.70, 0.69, 0.65, 0.66, 0.60],
            "auc": [0.80, 0.74, 0.68, 0.62, 0.73, 0.65],
        }
    )
    ax = plots.privacy_utility(frame, label="lam").axes[0]
    _check_labelled(ax)
    assert ax.get_xlabel() == "test accuracy" and ax.get_ylabel() == "attack AUC"
    assert _legend_texts(ax.get_legend()) == ["no defense", "PPB", "AdvReg", "chance (0.5)"]
    assert [t.get_text() for t in ax.texts] == ["1", "4", "16", "1", "8"]
    lines = {line.get_label(): line for line in ax.lines}
    assert len({lines[k].get_marker() for k in ("no defense", "PPB", "AdvReg")}) == 3
    np.testing.assert_allclose(lines["PPB"].get_xdata(), [0.70, 0.69, 0.65])
    with pytest.raises(KeyError, match="lambda"):
        plots.privacy_utility(frame, label="lambda")


def test_privacy_utility_facet_panels() -> None:
    """facet="adaptive": a non-adaptive and an adaptive panel; the undefended row in both."""
    frame = pd.DataFrame(
        {
            "victim_defense": ["none", "ppb", "ppb", "ppb", "ppb"],
            "adaptive": [True, False, True, False, True],
            "parameter": ["none", "λ=1", "λ=1", "λ=4", "λ=4"],
            "victim_test_acc": [0.71, 0.70, 0.70, 0.65, 0.65],
            "auc": [0.80, 0.74, 0.78, 0.62, 0.70],
        }
    )
    fig = plots.privacy_utility(frame, label="parameter", facet="adaptive")
    assert len(fig.axes) == 2 and fig.get_size_inches()[0] == plots.FULL_WIDTH
    left, right = fig.axes
    assert [ax.get_title(loc="right") for ax in fig.axes] == [
        "non-adaptive attack",
        "adaptive attack",
    ]
    for ax, ppb in ((left, [0.74, 0.62]), (right, [0.78, 0.70])):
        lines = {line.get_label(): line for line in ax.lines}
        np.testing.assert_allclose(lines["no defense"].get_ydata(), [0.80])  # in both panels
        np.testing.assert_allclose(lines["PPB"].get_ydata(), ppb)
        assert [t.get_text() for t in ax.texts] == ["no defense", "λ=1", "λ=4"]
    assert _legend_texts(left.get_legend()) == ["no defense", "PPB", "chance (0.5)"]
    assert right.get_legend() is None  # one legend for the figure
    assert left.get_shared_y_axes().joined(left, right)
    with pytest.raises(ValueError, match="facet"):
        plots.privacy_utility(frame, facet="adaptive", ax=left)
    with pytest.raises(KeyError, match="setting"):
        plots.privacy_utility(frame, facet="setting")


def test_heatmap_facet_panels() -> None:
    """facet="attack": one heat map per attack, in table order, on one colour scale."""
    frame = pd.DataFrame(
        {
            "attack": ["samia"] * 4 + ["conf"] * 4,
            "victim_label": ["original", "original", "l1_unstructured@0.7", "l1_unstructured@0.7"]
            * 2,
            "shadow_label": ["original", "l1_unstructured@0.7"] * 4,
            "auc": [0.70, 0.60, 0.65, 0.72, 0.52, 0.55, 0.58, 0.61],
        }
    )
    fig = plots.heatmap(
        frame, facet="attack", index="victim_label", columns="shadow_label", values="auc"
    )
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["SAMIA", "Conf"]
    assert len(fig.axes) == 4  # two heat maps and their colour bars
    assert fig.get_size_inches()[0] == plots.FULL_WIDTH
    assert [t.get_text() for t in panels[0].texts] == ["0.70", "0.60", "0.65", "0.72"]
    assert [t.get_text() for t in panels[1].texts] == ["0.52", "0.55", "0.58", "0.61"]
    # One scale for the whole table, centred on chance (0.5) and reaching its farthest value.
    reach = (frame["auc"] - 0.5).abs().max()
    for ax in panels:
        mesh = ax.collections[0]
        assert (mesh.norm.vmin, mesh.norm.vmax) == pytest.approx((0.5 - reach, 0.5 + reach))
        assert ax.get_ylabel() == "victim" and ax.get_xlabel() == "shadows"
    rows = [t.get_text() for t in panels[0].get_yticklabels()]
    assert rows == ["original", "L1 unstructured@0.7"]  # the shared rows, on the left only
    assert panels[0].get_shared_y_axes().joined(panels[0], panels[1])
    fig = plots.heatmap(
        frame, facet="attack", index="victim_label", columns="shadow_label", values="auc", vmin=0.1
    )
    assert fig.axes[0].collections[0].norm.vmin == pytest.approx(0.1)  # reached, still centred
    assert fig.axes[0].collections[0].norm.vmax == pytest.approx(0.9)
    fig = plots.heatmap(
        frame,
        facet="attack",
        index="victim_label",
        columns="shadow_label",
        values="auc",
        vmin=0.5,
        center=None,
    )
    assert fig.axes[0].collections[0].norm.vmin == 0.5
    with pytest.raises(ValueError, match="facet"):
        plots.heatmap(
            frame,
            facet="attack",
            index="victim_label",
            columns="shadow_label",
            values="auc",
            ax=fig.axes[0],
        )


def test_structured_columns_read_as_before() -> None:
    """The tables' structured columns show the words of the old label columns."""
    assert plots.display_name("none", "victim_pruner") == "original"
    assert plots.display_name("none", "shadow_pruner") == "original"
    assert plots.display_name("none") == "no defense"  # without the column: the defense
    assert plots.display_name("none", "victim_defense") == "no defense"
    assert plots.display_name(True, "adaptive") == "adaptive attack"
    assert plots.display_name(np.False_, "adaptive") == "non-adaptive attack"
    assert plots.display_name(True) == "True"
    assert plots.display_name("victim_test_acc") == plots.display_name("test_acc")
    assert plots.display_name("victim_sparsity") == plots.display_name("sparsity")
    assert plots.display_name("victim_pruner") == plots.display_name("pruner")
    assert plots.display_name("victim_defense") == plots.display_name("defense")
    assert plots.display_name("victim_label") == "victim"
    assert plots.display_name("shadow_label") == "shadows"
    frame = pd.DataFrame(
        {
            "attack": ["conf", "conf", "samia", "samia"],
            "victim_pruner": ["none", "slimming"] * 2,
            "auc": [0.6, 0.7, 0.65, 0.75],
        }
    )
    ax = plots.attack_bars(frame, hue="victim_pruner").axes[0]
    assert _legend_texts(ax.get_legend()) == ["original", "network slimming", "chance (0.5)"]
    assert ax.get_legend().get_title().get_text() == "pruning method"
    ax = plots.attack_bars(frame, by="victim_pruner", hue="attack").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["original", "network slimming"]


def test_heatmap_cells_order_and_labels() -> None:
    frame = pd.DataFrame(
        {
            "victim": ["slimming", "slimming", "l1_unstructured", "l1_unstructured", "slimming"],
            "shadows": ["slimming", "l1_unstructured", "slimming", "l1_unstructured", "slimming"],
            "auc": [0.8, 0.7, 0.6, 0.9, 0.9],  # slimming x slimming twice: mean 0.85
        }
    )
    fig = plots.heatmap(frame, index="victim", columns="shadows", values="auc")
    ax = fig.axes[0]
    _check_labelled(ax)
    assert ax.get_ylabel() == "victim" and ax.get_xlabel() == "shadows"
    assert [t.get_text() for t in ax.texts] == ["0.85", "0.70", "0.60", "0.90"]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows == ["network slimming", "L1 unstructured"]
    assert fig.axes[1].get_ylabel() == "attack AUC (white: chance, 0.5)"  # the colour bar
    with pytest.raises(KeyError, match="sparsity"):
        plots.heatmap(frame, index="victim", columns="sparsity", values="auc")


def test_helpers_draw_into_given_axes() -> None:
    fig, axes = plt.subplots(1, 2)
    curves, _ = _curves(2)
    assert plots.roc_loglog(curves, ax=axes[0]) is fig
    assert plots.attack_bars(_results(), ax=axes[1]) is fig
    assert axes[0].get_xscale() == "log" and axes[1].get_ylabel() == "attack AUC"
    assert len(_legend_texts(axes[0].get_legend())) == 2  # a narrow panel: legend below it


# --------------------------------------------------------------------------------------------------
# saving
# --------------------------------------------------------------------------------------------------


def _figure() -> Figure:
    return plots.roc_loglog(_curves(2)[0], aucs={"attack0": 0.5, "attack1": 0.51})


def test_save_figure_writes_deterministic_png_and_pdf(tmp_path: Path) -> None:
    fig = _figure()
    paths = plots.save_figure(fig, "roc", profile="smoke", root=tmp_path)
    assert paths == [tmp_path / "smoke" / "roc.png", tmp_path / "smoke" / "roc.pdf"]
    assert not plt.fignum_exists(fig.number), "save_figure must close the figure"
    first = [p.read_bytes() for p in paths]
    assert first[0].startswith(b"\x89PNG") and first[1].startswith(b"%PDF")
    assert b"CreationDate" not in first[1] and b"ModDate" not in first[1]
    assert b"miakit" in first[1]
    assert b"Software" not in first[0]
    assert sorted(p.name for p in (tmp_path / "smoke").iterdir()) == ["roc.pdf", "roc.png"]
    again = plots.save_figure(_figure(), "roc", profile="smoke", root=tmp_path)
    assert [p.read_bytes() for p in again] == first
    # A different figure gives different files (the comparison above can fail).
    other = plots.save_figure(
        plots.roc_loglog(_curves(3)[0]), "roc", profile="smoke", root=tmp_path
    )
    assert [p.read_bytes() for p in other] != first


def test_save_figure_is_identical_across_processes(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from miakit import plots
        fig = plots.attack_bars(
            __import__("pandas").DataFrame(
                {"attack": ["conf", "samia"], "victim": ["original"] * 2, "auc": [0.6, 0.7]}
            )
        )
        plots.save_figure(fig, "bars", profile="quick", root=sys.argv[1])
        """
    )
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT), "MPLBACKEND": "agg"}
        root = tmp_path / seed
        subprocess.run([sys.executable, "-c", script, str(root)], env=env, check=True)
        outputs.append([(root / "quick" / f"bars.{ext}").read_bytes() for ext in ("png", "pdf")])
    assert outputs[0] == outputs[1]


def test_save_table_writes_a_deterministic_csv(tmp_path: Path) -> None:
    frame = pd.DataFrame({"attack": ["conf", "samia"], "auc": [0.123456789, 1 / 3], "n": [3, 4]})
    path = plots.save_table(frame, "results", profile="quick", root=tmp_path)
    assert path == tmp_path / "quick" / "results.csv"
    expected = "attack,auc,n\nconf,0.123457,3\nsamia,0.333333,4\n"
    assert path.read_bytes() == expected.encode()
    plots.save_table(frame, "results", profile="quick", root=tmp_path, digits=3)
    assert path.read_text() == "attack,auc,n\nconf,0.123,3\nsamia,0.333,4\n"
    assert [p.name for p in path.parent.iterdir()] == ["results.csv"]
    with pytest.raises(ValueError, match="digits"):
        plots.save_table(frame, "results", profile="quick", root=tmp_path, digits=0)
    with pytest.raises(ValueError, match="DataFrame"):
        plots.save_table({"a": [1]}, "results", profile="quick", root=tmp_path)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("../up", "path separator"),
        ("roc.png", "extension"),
        ("", "non-empty"),
        (".hidden", "must start with"),
        ("with space", "must start with"),
        (None, "non-empty"),
    ],
)
def test_bad_names_are_refused(tmp_path: Path, name, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        plots.save_figure(_figure(), name, profile="quick", root=tmp_path)
    with pytest.raises(ValueError, match=match):
        plots.save_table(pd.DataFrame({"a": [1]}), name, profile="quick", root=tmp_path)
    assert not any(tmp_path.iterdir()), "nothing may be written for a bad name"


@pytest.mark.parametrize("profile", ["", ".", "..", "a/b", "a\\b", "../quick", "a\0b", None, 3])
def test_unsafe_profile_folders_are_refused(tmp_path: Path, profile) -> None:
    with pytest.raises(ValueError, match="not a safe folder name"):
        plots.save_figure(_figure(), "roc", profile=profile, root=tmp_path)
    with pytest.raises(ValueError, match="not a safe folder name"):
        plots.save_table(pd.DataFrame({"a": [1]}), "t", profile=profile, root=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("profile", ["quick", "my run", "custom-2", "..hidden"])
def test_any_safe_profile_folder_is_accepted(tmp_path: Path, profile: str) -> None:
    # plots keeps no list of profile names: a custom profile gets its own folder.
    path = plots.save_table(pd.DataFrame({"a": [1]}), "t", profile=profile, root=tmp_path)
    assert path == tmp_path / profile / "t.csv" and path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [profile]


def test_save_figure_refuses_non_figures(tmp_path: Path) -> None:
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="Figure"):
        plots.save_figure(ax, "x", profile="quick", root=tmp_path)


def test_error_bars_are_the_seed_interval_or_the_summarised_one() -> None:
    from miakit.metrics.intervals import seed_interval

    per_seed = pd.DataFrame(
        {
            "attack": ["conf"] * 3,
            "victim": ["original"] * 3,
            "seed": [0, 1, 2],
            "auc": [0.60, 0.62, 0.64],
            "auc_se": [0.02, 0.02, 0.02],
        }
    )
    iv = seed_interval(per_seed["auc"], per_seed["auc_se"])

    def bar_error(frame):
        ax = plots.attack_bars(frame, metric="auc", hue=None).axes[0]
        bars = next(c for c in ax.containers if hasattr(c, "patches"))
        segment = bars.errorbar.lines[2][0].get_segments()[0]
        return segment[0][1], segment[1][1]

    assert bar_error(per_seed) == pytest.approx((iv.low, iv.high))
    summarised = pd.DataFrame(
        {"attack": ["conf"], "victim": ["original"], "auc": [0.6], "auc_low": [0.5]}
        | {"auc_high": [0.75]}
    )
    assert bar_error(summarised) == pytest.approx((0.5, 0.75))
