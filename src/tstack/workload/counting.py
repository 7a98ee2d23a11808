"""FLOPs and memory operations (MOPs, bytes) of every op, under a named counting convention.

Two conventions:

`default` — principled per-op counts, each stated here:
  * matmul / conv: 2 FLOPs per MAC (bias adds not counted, as torch's FlopCounterMode); zero padding of a conv
    counted, as dense kernels compute it.
  * bytes (every op): each operand read or written once at its precision, i.e. ideal on-chip reuse within an op
    and none across ops (the paper's upper-bound-on-reuse assumption). Norm parameters are read. Matmul and
    conv biases are not counted: they are d_out elements against d_out x d_in weights (under 0.2% of an op's
    bytes for every preset), and their width (int32 beside int8 weights on an integer accelerator) is a
    hardware choice the accelerator model prices; this keeps matmul bytes equal to the paper's.
    An op marked fused (attr fused=1, e.g. ReLU in a conv epilogue) moves no bytes.
  * per element: softmax 6 (scale by 1/sqrt(d_k), max, subtract, exp, sum, divide); LayerNorm 7 (mean sum,
    subtract, square, variance sum, scale, gamma, beta) + 4 per row; RMSNorm 4 + 3 per row; GELU 5 (erf form);
    GELU-tanh 9; ReLU 1; SwiGLU 6 (silu 5 + gate product); tanh 1; add 1; RoPE 3; BatchNorm 2 (folded
    scale and shift); embedding gather 0; max-pool R*S-1 and avg-pool R*S per output. A transcendental
    function counts as one FLOP.

`paper-2023` — reproduces the paper's Tables 3, 10 and 11 (digest §2.2.1a, reverse-engineered there):
  * projections 2*M*N*K FLOPs (the paper's (2K-1) MACs plus the bias add); bytes of weight, input and output,
    no bias; act-to-act matmuls (2K-1)*M*N (no bias), bytes of both inputs and the output;
  * softmax 4 FLOPs and 2 bytes per score element;
  * the layer's other nonlinear ops (2 norms, activation, 2 residual adds) together 58 FLOPs and 17 bytes
    (encoder) or 22 bytes (decoder) per d_model x token; the paper does not say how these split between ops,
    so they are spread evenly over the 8 d_model-wide units (norm 1, norm 1, add 1, add 1, activation 4);
    the LayerNorm parameters (gamma, beta: 4 * d_model bytes per layer) are read too — without them the
    printed total AIs (e.g. 159.68 at l = 128) are off in the last digit;
  * ops outside the layers (embeddings, final norm, pooler, LM head) are not counted.
  * decoder generation: act-to-act products at step t count d_k*(2t-1) FLOPs each and, per head, 2 t d_k + t +
    3 d_k bytes together (Table 11);
  * ResNet-50 (Table 4): the paper's layer list (`resnet_ops(paper_layers=True)`); BatchNorm 4 FLOPs and 4 bytes,
    ReLU 1 and 2, residual add 1 and 3 per element; max-pool 1 FLOP per input element; a fused ReLU keeps its
    FLOPs and moves no bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from tstack.errors import SpecError
from tstack.workload.identity import TRANSFORMER_LAYER_BLOCKS, OpRole
from tstack.workload.ops import (
    DimValue,
    Op,
    OpClass,
    OpKind,
    Phase,
    Role,
    operand_elements,
)

# a count for one instance, or an array of counts, one per value of a swept dim
Count = int | float | npt.NDArray[Any]


class Convention(StrEnum):
    DEFAULT = "default"
    PAPER_2023 = "paper-2023"


def parse_convention(name: str) -> Convention:
    try:
        return Convention(name)
    except ValueError:
        known = ", ".join(c.value for c in Convention)
        raise SpecError(f"unknown counting convention {name!r}; choose one of: {known}") from None


# FLOPs per element of the op's output (default convention); see the module docstring for the derivations.
_DEFAULT_FLOPS_PER_ELEMENT: dict[OpKind, int] = {
    OpKind.SOFTMAX: 6,
    OpKind.LAYERNORM: 7,
    OpKind.RMSNORM: 4,
    OpKind.GELU: 5,
    OpKind.GELU_TANH: 9,
    OpKind.RELU: 1,
    OpKind.SWIGLU: 6,
    OpKind.TANH: 1,
    OpKind.ADD: 1,
    OpKind.ROPE: 3,
    OpKind.BATCHNORM: 2,
    OpKind.EMBEDDING: 0,
}
_DEFAULT_FLOPS_PER_ROW: dict[OpKind, int] = {OpKind.LAYERNORM: 4, OpKind.RMSNORM: 3}

# paper-2023: the lumped per-layer cost of norms, activation and residual adds per d_model x token,
# spread over 8 d_model-wide units (digest §2.2.1a).
_PAPER_OTHER_UNITS = 8
_PAPER_OTHER_FLOPS = 58.0
_PAPER_OTHER_BYTES_ENCODER = 17.0
_PAPER_OTHER_BYTES_DECODER = 22.0
_PAPER_SOFTMAX_FLOPS = 4.0
_PAPER_SOFTMAX_BYTES = 2.0


@dataclass(frozen=True, slots=True)
class OpCount:
    """Totals of one op over all its instances (sweep values times repeat)."""

    name: str
    kind: OpKind
    op_class: OpClass
    flops: float
    mops_bytes: float
    instances: int

    @property
    def arithmetic_intensity(self) -> float:
        return self.flops / self.mops_bytes if self.mops_bytes else float("inf")


def _product(dims: dict[str, DimValue], names: tuple[str, ...]) -> Count:
    result: Count = 1
    for n in names:
        result = result * dims[n]
    return result


def _output_elements(op: Op, dims: dict[str, DimValue]) -> Count:
    out = op.operand(Role.OUTPUT)
    assert out is not None, f"op {op.name} has no output"
    return operand_elements(out, dims)


def _bytes(op: Op, dims: dict[str, DimValue], *, roles: frozenset[Role] | None = None) -> Count:
    total: Count = 0
    for operand in op.operands:
        if roles is None or operand.role in roles:
            total = total + operand_elements(operand, dims) * operand.bits / 8
    return total


def _macs(op: Op, dims: dict[str, DimValue]) -> Count:
    if op.kind is OpKind.MATMUL:
        return _product(dims, tuple(d for d in ("B", "G", "M", "N", "K") if d in dims))
    return _product(dims, ("N", "K", "C", "P", "Q", "R", "S"))


_NO_BIAS = frozenset(set(Role) - {Role.BIAS})


def _default(op: Op, dims: dict[str, DimValue], phase: Phase) -> tuple[Count, Count]:
    if op.kind in (OpKind.MATMUL, OpKind.CONV):
        return 2 * _macs(op, dims), _bytes(op, dims, roles=_NO_BIAS)
    moved = 0 if op.attr("fused") else _bytes(op, dims)
    out = _output_elements(op, dims)
    if op.kind in (OpKind.MAXPOOL, OpKind.AVGPOOL):
        window = dims["R"] * dims["S"]
        per_output = window - 1 if op.kind is OpKind.MAXPOOL else window
        return out * per_output, moved
    flops = out * _DEFAULT_FLOPS_PER_ELEMENT[op.kind]
    if op.kind in _DEFAULT_FLOPS_PER_ROW:
        flops = flops + dims["M"] * _DEFAULT_FLOPS_PER_ROW[op.kind]
    return flops, moved


_PAPER_LAYER_NONLINEAR = frozenset({OpClass.NORM, OpClass.ACTIVATION, OpClass.RESIDUAL})
_ENCODER_PHASES = frozenset({Phase.ENCODER, Phase.PREFILL})


_PAPER_CNN_PER_ELEMENT = {  # (FLOPs, bytes) per output element, ResNet-50 Table 4
    OpKind.BATCHNORM: (4, 4),  # subtract, divide, multiply, add; its AI is printed as 1.00
    OpKind.RELU: (1, 2),
    OpKind.ADD: (1, 3),
}


def _paper_2023(op: Op, dims: dict[str, DimValue], phase: Phase) -> tuple[Count, Count]:
    in_layer = op.block in TRANSFORMER_LAYER_BLOCKS
    if op.kind in _PAPER_CNN_PER_ELEMENT and not in_layer and op.op_class is not OpClass.OTHER:
        flops_per, bytes_per = _PAPER_CNN_PER_ELEMENT[op.kind]
        n = _output_elements(op, dims)
        return n * flops_per, 0 if op.attr("fused") else n * bytes_per
    if op.kind is OpKind.MAXPOOL:  # one comparison per input element
        return operand_elements(op.operands[0], dims), _bytes(op, dims)
    if op.kind is OpKind.CONV or op.role is OpRole.CLASSIFIER:
        return 2 * _macs(op, dims), _bytes(op, dims, roles=_NO_BIAS)
    if op.op_class in (OpClass.MHA_PROJ, OpClass.FFN_PROJ):
        return 2 * _macs(op, dims), _bytes(op, dims, roles=_NO_BIAS)
    if op.op_class is OpClass.MHA_ACT:
        moved: Count = _bytes(op, dims)
        if phase not in _ENCODER_PHASES and op.role is OpRole.SV:
            # Table 11 counts a decode step's scores x V as V plus two d_k vectors per head (the scores are
            # counted once, by Q x K^T): 2 t d_k + t + 3 d_k per head per step in all.
            heads = dims["B"] * dims.get("G", 1)
            moved = heads * (dims["K"] * dims["N"] + 2 * dims["M"] * dims["N"]) * op.operands[0].bits / 8
        return _paper_act_to_act_flops(op, dims, phase), moved
    if op.op_class is OpClass.SOFTMAX:
        n = _output_elements(op, dims)
        return n * _PAPER_SOFTMAX_FLOPS, n * _PAPER_SOFTMAX_BYTES
    if in_layer and op.op_class in _PAPER_LAYER_NONLINEAR:
        n = _output_elements(op, dims)
        per_byte = _PAPER_OTHER_BYTES_ENCODER if phase in _ENCODER_PHASES else _PAPER_OTHER_BYTES_DECODER
        # LayerNorm gamma and beta, read once per encoder pass (Tables 3 and 10); Table 11 leaves them out
        params = _bytes(op, dims, roles=frozenset({Role.WEIGHT})) if phase in _ENCODER_PHASES else 0
        return n * (_PAPER_OTHER_FLOPS / _PAPER_OTHER_UNITS), n * (per_byte / _PAPER_OTHER_UNITS) + params
    return 0, 0


def _paper_act_to_act_flops(op: Op, dims: dict[str, DimValue], phase: Phase) -> Count:
    heads = dims["B"] * dims.get("G", 1)
    m, n, k = dims["M"], dims["N"], dims["K"]
    if phase in _ENCODER_PHASES:
        return heads * m * n * (2 * k - 1)
    # one query per step: the paper counts both products as d_k * (2t - 1), t = keys in the cache
    keys, d_k = (n, k) if op.role is OpRole.QK else (k, n)
    return heads * m * d_k * (2 * keys - 1)


_RULES: dict[Convention, Callable[[Op, dict[str, DimValue], Phase], tuple[Count, Count]]] = {
    Convention.DEFAULT: _default,
    Convention.PAPER_2023: _paper_2023,
}


def count_op(op: Op, phase: Phase, convention: Convention = Convention.DEFAULT) -> OpCount:
    """FLOPs and bytes of `op` summed over its instances; swept ops are counted in one vectorized pass."""
    flops, moved = _RULES[convention](op, op.dim_values(), phase)
    per_instance = op.instances // op.repeat  # sweep length; a count independent of the swept dim is repeated
    return OpCount(
        name=op.name,
        kind=op.kind,
        op_class=op.op_class,
        flops=_sum_over_sweep(flops, per_instance) * op.repeat,
        mops_bytes=_sum_over_sweep(moved, per_instance) * op.repeat,
        instances=op.instances,
    )


def _sum_over_sweep(value: Count, sweep_length: int) -> float:
    if np.ndim(value) == 0:
        return float(value) * sweep_length
    return float(np.sum(value))
