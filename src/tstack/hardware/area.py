"""Area and per-access energies of a design, priced from a component table (`tstack.hardware.area_tables`).

Without one the area model would be missing from every search (a bigger design always wins) and energies would be
hand constants. Every figure here is predicted from a table whose source it names (`source`): by default
`hwcomponents-22nm` (CACTI SRAM macros and the Aladdin logic library via hwcomponents at 22 nm), or any other table
(`tstack.spec.area.load_tables`, passed in as `tables`), including `hand-45nm`, the Horowitz table the presets'
energies come from, kept for comparison.

What a design is made of, as read through `design_of` (the assumptions, switchable by editing the design):

* SRAM macros: the scratchpad, the accumulator (none when it is the scratchpad) and the L2, each one CACTI macro of
  the level's capacity and banks, one access a row of the array: `pe.cols` elements of the level's `word_bits` (a
  16-wide int8 scratchpad reads 128 bits, a 32-bit accumulator 512 bits; the L2 is read in scratchpad rows). DRAM is
  off chip: no area, an energy per byte of the chosen DRAM kind.
* The PE array: rows x cols PEs, each a multiplier of the operand width (the scratchpad's `word_bits`), an adder of
  the accumulator's width, and registers for the input passed along (1 operand), the weight and its preload buffer
  (2 operands) and the partial sum passed down (accumulator width). A MAC's energy is the multiply, the add, and the
  writes of the input and partial-sum registers (they move one PE per cycle; the weight stays).
* Special-function units. An activation unit is a pipelined integer datapath taking one element per cycle: for each
  kind of block (multiplier, adder, comparator) as many as the heaviest op it runs uses per element — for GELU,
  Softmax and LayerNorm the integer kernel's own counts (`tstack.kernels.opcount`, every pass of the kernel at once:
  an upper bound for a unit that reuses blocks across passes), for simple ops a fixed list below — all 32 bits wide
  (I-BERT's int32), one pipeline register per block, and one iterative divider (an adder and three registers) when
  a kernel divides. A unit with `ops_per_cycle` set is that many ALUs (multiplier, adder, comparator, register). The
  normalization unit is `elements_per_cycle` reduction lanes, each a 64-bit adder (Σ and Σ² of int32), a 32-bit
  comparator (max) and its running registers. Control, DMA, TLBs, instruction queues and wiring are not modelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from tstack.errors import SpecError
from tstack.hardware.area_tables import AreaTableError, AreaTables, Dram, Logic, SramCosts
from tstack.hardware.design import Design, design_of
from tstack.hardware.types import ActivationUnits, Hardware, MemoryLevel, NormalizationUnit
from tstack.kernels.opcount import op_counts

_UM2_PER_MM2 = 1e6
_DATAPATH_BITS = 32  # I-BERT's integer kernels compute in int32
_REDUCTION_BITS = 64  # Σq² of int32 values
_KERNEL_ROW = 1024  # per-element counts of a long row (per-row work, such as one division, amortized to ~0)
_ARITH_BLOCKS = (Logic.MULTIPLIER, Logic.ADDER, Logic.COMPARATOR)

# ops that are not integer kernels in tstack: the blocks one element needs
_SIMPLE_OPS: dict[str, dict[Logic, int]] = {
    "relu": {Logic.COMPARATOR: 1},
    "maxpool": {Logic.COMPARATOR: 1},
    "add": {Logic.ADDER: 1},
    "avgpool": {Logic.ADDER: 1},
    "embedding": {Logic.ADDER: 1},  # an address add; the table lives in the scratchpad
    "batchnorm": {Logic.MULTIPLIER: 1, Logic.ADDER: 1},
    "rope": {Logic.MULTIPLIER: 2, Logic.ADDER: 1},  # x cos - y sin
}
# ops run by an integer kernel of `tstack.kernels`, and blocks they need beyond it
_KERNEL_OPS: dict[str, tuple[str, dict[Logic, int]]] = {
    "gelu": ("gelu", {}),
    "tanh": ("gelu", {}),  # the same polynomial-and-clip datapath
    "swiglu": ("gelu", {Logic.MULTIPLIER: 1}),  # the gate's activation, then gate x up
    "softmax": ("softmax", {}),
    "layernorm": ("layernorm", {}),
    "rmsnorm": ("layernorm", {}),
}


@dataclass(frozen=True, slots=True)
class SramMacro:
    """One on-chip memory as a CACTI macro: total capacity, banks, and the bits of one access."""

    level: str
    capacity_bytes: int
    width_bits: int
    banks: int


@dataclass(frozen=True, slots=True)
class AreaBreakdown:
    """One design's area in mm², by component, at `tech_node_nm`, predicted from the table named in `source`."""

    pe_array_mm2: float
    scratchpad_mm2: float
    accumulator_mm2: float
    l2_mm2: float
    nonlinear_units_mm2: float
    total_mm2: float
    tech_node_nm: int
    source: str
    normalization_unit_mm2: float = 0.0  # the part of `nonlinear_units_mm2` that is the normalization unit
    pe_um2: float = 0.0  # one PE


