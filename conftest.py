"""Test-session settings shared by the unit tests and the notebooks (run through nbval).

The notebooks read ``MIAKIT_PROFILE`` in their parameters cell, so setting it here
makes ``pytest`` execute every notebook under the ``smoke`` profile (DESIGN.md,
"Profiles"). Artifacts and figures of the test session go to a temporary folder, never
to the user's cache or the committed ``figures/``. Set ``MIAKIT_TEST_CACHE`` to keep
the smoke cache between runs.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error

import pytest
import torch

_ROOT = os.path.dirname(os.path.abspath(__file__))
_SESSION = tempfile.mkdtemp(prefix="miakit-tests-")
# notebook kernels import this checkout's miakit, installed or not
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_ROOT, os.environ.get("PYTHONPATH", "")) if p
)
os.environ["MIAKIT_PROFILE"] = "smoke"
os.environ["MIAKIT_CACHE"] = os.environ.get("MIAKIT_TEST_CACHE") or os.path.join(_SESSION, "cache")
os.environ["MIAKIT_FIGURES"] = os.path.join(_SESSION, "figures")
os.environ.pop("MIAKIT_SET", None)
# Tiny models: one thread is faster than several and immune to a busy machine.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)


@pytest.fixture
def offline(monkeypatch):
    """Every download fails like an offline machine; returns the list of URLs tried."""
    from miakit.data import download

    tried: list[str] = []

    def no_network(url, dest, *, timeout):
        tried.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(download, "download_file", no_network)
    return tried
