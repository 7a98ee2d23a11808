"""Where a non-matmul op runs on a design, and what it costs there.

Placement, in order of preference:
1. fused into the preceding matmul's output path: an activation (GELU, ReLU) applied by the activation units as
   rows leave the accumulator costs nothing extra, since 16 units keep pace with a 16-wide array's output; a
   LayerNorm or Softmax fused there costs its normalization-unit passes over the accumulator rows (the units
   implement I-BERT's integer kernels, so a design lists an op only if it runs it in integer arithmetic); the
   simulator hides those passes behind the matmul's next tile where the accumulator is double-buffered
   (`engine.exposed_reduction_cycles`);
2. the special-function units, reading and writing DRAM through the accelerator's DMA: normalization-unit passes
   (row reductions) plus one pass of the activation units, overlapped with the transfers; how many passes and how
   much arithmetic per element come from the integer kernel's operation counts (`sfu_cycles`);
3. the host CPU, in floating point: its per-element cost, overlapped with its DRAM traffic of 4-byte floats.
An embedding gather is a DMA copy on any design.
An op that fits none of these is an error naming the op and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tstack.errors import InfeasibleError
from tstack.hardware.design import design_of
from tstack.hardware.types import Hardware
from tstack.kernels.opcount import op_counts
from tstack.workload.ops import Op, OpKind, Role, total_elements

# names the hardware files use for each op kind
OP_NAMES: dict[OpKind, str] = {
    OpKind.SOFTMAX: "softmax",
    OpKind.LAYERNORM: "layernorm",
    OpKind.RMSNORM: "rmsnorm",
    OpKind.BATCHNORM: "batchnorm",
    OpKind.GELU: "gelu",
    OpKind.GELU_TANH: "gelu",
    OpKind.RELU: "relu",
    OpKind.SWIGLU: "swiglu",
    OpKind.TANH: "tanh",
    OpKind.ADD: "add",
    OpKind.ROPE: "rope",
    OpKind.EMBEDDING: "embedding",
    OpKind.MAXPOOL: "maxpool",
    OpKind.AVGPOOL: "avgpool",
}
#: op names whose special-function-unit cost derives from an integer kernel's operation counts
SFU_KERNELS = frozenset({"gelu", "softmax", "layernorm"})
_ELEMENTWISE_FUSABLE = frozenset({OpKind.GELU, OpKind.GELU_TANH, OpKind.RELU})
_ROW_REDUCTIONS = frozenset({OpKind.SOFTMAX, OpKind.LAYERNORM, OpKind.RMSNORM})
HOST_FLOAT_BYTES = 4


class Placement(StrEnum):
    """Where an op runs: on the PE array, fused into the matmul before it, on the special-function units, on the host
    CPU, or as a DMA copy (a table gather)."""

    ARRAY = "array"
    FUSED = "fused"
    SFU = "sfu"
    HOST = "host"
    DMA = "dma"


@dataclass(frozen=True, slots=True)
class NonlinearCost:
    where: Placement
    latency_cycles: float
    energy_pj: float
    dram_bytes: float


def _elements(op: Op) -> int:
    out = op.operand(Role.OUTPUT)
    assert out is not None
    return total_elements(out, op)


def _io_elements(op: Op) -> int:
    return sum(total_elements(o, op) for o in op.operands if o.role in (Role.INPUT, Role.OUTPUT))


def kernel_passes(op: Op, name: str, variant: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(integer operations per element of each reduction pass, of each output pass) of the kernel `op` runs on the
    special-function units: its `tstack.kernels.opcount` counts for a GELU, LayerNorm or Softmax, with the row
    length of the op's last dimension; one operation in one output pass for an op without a kernel (ReLU, add)."""
    if name not in SFU_KERNELS:
        return (), (1.0,)
    row = op.operands[-1].dims[-1]
    counts = op_counts(name, op.dim[row], variant)
    return counts.pass_ops[: counts.reductions], counts.pass_ops[counts.reductions :]


