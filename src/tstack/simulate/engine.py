"""End to end: latency, energy, EDP, utilization and breakdowns of a workload on a hardware design.

Ops run one after another (no overlap between ops, except the row passes of a LayerNorm/Softmax fused into a
matmul, which overlap the matmul's next output tile: `exposed_reduction_cycles`). Matmuls and convolutions run on
the PE array with a mapping from the chosen mapper (convolutions as im2col matmuls, or, with the exhaustive mapper,
as 7-loop convolutions where that mapping's EDP is lower); other ops run fused, on the
special-function units or on the host (`tstack.simulate.nonlinear`). Where an op crosses between the integer
accelerator and a floating-point host, the host dequantizes the matmul output it consumes and requantizes the
activation it hands back; that work is reported as its own category, as in the paper's Fig. 14.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingType
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from tstack.errors import InfeasibleError, SpecError
from tstack.hardware.design import design_of, single_buffered
from tstack.hardware.types import CostOptions, Hardware
from tstack.mapping.conv.cost import evaluate_conv
from tstack.mapping.conv.loopnest import ConvMapping, ConvShape
from tstack.mapping.conv.mappers import exhaustive_conv
from tstack.mapping.matmul.cost import Cost, MatmulShapes, OperandBits, matmul_costs
from tstack.mapping.matmul.gemmini_tiler import FusedActivation, tiled_matmul_auto
from tstack.mapping.matmul.loopnest import Mapping, MatmulShape
from tstack.mapping.matmul.mappers import MapperName, Objective, best_mapping, gemmini_memory
from tstack.simulate.nonlinear import (
    NonlinearCost,
    Placement,
    dequantize_cycles,
    nonlinear_cost,
    requantize_cycles,
)
from tstack.workload.identity import Tensor
from tstack.workload.ops import Op, OpClass, Operand, OpKind, Role, Workload, total_elements

CATEGORIES = ("matmul", "softmax", "layernorm", "gelu", "resadd", "dequant", "other")
_CATEGORY = {
    OpKind.MATMUL: "matmul",
    OpKind.CONV: "matmul",
    OpKind.SOFTMAX: "softmax",
    OpKind.LAYERNORM: "layernorm",
    OpKind.RMSNORM: "layernorm",
    OpKind.BATCHNORM: "layernorm",
    OpKind.GELU: "gelu",
    OpKind.GELU_TANH: "gelu",
    OpKind.RELU: "gelu",
    OpKind.SWIGLU: "gelu",
}
_FUSED_ACT = {
    OpKind.SOFTMAX: FusedActivation.SOFTMAX,
    OpKind.LAYERNORM: FusedActivation.LAYERNORM,
    OpKind.GELU: FusedActivation.IGELU,
    OpKind.GELU_TANH: FusedActivation.IGELU,
    OpKind.RELU: FusedActivation.RELU,
}


@dataclass(frozen=True, slots=True)
class OpResult:
    name: str
    kind: OpKind
    op_class: OpClass
    category: str
    where: Placement
    latency_cycles: float
    energy_pj: float
    macs: int
    dram_bytes: float
    mapping: Mapping | None = None  # the matmul (or a conv's im2col matmul) mapping
    dequant_cycles: float = 0.0  # host de/quantization charged to this op (in latency_cycles too)
    conv_mapping: ConvMapping | None = None  # set when a conv runs as a 7-loop convolution (exhaustive mapper)


@dataclass(frozen=True, slots=True)
class ModelResult:
    workload: Workload
    hardware: Hardware
    ops: tuple[OpResult, ...]

    @property
    def latency_cycles(self) -> float:
        return sum(o.latency_cycles for o in self.ops)

    @property
    def latency_s(self) -> float:
        return self.latency_cycles / self.hardware.clock_hz

    @property
    def energy_pj(self) -> float:
        return sum(o.energy_pj for o in self.ops)

    @property
    def edp(self) -> float:
        """Energy-delay product in pJ x cycles."""
        return self.energy_pj * self.latency_cycles

    @property
    def macs(self) -> int:
        return sum(o.macs for o in self.ops)

    @property
    def utilization(self) -> float:
        return self.macs / (self.latency_cycles * self.hardware.pe.macs_per_cycle)

    def matmul_cycles(self) -> float:
        return sum(o.latency_cycles - o.dequant_cycles for o in self.ops if o.category == "matmul")

    @property
    def matmul_utilization(self) -> float:
        return self.macs / (self.matmul_cycles() * self.hardware.pe.macs_per_cycle)

    def by_category(self) -> MappingType[str, float]:
        """Latency cycles per category; de/quantization split out of the matmuls it surrounds."""
        out = dict.fromkeys(CATEGORIES, 0.0)
        for o in self.ops:
            out[o.category] += o.latency_cycles - o.dequant_cycles
            out["dequant"] += o.dequant_cycles
        return out


def matmul_shapes(op: Op) -> list[MatmulShape]:
    """The op as matmul shapes: one, or one per value of a swept dim (decoder steps attending to t keys)."""
    if op.sweep is None:
        return [_matmul_shape(op.dim, op)]
    return [_matmul_shape({**op.dim, op.sweep.dim: int(t)}, op) for t in op.sweep.values()]


def matmul_shape(op: Op) -> MatmulShape:
    """The op as one matmul (convolutions as im2col); a swept op at its largest size."""
    return _matmul_shape(op.dim, op)


def _matmul_shape(d: MappingType[str, int], op: Op) -> MatmulShape:
    if op.kind is OpKind.CONV:  # im2col: output pixels x output channels, reduced over C x R x S
        return MatmulShape(d["N"] * d["P"] * d["Q"], d["K"], d["C"] * d["R"] * d["S"], op.repeat)
    return MatmulShape(d["M"], d["N"], d["K"], d.get("B", 1) * d.get("G", 1) * op.repeat)


@lru_cache(maxsize=65536)
def _gemmini_mapping(shape: MatmulShape, hw: Hardware, act: FusedActivation) -> tuple[Mapping, bool]:
    tiling = tiled_matmul_auto(shape.m, shape.n, shape.k, gemmini_memory(hw), act=act)
    return Mapping.from_gemmini(tiling, hw.pe.rows), tiling.fits


@lru_cache(maxsize=65536)
def _searched_mapping(
    shape: MatmulShape, hw: Hardware, act: FusedActivation, bits: OperandBits, options: CostOptions
) -> tuple[Mapping, bool]:
    """The exhaustive mapper's best-EDP mapping; a fused LayerNorm/Softmax needs whole output rows on chip."""
    rows = (shape.n,) if act in (FusedActivation.LAYERNORM, FusedActivation.SOFTMAX) else None
    best = best_mapping(shape, hw, bits, options, Objective.EDP, n_tiles=rows)
    if best is None:  # no row-sized tile fits: fall back to the heuristic's overflowing tile
        return _gemmini_mapping(shape, hw, act)
    return best.mapping, True


