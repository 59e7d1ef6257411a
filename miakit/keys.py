"""Cache keys of the pipeline's steps: what each step reads, its version, and the trace.

A cached step's key (:meth:`miakit.steps.ModelSteps.step_key`) is the values of the
config fields the step reads (:data:`STEP_FIELDS`), the keys of the artifacts it
consumes, its per-call parameters and its code version (:data:`STEP_VERSIONS`).
:class:`StepTrace` records what each step really reads and consumes while it computes,
which ``tests/test_keys.py`` compares with the keys: a changed config field must give
new keys to exactly the steps that depend on it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

__all__ = ["STEP_FIELDS", "STEP_VERSIONS", "StepTrace", "derives_key"]

#: Bumped when a step's code changes what it produces, so stale cache entries are not reused.
STEP_VERSIONS = {
    "train": 5,
    "prune": 5,
    "signals": 3,
    "logits": 1,
    "fit": 2,
    "fit_network": 3,
    "attack": 4,
}

#: The :class:`~miakit.config.ExperimentConfig` fields each cached step's computation
#: reads. A step's key (:meth:`ModelSteps.step_key`) is made of exactly these fields'
#: values, the keys of the artifacts the step consumes, its per-call parameters (role,
#: variant, sample set, attack) and its version, so nothing else can be forgotten;
#: ``tests/test_keys.py`` measures what each step really reads (:class:`StepTrace`) and
#: checks that a changed field gives new keys to exactly the steps that read it.
#: ``logits`` is a model's signals on a set without SAMIA's sensitivity (LiRA's and
#: RMIA's victim-sample and population sets). ``fit`` is a fitted attack that trains
#: nothing (kept in memory), ``fit_network`` one that trains a network under the attack
#: settings (stored), ``attack`` its scores.
STEP_FIELDS: dict[str, tuple[str, ...]] = {
    "train": ("dataset", "dataset_options", "split_seed", "arch", "seed", "train"),
    "prune": ("dataset", "dataset_options", "split_seed", "seed", "train", "finetune"),
    "signals": ("dataset", "dataset_options", "seed", "sensitivity_m", "sensitivity_eps"),
    "logits": ("dataset", "dataset_options"),
    "fit": (),
    "fit_network": ("seed", "attack_epochs", "attack_lr"),
    "attack": (),
}


F = TypeVar("F", bound=Callable[..., Any])


def derives_key(method: F) -> F:
    """Mark a method that derives a cache key: its config reads are not a step's reads."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.trace is None:
            return method(self, *args, **kwargs)
        with self.trace.keying():
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class StepTrace:
    """What each cached step read and consumed while it computed (for key tests).

    Set ``steps.trace = StepTrace()`` and give the steps a config that reports its
    reads (``tests/test_keys.py`` does both): every computation of a cached step is a
    frame; :meth:`read` records a config field into the innermost frame, and each
    cached artifact requested inside a frame (computed or loaded) is recorded as
    consumed by it.

    Attributes:
        reads: step key digest -> config fields read while computing it.
        consumed: step key digest -> digests of the artifacts it requested.
        steps: step key digest -> step name.
    """

    def __init__(self) -> None:
        self.reads: dict[str, set[str]] = {}
        self.consumed: dict[str, set[str]] = {}
        self.steps: dict[str, str] = {}
        self._stack: list[str] = []

    def read(self, name: str) -> None:
        """Record that the innermost computing step read config field ``name``."""
        if self._stack:
            self.reads[self._stack[-1]].add(name)

    def request(self, step: str, digest: str) -> None:
        """Record a request of artifact ``digest`` (by the innermost frame)."""
        if self._stack and self._stack[-1]:
            self.consumed[self._stack[-1]].add(digest)
        self.steps[digest] = step
        self.reads.setdefault(digest, set())
        self.consumed.setdefault(digest, set())

    @contextlib.contextmanager
    def keying(self) -> Iterator[None]:
        """A frame whose reads are dropped: deriving a key is not computing a result."""
        self._stack.append("")
        self.reads.setdefault("", set())
        try:
            yield
        finally:
            self._stack.pop()

    @contextlib.contextmanager
    def computing(self, digest: str) -> Iterator[None]:
        """A frame: the computation of artifact ``digest``."""
        self._stack.append(digest)
        try:
            yield
        finally:
            self._stack.pop()
