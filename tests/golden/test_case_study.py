"""The paper's Gemmini case study (section 3.4, Figs. 13-14) and analytic model (Fig. 32, App. A.5) on tstack.

Each case-study number is compared with the paper only where tstack predicts it: a number that rests on a constant
fitted to a paper figure is never checked against that figure (DESIGN.md section 4). The Gemmini presets predict both
of the case study's key inputs from the design (the host from measured RV64GC instruction counts priced by an
in-order Rocket model; the DMA by Little's law under the SoC's 64-bit memory bus; benchmarks/RESULTS-case-study.md),
so the comparisons below use the presets as shipped, and each test states the gap with the paper and why. The
`-calibrated` presets (host fitted to Fig. 14, DMA to Fig. 13) are compared with nothing they were fitted to; their
numbers, and the presets', are pinned tightly, apart from the paper, in `tests/regression/test_case_study_pins.py`.
"""

from __future__ import annotations

import pytest

import tstack
from tstack.simulate import ModelResult
from tstack.simulate.sweep import grid
from tstack.spec.hardware import load_hardware
from tstack.spec.sweep import parse_axis
from tstack.studies import paper

NONLINEAR = ("softmax", "layernorm", "gelu", "resadd", "dequant")
DESIGNS = ("gemmini-baseline", "gemmini-rebalanced", "gemmini-ibert")
PAPER_SHARES = {k: v / sum(paper.FIG14_BASELINE_SHARES.values()) for k, v in paper.FIG14_BASELINE_SHARES.items()}


@pytest.fixture(scope="module")
def predicted() -> dict[str, ModelResult]:
    return {hw: tstack.simulate("bert-base", hw, 512) for hw in DESIGNS}


@pytest.fixture(scope="module")
def calibrated() -> dict[str, ModelResult]:
    return {hw: tstack.simulate("bert-base", f"{hw}-calibrated", 512) for hw in DESIGNS}


def test_baseline_is_starved_by_host_nonlinear_ops(predicted: dict[str, ModelResult]) -> None:
    """Predicted: 97.6% of baseline time outside the matmuls (paper: 96%). Utilization 2.1% against the paper's
    "far less than 1%": not reproduced. The gap is the host's speed: the Rocket model prices the float kernels' code,
    which costs less than what the paper's (unpublished) baseline software spent on adds and de/quantization."""
    base = predicted["gemmini-baseline"]
    cats = base.by_category()
    assert sum(cats[c] for c in NONLINEAR) / base.latency_cycles >= 0.95
    assert 0.015 < base.utilization < 0.03  # the stated gap: 2.1% (paper < 1%)


def test_codesign_speedup_states_its_gap(predicted: dict[str, ModelResult], calibrated: dict[str, ModelResult]) -> None:
    """Predicted: 42.5x against the paper's 39.6x, +7.3% (README, RESULTS-case-study.md); the baseline spends 2.2% in
    matmuls where the paper's Fig. 14 prints 1% (the speedup is about 1.2 / that share). The -calibrated presets give
    65.7x (+66%): their host speed is calibrated at a 1.86% matmul share, not fitted to the 39.6x."""
    gap = predicted["gemmini-baseline"].latency_cycles / predicted["gemmini-ibert"].latency_cycles
    assert 0.04 <= gap / paper.HARDWARE_SPEEDUP - 1 <= 0.10
    fitted = calibrated["gemmini-baseline"].latency_cycles / calibrated["gemmini-ibert"].latency_cycles
    assert 0.60 <= fitted / paper.HARDWARE_SPEEDUP - 1 <= 0.72


def test_codesigned_design_is_matmul_bound(predicted: dict[str, ModelResult]) -> None:
    """Fig. 14 (middle): 87% of the co-designed latency is Matmul + GELU. Predicted: 91.0%, +4 points: the co-designed
    design's residual adds and LayerNorm round trips are DMA-bound, and the predicted DMA (7.7 B/cycle) is faster
    than the paper's Gemmini appears to be (see the Fig. 13 test). De/quantization disappears (< 0.1%)."""
    ib = predicted["gemmini-ibert"]
    cats = ib.by_category()
    assert 0.89 <= (cats["matmul"] + cats["gelu"]) / ib.latency_cycles <= 0.93
    assert cats["dequant"] / ib.latency_cycles < 0.001


def test_rebalanced_memories_barely_pay_off_with_the_predicted_dma(predicted: dict[str, ModelResult]) -> None:
    """Paper section 3.4.3: swapping to a 64 kB scratchpad and 256 kB accumulator cuts matmul latency by 36%. Not
    reproduced: at the predicted 7.7 B/cycle the baseline's matmuls are nearly compute-bound and the cut is 2.5%. The
    -calibrated presets' 28.8% rests on the DMA fitted to Fig. 13 (pinned in tests/regression, not compared here)."""
    base, rebalanced = predicted["gemmini-baseline"], predicted["gemmini-rebalanced"]
    assert 0.01 <= 1 - rebalanced.matmul_cycles() / base.matmul_cycles() < 0.05


