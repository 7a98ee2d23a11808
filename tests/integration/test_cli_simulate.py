"""`tstack simulate | compare | sweep | hardware` end to end, through the installed command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_cli import run

# the paper's Fig. 13 grid, reduced to two accumulator and two scratchpad sizes
FIG13_SWEEP = (
    "sweep",
    "bert-base",
    "--hw",
    "gemmini-baseline",
    "--set",
    "accumulator=64K,256K",
    "--set",
    "scratchpad=64K,256K",
)


def test_simulate_json() -> None:
    proc = run("simulate", "bert-base", "--hw", "gemmini-ibert", "--seq", "128", "--ops", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "tstack.simulate/2" and doc["hardware"]["name"] == "gemmini-ibert"
    assert sum(c["share"] for c in doc["categories"].values()) == pytest.approx(1.0)
    assert doc["latency_s"] == pytest.approx(doc["latency_cycles"] / 1e9)
    qk = next(o for o in doc["ops"] if o["name"] == "layer0.attn.qk")
    assert qk["mapping"]["tile_n"] == 128 and qk["where"] == "array"
    softmax = next(o for o in doc["ops"] if o["name"] == "layer0.attn.softmax")
    assert softmax["where"] == "fused"


def test_compare_reports_speedups_over_the_first_design() -> None:
    proc = run("compare", "bert-base", "--hw", "gemmini-baseline,gemmini-ibert", "--seq", "256", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "tstack.compare/1"
    base, ibert = doc["designs"]
    assert base["speedup"] == 1.0 and ibert["speedup"] > 10


def test_sweep_fig13_grid() -> None:
    grid = (*FIG13_SWEEP, "--seq", "128")
    proc = run(*grid, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "tstack.sweep/1" and len(doc["points"]) == 4
    util = {tuple(p["values"]): p["matmul_utilization"] for p in doc["points"]}
    assert util[(256 * 1024, 256 * 1024)] > util[(64 * 1024, 256 * 1024)]  # a larger accumulator helps
    human = run(*grid)
    assert "accumulator \\ scratchpad" in human.stdout


def test_hardware_lists_presets() -> None:
    doc = json.loads(run("hardware", "--json").stdout)
    assert {h["name"] for h in doc["hardware"]} >= {"paper-analytic", "gemmini-baseline", "gemmini-ibert"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "bert-base", "--hw", "gemini-baseline"], "did you mean gemmini-baseline"),
        (["simulate", "bert-base", "--hw", "missing.yaml"], "hardware file missing.yaml does not exist"),
        (["sweep", "bert-base", "--hw", "gemmini-baseline", "--set", "scratchpad"], "--set expects NAME=V1,V2"),
        (["sweep", "bert-base", "--hw", "gemmini-baseline", "--set", "scratchpad=big"], "'big' is not a size"),
        (["compare", "bert-base", "--hw", ","], "--hw needs at least one design"),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_plots(tmp_path: Path) -> None:
    assert (
        run("compare", "bert-base", "--hw", "gemmini-baseline,gemmini-ibert", "--plot", str(tmp_path)).returncode == 0
    )
    assert run("simulate", "gpt2", "--hw", "paper-analytic", "--seq", "32", "--plot", str(tmp_path)).returncode == 0
    proc = run(*FIG13_SWEEP, "--plot", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for name in ("compare_bert-base.png", "breakdown_gpt2_paper-analytic.png", "sweep_gemmini-baseline.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    one_axis = run("sweep", "bert-base", "--hw", "gemmini-baseline", "--set", "pe=8,16", "--plot", str(tmp_path))
    assert one_axis.returncode == 2 and "heat map of two --set axes" in one_axis.stderr


def test_map_and_mapspace_json() -> None:
    doc = json.loads(run("map", "bert-base", "--hw", "gemmini-baseline", "--seq", "128", "--json").stdout)
    assert doc["schema"] == "tstack.map/1"
    assert all(op["heuristic_edp_ratio"] >= 1 for op in doc["ops"])
    one = json.loads(run("map", "bert-base", "--hw", "gemmini-baseline", "--op", "layer0.ffn.up", "--json").stdout)
    assert [op["op"] for op in one["ops"]] == ["layer0.ffn.up"]
    space = json.loads(run("mapspace", "--samples", "2000", "--ops", "bert-base-ffn", "--json").stdout)
    assert space["schema"] == "tstack.mapspace/1" and space["semantics"] == "tstack"
    ffn = space["ops"][0]
    assert ffn["paper"] == {"p10_relative_edp": 9.84, "within_3x_share": 0.0148} and ffn["p10_relative_edp"] >= 1
    missing = run("map", "bert-base", "--hw", "gemmini-baseline", "--op", "layer0.nope")
    assert missing.returncode == 2 and "no matmul named 'layer0.nope'" in missing.stderr
