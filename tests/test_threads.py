"""The thread budget (miakit.threads): CPUs from affinity and cgroup quota, MIAKIT_THREADS,
the share among live miakit processes, and what real processes end up with."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from miakit import _util, threads

_VARS = (*threads.BLAS_VARS, threads.ENV, threads.REGISTRY_ENV, "XDG_RUNTIME_DIR")
_MARKERS = ("MIAKIT_THREADS_APPLIED", "MIAKIT_THREADS_USER_OMP")
AFFINITY = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No thread variables, a private registry, fresh module state; torch restored after."""
    for var in (*_VARS, *_MARKERS):
        monkeypatch.delenv(var, raising=False)
    registry = tmp_path / "procs"
    monkeypatch.setenv(threads.REGISTRY_ENV, str(registry))
    monkeypatch.setattr(threads, "_STATE", threads._State())
    before = torch.get_num_threads()
    yield registry
    torch.set_num_threads(before)


@pytest.fixture
def sleepers() -> Iterator[list[int]]:
    """Live PIDs of other processes (stand-ins for other miakit processes)."""
    procs = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]
    yield [p.pid for p in procs]
    for p in procs:
        p.kill()
        p.wait()


def _entry(folder: Path, pid: int, **info: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{pid}.json"
    path.write_text(json.dumps({"start": None, "cpus": AFFINITY, **info}))
    return path


# --------------------------------------------------------------------------- cgroups


def _tree(tmp_path: Path, files: dict[str, str], cgroup: str) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    proc = tmp_path / "proc_cgroup"
    proc.write_text(cgroup)
    return root, proc


def test_cgroup_v2_quota_rounds_up_and_max_is_no_limit(tmp_path: Path) -> None:
    cpus = len(AFFINITY) or os.cpu_count()
    root, proc = _tree(tmp_path, {"cpu.max": "150000 100000\n"}, "0::/\n")
    assert threads.available_cpus(root, proc) == min(cpus, 2)
    (root / "cpu.max").write_text("100000 100000\n")
    assert threads.available_cpus(root, proc) == 1
    (root / "cpu.max").write_text("max 100000\n")
    assert threads.available_cpus(root, proc) == cpus


def test_cgroup_v2_a_parents_quota_applies(tmp_path: Path) -> None:
    files = {"a/cpu.max": "50000 100000\n", "a/b/cpu.max": "max 100000\n"}
    root, proc = _tree(tmp_path, files, "0::/a/b\n")
    assert threads.available_cpus(root, proc) == 1


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    cpus = len(AFFINITY) or os.cpu_count()
    files = {"cpu,cpuacct/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}
    root, proc = _tree(tmp_path, files, "4:cpu,cpuacct:/\n1:name=systemd:/\n")
    assert threads.available_cpus(root, proc) == 1
    (root / "cpu,cpuacct/cpu.cfs_quota_us").write_text("-1\n")
    assert threads.available_cpus(root, proc) == cpus


def test_no_cgroup_files_leaves_the_affinity(tmp_path: Path) -> None:
    cpus = len(AFFINITY) or os.cpu_count()
    assert threads.available_cpus(tmp_path / "none", tmp_path / "none") == cpus


# --------------------------------------------------------------------------- budget


def test_miakit_threads_wins(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIAKIT_THREADS", "3")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.thread_budget(cpus=8) == 3


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_miakit_threads_must_be_a_positive_integer(
    clean: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MIAKIT_THREADS", value)
    with pytest.raises(ValueError, match=r"MIAKIT_THREADS=.* positive integer.*unset it"):
        threads.thread_budget()
    with pytest.raises(ValueError, match="MIAKIT_THREADS"):
        threads.apply_thread_budget()


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_an_explicit_count_must_be_a_positive_integer(clean: Path, n: object) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        threads.apply_thread_budget(n)  # type: ignore[arg-type]


def test_share_counts_live_overlapping_processes_only(clean: Path, sleepers: list[int]) -> None:
    assert threads.thread_budget(cpus=8) == 8
    _entry(clean, sleepers[0])
    assert threads.thread_budget(cpus=8) == 8 // 2
    _entry(clean, sleepers[1])
    _entry(clean, sleepers[2])
    assert threads.thread_budget(cpus=8) == 8 // 4
    assert threads.thread_budget(cpus=3) == 1  # floor, and never below 1
    # disjoint CPUs do not share
    _entry(clean, sleepers[2], cpus=[max(AFFINITY, default=0) + 1000])
    assert threads.thread_budget(cpus=9) == 9 // 3


def test_dead_and_reused_pids_are_ignored_and_removed(clean: Path, sleepers: list[int]) -> None:
    done = subprocess.Popen(["true"])
    done.wait()
    dead = _entry(clean, done.pid)
    assert threads.thread_budget(cpus=4) == 4
    assert not dead.exists()
    if threads._start_time(sleepers[0]) is None:
        pytest.skip("no /proc start times here")
    reused = _entry(clean, sleepers[0], start="1")  # a live PID, but not the process that wrote it
    assert threads.thread_budget(cpus=4) == 4
    assert not reused.exists()
    _entry(clean, sleepers[0], start=threads._start_time(sleepers[0]))
    assert threads.thread_budget(cpus=4) == 2


def test_own_entry_and_parent_are_not_sharers(clean: Path) -> None:
    _entry(clean, os.getpid())
    _entry(clean, os.getppid())  # e.g. `miakit run` waiting on this notebook kernel
    assert threads.thread_budget(cpus=4) == 4


def test_a_user_omp_bounds_the_share_but_miakits_own_does_not(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.thread_budget(cpus=8) == 3
    monkeypatch.setenv("MIAKIT_THREADS_APPLIED", "3")  # miakit wrote that 3
    monkeypatch.setenv("MIAKIT_THREADS_USER_OMP", "")
    assert threads.thread_budget(cpus=8) == 8
    monkeypatch.setenv("MIAKIT_THREADS_USER_OMP", "2")  # the user's own value before it
    assert threads.thread_budget(cpus=8) == 2


def test_apply_sets_torch_env_and_registers(clean: Path) -> None:
    torch.set_num_threads(1)
    assert threads.apply_thread_budget(2) == 2
    assert torch.get_num_threads() == 2
    assert all(os.environ[v] == "2" for v in threads.BLAS_VARS)
    assert json.loads((clean / f"{os.getpid()}.json").read_text())["cpus"] == AFFINITY
    assert threads.apply_thread_budget(1) == 1
    assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    # an applied fixed count stays: other processes do not change it
    assert threads.current_budget() == 1


def test_num_threads_never_exceeds_the_budget(clean: Path) -> None:
    threads.apply_thread_budget(1)
    with _util.num_threads(2):
        assert torch.get_num_threads() == 1
    threads.apply_thread_budget(2)
    with _util.num_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_an_applied_share_follows_other_processes(
    clean: Path, monkeypatch: pytest.MonkeyPatch, sleepers: list[int]
) -> None:
    monkeypatch.setattr(threads, "available_cpus", lambda: 4)
    assert threads.apply_thread_budget() == 4
    entry = _entry(clean, sleepers[0])
    with _util.num_threads(None):  # each pipeline step derives the share again
        assert torch.get_num_threads() == 2
    assert os.environ["OMP_NUM_THREADS"] == "2"
    with _util.num_threads(3):
        assert torch.get_num_threads() == 2
    entry.unlink()
    assert threads.current_budget() == 4 and torch.get_num_threads() == 4


# --------------------------------------------------------------------------- processes


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def _env(registry: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*_VARS, *_MARKERS)}
    env[threads.REGISTRY_ENV] = str(registry)
    return env


def test_import_changes_nothing_and_the_entry_goes_at_exit(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import os, json
        before = dict(os.environ)
        import miakit, miakit.threads as t
        assert dict(os.environ) == before, "importing miakit changed the environment"
        assert not os.path.exists(os.environ["MIAKIT_PROCS_DIR"]), "import registered"
        t._register(t.registry_dir())
        print(json.dumps(sorted(os.listdir(os.environ["MIAKIT_PROCS_DIR"]))))
        print(os.getpid())
    """)
    out = _run(code, _env(tmp_path / "procs"))
    assert out.returncode == 0, out.stderr
    listed, pid = out.stdout.split()
    assert json.loads(listed) == [f"{pid}.json"]
    assert list((tmp_path / "procs").iterdir()) == []  # removed at exit


def _report(cpus: set[int], registry: Path, sharers: int) -> dict:
    """In a forked child: pin to ``cpus``, apply the budget as miakit's CLI does, report.

    The child starts from more torch threads than any budget here, so a budget not
    applied shows. It waits until ``sharers`` processes are registered (all started at
    once), then reports its budget as a pipeline step derives it.
    """
    os.sched_setaffinity(0, cpus)
    os.environ.update({threads.REGISTRY_ENV: str(registry)})
    torch.set_num_threads(8)
    threads.apply_thread_budget()
    deadline = time.monotonic() + 20
    while len(list(registry.glob("*.json"))) < sharers and time.monotonic() < deadline:
        time.sleep(0.01)
    n = threads.current_budget()
    child = _run("import os; print(os.environ.get('OMP_NUM_THREADS'))", dict(os.environ))
    return dict(
        n=n,
        torch=torch.get_num_threads(),
        omp=os.environ.get("OMP_NUM_THREADS"),
        child=child.stdout,
    )


def _fork(cpus: set[int], registry: Path, sharers: int) -> tuple[int, int]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            report = _report(cpus, registry, sharers)
        except BaseException:
            report = {"error": traceback.format_exc()}
        finally:
            os.write(write, json.dumps(report).encode())
            os._exit(0)
    os.close(write)
    return pid, read


def _collect(pid: int, read: int) -> dict:
    with os.fdopen(read) as fh:
        text = fh.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and text, "the child did not report"
    report = json.loads(text)
    assert "error" not in report, report.get("error")
    return report


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[dict]]]:
    """Real processes started at once: two sharing one CPU, two sharing two, one alone.

    Forked from this process (torch already loaded: a fresh interpreter's
    ``import torch`` costs seconds), each with the environment of a user who set no
    thread variable.
    """
    if not hasattr(os, "sched_setaffinity") or not hasattr(os, "fork"):
        pytest.skip("no CPU affinity or fork on this OS")
    tmp = tmp_path_factory.mktemp("threads")
    two = set(AFFINITY[:2])
    runs = {"pair1": [{AFFINITY[0]}] * 2, "pair2": [two] * 2 if len(two) == 2 else []}
    runs["solo2"] = [two] if len(two) == 2 else []
    saved = {v: os.environ.pop(v) for v in (*_VARS, *_MARKERS) if v in os.environ}
    with contextlib.suppress(ImportError):
        import threadpoolctl  # noqa: F401  (imported before fork, not in the children)
    state, before = threads._STATE, torch.get_num_threads()
    try:
        threads._STATE = threads._State()
        forks = {n: [_fork(c, tmp / n, len(cs)) for c in cs] for n, cs in runs.items()}
    finally:
        os.environ.update(saved)
        threads._STATE = state
    yield {name: [_collect(*f) for f in fs] for name, fs in forks.items()}
    torch.set_num_threads(before)


def test_two_processes_on_one_cpu_get_one_thread_each(reports: dict[str, list[dict]]) -> None:
    assert len(reports["pair1"]) == 2
    for r in reports["pair1"]:
        assert (r["n"], r["torch"], r["omp"], r["child"]) == (1, 1, "1", "1\n"), r


def test_two_processes_on_two_cpus_share_them(reports: dict[str, list[dict]]) -> None:
    if not reports["pair2"]:
        pytest.skip("fewer than 2 CPUs")
    for r in reports["pair2"]:
        assert (r["n"], r["torch"], r["omp"], r["child"]) == (1, 1, "1", "1\n"), r


def test_a_process_alone_on_two_cpus_gets_two_and_its_child_inherits(
    reports: dict[str, list[dict]],
) -> None:
    if not reports["solo2"]:
        pytest.skip("fewer than 2 CPUs")
    n = min(2, threads.available_cpus())
    (r,) = reports["solo2"]
    assert (r["n"], r["torch"], r["omp"], r["child"]) == (n, n, str(n), f"{n}\n"), r


# --------------------------------------------------------------------------- callers


def test_the_cli_applies_the_budget_and_reports_a_bad_setting(
    clean: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from miakit.cli import main

    monkeypatch.setenv("MIAKIT_THREADS", "none")
    assert main(["cache", "info", "--cache", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("miakit: error: MIAKIT_THREADS='none'") and "\n" not in err
    monkeypatch.setenv("MIAKIT_THREADS", "2")
    torch.set_num_threads(1)
    assert main(["cache", "info", "--cache", str(tmp_path / "cache")]) == 0
    assert torch.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "2"


def test_a_notebooks_experiment_applies_the_budget(
    clean: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from miakit.config import ParameterError
    from miakit.experiment import from_parameters

    monkeypatch.setenv("MIAKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MIAKIT_THREADS", "0")
    with pytest.raises(ParameterError, match="MIAKIT_THREADS"):
        from_parameters("smoke")
    monkeypatch.setenv("MIAKIT_THREADS", "2")
    torch.set_num_threads(1)
    from_parameters("smoke")
    assert torch.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "2"