def test_fig13_is_not_reproduced_by_the_predicted_dma() -> None:
    """Fig. 13 (matmul utilization over accumulator x scratchpad sizes) shows a 64 kB accumulator starving the array
    (66-71%). With the predicted DMA every cell is 96.4-98.9%: the gap is 26-31 points in that row and 5-11 points
    elsewhere; either Gemmini sustained less than Little's law under the memory bus allows (misses of its 4-entry DMA
    TLB on strided mvin, FASED's transaction queue and LLC model, L2 write-allocation of 16-byte mvout rows) or the
    loss is outside the DMA (RESULTS-case-study.md, section 3). The -calibrated presets' 5 B/cycle was fitted to this
    figure, so their grid is pinned, not compared."""
    base = load_hardware("gemmini-baseline")
    axes = [parse_axis("accumulator=64K,128K,256K", base), parse_axis("scratchpad=64K,128K,256K", base)]
    for (acc, spad), design in grid(base, axes):
        util = 100 * tstack.simulate("bert-base", design, 512).matmul_utilization
        printed = paper.FIG13_UTILIZATION[acc // 1024][(64, 128, 256).index(spad // 1024)]
        assert util > 96, (acc, spad, util)
        assert (util - printed > 24) if acc == 64 * 1024 else (4 < util - printed < 12), (acc, spad, util, printed)


def test_fig14_shares_with_the_host_predicted(predicted: dict[str, ModelResult]) -> None:
    """Fig. 14 (left), renormalized to 100: softmax 20.2%, GELU 10.6%, residual adds 11.7%, de/quantization 52.1%.
    Predicted from code: 34.5%, 31.1%, 2.0%, 26.0%. Not reproduced: the paper's baseline spent far more on the adds and
    de/quantization than their arithmetic costs on Rocket (RESULTS-case-study.md, section 1)."""
    base = predicted["gemmini-baseline"]
    share = {c: v / base.latency_cycles for c, v in base.by_category().items()}
    assert share["softmax"] / PAPER_SHARES["softmax"] > 1.5
    assert share["gelu"] / PAPER_SHARES["gelu"] > 2.5
    assert share["resadd"] / PAPER_SHARES["resadd"] < 0.25
    assert share["dequant"] / PAPER_SHARES["dequant"] < 0.6
    assert share["layernorm"] == pytest.approx(PAPER_SHARES["layernorm"], abs=0.01)  # 4.1% (paper 4.3%)


def test_fig14_calibrated_host_costs_against_the_code() -> None:
    """What Fig. 14 implies per element (the -calibrated presets' host, fitted to its shares) beside what the float
    kernels cost on Rocket (the presets' host, predicted from measured instruction counts): softmax agrees within 4%
    (two independent routes), the rest do not: the fitted residual add is ~10x its code, de/quantization 3-4x, GELU
    about half."""
    fitted_host, code_host = load_hardware("gemmini-baseline-calibrated").host, load_hardware("gemmini-baseline").host
    assert fitted_host is not None and code_host is not None
    fitted, code = dict(fitted_host.cycles_per_element), dict(code_host.cycles_per_element)
    assert fitted["softmax"] / code["softmax"] == pytest.approx(1.0, abs=0.05)
    assert fitted["add"] / code["add"] > 8
    deq = fitted_host.dequantize_cycles_per_element / code_host.dequantize_cycles_per_element
    req = fitted_host.requantize_cycles_per_element / code_host.requantize_cycles_per_element
    assert 2.5 < req < deq < 5
    assert 0.4 < fitted["gelu"] / code["gelu"] < 0.7
    assert 1.5 < fitted["layernorm"] / code["layernorm"] < 2


FIG_32 = {  # latency normalized to BERT-Base at l = 128 (paper Fig. 32)
    "bert-base": [1, 2, 5, 11, 28, 80],
    "bert-large": [3, 7, 14, 33, 82, 229],
    "gpt2": [18, 37, 75, 159, 352, 840],
}


def test_fig32_normalized_latencies_within_25_percent() -> None:
    ref = tstack.simulate("bert-base", "paper-analytic", 128).latency_cycles
    for model, printed in FIG_32.items():
        for seq, want in zip(tstack.PAPER_SEQ_LENS[1:], printed[1:], strict=True):
            ours = tstack.simulate(model, "paper-analytic", seq).latency_cycles / ref
            assert abs(ours / want - 1) <= 0.25, (model, seq, ours, want)


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
