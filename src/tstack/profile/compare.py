"""Prediction vs. measurement: the workload layer's roofline beside the profiled time, per op class.

The prediction counts every op of the same workload (phase, sequence length, batch) at 32-bit precision, since
the profiled model runs in fp32. Two models:

- ``roofline``: each op takes max(FLOPs / peak, bytes / bandwidth) on the device (the workload layer's
  `roofline`), with the calibrated GEMM rate as the peak and the copy bandwidth as the memory roof.
- ``calibrated`` (the default when a `Calibration` is given), three refinements, each measured by the calibration:
  1. act-to-act matmuls (class mha_act) are batched small-K matmuls, which reach only a fraction of the GEMM rate
     on a CPU; their compute roof is the calibrated attention-matmul rate instead of the GEMM rate;
  2. Softmax runs at the calibrated softmax rate (elements per second on a heads x l x l score tensor): exp makes
     it several times slower than a memory pass on a CPU (measured 4-7x under the copy roof);
  3. eager attention in `transformers` scales the scores as a separate elementwise op over the score tensor (BERT,
     Llama: ``* scaling``; GPT-2: ``/ sqrt(d)``), which the workload layer, like the paper, folds into the matmul;
     one such pass over every Softmax's elements is added to the residual/elementwise class, at the calibrated
     scaling rate.
  All other ops as in ``roofline``.
  CPU calibrations only: on a GPU the calibration's small attention-shaped kernels are launch-bound (H200: the
  attention matmul at 3.4 TFLOP/s against 26.9 for the GEMM) while the model's are not, and refinement 1 predicted
  act-to-act 6.7x too slow at l = 512 (benchmarks/RESULTS-profile.md); a GPU calibration gets the plain
  ``roofline`` of its measured rates.

Measured shares are over all profiled self time (data movement included, which the prediction has no class for);
predicted shares are over the predicted total.
"""

from __future__ import annotations

from dataclasses import dataclass

from tstack.profile.calibrate import FP32_BITS, Calibration, calibrate_attention
from tstack.profile.classify import MEASURED_CLASSES
from tstack.profile.measure import ProfileResult
from tstack.workload.analysis import analyze_workload, build_workload
from tstack.workload.counting import Convention
from tstack.workload.ops import OpClass, OpKind, Phase, Role, total_elements
from tstack.workload.roofline import RooflineDevice


@dataclass(frozen=True, slots=True)
class ClassComparison:
    op_class: str
    predicted_s: float
    measured_s: float
    predicted_share: float
    measured_share: float

    @property
    def share_error_points(self) -> float:
        """Predicted minus measured share, in percentage points."""
        return 100.0 * (self.predicted_share - self.measured_share)

    @property
    def time_ratio(self) -> float:
        """Predicted over measured time (1 = exact); inf when nothing was measured."""
        return self.predicted_s / self.measured_s if self.measured_s else float("inf")


@dataclass(frozen=True, slots=True)
class Comparison:
    result: ProfileResult
    device: RooflineDevice
    method: str  # "roofline" or "calibrated"
    classes: tuple[ClassComparison, ...]
    calibration: Calibration | None = None  # the rates the calibrated method used

    @property
    def predicted_s(self) -> float:
        return sum(c.predicted_s for c in self.classes)

    def of(self, op_class: str) -> ClassComparison:
        return next(c for c in self.classes if c.op_class == op_class)


def predict_class_times(
    result: ProfileResult, device: RooflineDevice, calibration: Calibration | None = None
) -> dict[str, float]:
    """Predicted seconds per op class for the workload `result` measured (see the module docstring)."""
    workload = build_workload(result.model, result.seq_len, phase=result.phase, batch=result.batch, bits=FP32_BITS)
    analysis = analyze_workload(result.model, workload, Convention.DEFAULT)
    peak = device.peak_at(FP32_BITS)
    bandwidth = device.mem_bandwidth_bytes_per_s
    out: dict[str, float] = {}

    def add(op_class: str, seconds: float) -> None:
        out[op_class] = out.get(op_class, 0.0) + seconds

    for op, workload_op in zip(analysis.ops, workload.ops, strict=True):  # one count per op, in order
        rate = peak
        if calibration is not None and op.kind is OpKind.MATMUL and op.op_class is OpClass.MHA_ACT:
            rate = calibration.attention_matmul_flops_per_s
        t = max(op.flops / rate, op.mops_bytes / bandwidth)
        if calibration is not None and op.kind is OpKind.SOFTMAX:
            out_operand = workload_op.operand(Role.OUTPUT)
            scores = total_elements(out_operand, workload_op) if out_operand is not None else 0
            if calibration.softmax_elements_per_s:
                t = scores / calibration.softmax_elements_per_s
            if calibration.scale_elements_per_s:
                add(str(OpClass.RESIDUAL), scores / calibration.scale_elements_per_s)
        add(str(op.op_class), t)
    return out


def compare(
    result: ProfileResult, *, device: RooflineDevice | None = None, calibration: Calibration | None = None
) -> Comparison:
    """Per class, predicted vs. measured time and share. Give a `calibration` (refined model on a CPU, plain roofline
    of the calibrated rates on a GPU) or a `device` (plain roofline)."""
    if device is None:
        if calibration is None:
            raise ValueError("compare needs a device or a calibration")
        device = calibration.to_device()
    if calibration is not None and calibration.device != "cpu":
        calibration = None  # the refinements are for CPUs (module docstring); the calibrated rates stay as the device
    predicted = predict_class_times(result, device, calibration)
    p_total = sum(predicted.values())
    m_total = result.profiled_s
    classes = [c for c in MEASURED_CLASSES if c in predicted or result.time_s(c) > 0]
    rows = tuple(
        ClassComparison(
            c,
            predicted.get(c, 0.0),
            result.time_s(c),
            predicted.get(c, 0.0) / p_total if p_total else 0.0,
            result.time_s(c) / m_total if m_total else 0.0,
        )
        for c in classes
    )
    method = "calibrated" if calibration is not None else "roofline"
    return Comparison(result, device, method, rows, calibration)


def calibration_for(result: ProfileResult, base: Calibration) -> Calibration:
    """`base` with attention rates measured on the score tensor of `result` (heads x l x l, at the result's l) when
    it ran full-length attention (encoder, prefill); `base` as it is for one-token steps (generate, decode) and on
    GPUs, where the refinements do not apply."""
    spec = result.model
    if base.device != "cpu" or result.phase not in (Phase.ENCODER, Phase.PREFILL):
        return base
    return calibrate_attention(base, seq=result.seq_len, heads=spec.heads[0] * result.batch, head_dim=spec.head_dim)
