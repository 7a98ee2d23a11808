"""The live path: component tables built now by `hwcomponents` (CACTI and the Aladdin library), on Python >= 3.12.

`hwcomponents` 1.x and its plug-ins require Python 3.12, so tstack carries their numbers as committed tables
(`tstack.hardware.area_tables`) that any Python reads, and this module builds such a table — the whole grid for
`benchmarks/area/build_tables.py`, or just the macros of one design for `live_tables(hw=...)`, whose figures are then
CACTI's own at every macro (no interpolation). On an older Python, or without the packages, it says so in one line.

What is asked of each plug-in: `hwcomponents_cacti.SRAM(tech_node, width, size, n_banks)` for a macro (its CACTI
configuration: ITRS low-standby-power cells and periphery, "fast" access mode, one read/write port); the Aladdin
blocks of `hwcomponents_library` (adder, comparator, multiplier, register, characterized at 40 nm and scaled to the
node by hwcomponents' Stillmaker-Baas equations); the `_DRAM` per-bit energies of `hwcomponents_cacti`.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib
import platform
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from tstack.errors import TstackError
from tstack.hardware.area_tables import SCHEMA, AreaTables, Dram, Logic, tables_from_document
from tstack.hardware.types import Hardware

MIN_PYTHON = (3, 12)
PACKAGES = ("hwcomponents", "hwcomponents-cacti", "hwcomponents-library")

# The committed grid: 4 KiB to 16 MiB, one access 32 to 1024 bits wide, 1 to 16 banks (powers of two, as CACTI's
# UCA banks must be).
GRID_CAPACITIES_BYTES = tuple(2**k for k in range(12, 25))
GRID_WIDTHS_BITS = (32, 64, 128, 256, 512, 1024)
GRID_BANKS = (1, 2, 4, 8, 16)
LOGIC_WIDTHS_BITS: dict[Logic, tuple[int, ...]] = {
    Logic.MULTIPLIER: (4, 8, 16, 32),
    Logic.ADDER: (4, 8, 16, 32, 64),
    Logic.COMPARATOR: (4, 8, 16, 32, 64),
    Logic.REGISTER: (1, 8, 32, 64),
}

_J_TO_PJ = 1e12
_M2_TO_MM2 = 1e6
_M2_TO_UM2 = 1e12

Progress = Callable[[int, int], None]


class LiveAreaError(TstackError):
    """The live hwcomponents path cannot run here (old Python, missing package, CACTI that does not start)."""


def require_hwcomponents() -> None:
    """Raise one line saying why the live path cannot run, or return."""
    if sys.version_info < MIN_PYTHON:
        raise LiveAreaError(
            f"the live hwcomponents path needs Python >= 3.12 (this is {platform.python_version()}); use the "
            "committed tables (tstack.hardware.area.design_area without tables=) or run under a 3.12 venv with "
            "`pip install -e '.[area]'`"
        )
    for package in PACKAGES:
        try:
            metadata.version(package)
        except metadata.PackageNotFoundError:
            raise LiveAreaError(
                f"the live hwcomponents path needs {package}; install it with `pip install -e '.[area]'`"
            ) from None


def package_versions() -> dict[str, str]:
    return {package: metadata.version(package) for package in PACKAGES}


def cacti_sram(tech_node_nm: float, capacity_bytes: int, width_bits: int, banks: int) -> tuple[float, float, float]:
    """CACTI's (area mm², read pJ, write pJ per access) for one macro, through `hwcomponents_cacti.SRAM`."""
    require_hwcomponents()
    cacti: Any = importlib.import_module("hwcomponents_cacti")
    try:
        sram = cacti.SRAM(
            tech_node=tech_node_nm * 1e-9, width=int(width_bits), size=int(capacity_bytes) * 8, n_banks=int(banks)
        )
    except Exception as exc:  # the plug-in raises a bare Exception when its CACTI binary fails
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LiveAreaError(
            f"CACTI failed for a {capacity_bytes:,} B, {width_bits}-bit, {banks}-bank SRAM ({first[:160]}); if its "
            "binary cannot start here, rebuild it: bash benchmarks/area/setup_env312.sh"
        ) from None
    return (
        float(sram.area) * _M2_TO_MM2,
        float(sram.read().energy) * _J_TO_PJ,
        float(sram.write().energy) * _J_TO_PJ,
    )


def cacti_binary() -> Path:
    """The CACTI executable the plug-in runs."""
    require_hwcomponents()
    module: Any = importlib.import_module("hwcomponents_cacti")
    return Path(module.__file__).parent / "cacti" / "cacti"


