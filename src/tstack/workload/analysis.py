"""Whole-model counts: per op, per op class, per the paper's groups, with parameters and KV-cache size."""

from __future__ import annotations

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
    if batch <= 0:
        raise WorkloadError(f"batch must be a positive integer, got {batch}")
    if not 1 <= bits <= 64 or (weight_bits is not None and not 1 <= weight_bits <= 64):
        raise WorkloadError(f"bits must be between 1 and 64, got {bits}")
    wbits = bits if weight_bits is None else weight_bits
    phase = phase or default_phase(spec)
    if isinstance(spec, ResNetSpec):
        if phase is not Phase.ENCODER:
            raise WorkloadError(f"{spec.name!r} is a CNN: it has only the encoder (single pass) phase")
        ops = resnet_ops(spec, batch=batch, weight_bits=wbits, act_bits=bits, fused=fused, paper_layers=paper_layers)
        return Workload(spec.name, phase, batch, spec.image_px, ops, act_bits=bits)
    fixed = spec.default_seq_len()
    if seq_len is None:
        seq_len = fixed or 128
    if seq_len <= 0:
        raise WorkloadError(f"sequence length must be a positive integer, got {seq_len}")
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
