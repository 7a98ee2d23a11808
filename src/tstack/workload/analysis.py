"""Whole-model counts: per op, per op class, per the paper's groups, with parameters and KV-cache size."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from dataclasses import dataclass

from tstack.errors import WorkloadError
from tstack.workload.counting import Convention, OpCount, count_op
from tstack.workload.model import AnyModelSpec, ModelSpec, ResNetSpec
from tstack.workload.ops import OpClass, Phase, Workload
from tstack.workload.params import count_params, kv_cache_bytes
from tstack.workload.resnet import resnet_ops
from tstack.workload.transformer import transformer_ops

# The paper's table rows (Tables 3, 10, 11 for Transformers; Table 4 for ResNet-50); all else is "other".
TRANSFORMER_GROUPS: dict[str, frozenset[OpClass]] = {
    "mha_proj": frozenset({OpClass.MHA_PROJ}),
    "mha_act": frozenset({OpClass.MHA_ACT}),
    "ffn_proj": frozenset({OpClass.FFN_PROJ}),
}
CNN_GROUPS: dict[str, frozenset[OpClass]] = {
    "conv": frozenset({OpClass.CONV}),
    "batchnorm": frozenset({OpClass.BATCHNORM}),
    "relu": frozenset({OpClass.ACTIVATION}),
}


@dataclass(frozen=True, slots=True)
class Totals:
    flops: float
    mops_bytes: float

    @property
    def arithmetic_intensity(self) -> float:
        return self.flops / self.mops_bytes if self.mops_bytes else float("inf")

    @staticmethod
    def of(counts: Iterable[OpCount]) -> Totals:
        flops = mops = 0.0
        for c in counts:
            flops += c.flops
            mops += c.mops_bytes
        return Totals(flops, mops)


@dataclass(frozen=True, slots=True)
class WorkloadAnalysis:
    """Counts of one workload under one convention."""

    workload: Workload
    convention: Convention
    ops: tuple[OpCount, ...]
    params: int
    kv_cache_bytes: int
    is_cnn: bool

    @property
    def total(self) -> Totals:
        return Totals.of(self.ops)

    def by_class(self) -> dict[OpClass, Totals]:
        present = dict.fromkeys(c.op_class for c in self.ops)
        return {cls: Totals.of(c for c in self.ops if c.op_class is cls) for cls in present}

    def group_of(self, op_class: OpClass) -> str:
        """The paper's table row of an op class: three matmul groups and "other" (CNN: conv/batchnorm/relu)."""
        groups = CNN_GROUPS if self.is_cnn else TRANSFORMER_GROUPS
        return next((name for name, classes in groups.items() if op_class in classes), "other")

    def by_group(self) -> dict[str, Totals]:
        names = [*(CNN_GROUPS if self.is_cnn else TRANSFORMER_GROUPS), "other"]
        return {name: Totals.of(c for c in self.ops if self.group_of(c.op_class) == name) for name in names}


def default_phase(spec: AnyModelSpec) -> Phase:
    """The paper's setting: encoders process all tokens at once, decoders generate l tokens from no prompt."""
    if isinstance(spec, ModelSpec) and spec.family.value == "decoder":
        return Phase.GENERATE
    return Phase.ENCODER


# Far beyond any context window in use (1M tokens), and small enough that seq^2 x batch x width stays inside the
# int64 and float64 arithmetic of the cost models; a larger value is a typo (10^12) or an overflow (2^63).
MAX_SEQ_LEN = 2**20
MAX_BATCH = 2**16


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_count(value: object, what: str, limit: int) -> int:
    """`value` as an int in 1..`limit`, or a `WorkloadError` naming `what` (fractions and booleans are refused)."""
    count = int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else 0
    if count <= 0:
        raise WorkloadError(f"{what} must be a positive integer, got {value!r}")
    if count > limit:
        raise WorkloadError(f"{what} {count:,} is above tstack's limit of {limit:,}; use a smaller {what}")
    return count


def build_workload(
    spec: AnyModelSpec,
    seq_len: int | None = None,
    *,
    phase: Phase | None = None,
    batch: int = 1,
    bits: int = 8,
    weight_bits: int | None = None,
    lm_head: bool = False,
    fused: bool = False,
    paper_layers: bool = False,
) -> Workload:
    """The op list of `spec` at one sequence length; `bits` sets every tensor's precision unless overridden."""
    batch = check_count(batch, "batch", MAX_BATCH)
    if not _is_int(bits) or not 1 <= bits <= 64 or (weight_bits is not None and not 1 <= weight_bits <= 64):
        raise WorkloadError(f"bits must be between 1 and 64, got {bits}")
    if weight_bits is not None and not _is_int(weight_bits):
        raise WorkloadError(f"weight bits must be an integer between 1 and 64, got {weight_bits!r}")
    wbits = bits if weight_bits is None else weight_bits
    if phase is not None and not isinstance(phase, Phase):
        try:
            phase = Phase(phase)
        except ValueError:
            known = ", ".join(p.value for p in Phase)
            raise WorkloadError(f"unknown phase {phase!r}; choose one of: {known}") from None
    phase = phase or default_phase(spec)
    if isinstance(spec, ResNetSpec):
        if phase is not Phase.ENCODER:
            raise WorkloadError(f"{spec.name!r} is a CNN: it has only the encoder (single pass) phase")
        ops = resnet_ops(spec, batch=batch, weight_bits=wbits, act_bits=bits, fused=fused, paper_layers=paper_layers)
        return Workload(spec.name, phase, batch, spec.image_px, ops, act_bits=bits)
    fixed = spec.default_seq_len()
    if seq_len is None:
        seq_len = fixed or 128
    seq_len = check_count(seq_len, "sequence length", MAX_SEQ_LEN)
    if fixed is not None and seq_len != fixed:
        raise WorkloadError(
            f"{spec.name!r} sees {fixed} tokens (image patches + class token); its sequence length is fixed by "
            f"image and patch size, so drop --seq or pass --seq {fixed}"
        )
    if fused:
        raise WorkloadError("fused=True applies to CNNs (BatchNorm folding); Transformers have no BatchNorm")
    ops = transformer_ops(spec, phase, seq_len, batch=batch, weight_bits=wbits, act_bits=bits, lm_head=lm_head)
    return Workload(spec.name, phase, batch, seq_len, ops, act_bits=bits)


def analyze_workload(
    spec: AnyModelSpec, workload: Workload, convention: Convention = Convention.DEFAULT
) -> WorkloadAnalysis:
    counts = tuple(count_op(op, workload.phase, convention) for op in workload.ops)
    cache = 0
    if isinstance(spec, ModelSpec):
        cache = kv_cache_bytes(spec, workload.seq_len, batch=workload.batch, bits=workload.act_bits)
    return WorkloadAnalysis(
        workload=workload,
        convention=convention,
        ops=counts,
        params=count_params(spec),
        kv_cache_bytes=cache,
        is_cnn=isinstance(spec, ResNetSpec),
    )
