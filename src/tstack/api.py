"""The public entry points; `analyze`: counts of a model per sequence length, optionally on a roofline device."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, Unpack

from tstack.errors import InfeasibleError, WorkloadError
from tstack.hardware.design import design_of
from tstack.hardware.types import Hardware
from tstack.mapping.conv.cost import evaluate_conv
from tstack.mapping.conv.loopnest import ConvShape
from tstack.mapping.conv.mappers import ConvMapperResult, exhaustive_conv
from tstack.mapping.matmul.cost import OperandBits, evaluate
from tstack.mapping.matmul.loopnest import Mapping, MatmulShape
from tstack.mapping.matmul.mappers import MapperResult, exhaustive, gemmini, parse_mapper
from tstack.mapping.op_mapping import OpMapping as OpMapping  # re-exported: the result type lives in mapping
from tstack.mapping.timeloop.mapping_io import conv_from_timeloop, from_timeloop, names_conv_dims
from tstack.nas.pricing import DEFAULT_HARDWARE, DEFAULT_PHASE, PriceTable, PriceTableOptions, build_price_table
from tstack.nas.space import SearchSpace
from tstack.simulate import ModelResult, simulate_workload
from tstack.simulate.engine import conv_shape, matmul_shape
from tstack.spec import load_device, load_model
from tstack.spec.hardware import load_hardware
from tstack.spec.nas_space import load_space
from tstack.spec.timeloop import read_mapping_yaml
from tstack.workload import (
    AnyModelSpec,
    Convention,
    ModelSpec,
    OpKind,
    Phase,
    ResNetSpec,
    WorkloadAnalysis,
    analyze_workload,
    build_workload,
    default_phase,
    parse_convention,
)
from tstack.workload.model_analysis import Analysis as Analysis  # re-exported: the result type lives in workload
from tstack.workload.roofline import RooflineDevice, roofline

PAPER_SEQ_LENS = (128, 256, 512, 1024, 2048, 4096)


def _spec(model: Any) -> AnyModelSpec:
    return model if isinstance(model, (ModelSpec, ResNetSpec)) else load_model(model)


def resolve_hardware(hardware: str | Path | Hardware) -> Hardware:
    """A design from a preset name, a hardware YAML file or a `Hardware` value (returned as is): the one place the
    entry points turn what a user names into the value the core takes."""
    return hardware if isinstance(hardware, Hardware) else load_hardware(hardware)


_hardware = resolve_hardware


def _parse_phase(phase: str | Phase | None, spec: AnyModelSpec) -> Phase:
    if phase is None:
        return default_phase(spec)
    if isinstance(phase, Phase):
        return phase
    try:
        return Phase(phase)
    except ValueError:
        known = ", ".join(p.value for p in Phase)
        raise WorkloadError(f"unknown phase {phase!r}; choose one of: {known}") from None


def analyze(
    model: Any,
    seq: Iterable[int] | int | None = None,
    *,
    phase: str | Phase | None = None,
    batch: int = 1,
    bits: int = 8,
    convention: str | Convention = Convention.DEFAULT,
    device: str | Path | RooflineDevice | None = None,
    lm_head: bool = False,
) -> Analysis:
    """FLOPs, bytes and arithmetic intensity of `model` (preset name, file, HF config or spec) per sequence length.

    Without `seq`, encoders and decoders use the paper's 128..4096 and ViT its fixed patch count.
    """
    spec = _spec(model)
    conv = convention if isinstance(convention, Convention) else parse_convention(convention)
    the_phase = _parse_phase(phase, spec)
    if isinstance(seq, int) and not isinstance(seq, bool):
        seq = (seq,)
    elif seq is not None and (isinstance(seq, (str, bytes, bool)) or not isinstance(seq, Iterable)):
        # found by fuzzing: a float (1.5) reached tuple() as a TypeError
        raise WorkloadError(f"seq must be an integer or a list of integers, got a {type(seq).__name__}")
    dev = load_device(device) if isinstance(device, (str, Path)) else device
    if isinstance(spec, ResNetSpec):
        paper = conv is Convention.PAPER_2023  # the paper's own ResNet-50 layer list (see resnet_ops)
        unfused = build_workload(spec, phase=the_phase, batch=batch, bits=bits, paper_layers=paper)
        fused_wl = build_workload(spec, phase=the_phase, batch=batch, bits=bits, fused=True, paper_layers=paper)
        results: tuple[WorkloadAnalysis, ...] = (analyze_workload(spec, unfused, conv),)
        fused = analyze_workload(spec, fused_wl, conv)
    else:
        fixed = spec.default_seq_len()
        seqs = tuple(seq) if seq is not None else ((fixed,) if fixed else PAPER_SEQ_LENS)
        if not seqs:
            raise WorkloadError("no sequence length given; pass at least one, e.g. --seq 128")
        results = tuple(
            analyze_workload(
                spec, build_workload(spec, s, phase=the_phase, batch=batch, bits=bits, lm_head=lm_head), conv
            )
            for s in seqs
        )
        fused = None
    rooflines = tuple(roofline(r, dev, bits) for r in results) if dev else ()
    return Analysis(spec, the_phase, conv, batch, bits, results, rooflines, fused, dev)


def simulate(
    model: Any,
    hardware: str | Path | Hardware,
    seq: int | None = None,
    *,
    phase: str | Phase | None = None,
    batch: int = 1,
    fused: bool = False,
    mapper: str = "gemmini",
) -> ModelResult:
    """Latency, energy, EDP, utilization and breakdowns of `model` on a hardware design (preset, file or object).

    The paper's case study is `simulate("bert-base", "gemmini-baseline", 512)` against "gemmini-ibert"."""
    spec = _spec(model)
    hw = _hardware(hardware)
    the_phase = _parse_phase(phase, spec)
    workload = build_workload(spec, seq, phase=the_phase, batch=batch, fused=fused)  # a CNN ignores seq
    return simulate_workload(workload, hw, mapper=parse_mapper(mapper))


