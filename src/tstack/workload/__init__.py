"""What a model computes, op by op: shapes, FLOPs, bytes, arithmetic intensity."""

from tstack.workload.analysis import Totals, WorkloadAnalysis, analyze_workload, build_workload, default_phase
from tstack.workload.counting import Convention, OpCount, count_op, parse_convention
from tstack.workload.identity import Block, OpRole, Tensor
from tstack.workload.model import (
    Activation,
    AnyModelSpec,
    Family,
    ModelSpec,
    Norm,
    NormPlacement,
    PatchEmbedding,
    PositionEmbedding,
    ResNetSpec,
)
from tstack.workload.ops import Op, OpClass, Operand, OpKind, Phase, Role, Sweep, Workload
from tstack.workload.params import count_params, kv_cache_bytes

__all__ = [
    "Activation",
    "AnyModelSpec",
    "Block",
    "Convention",
    "Family",
    "ModelSpec",
    "Norm",
    "NormPlacement",
    "Op",
    "OpClass",
    "OpCount",
    "OpKind",
    "OpRole",
    "Operand",
    "PatchEmbedding",
    "Phase",
    "PositionEmbedding",
    "ResNetSpec",
    "Role",
    "Sweep",
    "Tensor",
    "Totals",
    "Workload",
    "WorkloadAnalysis",
    "analyze_workload",
    "build_workload",
    "count_op",
    "count_params",
    "default_phase",
    "kv_cache_bytes",
    "parse_convention",
]
