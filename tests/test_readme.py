"""The README's library examples run, in order, as one script (under the smoke profile)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from miakit.attacks import ATTACKS

ROOT = Path(__file__).resolve().parents[1]


def _library_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Using the library") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_has_the_protocol_and_added_attack_examples():
    blocks = _library_blocks()
    assert len(blocks) == 3
    assert ".fit(shadows, references).score(target)" in blocks[1]
    assert 'ATTACKS["loss"] = Loss' in blocks[2]


def test_readme_library_examples_run(capsys):
    # the test session's cache (conftest.py), shared with the notebooks; the quick
    # profile would train for minutes: the same code runs under smoke
    code = "\n".join(_library_blocks()).replace('profile("quick"', 'profile("smoke"')
    namespace: dict = {}
    try:
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
        loss_table = namespace["tables"].attack_table(
            namespace["exp"], namespace["pruned"], attacks=["loss", "conf"]
        )
    finally:
        ATTACKS.pop("loss", None)
    printed = capsys.readouterr().out.split()
    assert len(printed) == 2 and all(0.0 <= float(v) <= 1.0 for v in printed)
    seeds = namespace["exp"].config.seeds  # one block of rows per seed
    assert list(loss_table["attack"]) == ["loss", "conf"] * seeds
    assert loss_table["auc"].between(0, 1).all()
    # the added attack is a global threshold on log p_y: its AUC is that of p_y itself
    from miakit.metrics import roc_auc

    target = namespace["target"]
    assert loss_table["auc"].iloc[0] == pytest.approx(roc_auc(target.membership, target.p_y))
    assert np.isfinite(loss_table["balanced_accuracy"]).all()


def test_readme_claims_block_is_the_committed_claims_table():
    """The README's claims table is generated (miakit claims --readme) from the quick run's
    committed table, never typed: the two must agree."""
    from miakit import claims

    table = claims.read_claims(ROOT / "figures" / "quick" / "00_claims.csv")
    text = (ROOT / "README.md").read_text()
    expected = claims.with_claims_block(text, claims.claims_markdown(table))
    assert text == expected, "README's claims block is stale: run miakit claims --readme README.md"