@dataclass(frozen=True, slots=True)
class LevelEnergy:
    """Per-byte access energies of one memory level, in pJ."""

    level: str
    read_pj_per_byte: float
    write_pj_per_byte: float


@dataclass(frozen=True, slots=True)
class MemoryEnergies:
    """Per-level read/write energies (innermost first, DRAM last) and a MAC's energy, predicted from `source`."""

    per_level: tuple[LevelEnergy, ...]
    mac_energy_pj: float
    tech_node_nm: int
    source: str
    dram: Dram

    def of(self, level: str) -> LevelEnergy:
        for entry in self.per_level:
            if entry.level == level:
                return entry
        raise SpecError(f"no memory level {level!r}; levels are {[e.level for e in self.per_level]}")


def sram_macros(hw: Hardware | Design) -> tuple[SramMacro, ...]:
    """The design's on-chip memories as macros (module docstring: one access is a row of the array)."""
    design = design_of(hw)
    cols = design.hardware.pe.cols

    def macro(level: MemoryLevel, word_bits: int) -> SramMacro:
        return SramMacro(level.name, level.capacity_bytes, cols * word_bits, level.banks)

    out = [macro(design.scratchpad, design.scratchpad.word_bits)]
    if not design.shared_buffer:
        out.append(macro(design.accumulator, design.accumulator.word_bits))
    if design.l2 is not None:
        out.append(macro(design.l2, design.scratchpad.word_bits))
    return tuple(out)


def _sram_costs(design: Design, macros: tuple[SramMacro, ...], tables: AreaTables) -> SramCosts:
    """Every macro of the design in one vectorized table query; an out-of-table macro names the design."""
    try:
        return tables.sram(
            np.array([m.capacity_bytes for m in macros]),
            np.array([m.width_bits for m in macros]),
            np.array([m.banks for m in macros]),
        )
    except AreaTableError as exc:
        raise AreaTableError(f"hardware {design.hardware.name!r}: {exc}") from None


def _macro_areas_mm2(design: Design, tables: AreaTables) -> dict[str, float]:
    macros = sram_macros(design)
    costs = _sram_costs(design, macros, tables)
    return {m.level: float(a) for m, a in zip(macros, costs.area_mm2, strict=True)}


def _macro_pj_per_byte(design: Design, tables: AreaTables) -> dict[str, tuple[float, float]]:
    """(read, write) pJ per byte of each macro, all macros in one table query."""
    macros = sram_macros(design)
    if not tables.has_sram_area:
        try:
            return {m.level: tables.sram_pj_per_byte(m.capacity_bytes, m.width_bits, m.banks) for m in macros}
        except AreaTableError as exc:
            raise AreaTableError(f"hardware {design.hardware.name!r}: {exc}") from None
    width_bytes = np.array([m.width_bits / 8 for m in macros])
    costs = _sram_costs(design, macros, tables)
    reads, writes = costs.read_energy_pj / width_bytes, costs.write_energy_pj / width_bytes
    return {m.level: (float(r), float(w)) for m, r, w in zip(macros, reads, writes, strict=True)}


