"""Fusing a matmul with the Softmax or LayerNorm after it (the paper's section 5.5.2, Figs. 21-22).

Non-fused: the matmul takes Gemmini's default tiles and writes its output to DRAM; the special-function units read it
back, normalize and write the result. Fusion-optimized: the tiler forces whole output rows into the accumulator
(`tiled_matmul_auto` with a LayerNorm/Softmax activation), so the normalization unit reduces each row in place and
nothing goes back to DRAM between the two ops; the price is a constrained tiling (and, if the row does not fit the
double-buffered accumulator, a single-buffered one).

Two parts of the model decide the outcome, each from the hardware, not fitted:
- the round trip an unfused pair pays is at the width the nonlinear op takes in I-BERT's integer pipeline
  (`nonlinear_input_bits` of the design: gemmini-ibert 32, since IntSoftmax takes the raw int32 Q x K^T product
  and IntLayerNorm a 22-bit sum), written by the matmul and read back by the special-function units;
- fused, the normalization unit's row passes over one output tile run while the array computes the next tile into
  the other half of the double-buffered accumulator (`engine.exposed_reduction_cycles`), so they are hidden
  except the last tile's; a tile that does not fit double-buffered runs single-buffered, passes serial.

Gemmini's forced full-row tile holds 32 rows of d_model in half of the accumulator, so the weights are re-read for every
32 rows; W_out and W2 have the same bytes per MAC, so in this model they pay the same relative matmul penalty and
differ only in how much the saved LayerNorm round trip weighs. Whether that penalty outweighs the round trip depends
on the DRAM bandwidth; the measured changes on gemmini-ibert (predicted DMA), its -calibrated variant and
gemmini-ibert-timeloop, beside the paper's, are in benchmarks/RESULTS-mapping.md section B. None is fitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from tstack.errors import WorkloadError
from tstack.hardware.design import design_of
from tstack.hardware.types import Hardware
from tstack.simulate.engine import fusion_pair
from tstack.simulate.nonlinear import nonlinear_cost
from tstack.workload.analysis import MAX_SEQ_LEN, check_count
from tstack.workload.identity import Block, OpRole
from tstack.workload.model import ModelSpec
from tstack.workload.ops import Op, OpKind, Phase
from tstack.workload.transformer import transformer_ops


@dataclass(frozen=True, slots=True)
class FusionTarget:
    """A matmul of a layer and the kind of nonlinear op fused into it; the op taken is the layer's first of that
    kind (for a LayerNorm, the attention block's), applied to the matmul's own output rows."""

    matmul_block: Block
    matmul_role: OpRole
    nonlinear: OpKind


# pair name -> what it fuses
PAIRS: dict[str, FusionTarget] = {
    "qk+softmax": FusionTarget(Block.ATTENTION, OpRole.QK, OpKind.SOFTMAX),
    "out+layernorm": FusionTarget(Block.ATTENTION, OpRole.OUT, OpKind.LAYERNORM),
    "w2+layernorm": FusionTarget(Block.FFN, OpRole.DOWN, OpKind.LAYERNORM),
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


def pair_ops(ops: Sequence[Op], pair: FusionTarget) -> tuple[Op, Op]:
    """The (matmul, nonlinear op) of `pair` among layer 0 of `ops`; the nonlinear op as it stands in the layer (the
    study relabels a LayerNorm after the projection it normalizes)."""
    layer0 = [op for op in ops if op.layer == 0]
    matmul = next(op for op in layer0 if op.block is pair.matmul_block and op.role is pair.matmul_role)
    return matmul, next(op for op in layer0 if op.kind is pair.nonlinear)


def fusion_study(spec: ModelSpec, hw: Hardware, seq: int, pairs: list[str] | None = None) -> list[FusionResult]:
    """Each pair of layer 0, non-fused and fusion-optimized, on `hw` (which needs a normalization unit)."""
    if hw.normalization is None or hw.activations is None:
        raise WorkloadError(f"{hw.name!r} has no normalization unit to fuse into; use e.g. gemmini-ibert")
    if spec.family.value != "encoder":
        raise WorkloadError(f"the fusion study runs encoders (the paper's BERT-Base); {spec.name!r} is a decoder")
    check_count(seq, "sequence length", MAX_SEQ_LEN)
    ops = transformer_ops(spec, Phase.ENCODER, seq)
    results = []
    for pair in pairs or list(PAIRS):
        if pair not in PAIRS:
            raise WorkloadError(f"unknown fusion pair {pair!r}; choose from {', '.join(PAIRS)}")
        matmul, nonlinear = pair_ops(ops, PAIRS[pair])
        if nonlinear.kind is OpKind.LAYERNORM:  # normalize the projection's own output rows
            nonlinear = replace(nonlinear, name=f"{matmul.name}.layernorm")
        passes = nonlinear_cost(nonlinear, replace(hw, fuse_nonlinear=True), follows_matmul=True).latency_cycles
        plain, apart, forced, together = fusion_pair(matmul, nonlinear, passes, hw, hw.cost_options)
        acc = design_of(hw).accumulator.capacity_bytes
        results.append(
            FusionResult(
                pair, hw.name, acc, seq, PairLatency(plain, apart.latency_cycles), PairLatency(forced, together)
            )
        )
    return results
