"""miakit.reported: every paper value cites a PAPER.md heading, and the values are the paper's."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from miakit import reported
from miakit.attacks import ATTACKS, BASELINES
from miakit.reported import SECTIONS, Reported


def test_every_value_cites_a_paper_heading():
    assert reported.REPORTED, "no reported values"
    for name, value in reported.REPORTED.items():
        assert isinstance(value, Reported), name
        assert value.section in SECTIONS, f"{name}: {value.section!r} is not a PAPER.md heading"
        assert value.what, f"{name}: says nothing about what it measures"


def test_every_constant_is_listed():
    """A Reported constant of the module that REPORTED misses would go untested."""
    listed = {id(v) for v in reported.REPORTED.values()}
    found = []
    for name in reported.__all__:
        obj = getattr(reported, name)
        items = obj.values() if isinstance(obj, dict) and name != "REPORTED" else [obj]
        found += [(name, v) for v in items if isinstance(v, Reported)]
    assert found
    assert all(id(v) in listed for _, v in found), [n for n, v in found if id(v) not in listed]


def test_sections_are_the_paper_headings():
    # PAPER.md lives outside the repository; these are its headings, in order.
    assert SECTIONS == (
        "The paper this kit reproduces",
        "Data and splits",
        "Models and training",
        "Pruning",
        "The eight existing attacks",
        "SAMIA",
        "Prediction divergence (the analysis)",
        "The defense (pair-based posterior balancing, PPB)",
        "Reporting",
    )


def test_an_unknown_section_is_refused():
    with pytest.raises(ValueError, match="unknown PAPER.md section 'Results'"):
        Reported(0.5, "something", "Results")


def test_divergence_values_are_the_papers():
    means = reported.DIVERGENCE_MEANS
    assert means["original", "member"].value == 0.81
    assert means["original", "non-member"].value == 0.67
    assert means["pruned", "member"].value == 0.96
    assert means["pruned", "non-member"].value == 0.73
    assert reported.CLASS_GAP_RANGE["original"].value == (0.08, 0.18)
    assert reported.CLASS_GAP_RANGE["pruned"].value == (0.09, 0.37)
    for value in [*means.values(), *reported.CLASS_GAP_RANGE.values()]:
        assert value.section == "Prediction divergence (the analysis)"


def test_paper_attacks_are_the_baselines_then_samia():
    assert reported.PAPER_ATTACKS.value == (*BASELINES, "samia")
    assert set(reported.PAPER_ATTACKS.value) <= set(ATTACKS)


def test_divergence_means_frame_keys_on_real_columns():
    frame = reported.divergence_means()
    assert list(frame.columns) == [
        "victim_pruner",
        "victim_sparsity",
        "signal",
        "paper_member_mean",
        "paper_nonmember_mean",
    ]
    assert list(frame["victim_pruner"]) == ["none", "l1_unstructured"]
    assert list(frame["victim_sparsity"]) == [0.0, 0.7]
    assert list(frame["paper_member_mean"]) == [0.81, 0.96]
    assert list(frame["paper_nonmember_mean"]) == [0.67, 0.73]
    # merged on a measured table, another setting gets no paper value
    measured = pd.DataFrame(
        {
            "victim_pruner": ["none", "l1_unstructured", "l1_structured"],
            "victim_sparsity": [0.0, 0.7, 0.7],
            "signal": ["confidence"] * 3,
        }
    )
    merged = measured.merge(frame, how="left", on=["victim_pruner", "victim_sparsity", "signal"])
    assert list(merged["paper_member_mean"].iloc[:2]) == [0.81, 0.96]
    assert math.isnan(merged["paper_member_mean"].iloc[2])