def pe_area_um2(hw: Hardware | Design, tables: AreaTables) -> float:
    """One PE's area (module docstring)."""
    design = design_of(hw)
    return _pe_area_um2(tables, design.scratchpad.word_bits, design.accumulator.word_bits)


@lru_cache(maxsize=256)
def _pe_area_um2(tables: AreaTables, operand_bits: int, psum_bits: int) -> float:
    reg = tables.logic(Logic.REGISTER, 1).area_um2  # a register's area is linear in its bits (Aladdin)
    return (
        tables.logic(Logic.MULTIPLIER, operand_bits).area_um2
        + tables.logic(Logic.ADDER, psum_bits).area_um2
        + reg * (3 * operand_bits + psum_bits)
    )


def mac_energy_pj(hw: Hardware | Design, tables: AreaTables) -> float:
    """One MAC's energy (module docstring); a table without registers (Horowitz's) prices the arithmetic only."""
    design = design_of(hw)
    return _mac_energy_pj(tables, design.scratchpad.word_bits, design.accumulator.word_bits)


@lru_cache(maxsize=256)
def _mac_energy_pj(tables: AreaTables, operand_bits: int, psum_bits: int) -> float:
    energy = tables.logic(Logic.MULTIPLIER, operand_bits).energy_pj + tables.logic(Logic.ADDER, psum_bits).energy_pj
    if tables.has_logic(Logic.REGISTER):
        energy += tables.logic(Logic.REGISTER, 1).energy_pj * (operand_bits + psum_bits)
    return energy


def _op_blocks(op: str, variant: str) -> dict[Logic, int]:
    if op in _SIMPLE_OPS:
        return dict(_SIMPLE_OPS[op])
    if op not in _KERNEL_OPS:
        known = ", ".join(sorted({*_SIMPLE_OPS, *_KERNEL_OPS}))
        raise SpecError(f"activation units list op {op!r}, which has no datapath in the area model; known: {known}")
    kernel, extra = _KERNEL_OPS[op]
    counts = op_counts(kernel, _KERNEL_ROW, variant)
    blocks = {
        Logic.MULTIPLIER: math.ceil(round((counts.multiplies + counts.float_multiplies) / _KERNEL_ROW, 6)),
        Logic.ADDER: math.ceil(round(counts.adds / _KERNEL_ROW, 6)),
        Logic.COMPARATOR: math.ceil(round(counts.comparisons / _KERNEL_ROW, 6)),
    }
    for block, n in extra.items():
        blocks[block] += n
    if counts.divisions:
        blocks[Logic.ADDER] += 1  # the iterative divider's subtractor (its three registers: the caller's)
    return blocks


@lru_cache(maxsize=1024)
def _activation_units_um2(acts: ActivationUnits, tables: AreaTables) -> float:
    block_um2 = {block: tables.logic(block, _DATAPATH_BITS).area_um2 for block in _ARITH_BLOCKS}
    reg32 = tables.logic(Logic.REGISTER, _DATAPATH_BITS).area_um2
    if acts.ops_per_cycle is not None:
        alu = sum(block_um2.values()) + reg32
        return acts.count * acts.ops_per_cycle * alu
    need: dict[Logic, int] = dict.fromkeys(_ARITH_BLOCKS, 0)
    divides = False
    for op in sorted(acts.ops):
        for block, n in _op_blocks(op, acts.kernels).items():
            need[block] = max(need[block], n)
        if op in _KERNEL_OPS and op_counts(_KERNEL_OPS[op][0], _KERNEL_ROW, acts.kernels).divisions:
            divides = True
    blocks = sum(need.values())
    unit = sum(block_um2[b] * n for b, n in need.items()) + reg32 * (blocks + (3 if divides else 0))
    return acts.count * unit


