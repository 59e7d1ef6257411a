"""The issue-10 probes rerun on the pipeline: a cache that heals, two runs that train once.

* Deleting the ``meta.json`` beside a trained model (the "stuck cache" probe) or
  corrupting its payload: the next run quarantines the entry with one warning line,
  recomputes it, and succeeds; the run after that is quiet.
* Two ``miakit signals`` processes started together on one empty cache: every model is
  trained once (the other process waits and loads), and both write the same file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from miakit.experiment import Experiment, profile
from miakit.store import CacheWarning, Store

CFG = profile("smoke", **{"train.epochs": 1, "attack_epochs": 1})


def _victim_entry(exp: Experiment) -> Path:
    return exp.store.path("model", exp._model_key("victim", exp.variant()))


@pytest.mark.parametrize("damage", ["delete meta.json", "corrupt payload"])
def test_a_damaged_entry_is_quarantined_and_recomputed(tmp_path, damage):
    exp = Experiment(CFG, store=Store(tmp_path), device="cpu")
    first = exp.model("victim", exp.variant()).model.state_dict()
    entry = _victim_entry(exp)
    if damage == "delete meta.json":
        (entry / "meta.json").unlink()
    else:
        payload = entry / "tensors.safetensors"
        payload.write_bytes(payload.read_bytes()[:-16] + b"\0" * 16)
    again = Experiment(CFG, store=Store(tmp_path), device="cpu")
    with pytest.warns(CacheWarning) as caught:
        second = again.model("victim", again.variant()).model.state_dict()
    assert len(caught) == 1 and "quarantine" in str(caught[0].message)
    assert all((first[k] == second[k]).all() for k in first)  # recomputed, same result
    assert (entry / "meta.json").is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # healed: the next run is quiet
        Experiment(CFG, store=Store(tmp_path), device="cpu").model("victim", exp.variant())


_COUNTING_RUN = textwrap.dedent(
    """
    import os, sys
    import miakit.steps
    from miakit.cli import main

    real = miakit.steps.fit

    def counting(model, train, dev, cfg, **kw):
        with open(os.environ["FIT_LOG"], "a") as fh:
            fh.write(f"{os.getpid()} {kw.get('desc')}\\n")
        return real(model, train, dev, cfg, **kw)

    miakit.steps.fit = counting
    sys.exit(main(sys.argv[1:]))
    """
)


def test_two_runs_on_one_empty_cache_train_each_model_once(tmp_path):
    script = tmp_path / "counting_run.py"
    script.write_text(_COUNTING_RUN)
    log = tmp_path / "fits.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FIT_LOG": str(log)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), "signals", "--profile", "smoke", "--quiet"]
            + ["--set", "train.epochs=2", "--attacks", "conf,samia"]
            + ["--cache", str(tmp_path / "cache"), "--out", str(tmp_path / f"out{i}.npz")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err[-2000:]
    fits = log.read_text().splitlines()
    trained = sorted(line.split(" ", 1)[1] for line in fits)
    refs = [f"train ref{i}" for i in range(profile("smoke").num_references)]
    assert trained == [*refs, "train shadow0", "train shadow1", "train victim"], fits
    with np.load(tmp_path / "out0.npz") as a, np.load(tmp_path / "out1.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
