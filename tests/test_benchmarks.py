"""benchmarks/gpu_resnet18.py: its smoke run, its FLOP count and its device-peak table."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


def _load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load_benchmark("gpu_resnet18")


def test_smoke_run_prints_both_loops_and_ratio_last(bench, capsys) -> None:
    bench.main(["--smoke"])
    lines = capsys.readouterr().out.strip().splitlines()
    rates = {}
    for line in lines:
        found = re.match(r"(textbook|miakit).*?\s([0-9]+) images/s$", line)
        if found:
            rates[found.group(1)] = float(found.group(2))
    assert set(rates) == {"textbook", "miakit"} and all(r > 0 for r in rates.values())
    assert "MFU: n/a (unknown peak)" in lines  # the CPU has no entry in the peak table
    last = re.fullmatch(r"ratio: ([0-9]+\.[0-9]{2})", lines[-1])
    assert last is not None, lines[-1]
    assert float(last.group(1)) == pytest.approx(rates["miakit"] / rates["textbook"], rel=0.2)


def test_training_flops_are_forward_times_three_less_the_stem_input_gradient(bench) -> None:
    """Convs and the head cost 2*MACs forward and twice that backward (input and weight
    gradients), except the stem conv, whose input (the data) needs no gradient."""
    shape = (3, 8, 8)
    model = bench.build_model("resnet18", bench.NUM_CLASSES, shape, seed=0)
    macs: dict[str, int] = {}

    def hook(name: str):
        def count(module: nn.Module, inputs: tuple[torch.Tensor], out: torch.Tensor) -> None:
            per_out = module.weight[0].numel()  # (Cin/groups) * kh * kw, or in_features
            macs[name] = out[0].numel() * per_out  # one image
            if isinstance(module, nn.Conv2d):
                assert module.groups == 1

        return count

    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            module.register_forward_hook(hook(name))
    model.eval()(torch.zeros((1, *shape)))
    forward = 2 * sum(macs.values())
    expected = 3 * forward - 2 * macs["conv1"]
    assert bench.train_flops_per_image(shape) == expected


def test_peak_table_matches_the_specific_name_first(bench) -> None:
    peak = bench.peak_flops
    assert peak("NVIDIA H100 PCIe") == 756e12
    assert peak("NVIDIA H100 80GB HBM3") == 989e12  # SXM
    assert peak("NVIDIA H200") == 989e12
    assert peak("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak("NVIDIA L40S") == 362e12
    assert peak("NVIDIA L4") == 121e12
    assert peak("Tesla V100-SXM2-16GB") is None  # no bf16 tensor cores: not in the table


def test_bench_many_times_both_ways_and_prints_ratio_last(capsys) -> None:
    path = ROOT / "benchmarks" / "bench_many.py"
    spec = importlib.util.spec_from_file_location("bench_many", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--n", "2", "--epochs", "1", "--n-train", "64", "--n-dev", "32"])
    lines = capsys.readouterr().out.strip().splitlines()
    sequential = [line for line in lines if line.startswith("one after another")]
    together = [line for line in lines if line.startswith("together (fit_many")]
    assert sequential and len(together) == 1
    seconds = [float(re.search(r"([0-9.]+) s$", line).group(1)) for line in sequential + together]
    assert all(t > 0 for t in seconds)
    last = re.fullmatch(r"ratio: ([0-9]+\.[0-9]{2})", lines[-1])
    assert last is not None, lines[-1]
    assert float(last.group(1)) > 0


def test_bench_samia_small_times_both_loops_and_ends_with_their_ratio(capsys) -> None:
    bench = _load_benchmark("bench_samia")
    bench.main(["--small"])
    lines = capsys.readouterr().out.strip().splitlines()
    seconds = {}
    for line in lines:
        found = re.match(r"(textbook|miakit)\s+([0-9.]+) s", line)
        if found:
            seconds[found.group(1)] = float(found.group(2))
    assert set(seconds) == {"textbook", "miakit"} and all(s > 0 for s in seconds.values())
    last = re.fullmatch(r"ratio: ([0-9]+\.[0-9]{2})", lines[-1])
    assert last is not None, lines[-1]
    assert float(last.group(1)) == pytest.approx(seconds["textbook"] / seconds["miakit"], rel=0.02)
    # the textbook network is SAMIA's: same parameter count as miakit's
    ours = sum(p.numel() for p in bench.SAMIANet(bench.K).parameters())
    assert sum(p.numel() for p in bench.TextbookSAMIA().parameters()) == ours
