"""The numbers of benchmarks/RESULTS-area.md: Gemmini's area by component, the table against CACTI, the table's
energies against the hand table, the I-BERT units' share, and how many designs are priced per second.

    .venv/bin/python benchmarks/area/compare.py        # any Python: reads the committed tables

Every figure printed is predicted (from a table), measured (CACTI's recorded output, a timing) or cited.
"""

from __future__ import annotations

import json
import time
from importlib import resources

import numpy as np

from tstack.hardware.area import design_area, memory_energies
from tstack.hardware.area_tables import HAND_TABLE
from tstack.spec.area import load_tables, table_names, tables_for_node
from tstack.spec.hardware import load_hardware


def breakdown() -> None:
    print("## Gemmini's default configuration (gemmini-baseline), predicted, by component")
    for name in [n for n in table_names() if n.startswith("hwcomponents-")]:
        table = load_tables(name)
        area = design_area(load_hardware("gemmini-baseline"), tables=table)
        print(
            f"{name}: PE array {area.pe_array_mm2:.4f} mm2 ({area.pe_um2:.0f} um2/PE), scratchpad "
            f"{area.scratchpad_mm2:.4f}, accumulator {area.accumulator_mm2:.4f}, nonlinear "
            f"{area.nonlinear_units_mm2:.4f}, total {area.total_mm2:.4f} mm2"
        )


def cacti_check() -> None:
    print("\n## SRAM: table (interpolated) against CACTI's recorded output, same macro")
    for node in (22, 45):
        try:
            table = tables_for_node(node)
        except Exception as exc:  # a node without a committed table is reported, not fatal
            print(f"{node} nm: {exc}")
            continue
        ref = json.loads((resources.files("tstack.presets") / "area" / f"cacti-reference-{node}nm.json").read_text())
        for m in ref["macros"]:
            costs = table.sram(m["capacity_bytes"], m["width_bits"], m["banks"])
            errs = [
                100 * (float(getattr(costs, f)) / m[f] - 1) for f in ("area_mm2", "read_energy_pj", "write_energy_pj")
            ]
            print(
                f"{node} nm {m['capacity_bytes'] // 1024:>5} KiB {m['width_bits']:>4} b {m['banks']:>2} banks: "
                f"CACTI {m['area_mm2']:.4f} mm2 {m['read_energy_pj']:.2f}/{m['write_energy_pj']:.2f} pJ; "
                f"table error area {errs[0]:+.2f}%, read {errs[1]:+.2f}%, write {errs[2]:+.2f}%"
            )


def energies() -> None:
    print("\n## Per-byte energies of gemmini-baseline: tables against the hand (Horowitz 45 nm) table")
    hw = load_hardware("gemmini-baseline")
    for name in [HAND_TABLE, *[n for n in table_names() if n.startswith("hwcomponents-")]]:
        e = memory_energies(hw, tables=load_tables(name))
        levels = ", ".join(f"{x.level} {x.read_pj_per_byte:.3g}/{x.write_pj_per_byte:.3g}" for x in e.per_level)
        print(f"{name}: {levels} pJ/B (read/write, DRAM {e.dram.value}); MAC {e.mac_energy_pj:.3g} pJ")


def ibert_units() -> None:
    print("\n## I-BERT units: gemmini-ibert over gemmini-rebalanced (paper section 3.4.4: +14% area, ASAP7)")
    for name in [n for n in table_names() if n.startswith("hwcomponents-")]:
        table = load_tables(name)
        base = design_area(load_hardware("gemmini-rebalanced"), tables=table)
        ibert = design_area(load_hardware("gemmini-ibert"), tables=table)
        print(
            f"{name}: +{100 * (ibert.total_mm2 / base.total_mm2 - 1):.1f}% total (normalization unit "
            f"{ibert.normalization_unit_mm2:.4f} mm2, activation units "
            f"{ibert.nonlinear_units_mm2 - ibert.normalization_unit_mm2:.4f} mm2)"
        )


def speed(repeats: int = 5, designs: int = 200) -> None:
    print("\n## Speed: design_area + memory_energies per design (min of 5 runs of 200 designs), measured")
    hw = load_hardware("gemmini-ibert")
    sizes = np.random.default_rng(0).choice([32, 64, 128, 256, 512], size=(designs, 2)) * 1024
    variants = [
        hw.with_level("scratchpad", capacity_bytes=int(s)).with_level("accumulator", capacity_bytes=int(a))
        for s, a in sizes
    ]
    design_area(hw, tables=load_tables())  # warm-up: the table load
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for v in variants:
            design_area(v, tables=load_tables())
            memory_energies(v, tables=load_tables())
        best = min(best, time.perf_counter() - start)
    print(f"{designs / best:,.0f} designs/s ({1e6 * best / designs:.0f} us per design)")


if __name__ == "__main__":
    breakdown()
    cacti_check()
    energies()
    ibert_units()
    speed()
