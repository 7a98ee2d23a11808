"""Component tables for area and energy: SRAM macros over a grid, logic blocks by width, DRAM per byte.

A table is data with provenance (`src/tstack/presets/area/*.json`): the `hwcomponents-<node>nm` tables are written by
`benchmarks/area/build_tables.py`, which runs CACTI (the `hwcomponents-cacti` plug-in) and the Aladdin component
library (`hwcomponents-library`) under Python 3.12; `hand-45nm` is the Horowitz 45 nm table the hardware presets'
energies were taken from (the paper's Fig. 15). Reading a table needs only numpy, on any Python. The files are found
and read at the boundary (`tstack.spec.area.load_tables`); this module turns a parsed document into `AreaTables`.

SRAM figures are CACTI's for a whole macro (`capacity_bytes` in `banks` banks, one access `width_bits` wide): area in
mm², energy in pJ per access. Between grid points they are interpolated linearly in log-log space (area and energy
follow power laws in capacity and width far better than straight lines), vectorized over any number of macros. A
macro outside the grid is refused in one line rather than extrapolated: CACTI's organization changes across sizes,
so a power law fitted inside says little outside.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from tstack.errors import TstackError

SCHEMA = "tstack.area-table/1"
DEFAULT_TABLE = "hwcomponents-22nm"
HAND_TABLE = "hand-45nm"

FloatArray = npt.NDArray[np.float64]


class AreaTableError(TstackError):
    """An area table that is missing, malformed, or asked about a design outside what it covers."""


class Logic(StrEnum):
    """The logic blocks a table prices by width (bits): a multiplier's width is that of both operands."""

    MULTIPLIER = "multiplier"
    ADDER = "adder"
    COMPARATOR = "comparator"
    REGISTER = "register"


class Dram(StrEnum):
    """DRAM kinds with a per-bit access energy in `hwcomponents-cacti` (its `_DRAM` models)."""

    LPDDR = "LPDDR"
    LPDDR4 = "LPDDR4"
    DDR3 = "DDR3"
    HBM2 = "HBM2"
    HBM3 = "HBM3"
    HBM4 = "HBM4"


@dataclass(frozen=True, slots=True)
class SramCosts:
    """CACTI's figures for a batch of macros, one entry per macro."""

    area_mm2: FloatArray
    read_energy_pj: FloatArray  # per access of the macro's width
    write_energy_pj: FloatArray


@dataclass(frozen=True, slots=True)
class LogicCost:
    """One logic block at one width: area (µm²) and energy per operation (pJ; per write for a register)."""

    area_um2: float
    energy_pj: float


@dataclass(frozen=True, slots=True)
class _SramGrid:
    capacity_bytes: FloatArray
    width_bits: FloatArray
    banks: FloatArray
    log_costs: FloatArray  # [area mm², read pJ, write pJ] x capacity x width x banks, natural logs


@dataclass(frozen=True, slots=True)
class _Curve:
    width_bits: FloatArray
    log_costs: FloatArray  # [area µm², energy pJ] x width, natural logs


