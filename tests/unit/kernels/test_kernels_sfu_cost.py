"""Special-function-unit costs derive from the integer kernels' operation counts (tstack.kernels.opcount):
passes over a row from the kernel's reductions, arithmetic from its operations per element."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

import tstack
from tstack.errors import SpecError
from tstack.hardware.types import ActivationUnits, Hardware, NormalizationUnit
from tstack.kernels.opcount import op_counts
from tstack.simulate import nonlinear
from tstack.simulate.nonlinear import nonlinear_cost, sfu_cycles
from tstack.spec.hardware import load_hardware
from tstack.workload.ops import Op, OpKind, Phase
from tstack.workload.transformer import transformer_ops


def _op(kind: OpKind, seq: int = 512) -> Op:
    ops = transformer_ops(tstack.load_model("bert-base"), Phase.ENCODER, seq)
    return next(op for op in ops if op.kind is kind)


def _with_units(hw: Hardware, **changes: object) -> Hardware:
    assert hw.activations is not None
    return dataclasses.replace(hw, activations=dataclasses.replace(hw.activations, **changes))


@pytest.mark.parametrize(("kind", "name"), [(OpKind.SOFTMAX, "softmax"), (OpKind.LAYERNORM, "layernorm")])
def test_reduction_passes_come_from_the_kernel(kind: OpKind, name: str) -> None:
    hw = load_hardware("gemmini-ibert")
    op = _op(kind)
    n = nonlinear._elements(op)
    counts = op_counts(name, op.dim["N"], "ibert")
    assert counts.reductions == 2 and counts.passes == 3  # max then Σ exp; Σq then Σ(q - mean)²
    parts = sfu_cycles(op, hw, name)
    assert parts == (counts.reductions * n / 16, n / 16)  # pipelined units: streaming bounds every pass


def test_a_kernel_with_another_reduction_costs_another_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    hw = load_hardware("gemmini-ibert")
    op = _op(OpKind.LAYERNORM)
    n = nonlinear._elements(op)
    before = sfu_cycles(op, hw, "layernorm")
    real = op_counts("layernorm", op.dim["N"])
    # e.g. a LayerNorm that takes the mean and the variance in separate passes from a stored centred row
    three = dataclasses.replace(real, passes=4, pass_ops=(1.0, 1.0, *real.pass_ops[1:]), reductions=3)
    monkeypatch.setattr(nonlinear, "op_counts", lambda *a, **k: three)
    after = sfu_cycles(op, hw, "layernorm")
    assert before is not None and after is not None
    assert after[0] - before[0] == pytest.approx(n / 16) and after[1] == before[1]


def test_operation_counts_set_the_cost_of_alu_limited_units() -> None:
    hw = load_hardware("gemmini-ibert")
    op = _op(OpKind.SOFTMAX)
    n = nonlinear._elements(op)
    pipelined = sfu_cycles(op, hw, "softmax")
    narrow = _with_units(hw, ops_per_cycle=4)
    ibert = sfu_cycles(op, narrow, "softmax")
    gemmini = sfu_cycles(op, _with_units(narrow, kernels="gemmini"), "softmax")
    assert pipelined is not None and ibert is not None and gemmini is not None
    counts = op_counts("softmax", op.dim["N"], "ibert")
    # pass 1 (a max, 1 op/element) still streams; pass 2 (i-exp, requantization, Σ: 17 ops/element) is
    # arithmetic-bound at 16 units x 4 ops per cycle.
    assert ibert[0] == pytest.approx(n / 16 + n * counts.pass_ops[1] / 64)
    assert ibert[0] > gemmini[0] > pipelined[0]  # Gemmini's i-exp has fewer operations than I-BERT's
    # GELU: 10 operations per element on 16 x 4 per cycle
    gelu = _op(OpKind.GELU)
    g = sfu_cycles(gelu, narrow, "gelu")
    assert g == (0.0, pytest.approx(nonlinear._elements(gelu) * 10 / 64))


def test_override_and_fused_cost() -> None:
    hw = load_hardware("gemmini-ibert")
    op = _op(OpKind.SOFTMAX)
    n = nonlinear._elements(op)
    # the normalization unit's `passes` overrides the kernel's count (an analytic model's, or another unit's)
    one = dataclasses.replace(hw, normalization=NormalizationUnit(16, (("softmax", 1),)))
    assert sfu_cycles(op, one, "softmax") == (n / 16, n / 16)
    none = dataclasses.replace(hw, normalization=NormalizationUnit(16, (("softmax", 0),)))
    assert sfu_cycles(op, none, "softmax") is None  # a zero override: the unit cannot run it
    # fused into the producing matmul, the output pass rides the accumulator read-out: reductions only
    fused = nonlinear_cost(op, hw, follows_matmul=True)
    assert fused.where == "fused" and fused.latency_cycles == pytest.approx(2 * n / 16)


def test_presets_keep_their_paper_calibrated_pass_counts() -> None:
    # paper-analytic states the paper's counts explicitly; for LayerNorm and Softmax they equal the kernels'.
    analytic = load_hardware("paper-analytic")
    assert analytic.normalization is not None
    for name in ("softmax", "layernorm"):
        assert analytic.normalization.passes_for(name) == op_counts(name, 128).reductions
    ibert = load_hardware("gemmini-ibert")
    assert ibert.normalization is not None and ibert.normalization.passes_for("softmax") is None
    assert ibert.activations == ActivationUnits(16, ibert.activations.ops, None, "ibert")


def _write(tmp_path: Path, units: dict[str, object]) -> Path:
    data = yaml.safe_load((Path(tstack.__file__).parent / "presets/hardware/gemmini-ibert.yaml").read_text())
    data["activation_units"].update(units)
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_hardware_files_name_the_kernels_and_unit_width(tmp_path: Path) -> None:
    hw = load_hardware(_write(tmp_path, {"ops_per_cycle": 8, "kernels": "gemmini"}))
    assert hw.activations is not None
    assert hw.activations.ops_per_cycle == 8 and hw.activations.kernels == "gemmini"
    slower = tstack.simulate("bert-base", hw, 512).latency_cycles
    assert slower >= tstack.simulate("bert-base", "gemmini-ibert", 512).latency_cycles
    for bad in ({"kernels": "fast"}, {"ops_per_cycle": 0}):
        with pytest.raises(SpecError):
            load_hardware(_write(tmp_path, bad))
