"""Hardware descriptions (YAML presets and user files) validated and converted to core `Hardware`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from tstack.errors import SpecError
from tstack.hardware.design import design_of
from tstack.hardware.types import (
    ActivationUnits,
    CostOptions,
    Dataflow,
    FillDrain,
    Hardware,
    HostCPU,
    L2Tiling,
    Link,
    MemoryLevel,
    NormalizationUnit,
    PartialSums,
    PEArray,
    Tensor,
)
from tstack.spec.host import predicted_host
from tstack.spec.loading import read_preset, read_yaml_file

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)
_POWERS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size_bytes(value: Any) -> int:
    """256K, 256KiB, 2M, 2MB (binary multiples, as memory sizes are quoted) or a plain number of bytes."""
    if isinstance(value, bool):
        raise ValueError("a size must be a number of bytes or a string like 64K or 2M")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size; write bytes or a string like 64K, 256KiB, 2M")
    return int(float(match.group(1)) * _POWERS[match.group(2).upper()])


# Sizes up to 1 PiB and finite numbers only: an infinite clock or bandwidth would price every op at 0 cycles, and
# sizes beyond 2^50 overflow the int64 arithmetic of the mapping searches.
SizeBytes = Annotated[int, BeforeValidator(parse_size_bytes), Field(gt=0, le=2**50)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
ArraySide = Annotated[int, Field(gt=0, le=2**14)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PEArrayFile(_Strict):
    rows: ArraySide
    cols: ArraySide
    dataflow: Dataflow = Dataflow.WEIGHT_STATIONARY
    mac_energy_pj: NonNegative


class MemoryLevelFile(_Strict):
    name: str
    capacity: SizeBytes
    read_energy_pj_per_byte: NonNegative
    write_energy_pj_per_byte: NonNegative
    holds: list[Tensor] = Field(min_length=1)
    banks: Annotated[int, Field(gt=0)] = 1
    word_bits: Annotated[int, Field(gt=0)] = 8
    double_buffered: bool = False


class LinkFile(_Strict):
    """A channel from `parent` to the levels it feeds (`children`, or `array` for the PE array), shared by them."""

    parent: str
    children: list[str] = Field(min_length=1)
    bytes_per_cycle: Annotated[float, Field(gt=0, allow_inf_nan=False)]


class NormalizationUnitFile(_Strict):
    elements_per_cycle: Annotated[int, Field(gt=0)]
    # Reductions per op; an op not listed takes its integer kernel's count (tstack.kernels.opcount).
    passes: dict[str, Annotated[int, Field(ge=0)]] = {}


class ActivationUnitsFile(_Strict):
    count: Annotated[int, Field(gt=0)]
    ops: list[str] = Field(min_length=1)
    ops_per_cycle: Annotated[int, Field(gt=0)] | None = None
    kernels: Literal["ibert", "gemmini"] = "ibert"


class HostFile(_Strict):
    """The host's per-element costs: a table (`cycles_per_element` and the two (de)quantize costs), or
    `predicted_from: rocket-kernels` to predict every cost from the measured instruction counts of the C kernels on
    the in-order Rocket timing model (`tstack.simulate.host_model`)."""

    predicted_from: Literal["rocket-kernels"] | None = None
    cycles_per_element: dict[str, NonNegative] | None = None
    dequantize_cycles_per_element: NonNegative | None = None
    requantize_cycles_per_element: NonNegative | None = None
    dram_bytes_per_cycle: Positive
    energy_pj_per_cycle: NonNegative = 0.0
    source: str = ""

    @model_validator(mode="after")
    def _table_or_prediction(self) -> HostFile:
        table = (self.cycles_per_element, self.dequantize_cycles_per_element, self.requantize_cycles_per_element)
        if self.predicted_from is not None and any(v is not None for v in table):
            raise ValueError(
                "give either predicted_from or the cost table (cycles_per_element and the two "
                "(de)quantize costs), not both"
            )
        if self.predicted_from is None and any(v is None for v in table):
            raise ValueError(
                "give cycles_per_element, dequantize_cycles_per_element and "
                "requantize_cycles_per_element, or predicted_from: rocket-kernels"
            )
        return self


_DEFAULT_OPTIONS = CostOptions()  # the one place the defaults are written is CostOptions itself


class CostOptionsFile(_Strict):
    preload_hidden: bool = _DEFAULT_OPTIONS.preload_hidden
    fill_drain: FillDrain = _DEFAULT_OPTIONS.fill_drain
    partial_sums: PartialSums = _DEFAULT_OPTIONS.partial_sums
    overlap_transfers: bool = _DEFAULT_OPTIONS.overlap_transfers
    shared_bandwidth: bool = _DEFAULT_OPTIONS.shared_bandwidth
    l2_tiling: L2Tiling = _DEFAULT_OPTIONS.l2_tiling
    bias_matrix: bool = _DEFAULT_OPTIONS.bias_matrix
    skip_one_trip_loops: bool = _DEFAULT_OPTIONS.skip_one_trip_loops
    first_load_exposed: bool = _DEFAULT_OPTIONS.first_load_exposed
    weights_stay_in_array: bool = _DEFAULT_OPTIONS.weights_stay_in_array


class HardwareFile(_Strict):
    name: str
    description: str = ""
    sources: list[str] = []
    clock_ghz: Positive
    pe_array: PEArrayFile
    memory: list[MemoryLevelFile] = Field(min_length=1)
    links: list[LinkFile] = Field(min_length=1)
    normalization_unit: NormalizationUnitFile | None = None
    activation_units: ActivationUnitsFile | None = None
    host: HostFile | None = None
    nonlinear_input_bits: Annotated[int, Field(gt=0)] = 8
    cost_options: CostOptionsFile = CostOptionsFile()
    fuse_nonlinear: bool = True


def _host(f: HostFile) -> HostCPU:
    if f.predicted_from is not None:
        base = HostCPU((), 0.0, 0.0, f.dram_bytes_per_cycle, f.energy_pj_per_cycle, f.source)
        return predicted_host(base).host
    assert f.cycles_per_element is not None  # the validator guarantees the whole table
    return HostCPU(
        cycles_per_element=tuple(sorted(f.cycles_per_element.items())),
        dequantize_cycles_per_element=f.dequantize_cycles_per_element or 0.0,
        requantize_cycles_per_element=f.requantize_cycles_per_element or 0.0,
        dram_bytes_per_cycle=f.dram_bytes_per_cycle,
        energy_pj_per_cycle=f.energy_pj_per_cycle,
        source=f.source,
    )


def to_hardware(f: HardwareFile) -> Hardware:
    levels = tuple(
        MemoryLevel(
            name=m.name,
            capacity_bytes=m.capacity,
            read_energy_pj_per_byte=m.read_energy_pj_per_byte,
            write_energy_pj_per_byte=m.write_energy_pj_per_byte,
            holds=frozenset(m.holds),
            banks=m.banks,
            word_bits=m.word_bits,
            double_buffered=m.double_buffered,
        )
        for m in f.memory
    )
    host = None if f.host is None else _host(f.host)
    norm = None
    if f.normalization_unit is not None:
        norm = NormalizationUnit(
            f.normalization_unit.elements_per_cycle, tuple(sorted(f.normalization_unit.passes.items()))
        )
    acts = None
    if f.activation_units is not None:
        a = f.activation_units
        acts = ActivationUnits(a.count, frozenset(a.ops), a.ops_per_cycle, a.kernels)
    return Hardware(
        name=f.name,
        clock_hz=f.clock_ghz * 1e9,
        pe=PEArray(f.pe_array.rows, f.pe_array.cols, f.pe_array.dataflow, f.pe_array.mac_energy_pj),
        levels=levels,
        links=tuple(Link(k.parent, tuple(k.children), k.bytes_per_cycle) for k in f.links),
        host=host,
        normalization=norm,
        activations=acts,
        nonlinear_input_bits=f.nonlinear_input_bits,
        cost_options=CostOptions(**f.cost_options.model_dump()),
        fuse_nonlinear=f.fuse_nonlinear,
        description=f.description,
        sources=tuple(f.sources),
    )


def _refuse_level_bandwidths(data: dict[str, Any], origin: str) -> None:
    """Files of the old form gave each memory level a bandwidth without saying which link it meant (tstack read the
    scratchpad's as the link into the on-chip memories and DRAM's only behind an L2); refuse them, saying how to
    write the link."""
    memory = data.get("memory")
    if not isinstance(memory, list):
        return
    for i, level in enumerate(memory):
        if isinstance(level, dict) and "bandwidth_bytes_per_cycle" in level:
            raise SpecError(
                f"{origin}: memory.{i} ({level.get('name', '?')}): a level's bandwidth_bytes_per_cycle is no longer "
                "read (it did not say which link it meant); remove it and give the links instead, e.g. "
                "links: [{parent: dram, children: [scratchpad, accumulator], bytes_per_cycle: 16}] for Gemmini's DMA"
            )


_MAX_EXTENDS = 4


def _resolve_extends(data: dict[str, Any], origin: str, depth: int = 0) -> dict[str, Any]:
    """`extends: PRESET` starts from that hardware preset: each top-level field the file gives replaces the preset's
    whole field (a `host:` block replaces the preset's host, not single costs), so a variant restates only what it
    changes."""
    base_name = data.get("extends")
    if base_name is None:
        return data
    if not isinstance(base_name, str):
        raise SpecError(f"{origin}: extends: must be the name of a hardware preset (tstack hardware lists them)")
    if depth >= _MAX_EXTENDS:
        raise SpecError(
            f"{origin}: extends: more than {_MAX_EXTENDS} presets deep (a cycle?); extend a preset directly"
        )
    base = read_preset("hardware", base_name)
    if not isinstance(base, dict):
        raise SpecError(f"hardware preset {base_name}: expected a mapping of hardware fields")
    base = _resolve_extends(base, f"hardware preset {base_name}", depth + 1)
    return {**base, **{k: v for k, v in data.items() if k != "extends"}}


def hardware_from_mapping(data: Any, origin: str) -> Hardware:
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: expected a mapping of hardware fields, got {type(data).__name__}")
    data = _resolve_extends(data, origin)
    _refuse_level_bandwidths(data, origin)
    if "memory" in data and "links" not in data:
        raise SpecError(
            f"{origin}: links: missing; say which link carries which bandwidth, e.g. "
            "links: [{parent: dram, children: [scratchpad, accumulator], bytes_per_cycle: 16}]"
        )
    try:
        hw = to_hardware(HardwareFile.model_validate(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise SpecError(f"{origin}: {where}: {err['msg']}") from None
    try:
        design_of(hw)  # the links and roles are checked once, here, so a bad file fails as it is read
    except SpecError as exc:
        raise SpecError(f"{origin}: {exc}") from None
    return hw


def load_hardware(source: str | Path) -> Hardware:
    """A hardware design from a preset name (`tstack hardware` lists them) or a YAML file."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml"):
        return hardware_from_mapping(read_yaml_file(path, "hardware"), str(path))
    return hardware_from_mapping(read_preset("hardware", str(source)), f"hardware preset {source}")