@dataclass(frozen=True, eq=False)
class AreaTables:
    """One table: what it prices and where its numbers come from. Compared and hashed by identity (its arrays are
    not hashable); tables are loaded once per name (`load_tables`)."""

    name: str
    tech_node_nm: int
    source: str
    provenance: dict[str, Any]
    _sram: _SramGrid | None
    _sram_flat_pj_per_byte: tuple[float, float] | None  # (read, write) for a table without an SRAM grid
    _logic: dict[Logic, _Curve]
    _dram_pj_per_byte: dict[Dram, float]
    default_dram: Dram = Dram.DDR3

    @property
    def has_sram_area(self) -> bool:
        return self._sram is not None

    def sram(self, capacity_bytes: npt.ArrayLike, width_bits: npt.ArrayLike, banks: npt.ArrayLike) -> SramCosts:
        """CACTI's area and per-access energies of each macro (arrays broadcast together)."""
        grid = self._sram
        if grid is None:
            raise AreaTableError(
                f"area table {self.name!r} has no SRAM area model (it gives energies only); "
                f"use {DEFAULT_TABLE!r} or another hwcomponents table"
            )
        cap, width, bank = np.broadcast_arrays(
            np.asarray(capacity_bytes, dtype=np.float64),
            np.asarray(width_bits, dtype=np.float64),
            np.asarray(banks, dtype=np.float64),
        )
        axes = ((cap, grid.capacity_bytes, "capacity", "B"), (width, grid.width_bits, "width", " bits"))
        for values, axis, what, unit in (*axes, (bank, grid.banks, "bank count", "")):
            _check_range(self.name, values, axis, what, unit)
        query = np.log2(np.stack([cap.ravel(), width.ravel(), bank.ravel()]))
        grids = (np.log2(grid.capacity_bytes), np.log2(grid.width_bits), np.log2(grid.banks))
        area, read, write = np.exp(_interpolate(grids, grid.log_costs, query)).reshape(3, *cap.shape)
        return SramCosts(area_mm2=area, read_energy_pj=read, write_energy_pj=write)

    def sram_pj_per_byte(self, capacity_bytes: int, width_bits: int, banks: int) -> tuple[float, float]:
        """(read, write) energy per byte of one macro: a flat table's constants, or CACTI's per access / width."""
        if self._sram is None:
            assert self._sram_flat_pj_per_byte is not None
            return self._sram_flat_pj_per_byte
        costs = self.sram(capacity_bytes, width_bits, banks)
        width_bytes = width_bits / 8
        return float(costs.read_energy_pj) / width_bytes, float(costs.write_energy_pj) / width_bytes

    def has_logic(self, block: Logic) -> bool:
        return block in self._logic

    def logic(self, block: Logic, width_bits: float) -> LogicCost:
        """Area and energy of `block` at `width_bits` (log-log between the table's widths; refused outside)."""
        curve = self._logic.get(block)
        if curve is None:
            raise AreaTableError(f"area table {self.name!r} has no {block.value} model; use {DEFAULT_TABLE!r}")
        width = np.asarray([float(width_bits)])
        _check_range(self.name, width, curve.width_bits, f"{block.value} width", " bits")
        grids = (np.log2(curve.width_bits),)
        area, energy = np.exp(_interpolate(grids, curve.log_costs, np.log2(width)[None, :]))[:, 0]
        return LogicCost(area_um2=float(area), energy_pj=float(energy))

    def dram_pj_per_byte(self, kind: Dram) -> float:
        if kind not in self._dram_pj_per_byte:
            known = ", ".join(k.value for k in self._dram_pj_per_byte)
            raise AreaTableError(f"area table {self.name!r} has no {kind.value} DRAM energy; it has {known}")
        return self._dram_pj_per_byte[kind]


def _check_range(table: str, values: FloatArray, axis: FloatArray, what: str, unit: str) -> None:
    low, high = float(axis[0]), float(axis[-1])
    outside = (values < low * (1 - 1e-9)) | (values > high * (1 + 1e-9))
    if np.any(outside):
        bad = float(values[outside].flat[0])
        raise AreaTableError(
            f"{what} {bad:,.0f}{unit} is outside area table {table!r} ({low:,.0f}{unit} to {high:,.0f}{unit}); "
            "choose a design inside it or build a wider table with benchmarks/area/build_tables.py"
        )


def _interpolate(grids: tuple[FloatArray, ...], tables: FloatArray, query: FloatArray) -> FloatArray:
    """Multilinear interpolation of each of `tables` (a leading axis of tables, then one axis per grid) at the columns
    of `query` (ndim x n), vectorized: returns tables x n."""
    n = query.shape[1]
    lower: list[npt.NDArray[np.intp]] = []
    upper: list[npt.NDArray[np.intp]] = []
    frac: list[FloatArray] = []
    for axis, x in zip(grids, query, strict=True):
        if axis.size == 1:  # a one-point axis: the query equals it (checked by the range test)
            lower.append(np.zeros(n, dtype=np.intp))
            upper.append(np.zeros(n, dtype=np.intp))
            frac.append(np.zeros(n))
            continue
        i = np.clip(np.searchsorted(axis, x, side="right") - 1, 0, axis.size - 2)
        lower.append(i)
        upper.append(i + 1)
        frac.append(np.clip((x - axis[i]) / (axis[i + 1] - axis[i]), 0.0, 1.0))
    by_point = np.moveaxis(tables, 0, -1)  # grid axes first, so one fancy index picks every table's corner
    out: FloatArray = np.zeros((n, tables.shape[0]))
    for corner in range(2 ** len(grids)):
        index: list[npt.NDArray[np.intp]] = []
        weight: FloatArray = np.ones(n)
        for d in range(len(grids)):
            high = bool(corner >> d & 1)
            index.append(upper[d] if high else lower[d])
            weight = weight * (frac[d] if high else 1.0 - frac[d])
        corner_values: FloatArray = by_point[tuple(index)]
        out += weight[:, None] * corner_values
    return out.T


