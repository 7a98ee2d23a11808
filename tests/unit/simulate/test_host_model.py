"""The host CPU and the DMA predicted from the design: instruction counts checked independently, timing models."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from tstack.hardware.dma_model import (
    FIRESIM_DDR3,
    GEMMINI_DMA,
    DMAPrediction,
    MemoryLatency,
    SoCBuses,
    littles_law_bandwidth,
    predict_dma,
)
from tstack.hardware.types import HostCPU
from tstack.simulate.host_model import OP_KERNELS, KernelCounts, RocketTiming, cycles_per_element
from tstack.spec.host import measured_counts, predicted_host, provenance

REPO = Path(__file__).resolve().parents[3]
TOOLS = ("riscv64-linux-gnu-gcc", "qemu-riscv64", "riscv64-linux-gnu-nm")
HAVE_TOOLS = all(shutil.which(t) for t in TOOLS)


# ---- the measured counts, checked against hand counts of the C source (no tools needed) ----


def test_every_kernel_counted_the_same_by_both_qemu_methods() -> None:
    for k in measured_counts().values():
        assert k.instructions == k.instructions_blocks_method, k.name
        assert sum(n for _, n in k.by_class) == k.instructions, k.name


def test_resadd_matches_a_hand_count_of_its_loop() -> None:
    # y[i] = a[i] + b[i]: per element two float loads, one add, one store (no fewer is possible in scalar RV64GC),
    # and -O2's loop (objdump of kernels.c) adds three pointer increments and the back-branch: 8 per element, plus
    # a prologue/epilogue and main's dispatch of a few tens.
    k = measured_counts()["resadd"]
    n = k.elements
    assert k.per_element("fp_load") * n == 2 * n
    assert k.per_element("fp_fma_s") * n == n
    assert k.per_element("store") * n == n
    assert 0 <= k.instructions - 8 * n < 40


def test_dequantize_and_requantize_hand_counts() -> None:
    dq = measured_counts()["dequantize"]
    n = dq.elements
    assert dict(dq.by_class)["load_byte"] == n  # one int8 in
    assert dict(dq.by_class)["int_to_fp"] == n  # fcvt.s.w
    assert dict(dq.by_class)["fp_fma_s"] == n  # * scale
    rq = measured_counts()["requantize"]
    assert dict(rq.calls)["lrintf"] == rq.elements  # round to nearest even: one libm call per element
    assert dict(rq.by_class)["fp_to_int"] == rq.elements


def test_row_kernels_call_libm_once_per_element_and_divide_once_per_row() -> None:
    sm = measured_counts()["softmax"]
    rows = sm.elements // 512
    assert dict(sm.calls)["expf"] == sm.elements
    assert dict(sm.by_class)["fp_divsqrt_s"] == rows  # one reciprocal of the row sum
    ln = measured_counts()["layernorm"]
    # per row: sum / n, var / n, sqrtf, 1 / sqrt  ->  4 divide/sqrt operations
    assert dict(ln.by_class)["fp_divsqrt_s"] == 4 * (ln.elements // 768)
    gelu = measured_counts()["gelu"]
    assert dict(gelu.calls)["erff"] == gelu.elements


def test_provenance_names_the_command_and_tools() -> None:
    p = provenance()
    assert "measure.py" in p["command"]
    assert "-O2" in p["compile"] and "rv64gc" in p["compile"]


@pytest.mark.skipif(not HAVE_TOOLS, reason="needs gcc-riscv64-linux-gnu and qemu-user (apt-get install)")
def test_fresh_measurement_grows_by_the_hand_counted_loop_body() -> None:
    spec = importlib.util.spec_from_file_location("measure", REPO / "benchmarks" / "host_kernels" / "measure.py")
    assert spec is not None and spec.loader is not None
    measure = importlib.util.module_from_spec(spec)
    sys.modules["measure"] = measure
    spec.loader.exec_module(measure)
    with tempfile.TemporaryDirectory() as tmp:
        binary = measure.build(Path(tmp))
        small = measure.measure_kernel(binary, "resadd", 1, 16, Path(tmp))
        large = measure.measure_kernel(binary, "resadd", 1, 32, Path(tmp))
    assert small["instructions"] == small["instructions_blocks_method"]
    assert large["instructions"] - small["instructions"] == 8 * 16  # 16 more elements, 8 instructions each


# ---- the Rocket timing model ----


def _counts(deps: dict[str, int], instructions: int = 100, elements: int = 100, stream: float = 0.0) -> KernelCounts:
    return KernelCounts(
        "t", elements, instructions, instructions, (("int_alu", instructions),), (), tuple(deps.items()), 0, stream
    )


def test_back_to_back_independent_instructions_take_one_cycle_each() -> None:
    b = cycles_per_element(_counts({"int_alu:1": 99}))
    assert b.total == pytest.approx(1.0)


def test_dependence_stalls_follow_rocket_latencies() -> None:
    t = RocketTiming()
    # a single-precision FMA (sfmaLatency 3) used by the next instruction: 2 bubbles
    assert cycles_per_element(_counts({"fp_fma_s:1": 1}, 1, 1), t).dependence_stalls == 2
    # the same consumer three instructions later: no stall
    assert cycles_per_element(_counts({"fp_fma_s:3": 1}, 1, 1), t).dependence_stalls == 0
    # two sources: the longest wait counts, not the sum
    assert cycles_per_element(_counts({"fp_divsqrt_s:1|fp_load:1": 1}, 1, 1), t).dependence_stalls == 26
    # a second divide while the iterative divider is busy
    assert cycles_per_element(_counts({"busy-fp_divsqrt_s:7": 1}, 1, 1), t).unit_stalls == 20


def test_misses_cost_the_dram_round_trip_per_line() -> None:
    t = RocketTiming()
    assert t.miss_latency == FIRESIM_DDR3.latency_cycles
    b = cycles_per_element(_counts({}, stream=8.0), t)
    assert b.misses == pytest.approx(8 / 64 * t.miss_latency)
    slower = cycles_per_element(_counts({}, stream=8.0), dataclasses.replace(t, miss_latency=100.0))
    assert slower.total > b.total


def test_predicted_host_prices_every_host_op_from_a_measured_kernel() -> None:
    base = HostCPU((("softmax", 1.0),), 1.0, 1.0, 8.0, 2.3, "x")
    pred = predicted_host(base)
    costs = dict(pred.host.cycles_per_element)
    assert set(costs) == set(OP_KERNELS)
    for op, kernel in OP_KERNELS.items():
        assert costs[op] == pytest.approx(pred.kernels[kernel].total, abs=0.01)
        # at least one cycle per measured instruction (single issue), plus stalls
        assert costs[op] >= pred.kernels[kernel].instructions
    assert pred.host.dram_bytes_per_cycle == 8.0 and pred.host.energy_pj_per_cycle == 2.3
    assert "predicted" in pred.host.source


def test_predicted_costs_are_pinned() -> None:
    # a regression pin of tstack's own prediction (2% drift fails), not a comparison with the paper
    pred = predicted_host(HostCPU((), 1.0, 1.0, 8.0)).kernels
    pins = {"softmax": 81.9, "layernorm": 36.9, "gelu": 147.3, "resadd": 18.9, "dequantize": 14.1, "requantize": 21.1}
    for k, v in pins.items():
        assert pred[k].total == pytest.approx(v, rel=0.02), k


# ---- the DMA ----


def test_littles_law_caps_at_the_bus() -> None:
    assert littles_law_bandwidth(64, 16, 52.8, 16.0) == 16.0  # 1024 B in flight / 52.8 cycles = 19.4 > 16
    assert littles_law_bandwidth(16, 16, 52.8, 16.0) == pytest.approx(256 / 52.8)
    assert littles_law_bandwidth(64, 16, 128, 16.0) == pytest.approx(8.0)
    with pytest.raises(ValueError):
        littles_law_bandwidth(64, 0, 50, 16)


def test_firesim_latency_composition() -> None:
    m = MemoryLatency()
    assert m.row_hit_cycles == 14 + 4 + 2
    assert m.row_miss_cycles == 14 + 14 + 20
    assert m.latency_cycles == pytest.approx(30 + 0.9 * 20 + 0.1 * 48)


def test_gemmini_dma_prediction() -> None:
    assert GEMMINI_DMA.bus_bytes_per_cycle == 16
    assert GEMMINI_DMA.read_request_bytes(1) == 64 and GEMMINI_DMA.write_request_bytes(1) == 16
    assert GEMMINI_DMA.write_request_bytes(4) == 64
    p = predict_dma()
    assert p.read_bytes_per_cycle == 8.0  # the 64-bit memory bus binds before Little's law (16 x 64 / 52.8 = 19.4)
    assert p.write_bytes_per_cycle == pytest.approx(16 * 16 / 52.8)  # 16-byte rows: latency-bound
    assert predict_dma(output_bytes=4).write_bytes_per_cycle == 8.0
    wide = predict_dma(buses=SoCBuses(system_bus_bytes=16, memory_bus_bytes=16))
    assert wide.read_bytes_per_cycle == 16.0  # then the 128-bit DMA port binds
    assert predict_dma(buses=SoCBuses(memory_bus_bytes=32)).read_bytes_per_cycle == 16.0


def test_effective_bandwidth_is_the_time_weighted_mean() -> None:
    p = DMAPrediction(16.0, 4.0, 50.0)
    assert p.effective(0.0) == 16.0 and p.effective(1.0) == 4.0
    assert p.effective(0.5) == pytest.approx(1 / (0.5 / 16 + 0.5 / 4))
    with pytest.raises(ValueError):
        p.effective(1.5)