@lru_cache(maxsize=65536)
def _cosa_mapping(shape: MatmulShape, hw: Hardware, bits: OperandBits, options: CostOptions) -> tuple[Mapping, bool]:
    from tstack.mapping.matmul.cosa import cosa

    return cosa(shape, hw, bits, options).mapping, True


def _mapped(
    shapes: list[MatmulShape],
    hw: Hardware,
    act: FusedActivation,
    bits: OperandBits,
    options: CostOptions,
    mapper: MapperName,
) -> list[tuple[Mapping, bool]]:
    if mapper is MapperName.EXHAUSTIVE:
        return [_searched_mapping(shape, hw, act, bits, options) for shape in shapes]
    if mapper is MapperName.COSA and act not in (FusedActivation.LAYERNORM, FusedActivation.SOFTMAX):
        return [_cosa_mapping(shape, hw, bits, options) for shape in shapes]
    return [_gemmini_mapping(shape, hw, act) for shape in shapes]


def _bits(out_bits: int, has_bias: bool, options: CostOptions) -> OperandBits:
    return OperandBits(out=out_bits, bias=8 if has_bias and options.bias_matrix else 0)


def _fused_row_tiles(
    shapes: list[MatmulShape],
    hw: Hardware,
    act: FusedActivation,
    options: CostOptions,
    has_bias: bool,
    mapper: MapperName = MapperName.GEMMINI,
) -> tuple[int, bool]:
    """(output tiles the normalization unit processes, whether they are double-buffered) of a matmul whose output
    rows a fused LayerNorm/Softmax reduces in the accumulator."""
    mapped = _mapped(shapes, hw, act, _bits(8, has_bias, options), options, mapper)
    tiles = sum(-(-s.m // m.tile_m) * -(-s.n // m.tile_n) * s.batch for s, (m, _) in zip(shapes, mapped, strict=True))
    return tiles, all(f for _, f in mapped) and design_of(hw).accumulator.double_buffered


def exposed_reduction_cycles(reduction_cycles: float, matmul_cycles: float, tiles: int, overlapped: bool) -> float:
    """The part of a fused normalization's row passes that the matmul does not hide.

    With a double-buffered accumulator the normalization unit reduces the rows of one output tile while the array
    computes the next tile into the other half (Gemmini's execute and store controllers run concurrently, and the
    normalizer sits on the accumulator's read-out path), so only what exceeds the matmul is exposed, and at least
    the last tile's passes (pipeline drain). A single-buffered accumulator has no other half: the passes are serial.
    """
    if not overlapped or tiles <= 0:
        return reduction_cycles
    return max(reduction_cycles - matmul_cycles, reduction_cycles / tiles)


class MatmulTotals(NamedTuple):
    """A matmul op's shapes priced together: the last shape's mapping, and the summed latency, energy and DRAM
    bytes."""

    mapping: Mapping
    latency_cycles: float
    energy_pj: float
    dram_bytes: float


class FusionPair(NamedTuple):
    """A matmul and the Softmax/LayerNorm after it, non-fused and fused (`fusion_pair`)."""

    matmul_cycles: float  # the matmul writing its output for the op to read apart
    apart: NonlinearCost  # the op run apart
    fused_matmul_cycles: float  # the matmul with whole output rows forced into the accumulator
    fused_exposed_cycles: float  # the fused op's row passes the matmul does not hide


def matmul_results(
    shapes: list[MatmulShape],
    hw: Hardware,
    act: FusedActivation,
    out_bits: int,
    options: CostOptions,
    has_bias: bool,
    mapper: MapperName = MapperName.GEMMINI,
) -> MatmulTotals:
    """Summed latency, energy and DRAM bytes of the shapes (one vectorized cost call), and the last mapping."""
    bits = _bits(out_bits, has_bias, options)
    mapped = _mapped(shapes, hw, act, bits, options, mapper)
    mappings = [m for m, _ in mapped]
    fits = all(f for _, f in mapped)
    # a fused full-row tile that overflows the double buffer runs single-buffered
    design = hw if fits else single_buffered(hw)
    opts = options if fits else replace(options, overlap_transfers=False)
    costs = matmul_costs(
        MatmulShapes(
            np.array([s.m for s in shapes]),
            np.array([s.n for s in shapes]),
            np.array([s.k for s in shapes]),
            shapes[0].batch,
        ),
        np.array([m.tile_m for m in mappings]),
        np.array([m.tile_n for m in mappings]),
        np.array([m.tile_k for m in mappings]),
        np.array([m.order_code for m in mappings]),
        design,
        bits,
        opts,
    )
    return MatmulTotals(
        mappings[-1],
        float(costs.latency_cycles.sum()),
        float(costs.energy_pj.sum()),
        float(costs.dram_bytes.sum()),
    )


def conv_shape(op: Op) -> ConvShape:
    """A convolution op as the 7-loop conv mapspace sees it (padding folded into its input size)."""
    d = op.dim
    return ConvShape(d["N"], d["K"], d["C"], d["P"], d["Q"], d["R"], d["S"], op.attr("stride", 1))


@lru_cache(maxsize=4096)
def _direct_conv(
    conv: ConvShape, hw: Hardware, bits: OperandBits, options: CostOptions
) -> tuple[ConvMapping, Cost] | None:
    try:
        best = exhaustive_conv(conv, hw, bits, options)
    except InfeasibleError:
        return None
    return best.mapping, evaluate_conv(conv, best.mapping, hw, bits, options)


def direct_conv_if_better(
    op: Op, hw: Hardware, out_bits: int, options: CostOptions, has_bias: bool, im2col_edp: float
) -> tuple[ConvMapping, float, float, float] | None:
    """(mapping, latency, energy, DRAM bytes) of the conv's best 7-loop mapping when its EDP beats `im2col_edp`
    (the op's EDP as an im2col matmul), else None. The two mapspaces do not contain each other (im2col can fold
    C x R x S over the array rows; a direct conv reuses input windows instead of reading the R x S times larger
    im2col matrix), so the exhaustive mapper takes the better of their optima."""
    direct = _direct_conv(conv_shape(op), hw, _bits(out_bits, has_bias, options), options)
    if direct is None:
        return None
    mapping, cost = direct
    latency, energy = cost.latency_cycles * op.repeat, cost.energy_pj * op.repeat
    if latency * energy >= im2col_edp:
        return None
    return mapping, latency, energy, cost.dram_bytes * op.repeat


_HANDED_ON = frozenset({Tensor.ACTIVATION, Tensor.PROBABILITIES})


def handed_on_input(op: Op) -> Operand | None:
    """The input a matmul or conv takes from the op before it, which a host op hands back requantized: a
    projection's, conv's or classifier's activation, scores x V's probabilities; None for Q x K^T (its query and key
    come from the projections, or the KV cache)."""
    return next((o for o in op.operands if o.role is Role.INPUT and o.tensor in _HANDED_ON), None)


_FUSION_DECIDED = frozenset({OpKind.SOFTMAX, OpKind.LAYERNORM, OpKind.RMSNORM})


def fusion_pair(
    matmul: Op,
    op: Op,
    fused_passes: float,
    hw: Hardware,
    options: CostOptions,
    mapper: MapperName = MapperName.GEMMINI,
) -> FusionPair:
    """A matmul and the Softmax/LayerNorm `op` after it, non-fused and fused. Apart, the matmul hands the op its
    output at the design's nonlinear-input width; fused, the tiler forces whole output rows into the accumulator and
    the op's row passes (`fused_passes` cycles) hide behind the next tile where the accumulator is double-buffered."""
    shapes = matmul_shapes(matmul)
    has_bias = matmul.operand(Role.BIAS) is not None
    act = FusedActivation.SOFTMAX if op.kind is OpKind.SOFTMAX else FusedActivation.LAYERNORM
    with_fusion = matmul_results(shapes, hw, act, 8, options, has_bias, mapper).latency_cycles
    without = matmul_results(
        shapes, hw, FusedActivation.NONE, hw.nonlinear_input_bits, options, has_bias, mapper
    ).latency_cycles
    apart = nonlinear_cost(op, hw, follows_matmul=False)
    tiles, overlapped = _fused_row_tiles(shapes, hw, act, options, has_bias, mapper)
    exposed = exposed_reduction_cycles(fused_passes, with_fusion, tiles, overlapped)
    return FusionPair(without, apart, with_fusion, exposed)


def _decide_fusion(
    matmul: Op, op: Op, fused: NonlinearCost, hw: Hardware, options: CostOptions, mapper: MapperName
) -> NonlinearCost:
    """Fuse a Softmax/LayerNorm into the matmul before it only if that is faster for this pair (section 5.5.2):
    fusion saves the DRAM round trip but forces whole output rows into the accumulator."""
    without, apart, with_fusion, exposed = fusion_pair(matmul, op, fused.latency_cycles, hw, options, mapper)
    if with_fusion + exposed <= without + apart.latency_cycles:
        return replace(fused, latency_cycles=exposed)
    return apart


def simulate_workload(
    workload: Workload, hw: Hardware, options: CostOptions | None = None, mapper: MapperName = MapperName.GEMMINI
) -> ModelResult:
    """Cost every op of `workload` on `hw`; matmul tiles from Gemmini's heuristic or the exhaustive mapper."""
    if mapper is MapperName.RANDOM:
        raise SpecError("simulate takes --mapper gemmini, exhaustive or cosa; random search is for `tstack mapspace`")
    options = options or hw.cost_options
    ops = workload.ops
    placement: list[Placement] = []
    nonlinear = {}
    for i, op in enumerate(ops):
        if op.kind in (OpKind.MATMUL, OpKind.CONV):
            placement.append(Placement.ARRAY)
            continue
        follows = i > 0 and ops[i - 1].kind in (OpKind.MATMUL, OpKind.CONV)
        cost = nonlinear_cost(op, hw, follows_matmul=follows)
        if cost.where is Placement.FUSED and op.kind in _FUSION_DECIDED:
            cost = _decide_fusion(ops[i - 1], op, cost, hw, options, mapper)
        nonlinear[i] = cost
        placement.append(cost.where)

    results: list[OpResult] = []
    for i, op in enumerate(ops):
        category = _CATEGORY.get(op.kind, "resadd" if op.op_class is OpClass.RESIDUAL else "other")
        if i in nonlinear:
            c = nonlinear[i]
            results.append(
                OpResult(
                    op.name, op.kind, op.op_class, category, c.where, c.latency_cycles, c.energy_pj, 0, c.dram_bytes
                )
            )
            continue
        shapes = matmul_shapes(op)
        nxt = ops[i + 1] if i + 1 < len(ops) else None
        act = FusedActivation.NONE
        if nxt is not None and placement[i + 1] is Placement.FUSED:
            act = _FUSED_ACT.get(nxt.kind, FusedActivation.NONE)
        feeds_nonlinear = (
            nxt is not None and nxt.kind not in (OpKind.MATMUL, OpKind.CONV) and act is FusedActivation.NONE
        )
        out_bits = hw.nonlinear_input_bits if feeds_nonlinear else 8
        has_bias = op.operand(Role.BIAS) is not None
        mapping, latency, energy, dram = matmul_results(shapes, hw, act, out_bits, options, has_bias, mapper)
        conv_mapping = None
        if op.kind is OpKind.CONV and mapper is MapperName.EXHAUSTIVE and op.sweep is None:
            direct = direct_conv_if_better(op, hw, out_bits, options, has_bias, latency * energy)
            if direct is not None:
                conv_mapping, latency, energy, dram = direct
        dq = 0.0
        if nxt is not None and placement[i + 1] is Placement.HOST:
            out = op.operand(Role.OUTPUT)
            assert out is not None
            dq += dequantize_cycles(hw, total_elements(out, op))
        if i > 0 and placement[i - 1] is Placement.HOST:
            act_in = handed_on_input(op)
            if act_in is not None:
                dq += requantize_cycles(hw, total_elements(act_in, op))
        macs = sum(sh.macs for sh in shapes)
        results.append(
            OpResult(
                op.name,
                op.kind,
                op.op_class,
                "matmul",
                Placement.ARRAY,
                latency + dq,
                energy,
                macs,
                dram,
                None if conv_mapping is not None else mapping,
                dq,
                conv_mapping,
            )
        )
    return ModelResult(workload, hw, tuple(results))
