"""Issue 15, item 5: the audit's HTML report, its plain summary, and how a browser shows it."""

from __future__ import annotations

import base64
import dataclasses
import io
import re

import pytest
from PIL import Image

from miakit.audit import audit, plain_summary, report_html
from miakit.audit.summary import exposure


@pytest.fixture(scope="module")
def audited(audit_release):
    exp, _, store, root = audit_release
    return audit(
        root / "pruned.pt", exp.config.arch, exp.config.dataset, profile="smoke", store=store,
        device="cpu", progress=False, pruner=exp.config.pruner, sparsity=exp.config.sparsity,
        dense_checkpoint=root / "dense.pth", attacks=["conf", "samia", "lira"],
    )  # fmt: skip


def _images(text: str) -> list[Image.Image]:
    found = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    return [Image.open(io.BytesIO(base64.b64decode(b))) for b in found]


def test_the_report_is_one_self_contained_page_with_every_attack(audited):
    text = report_html(audited)
    assert "<script" not in text.lower()
    links = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert links and all(link.startswith("data:image/png;base64,") for link in links)
    assert "http://" not in text and "https://" not in text
    images = _images(text)
    assert len(images) == 2 and all(min(im.size) > 200 for im in images)
    for row in audited.attacks.itertuples():
        assert f"{row.auc:.3f} <span" in text  # every attack's AUC, with its interval
    for name in audited.sparsity.layers["name"]:
        assert f"<td>{name}</td>" in text
    for sample in audited.exposed["sample"]:
        assert f'<td class="n">{sample:,}</td>' in text


def test_the_summary_renders_its_numbers_from_the_result(audited):
    summary = plain_summary(audited)
    best = audited.strongest("pruned")
    text = " ".join(summary.exposure + summary.comparison)
    assert (
        f"{best['auc']:.3f} (95% interval {best['auc_low']:.3f} to {best['auc_high']:.3f})" in text
    )
    assert f"{100 * audited.accuracy['members']:.1f}% of its training samples" in text
    d = audited.differences
    change = d[(d["of"] == f"pruned/{best['attack']}") & (d["metric"] == "auc")]
    assert f"{change['difference'].iloc[0]:+.3f}" in text
    assert summary.verdict and summary.advice and summary.caveat


def _with_auc(result, auc, low, high):
    table = result.attacks.copy()
    rows = table["model"] == "pruned"
    table.loc[rows, ["auc", "auc_low", "auc_high"]] = [auc, low, high]
    return dataclasses.replace(result, attacks=table)


@pytest.mark.parametrize(
    ("auc", "low", "word"),
    [
        (0.52, 0.49, "not distinguishable from guessing"),
        (0.53, 0.51, "slightly exposed"),
        (0.60, 0.57, "moderately exposed"),
        (0.75, 0.72, "clearly exposed"),
        (0.90, 0.88, "highly exposed"),
    ],
)
def test_the_exposure_words_follow_the_auc_and_its_interval(audited, auc, low, word):
    assert exposure(auc, low) == word
    summary = plain_summary(_with_auc(audited, auc, low, auc + 0.02))
    if word == "not distinguishable from guessing":
        assert summary.verdict.startswith("No attack tells")
    else:
        assert f"is {word}" in summary.verdict
    defended = any("PPB" in line for line in summary.advice)
    assert defended == (word not in ("not distinguishable from guessing", "slightly exposed"))


def test_pruning_that_measurably_raised_the_leak_is_said_and_comes_first_in_the_advice(audited):
    exposed = _with_auc(audited, 0.8, 0.78, 0.82)
    best = exposed.strongest("pruned")["attack"]
    diffs = exposed.differences.copy()
    rows = (diffs["of"] == f"pruned/{best}") & (diffs["metric"] == "auc")
    diffs.loc[rows, ["difference", "low", "high"]] = [0.05, 0.02, 0.08]
    summary = plain_summary(dataclasses.replace(exposed, differences=diffs))
    assert any(
        "pruning raised the leak" in line and "+0.050" in line for line in summary.comparison
    )
    assert summary.advice[0].startswith("Pruning made it worse")
    diffs.loc[rows, ["difference", "low", "high"]] = [0.0, -0.02, 0.02]
    summary = plain_summary(dataclasses.replace(exposed, differences=diffs))
    assert any("did not measurably change" in line for line in summary.comparison)
    assert summary.advice[0].startswith("The leak is already in the dense original")
    alone = plain_summary(dataclasses.replace(exposed, differences=None, class_change=None))
    assert any("--dense-checkpoint" in line for line in alone.comparison)


def _browser():
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extra)")
    from miakit.audit.browser import BrowserMissing, find_chromium, render_page

    if find_chromium() is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")
    return render_page, BrowserMissing


def test_headless_chromium_shows_the_report_with_javascript_off_and_no_network(audited, tmp_path):
    render_page, _ = _browser()
    page = tmp_path / "report.html"
    page.write_text(report_html(audited), encoding="utf-8")
    view = render_page(page)
    assert view.title == "Membership-inference audit: pruned.pt"
    assert view.headings[:3] == [
        "Membership-inference audit of pruned.pt",
        "The model and its data",
        "Every attack",
    ]
    assert "Which classes pruning exposed" in view.headings and not view.refused
    assert [im["alt"] for im in view.images] == [
        "ROC curves of the strongest attacks, log-log",
        "Per-class AUC of the strongest attacks",
    ]
    for im in view.images:  # decoded, and drawn: a blank figure has no spread
        assert im["width"] > 200 and im["height"] > 200 and im["spread"] > 5, im
    shot = Image.open(io.BytesIO(view.screenshot))
    assert shot.width == 1100 and shot.height > 3000
    (tmp_path / "report.png").write_bytes(view.screenshot)


def test_the_browser_check_sees_a_blank_figure_and_a_request_to_the_network(tmp_path):
    render_page, _ = _browser()
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300), "white").save(buffer, "PNG")
    blank = base64.b64encode(buffer.getvalue()).decode()
    page = tmp_path / "bad.html"
    page.write_text(
        f'<html><body><h1>x</h1><img alt="blank" src="data:image/png;base64,{blank}">'
        '<img alt="remote" src="http://192.0.2.1/figure.png"></body></html>'
    )
    view = render_page(page)
    assert view.images[0]["alt"] == "blank" and view.images[0]["spread"] == 0
    assert view.images[1]["width"] == 0 and view.refused == ["http://192.0.2.1/figure.png"]
