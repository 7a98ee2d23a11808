"""Fusing a matmul with the Softmax or LayerNorm after it (the paper's section 5.5.2, Figs. 21-22).

Non-fused: the matmul takes Gemmini's default tiles and writes its output to DRAM; the special-function units read it
back, normalize and write the result. Fusion-optimized: the tiler forces whole output rows into the accumulator
(`tiled_matmul_auto` with a LayerNorm/Softmax activation), so the normalization unit reduces each row in place and
nothing goes back to DRAM between the two ops; the price is a constrained tiling (and, if the row does not fit the
double-buffered accumulator, a single-buffered one).

Timeloop's semantics (`tstack.mapping.mapspace.timeloop_hardware`: no double buffering, no fill/drain) were tried
and change no sign and no magnitude by more than a point: both tilings here are Gemmini's own (the heuristic and the
forced full-row tile), so the mapspace differences do not apply, and the gaps come from the DMA. Under tstack's
calibrated 5 B/cycle the forced full-row tiles are memory-bound: Q x K + Softmax at l = 4096 is +84% (paper -22%)
and W_out + LayerNorm at 256 kB +56% (paper -4%). At the bus's 16 B/cycle peak, W_out + LayerNorm at 256 kB is -2%
(paper -4%) and W2 + LayerNorm 0% (paper +27%), Q x K + Softmax at 4096 still +57%. No `--semantics` switch is offered
for this study, since it would change nothing (benchmarks/RESULTS-mapping.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tstack.errors import WorkloadError
from tstack.hardware.types import Hardware, Tensor
from tstack.mapping.gemmini_tiler import FusedActivation
from tstack.simulate.engine import matmul_results, matmul_shapes
from tstack.simulate.nonlinear import nonlinear_cost
from tstack.workload.model import ModelSpec
from tstack.workload.ops import Op, OpKind, Phase
from tstack.workload.transformer import transformer_ops

# pair name -> (matmul op suffix, nonlinear op kind); LayerNorm is applied to the projection's output rows
PAIRS: dict[str, tuple[str, OpKind]] = {
    "qk+softmax": ("attn.qk", OpKind.SOFTMAX),
    "out+layernorm": ("attn.out", OpKind.LAYERNORM),
    "w2+layernorm": ("ffn.down", OpKind.LAYERNORM),
}


@dataclass(frozen=True, slots=True)
class PairLatency:
    matmul_cycles: float
    nonlinear_cycles: float

    @property
    def total_cycles(self) -> float:
        return self.matmul_cycles + self.nonlinear_cycles


@dataclass(frozen=True, slots=True)
class FusionResult:
    pair: str
    hardware: str
    accumulator_bytes: int
    seq_len: int
    non_fused: PairLatency
    fused: PairLatency

    @property
    def change(self) -> float:
        """Relative change of the pair's latency when fused (negative: fusion helps)."""
        return self.fused.total_cycles / self.non_fused.total_cycles - 1


def _ops(spec: ModelSpec, seq: int) -> dict[str, Op]:
    return {op.name: op for op in transformer_ops(spec, Phase.ENCODER, seq)}


def fusion_study(spec: ModelSpec, hw: Hardware, seq: int, pairs: list[str] | None = None) -> list[FusionResult]:
    """Each pair of layer 0, non-fused and fusion-optimized, on `hw` (which needs a normalization unit)."""
    if hw.normalization is None or hw.activations is None:
        raise WorkloadError(f"{hw.name!r} has no normalization unit to fuse into; use e.g. gemmini-ibert")
    if spec.family.value != "encoder":
        raise WorkloadError(f"the fusion study runs encoders (the paper's BERT-Base); {spec.name!r} is a decoder")
    ops = _ops(spec, seq)
    results = []
    for pair in pairs or list(PAIRS):
        if pair not in PAIRS:
            raise WorkloadError(f"unknown fusion pair {pair!r}; choose from {', '.join(PAIRS)}")
        suffix, kind = PAIRS[pair]
        matmul = ops[f"layer0.{suffix}"]
        nonlinear = next(o for name, o in ops.items() if name.startswith("layer0.") and o.kind is kind)
        if kind is OpKind.LAYERNORM:  # normalize the projection's own output rows
            nonlinear = replace(nonlinear, name=f"{matmul.name}.layernorm")
        shapes = matmul_shapes(matmul)
        act = FusedActivation.SOFTMAX if kind is OpKind.SOFTMAX else FusedActivation.LAYERNORM
        has_bias = any(o.role.value == "bias" for o in matmul.operands)
        _, plain, _, _ = matmul_results(shapes, hw, FusedActivation.NONE, 8, hw.cost_options, has_bias)
        _, forced, _, _ = matmul_results(shapes, hw, act, 8, hw.cost_options, has_bias)
        apart = nonlinear_cost(nonlinear, hw, follows_matmul=False).latency_cycles
        together = nonlinear_cost(nonlinear, replace(hw, fuse_nonlinear=True), follows_matmul=True).latency_cycles
        acc = hw.innermost_holding(Tensor.OUTPUTS).capacity_bytes
        results.append(FusionResult(pair, hw.name, acc, seq, PairLatency(plain, apart), PairLatency(forced, together)))
    return results