def sfu_cycles(op: Op, hw: Hardware, name: str) -> tuple[float, float] | None:
    """(normalization-unit cycles, activation-unit output-pass cycles) of `op` on the special-function units, or
    None when they do not implement it. The costs derive from the integer kernel's operation counts:

    * every pass streams the op's n elements once: a reduction pass through the normalization unit at
      `elements_per_cycle`, the output pass through the `count` activation units at one element per unit;
    * a pass's integer arithmetic (its operations per element, `OpCounts.pass_ops`) runs on the activation units,
      `count` × `ops_per_cycle` operations per cycle (unbounded for pipelined units, `ops_per_cycle` None);
    * a pass takes the longer of the two, and passes run one after the other (each reduction must finish first).

    The number of reduction passes is the kernel's (`OpCounts.reductions`) unless the normalization unit's
    `passes` overrides it for the op (a bare reduction then counts one operation per element).
    """
    acts = hw.activations
    if acts is None or name not in acts.ops:
        return None
    n = _elements(op)
    reductions, outputs = kernel_passes(op, name, acts.kernels)
    norm = hw.normalization
    override = None if norm is None else norm.passes_for(name)
    if override is not None:
        reductions = tuple(reductions[i] if i < len(reductions) else 1.0 for i in range(override))
    if op.kind in _ROW_REDUCTIONS and (norm is None or not reductions):
        return None
    ops_rate = None if acts.ops_per_cycle is None else acts.count * acts.ops_per_cycle

    def pass_cycles(ops: float, stream_per_cycle: int) -> float:
        stream = n / stream_per_cycle
        return stream if ops_rate is None else max(stream, n * ops / ops_rate)

    norm_cycles = 0.0
    if reductions:
        if norm is None:
            return None
        norm_cycles = sum(pass_cycles(ops, norm.elements_per_cycle) for ops in reductions)
    return norm_cycles, sum(pass_cycles(ops, acts.count) for ops in outputs)


def _sfu_cycles(op: Op, hw: Hardware, name: str) -> float | None:
    cycles = sfu_cycles(op, hw, name)
    return None if cycles is None else cycles[0] + cycles[1]


def nonlinear_cost(op: Op, hw: Hardware, *, follows_matmul: bool) -> NonlinearCost:
    name = OP_NAMES.get(op.kind, op.kind.value)
    n = _elements(op)
    sfu = _sfu_cycles(op, hw, name)
    if sfu is not None and op.attr("fused"):  # the workload already fused it into its producer (ResNet's ReLU)
        return NonlinearCost(Placement.FUSED, 0.0, 0.0, 0.0)
    follows_matmul = follows_matmul and hw.fuse_nonlinear
    if sfu is not None and follows_matmul and op.kind in _ELEMENTWISE_FUSABLE:
        return NonlinearCost(Placement.FUSED, 0.0, 0.0, 0.0)
    if sfu is not None and follows_matmul and op.kind in _ROW_REDUCTIONS:
        # the output pass rides the accumulator read-out; the reductions over the rows in place remain
        parts = sfu_cycles(op, hw, name)
        return NonlinearCost(Placement.FUSED, parts[0] if parts else sfu, 0.0, 0.0)
    # SFU and DMA traffic passes through the on-chip memories' port; inputs arrive at the width matmuls write
    # for nonlinear consumers (32 bits in the paper's analytic model), outputs leave as 8-bit activations
    design = design_of(hw)
    port = design.scratchpad_fill_bytes_per_cycle  # the link between the on-chip memories and their parent
    in_elements = _io_elements(op) - n
    io_bytes = in_elements * hw.nonlinear_input_bits / 8 + n * op.operands[-1].bits / 8
    dram = design.dram
    energy = io_bytes * (dram.read_energy_pj_per_byte + dram.write_energy_pj_per_byte) / 2
    if op.kind is OpKind.EMBEDDING:  # a table gather is a DMA copy: rows in, rows out, no arithmetic
        return NonlinearCost(Placement.DMA, io_bytes / port, energy, io_bytes)
    if sfu is not None:
        return NonlinearCost(Placement.SFU, max(sfu, io_bytes / port), energy, io_bytes)
    host = hw.host
    per_element = host.cost_per_element(name) if host else None
    if host is None or per_element is None:
        raise InfeasibleError(
            f"op {op.name} ({name}) can run nowhere on {hw.name!r}: its special-function units do not implement "
            f"it and {'it has no host CPU' if host is None else 'its host lists no cost for it'}; add "
            f"{name!r} to activation_units.ops or to host.cycles_per_element"
        )
    float_bytes = _io_elements(op) * HOST_FLOAT_BYTES
    cycles = max(n * per_element, float_bytes / host.dram_bytes_per_cycle)
    energy = n * per_element * host.energy_pj_per_cycle + float_bytes * dram.read_energy_pj_per_byte
    return NonlinearCost(Placement.HOST, cycles, energy, float_bytes)


def dequantize_cycles(hw: Hardware, elements: int) -> float:
    """Host work to turn a matmul's integer output into floats for the host op that consumes it."""
    return 0.0 if hw.host is None else elements * hw.host.dequantize_cycles_per_element


def requantize_cycles(hw: Hardware, elements: int) -> float:
    """Host work to quantize a host op's float output into int8 for the matmul that consumes it."""
    return 0.0 if hw.host is None else elements * hw.host.requantize_cycles_per_element