def tables_from_document(doc: Any, origin: str = "<document>") -> AreaTables:
    """An `AreaTables` from a table document (the JSON `build_tables.py` writes); a malformed one is one line."""
    try:
        return _parse(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise AreaTableError(
            f"area table {origin} is malformed ({type(exc).__name__}: {exc}); rebuild it with "
            "benchmarks/area/build_tables.py"
        ) from None


def _positive(values: Any, what: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{what} must be positive finite numbers")
    return arr


def _axis(values: Any, what: str) -> FloatArray:
    arr = _positive(values, what)
    if arr.ndim != 1 or np.any(np.diff(arr) <= 0):
        raise ValueError(f"{what} must be a strictly increasing list")
    return arr


def _parse(doc: Any) -> AreaTables:
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"schema is {doc.get('schema')!r}, expected {SCHEMA!r}")
    sram_doc = doc.get("sram")
    grid = None
    if sram_doc is not None:
        axes = [_axis(sram_doc[k], k) for k in ("capacity_bytes", "width_bits", "banks")]
        shape = tuple(a.size for a in axes)
        logs = []
        for key in ("area_mm2", "read_energy_pj", "write_energy_pj"):
            values = _positive(sram_doc[key], key)
            if values.shape != shape:
                raise ValueError(f"sram.{key} has shape {values.shape}, expected {shape}")
            logs.append(np.log(values))
        grid = _SramGrid(
            capacity_bytes=axes[0], width_bits=axes[1], banks=axes[2], log_costs=np.stack(logs).astype(np.float64)
        )
    flat_doc = doc.get("sram_flat")
    flat = None if flat_doc is None else (float(flat_doc["read_pj_per_byte"]), float(flat_doc["write_pj_per_byte"]))
    if grid is None and flat is None:
        raise ValueError("needs an 'sram' grid or 'sram_flat' energies")
    logic: dict[Logic, _Curve] = {}
    for key, curve in doc.get("logic", {}).items():
        widths = _axis(curve["width_bits"], f"logic.{key}.width_bits")
        area = _positive(curve["area_um2"], f"logic.{key}.area_um2")
        energy = _positive(curve["energy_pj"], f"logic.{key}.energy_pj")
        if area.shape != widths.shape or energy.shape != widths.shape:
            raise ValueError(f"logic.{key}: area_um2 and energy_pj need one value per width")
        logic[Logic(key)] = _Curve(widths, np.log(np.stack([area, energy])))
    dram = {Dram(k): float(v) for k, v in doc["dram_pj_per_byte"].items()}
    default_dram = Dram(doc.get("default_dram", Dram.DDR3.value))
    if default_dram not in dram:
        raise ValueError(f"default_dram {default_dram.value!r} has no entry in dram_pj_per_byte")
    return AreaTables(
        name=str(doc["name"]),
        tech_node_nm=int(doc["tech_node_nm"]),
        source=str(doc["source"]),
        provenance=dict(doc.get("provenance", {})),
        _sram=grid,
        _sram_flat_pj_per_byte=flat,
        _logic=logic,
        _dram_pj_per_byte=dram,
        default_dram=default_dram,
    )


__all__ = [
    "DEFAULT_TABLE",
    "HAND_TABLE",
    "AreaTableError",
    "AreaTables",
    "Dram",
    "Logic",
    "LogicCost",
    "SramCosts",
    "tables_from_document",
]
