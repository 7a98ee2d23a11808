"""The fusion study (paper section 5.5.2): the effects whose sign tstack reproduces.

Measured (BERT-Base, gemmini-ibert with a 256 kB scratchpad): Q x K + Softmax fusion -4% (128 kB accumulator) and
-25% (256 kB) at l = 512 (paper: -78%); W2 + LayerNorm +217% / +63% (paper: +27%); W_out + LayerNorm +194% at
128 kB (paper: +83% on the matmul). Not reproduced (see the issue note): Q x K + Softmax at l = 4096 (+84%, paper
-22%) and W_out + LayerNorm at 256 kB (+55%, paper -4%); Gemmini's forced full-row tiles are memory-bound under
tstack's calibrated 5 B/cycle DMA.
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


def _design(acc_kb: int) -> Hardware:
    base = tstack.load_hardware("gemmini-ibert")
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