def map_model(
    model: Any,
    hardware: str | Path | Hardware,
    seq: int | None = None,
    *,
    phase: str | Phase | None = None,
    op: str | None = None,
) -> list[OpMapping]:
    """Best mapping of every distinct matmul of `model` (or of the op named `op`) on a hardware design."""
    spec = _spec(model)
    hw = _hardware(hardware)
    the_phase = _parse_phase(phase, spec)
    workload = build_workload(spec, seq, phase=the_phase)  # a CNN ignores seq
    ops = [o for o in workload.ops if o.kind in (OpKind.MATMUL, OpKind.CONV) and o.sweep is None]
    if op is not None:
        ops = [o for o in ops if o.name == op]
        if not ops:
            raise WorkloadError(f"no matmul named {op!r} in {spec.name} ({the_phase}); names look like layer0.ffn.up")
    seen: set[tuple[MatmulShape, ConvShape | None]] = set()
    rows = []
    for o in ops:
        shape = matmul_shape(o)
        conv = conv_shape(o) if o.kind is OpKind.CONV else None
        if (shape, conv) in seen:
            continue
        seen.add((shape, conv))
        row = OpMapping(o.name, shape, exhaustive(shape, hw), gemmini(shape, hw), conv_shape=conv)
        if conv is not None:
            try:
                direct = exhaustive_conv(conv, hw)
            except InfeasibleError:
                direct = None
            if direct is not None and direct.edp < row.best.edp:
                row = replace(row, conv=direct)
        rows.append(row)
    return rows


def check_capacity(mapping: Mapping, shape: MatmulShape, hw: Hardware) -> None:
    """Raise a clear error when a mapping's tiles do not fit the design's double-buffered on-chip memories."""
    design = design_of(hw)
    tm, tn, tk = min(mapping.tile_m, shape.m), min(mapping.tile_n, shape.n), min(mapping.tile_k, shape.k)
    bits = OperandBits(acc=design.accumulator.word_bits)
    design.check_fits(
        (tm * tk * bits.a + tk * tn * bits.b) / 8,
        tm * tn * bits.acc / 8,
        f"mapping's A and B tiles ({tm}x{tk} and {tk}x{tn})",
        f"output tile ({tm}x{tn} partial sums)",
        "shrink tile_m, tile_n or tile_k",
    )


def evaluate_mapping_file(
    model: Any, hardware: str | Path | Hardware, op: str, path: Path, seq: int | None = None
) -> tuple[OpMapping, MapperResult | ConvMapperResult]:
    """A user's Timeloop-style mapping of one op, evaluated beside the exhaustive best and the heuristic. A
    convolution's mapping may name the conv's own dimensions (R, S, P, Q, C, K, N, as Gemmini's Timeloop
    description does: `timeloop.mapping_io.conv_from_timeloop`) or its im2col matmul's (M, N, K)."""
    rows = map_model(model, hardware, seq, op=op)
    hw = _hardware(hardware)
    row = rows[0]
    data = read_mapping_yaml(path)
    if row.conv_shape is not None and names_conv_dims(data):
        conv_mapping = conv_from_timeloop(data, row.conv_shape, hw, str(path))
        c = evaluate_conv(row.conv_shape, conv_mapping, hw)
        return row, ConvMapperResult(conv_mapping, c.latency_cycles, c.energy_pj, c.edp, 1)
    mapping = from_timeloop(data, row.shape, str(path))
    check_capacity(mapping, row.shape, hw)
    cost = evaluate(row.shape, mapping, hw)
    return row, MapperResult(mapping, cost.latency_cycles, cost.energy_pj, cost.edp, 1)


def price_table(
    space: SearchSpace | str | Path,
    hardware: str | Path | Hardware = DEFAULT_HARDWARE,
    seq_len: int | None = None,
    phase: str | Phase = DEFAULT_PHASE,
    **options: Unpack[PriceTableOptions],
) -> PriceTable:
    """The NAS lookup table (`tstack.nas.pricing.build_price_table`) of `space` (a `SearchSpace`, a preset name or a
    YAML file) on `hardware` (a preset name, a YAML file or a `Hardware`; default gemmini-ibert), names resolved here
    so that the NAS core takes values. The keyword options (`lm_head`, `mapper`, `cache_dir`, `use_cache`,
    `progress`) are `build_price_table`'s, passed through."""
    the_space = space if isinstance(space, SearchSpace) else load_space(space)
    return build_price_table(the_space, resolve_hardware(hardware), seq_len, phase, **options)
