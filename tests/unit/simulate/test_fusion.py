"""The fusion study (paper section 5.5.2): the effects whose sign and size tstack reproduces.

Measured (BERT-Base, gemmini-ibert with a 256 kB scratchpad; `tstack fusion`): Q x K + Softmax fusion -68% (128 kB
accumulator) and -77% (256 kB) at l = 512 (paper: -78% at both) and -29% at l = 4096 (paper -22%); W2 + LayerNorm
+55% (paper +27%); W_out + LayerNorm +136% at 128 kB (its matmul +209%; paper: +83% on the matmul). Not reproduced:
W_out + LayerNorm at 256 kB (+30%, paper -4%). With the DRAM bandwidth of the Gemmini Timeloop description (preset
gemmini-ibert-timeloop, 8 B/cycle) W_out + LayerNorm at 256 kB is -10% and Q x K + Softmax stays within 15 points,
but W2 + LayerNorm breaks even (-0.2%) instead of hurting. See tstack.simulate.fusion for why.
"""

from __future__ import annotations

import json

import pytest

import tstack
from tests.integration.test_cli import run
from tstack.errors import WorkloadError
from tstack.hardware.types import Hardware
from tstack.simulate.fusion import fusion_study
from tstack.simulate.sweep import Axis, apply


def _design(acc_kb: int, preset: str = "gemmini-ibert") -> Hardware:
    base = tstack.load_hardware(preset)
    base = apply(base, Axis("scratchpad", (256 * 1024,)), 256 * 1024)
    return apply(base, Axis("accumulator", (acc_kb * 1024,)), acc_kb * 1024)


@pytest.mark.parametrize("acc_kb", [128, 256])
def test_signs_that_match_the_paper(acc_kb: int) -> None:
    results = {r.pair: r for r in fusion_study(tstack.load_model("bert-base"), _design(acc_kb), 512)}
    assert results["qk+softmax"].change < 0  # fusing Softmax into Q x K helps
    assert results["qk+softmax"].fused.nonlinear_cycles < results["qk+softmax"].non_fused.nonlinear_cycles
    assert results["w2+layernorm"].change > 0  # fusing LayerNorm into W2 hurts
    if acc_kb == 128:
        assert results["out+layernorm"].change > 0


@pytest.mark.parametrize(("acc_kb", "seq", "paper"), [(128, 512, -0.78), (256, 512, -0.78), (256, 4096, -0.22)])
def test_qk_softmax_fusion_within_15_points_of_the_paper(acc_kb: int, seq: int, paper: float) -> None:
    (r,) = fusion_study(tstack.load_model("bert-base"), _design(acc_kb), seq, ["qk+softmax"])
    assert r.change == pytest.approx(paper, abs=0.15)


def test_fused_passes_hide_behind_the_matmul_only_with_a_double_buffered_accumulator() -> None:
    from tstack.simulate.engine import exposed_reduction_cycles

    assert exposed_reduction_cycles(100.0, 1000.0, 10, overlapped=True) == 10.0  # the last tile drains
    assert exposed_reduction_cycles(1000.0, 100.0, 10, overlapped=True) == 900.0
    assert exposed_reduction_cycles(100.0, 1000.0, 10, overlapped=False) == 100.0
    (r,) = fusion_study(tstack.load_model("bert-base"), _design(256), 512, ["qk+softmax"])
    assert 0 < r.fused.nonlinear_cycles < r.fused.matmul_cycles / 100


def test_fusion_needs_a_normalization_unit() -> None:
    with pytest.raises(WorkloadError, match="no normalization unit"):
        fusion_study(tstack.load_model("bert-base"), tstack.load_hardware("gemmini-baseline"), 512)


def test_fusion_command_json() -> None:
    proc = run("fusion", "--seq", "512", "--accumulator", "256K", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "tstack.fusion/1" and {r["pair"] for r in doc["results"]} == {
        "qk+softmax",
        "out+layernorm",
        "w2+layernorm",
    }


def test_simulate_decides_fusion_per_op() -> None:
    """The simulator fuses Softmax into Q x K^T where that is faster (l = 512) and not where the forced full-row
    tiles cost more than the DRAM round trip they save (l = 4096, whose 4096-wide rows are memory-bound)."""
    where = {
        seq: next(
            o.where for o in tstack.simulate("bert-base", "gemmini-ibert", seq).ops if o.name == "layer0.attn.softmax"
        )
        for seq in (512, 4096)
    }
    assert where == {512: "fused", 4096: "sfu"}


@pytest.mark.parametrize(("acc_kb", "seq", "paper"), [(128, 512, -0.78), (256, 512, -0.78), (256, 4096, -0.22)])
def test_with_timeloops_dram_bandwidth_qk_softmax_stays_within_15_points(acc_kb: int, seq: int, paper: float) -> None:
    (r,) = fusion_study(tstack.load_model("bert-base"), _design(acc_kb, "gemmini-ibert-timeloop"), seq, ["qk+softmax"])
    assert r.change == pytest.approx(paper, abs=0.15)


def test_with_timeloops_dram_bandwidth_out_layernorm_flips_with_the_accumulator() -> None:
    """At 8 B/cycle W_out + LayerNorm hurts at 128 kB and helps at 256 kB, within 15 points of the paper's -4%."""
    spec = tstack.load_model("bert-base")
    (small,) = fusion_study(spec, _design(128, "gemmini-ibert-timeloop"), 512, ["out+layernorm"])
    (large,) = fusion_study(spec, _design(256, "gemmini-ibert-timeloop"), 512, ["out+layernorm"])
    assert small.change > 0
    assert large.change == pytest.approx(-0.04, abs=0.15) and large.change <= 0