@lru_cache(maxsize=1024)
def _normalization_um2(norm: NormalizationUnit, tables: AreaTables) -> float:
    lane = (
        tables.logic(Logic.ADDER, _REDUCTION_BITS).area_um2
        + tables.logic(Logic.COMPARATOR, _DATAPATH_BITS).area_um2
        + tables.logic(Logic.REGISTER, _REDUCTION_BITS).area_um2
        + tables.logic(Logic.REGISTER, _DATAPATH_BITS).area_um2
    )
    return norm.elements_per_cycle * lane


def design_area(hw: Hardware, *, tables: AreaTables) -> AreaBreakdown:
    """The area of `hw` by component (module docstring), from `tables` (`tstack.spec.area.load_tables()`: the 22 nm
    hwcomponents table).

    A memory outside the table's grid, or a table without SRAM areas (`hand-45nm`), is one `AreaTableError` line."""
    table = tables
    design = design_of(hw)
    macros = _macro_areas_mm2(design, table)
    pe_um2 = pe_area_um2(design, table)
    pe_array = pe_um2 * design.hardware.pe.rows * design.hardware.pe.cols / _UM2_PER_MM2
    norm = 0.0 if hw.normalization is None else _normalization_um2(hw.normalization, table) / _UM2_PER_MM2
    acts = 0.0 if hw.activations is None else _activation_units_um2(hw.activations, table) / _UM2_PER_MM2
    spad = macros[design.scratchpad.name]
    acc = 0.0 if design.shared_buffer else macros[design.accumulator.name]
    l2 = 0.0 if design.l2 is None else macros[design.l2.name]
    return AreaBreakdown(
        pe_array_mm2=pe_array,
        scratchpad_mm2=spad,
        accumulator_mm2=acc,
        l2_mm2=l2,
        nonlinear_units_mm2=norm + acts,
        total_mm2=pe_array + spad + acc + l2 + norm + acts,
        tech_node_nm=table.tech_node_nm,
        source=f"predicted from area table {table.name!r}: {table.source}",
        normalization_unit_mm2=norm,
        pe_um2=pe_um2,
    )


def memory_energies(hw: Hardware, *, tables: AreaTables, dram: Dram | None = None) -> MemoryEnergies:
    """Read/write pJ per byte of each memory level of `hw` and a MAC's pJ, from `tables` (`tstack.spec.area`; the
    default is the 22 nm hwcomponents table); DRAM of kind `dram` (default: the table's own default kind)."""
    table = tables
    design = design_of(hw)
    kind = table.default_dram if dram is None else dram
    per_byte = _macro_pj_per_byte(design, table)
    levels = []
    for level in design.memories:
        if level is design.dram:
            dram_pj = table.dram_pj_per_byte(kind)
            levels.append(LevelEnergy(level.name, dram_pj, dram_pj))
        else:
            levels.append(LevelEnergy(level.name, *per_byte[level.name]))
    return MemoryEnergies(
        per_level=tuple(levels),
        mac_energy_pj=mac_energy_pj(design, table),
        tech_node_nm=table.tech_node_nm,
        source=f"predicted from area table {table.name!r}: {table.source}",
        dram=kind,
    )


def with_table_energies(hw: Hardware, *, tables: AreaTables, dram: Dram | None = None) -> Hardware:
    """`hw` with its per-access and MAC energies replaced by the table's (what a search prices each design with)."""
    energies = memory_energies(hw, tables=tables, dram=dram)
    for entry in energies.per_level:
        hw = hw.with_level(
            entry.level,
            read_energy_pj_per_byte=entry.read_pj_per_byte,
            write_energy_pj_per_byte=entry.write_pj_per_byte,
        )
    return replace(hw, pe=replace(hw.pe, mac_energy_pj=energies.mac_energy_pj))
