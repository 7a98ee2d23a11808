"""Operations and workloads: the op list every later layer (mapping, simulation, NAS) consumes.

An `Op` is described Timeloop-style by named loop dimensions and operands that each span some of them, so
operand sizes, FLOPs and (later) tilings all derive from the same numbers. A decoder's generation loop is not
unrolled into thousands of ops: an op whose shape grows with the step carries a `Sweep` over one dimension and
stands for one instance per value, counted in closed form.

Each op carries its identity as data (`layer`, `block`, `role`, see `tstack.workload.identity`); its `name` is the
label printed for people and never parsed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import KW_ONLY, dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from tstack.errors import WorkloadError
from tstack.workload.identity import LAYER_BLOCKS, Block, OpRole, Tensor

IntArray = npt.NDArray[np.int64]


class OpKind(StrEnum):
    MATMUL = "matmul"  # dims B (independent batch, e.g. heads), M, N, K: out[B,M,N] = a[B,M,K] @ b[B,K,N]
    CONV = "conv"  # dims N, K, C, P, Q, R, S (+ H, W: input size)
    SOFTMAX = "softmax"  # over the last dim
    LAYERNORM = "layernorm"
    RMSNORM = "rmsnorm"
    BATCHNORM = "batchnorm"
    GELU = "gelu"
    GELU_TANH = "gelu_tanh"
    RELU = "relu"
    SWIGLU = "swiglu"  # silu(gate) * up
    TANH = "tanh"
    ADD = "add"
    ROPE = "rope"
    EMBEDDING = "embedding"  # gather rows of a table
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"


class OpClass(StrEnum):
    """Where an op's cost is reported; the paper's tables group these further (see `PAPER_GROUPS`)."""

    MHA_PROJ = "mha_proj"
    MHA_ACT = "mha_act"  # act-to-act matmuls: Q x K^T and scores x V
    FFN_PROJ = "ffn_proj"
    SOFTMAX = "softmax"
    NORM = "norm"
    ACTIVATION = "activation"
    RESIDUAL = "residual"
    CONV = "conv"
    BATCHNORM = "batchnorm"
    OTHER = "other"  # embeddings, pooler, LM head, pooling, FC


NONLINEAR_CLASSES = frozenset({OpClass.SOFTMAX, OpClass.NORM, OpClass.ACTIVATION, OpClass.RESIDUAL})


class Role(StrEnum):
    INPUT = "input"
    WEIGHT = "weight"  # a parameter: counted in the model's parameters
    BIAS = "bias"
    CACHE = "cache"  # read from the KV cache
    OUTPUT = "output"


class Phase(StrEnum):
    ENCODER = "encoder"  # all tokens at once
    GENERATE = "generate"  # the paper's decoder: l steps with a KV cache, no prompt, summed
    PREFILL = "prefill"  # a decoder's prompt, all tokens at once, filling the KV cache
    DECODE = "decode"  # one step at context length l (l-1 cached tokens plus the new one)


@dataclass(frozen=True, slots=True)
class Operand:
    """A tensor an op reads or writes; its element count is the product of the op dims it spans."""

    tensor: Tensor
    role: Role
    dims: tuple[str, ...]
    bits: int


@dataclass(frozen=True, slots=True)
class Sweep:
    """The op stands for one instance per value of `dim` in start..stop (inclusive)."""

    dim: str
    start: int
    stop: int

    def values(self) -> IntArray:
        return np.arange(self.start, self.stop + 1, dtype=np.int64)


DimValue = int | IntArray


@dataclass(frozen=True, slots=True)
class Op:
    """One operation. `repeat` counts identical instances (e.g. batch items for weight-sharing ops).

    `name` is the label people read (``layer3.attn.qk``); `block`, `role` and `layer` (the index of the repeated
    block it sits in: a Transformer layer, a ResNet bottleneck counted over all stages; None outside one) say what
    and where it is, for code to read.
    """

    name: str
    kind: OpKind
    op_class: OpClass
    dims: tuple[tuple[str, int], ...]
    operands: tuple[Operand, ...]
    repeat: int = 1
    sweep: Sweep | None = None
    attrs: tuple[tuple[str, int], ...] = ()
    _: KW_ONLY
    block: Block
    role: OpRole
    layer: int | None = None

    def __post_init__(self) -> None:
        if (self.layer is not None) != (self.block in LAYER_BLOCKS) or (self.layer is not None and self.layer < 0):
            raise WorkloadError(
                f"op {self.name}: a {self.block.value} op needs "
                + ("a layer index >= 0" if self.block in LAYER_BLOCKS else "no layer index")
                + f", got {self.layer}"
            )
        names = {d for d, _ in self.dims}
        for operand in self.operands:
            missing = set(operand.dims) - names
            if missing:
                raise WorkloadError(
                    f"op {self.name}: operand {operand.tensor.value} uses unknown dims {sorted(missing)}"
                )
        if self.sweep is not None and self.sweep.dim not in names:
            raise WorkloadError(f"op {self.name}: sweep over unknown dim {self.sweep.dim}")
        if any(v <= 0 for _, v in self.dims) or self.repeat <= 0:
            raise WorkloadError(f"op {self.name}: dims and repeat must be positive, got {self.dims}")

    @property
    def dim(self) -> Mapping[str, int]:
        return dict(self.dims)

    def attr(self, key: str, default: int = 0) -> int:
        return dict(self.attrs).get(key, default)

    def dim_values(self) -> dict[str, DimValue]:
        """Dims with the swept one replaced by the array of its values (for vectorized counting)."""
        values: dict[str, DimValue] = dict(self.dims)
        if self.sweep is not None:
            values[self.sweep.dim] = self.sweep.values()
        return values

    @property
    def instances(self) -> int:
        n_sweep = 1 if self.sweep is None else self.sweep.stop - self.sweep.start + 1
        return self.repeat * n_sweep

    def operand(self, role: Role) -> Operand | None:
        return next((o for o in self.operands if o.role is role), None)


def operand_elements(operand: Operand, dims: Mapping[str, DimValue]) -> DimValue:
    count: DimValue = 1
    for d in operand.dims:
        count = count * dims[d]
    return count


def total_elements(operand: Operand, op: Op) -> int:
    """Elements of `operand` summed over all the op's instances (every sweep value, times repeat)."""
    count = operand_elements(operand, op.dim_values())
    n_sweep = op.instances // op.repeat
    per_repeat = int(np.sum(count)) if np.ndim(count) else int(count) * n_sweep
    return per_repeat * op.repeat


@dataclass(frozen=True, slots=True)
class Workload:
    """The ordered ops of one model at one (batch, sequence length, phase)."""

    model_name: str
    phase: Phase
    batch: int
    seq_len: int
    ops: tuple[Op, ...]
    act_bits: int = 8

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def by_class(self, op_class: OpClass) -> tuple[Op, ...]:
        return tuple(op for op in self.ops if op.op_class is op_class)
