"""The paper's Gemmini case study (section 3.4, Figs. 13-14) and analytic model (Fig. 32, App. A.5) on tstack.

Bounds come from the issue's acceptance criteria; the measured values are in the comments. What the host costs
are calibrated to (Fig. 14's category shares) is asserted only as a consistency check of the calibration; the
other numbers are predictions of the model.
"""

from __future__ import annotations

import pytest

import tstack
from tstack.simulate import ModelResult
from tstack.simulate.calibration import calibrate_host
from tstack.simulate.sweep import grid, parse_axis
from tstack.spec.hardware import load_hardware

NONLINEAR = ("softmax", "layernorm", "gelu", "resadd", "dequant")


@pytest.fixture(scope="module")
def case_study() -> dict[str, ModelResult]:
    return {
        hw: tstack.simulate("bert-base", hw, 512) for hw in ("gemmini-baseline", "gemmini-rebalanced", "gemmini-ibert")
    }


def test_baseline_is_starved_by_host_nonlinear_ops(case_study: dict[str, ModelResult]) -> None:
    base = case_study["gemmini-baseline"]
    cats = base.by_category()
    assert base.utilization < 0.02  # 1.26% (paper: "far less than 1%")
    assert sum(cats[c] for c in NONLINEAR) / base.latency_cycles >= 0.90  # 97.2% (paper: 96%)
    assert 0.6 < base.matmul_utilization < 0.8  # 68.2% (paper: individual matmuls reach 74%)


def test_ibert_codesign_speedup_and_matmul_share(case_study: dict[str, ModelResult]) -> None:
    base, ibert = case_study["gemmini-baseline"], case_study["gemmini-ibert"]
    speedup = base.latency_cycles / ibert.latency_cycles
    assert 20 <= speedup <= 80  # 65.7x (paper: 39.6x)
    assert ibert.by_category()["matmul"] / ibert.latency_cycles >= 0.75  # 87.4% (paper: 87% with GELU)
    assert ibert.by_category()["dequant"] / ibert.latency_cycles < 0.001  # quantization disappears


def test_rebalanced_memories_cut_matmul_latency(case_study: dict[str, ModelResult]) -> None:
    """Measured: 28.8% (paper: 36%; its own Fig. 13 ratio, 69% -> 91%, implies 24%)."""
    base, rebalanced = case_study["gemmini-baseline"], case_study["gemmini-rebalanced"]
    cut = 1 - rebalanced.matmul_cycles() / base.matmul_cycles()
    assert 0.25 <= cut <= 0.45


FIG_13 = {64: (66, 71, 69), 128: (91, 91, 88), 256: (91, 91, 90)}  # accumulator kB -> % over scratchpad 64/128/256


def test_fig13_matmul_utilization_grid_within_10_points() -> None:
    """The DMA bandwidth of the gemmini presets is calibrated to this figure (one parameter for nine cells, see
    gemmini-baseline.yaml); measured worst cell 5.1 points. l = 512 (the paper does not state it)."""
    base = load_hardware("gemmini-baseline")
    axes = [parse_axis("accumulator=64K,128K,256K", base), parse_axis("scratchpad=64K,128K,256K", base)]
    for (acc, spad), design in grid(base, axes):
        util = 100 * tstack.simulate("bert-base", design, 512).matmul_utilization
        paper = FIG_13[acc // 1024][(64, 128, 256).index(spad // 1024)]
        assert abs(util - paper) <= 10, (acc, spad, util, paper)


def test_fig14_calibration_is_consistent_with_the_presets() -> None:
    """The host constants in the gemmini presets are what calibrate_host derives today (to 0.1 cycle)."""
    hw = load_hardware("gemmini-baseline")
    assert hw.host is not None
    derived = calibrate_host(hw, tstack.build_workload(tstack.load_model("bert-base"), 512), 0.0186)
    stored = dict(hw.host.cycles_per_element)
    for name in ("softmax", "layernorm", "gelu", "add"):
        assert stored[name] == pytest.approx(derived[name], abs=0.06), name
    assert hw.host.dequantize_cycles_per_element == pytest.approx(derived["dequantize"], abs=0.06)


FIG_32 = {  # latency normalized to BERT-Base at l = 128 (paper Fig. 32)
    "bert-base": [1, 2, 5, 11, 28, 80],
    "bert-large": [3, 7, 14, 33, 82, 229],
    "gpt2": [18, 37, 75, 159, 352, 840],
}


def test_fig32_normalized_latencies_within_25_percent() -> None:
    ref = tstack.simulate("bert-base", "paper-analytic", 128).latency_cycles
    for model, printed in FIG_32.items():
        for seq, paper in zip(tstack.PAPER_SEQ_LENS[1:], printed[1:], strict=True):
            ours = tstack.simulate(model, "paper-analytic", seq).latency_cycles / ref
            assert abs(ours / paper - 1) <= 0.25, (model, seq, ours, paper)


def test_resnet50_on_the_analytic_model() -> None:
    unfused = tstack.simulate("resnet50", "paper-analytic")
    fused = tstack.simulate("resnet50", "paper-analytic", fused=True)
    nonlinear = 1 - unfused.by_category()["matmul"] / unfused.latency_cycles
    assert 0.25 <= nonlinear <= 0.45  # 37.0% (paper: 32.4%)
    assert 1.2 <= unfused.latency_cycles / fused.latency_cycles <= 1.45  # 1.317x (paper: 1.32x)


TABLE_5 = {  # non-ideal arithmetic intensity (FLOPs / DRAM-L2 bytes) of BERT-Base on the analytic model
    128: ("170.670", "25.400", "63.750", "128.000", "130.723", "186.182", "106.110"),
    512: ("341.333", "29.882", "102.300", "204.800", "211.862", "409.6", "111.122"),
    4096: ("409.6", "30.788", "118.710", "227.556", "236.308", "512.000", "47.067"),
}
TABLE_5_OPS = ("attn.q", "attn.qk", "attn.sv", "attn.out", "ffn.up", "ffn.down")


def test_table5_non_ideal_arithmetic_intensity() -> None:
    """Every matmul cell of Table 5 to its printed digits (FLOPs by the paper's convention, bytes moved between
    DRAM and L2 by tstack's cost model with the analytic preset's square L2 tiles and bias matrices). The printed
    W_Q cell at l = 128, "170.670", is 170.667 (the paper rounded 170.6667 up twice). The Total column is not
    reconstructed by the paper's text; tstack's, over every op, is within 8%."""
    from tests.golden.paper_digits import matches
    from tstack.workload import Convention, Phase, count_op

    spec = tstack.load_model("bert-base")
    for seq, printed in TABLE_5.items():
        workload = tstack.build_workload(spec, seq)
        flops = {op.name: count_op(op, Phase.ENCODER, Convention.PAPER_2023).flops for op in workload.ops}
        result = tstack.simulate(spec, "paper-analytic", seq)
        dram = {o.name: o.dram_bytes for o in result.ops}
        for name, text in zip(TABLE_5_OPS, printed, strict=False):
            ai = flops[f"layer0.{name}"] / dram[f"layer0.{name}"]
            assert matches(ai, text) or (text == "170.670" and round(ai, 3) == 170.667), (seq, name, ai, text)
        total = sum(flops.values()) / sum(dram.values())
        assert abs(total / float(printed[-1]) - 1) < 0.08, (seq, total)