def _logic(tech_node_nm: float, block: Logic, width_bits: int) -> tuple[float, float]:
    """(area µm², energy pJ) of one Aladdin block."""
    library: Any = importlib.import_module("hwcomponents_library")
    node_m = tech_node_nm * 1e-9
    if block is Logic.MULTIPLIER:
        unit = library.AladdinMultiplier(node_m, width=width_bits)
        energy = unit.multiply().energy
    elif block is Logic.ADDER:
        unit = library.AladdinAdder(node_m, width_bits)
        energy = unit.add().energy
    elif block is Logic.COMPARATOR:
        unit = library.AladdinComparator(node_m, width_bits)
        energy = unit.compare().energy
    else:
        unit = library.AladdinRegister(node_m, width=width_bits)
        energy = unit.write().energy
    return float(unit.area) * _M2_TO_UM2, float(energy) * _J_TO_PJ


def _dram_pj_per_byte() -> dict[str, float]:
    cacti: Any = importlib.import_module("hwcomponents_cacti")
    out = {}
    for kind in Dram:
        model = getattr(cacti, kind.value)()
        out[kind.value] = float(model.read().energy) * _J_TO_PJ / (model.width / 8)
    return out


def build_document(
    tech_node_nm: int,
    *,
    capacities_bytes: Sequence[int] = GRID_CAPACITIES_BYTES,
    widths_bits: Sequence[int] = GRID_WIDTHS_BITS,
    banks: Sequence[int] = GRID_BANKS,
    name: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """A table document (the schema `tstack.hardware.area_tables` reads) built by running hwcomponents now."""
    require_hwcomponents()
    caps, widths, bank_counts = sorted(set(capacities_bytes)), sorted(set(widths_bits)), sorted(set(banks))
    total = len(caps) * len(widths) * len(bank_counts)
    area = [[[0.0] * len(bank_counts) for _ in widths] for _ in caps]
    read = [[[0.0] * len(bank_counts) for _ in widths] for _ in caps]
    write = [[[0.0] * len(bank_counts) for _ in widths] for _ in caps]
    done = 0
    for i, cap in enumerate(caps):
        for j, width in enumerate(widths):
            for k, bank in enumerate(bank_counts):
                area[i][j][k], read[i][j][k], write[i][j][k] = cacti_sram(tech_node_nm, cap, width, bank)
                done += 1
                if progress is not None:
                    progress(done, total)
    logic: dict[str, dict[str, list[float]]] = {}
    for block, block_widths in LOGIC_WIDTHS_BITS.items():
        costs = [_logic(tech_node_nm, block, w) for w in block_widths]
        logic[block.value] = {
            "width_bits": [float(w) for w in block_widths],
            "area_um2": [c[0] for c in costs],
            "energy_pj": [c[1] for c in costs],
        }
    binary = cacti_binary()
    return {
        "schema": SCHEMA,
        "name": name or f"hwcomponents-{tech_node_nm}nm",
        "tech_node_nm": int(tech_node_nm),
        "source": (
            f"predicted: CACTI via hwcomponents-cacti (SRAM, {tech_node_nm} nm, ITRS LSTP cells, fast access, "
            "1 RW port); Aladdin adder/comparator/multiplier/register via hwcomponents-library, scaled from 40 nm "
            "(Stillmaker-Baas); DRAM pJ/bit of hwcomponents-cacti's _DRAM models"
        ),
        "provenance": {
            "generator": "benchmarks/area/build_tables.py (tstack.hardware.area_live.build_document)",
            "python": platform.python_version(),
            "packages": package_versions(),
            "cacti_binary_sha256": hashlib.sha256(binary.read_bytes()).hexdigest(),
            "built_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
            "units": "area_mm2 per macro; read/write energy pJ per access of width_bits; logic area um2, pJ per op",
        },
        "sram": {
            "capacity_bytes": [float(c) for c in caps],
            "width_bits": [float(w) for w in widths],
            "banks": [float(b) for b in bank_counts],
            "area_mm2": area,
            "read_energy_pj": read,
            "write_energy_pj": write,
        },
        "logic": logic,
        "dram_pj_per_byte": _dram_pj_per_byte(),
        # Gemmini's evaluations (FireSim) model DDR3; a design on another DRAM passes `dram=` to memory_energies
        "default_dram": Dram.DDR3.value,
    }


def live_tables(tech_node_nm: int = 22, *, hw: Hardware | None = None, progress: Progress | None = None) -> AreaTables:
    """A table built now: covering exactly `hw`'s SRAM macros (CACTI's own figure for each), or the whole grid."""
    require_hwcomponents()
    if hw is None:
        doc = build_document(tech_node_nm, progress=progress)
    else:
        from tstack.hardware.area import sram_macros  # the design reading lives there; imported late (no cycle)

        macros = sram_macros(hw)
        doc = build_document(
            tech_node_nm,
            capacities_bytes=[m.capacity_bytes for m in macros],
            widths_bits=[m.width_bits for m in macros],
            banks=[m.banks for m in macros],
            name=f"live-hwcomponents-{tech_node_nm}nm",
            progress=progress,
        )
    return tables_from_document(doc, origin=f"live hwcomponents at {tech_node_nm} nm")
