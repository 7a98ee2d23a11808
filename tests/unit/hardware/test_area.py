"""The area and energy model: table interpolation, a design's breakdown, the hand table, and bad input in one line."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from tstack.hardware import design_of
from tstack.hardware.area import design_area, memory_energies, sram_macros, with_table_energies
from tstack.hardware.area_live import LiveAreaError, live_tables
from tstack.hardware.area_tables import (
    HAND_TABLE,
    AreaTableError,
    Dram,
    Logic,
    tables_from_document,
)
from tstack.hardware.types import ActivationUnits
from tstack.spec.area import load_tables, tables_for_node
from tstack.spec.hardware import load_hardware

KIB = 1024


def _power_law_doc() -> dict[str, Any]:
    """A table whose SRAM figures follow exact power laws, which log-log interpolation must reproduce anywhere."""
    caps = np.array([4.0, 16.0, 64.0, 256.0]) * KIB
    widths = np.array([32.0, 128.0, 512.0])
    banks = np.array([1.0, 4.0])
    c, w, b = np.meshgrid(caps, widths, banks, indexing="ij")
    return {
        "schema": "tstack.area-table/1",
        "name": "power-law",
        "tech_node_nm": 22,
        "source": "synthetic",
        "sram": {
            "capacity_bytes": caps.tolist(),
            "width_bits": widths.tolist(),
            "banks": banks.tolist(),
            "area_mm2": (1e-6 * c**0.9 * w**0.1 * b**0.05).tolist(),
            "read_energy_pj": (0.01 * c**0.4 * w**0.8).tolist(),
            "write_energy_pj": (0.02 * c**0.3 * w**0.7 * b**0.1).tolist(),
        },
        "logic": {"multiplier": {"width_bits": [8, 32], "area_um2": [100, 1600], "energy_pj": [0.1, 1.6]}},
        "dram_pj_per_byte": {"DDR3": 100.0},
    }


def test_log_log_interpolation_reproduces_a_power_law_between_grid_points() -> None:
    table = tables_from_document(_power_law_doc())
    cap = np.array([6.0, 48.0, 200.0, 4.0, 256.0]) * KIB
    width = np.array([48.0, 100.0, 300.0, 32.0, 512.0])
    banks = np.array([2.0, 1.0, 3.0, 4.0, 1.0])
    costs = table.sram(cap, width, banks)
    np.testing.assert_allclose(costs.area_mm2, 1e-6 * cap**0.9 * width**0.1 * banks**0.05, rtol=1e-9)
    np.testing.assert_allclose(costs.read_energy_pj, 0.01 * cap**0.4 * width**0.8, rtol=1e-9)
    np.testing.assert_allclose(costs.write_energy_pj, 0.02 * cap**0.3 * width**0.7 * banks**0.1, rtol=1e-9)
    # a quadratic multiplier: 16 bits is 4x the area of 8 bits
    assert table.logic(Logic.MULTIPLIER, 16).area_um2 == pytest.approx(400.0)


def test_the_committed_table_returns_its_own_grid_points() -> None:
    table = load_tables()
    doc = json.loads((_preset("hwcomponents-22nm")).read_text(encoding="utf-8"))
    sram = doc["sram"]
    rng = np.random.default_rng(0)
    i, j, k = (rng.integers(0, len(sram[a]), 40) for a in ("capacity_bytes", "width_bits", "banks"))
    costs = table.sram(np.array(sram["capacity_bytes"])[i], np.array(sram["width_bits"])[j], np.array(sram["banks"])[k])
    np.testing.assert_allclose(costs.area_mm2, np.array(sram["area_mm2"])[i, j, k], rtol=1e-9)
    np.testing.assert_allclose(costs.read_energy_pj, np.array(sram["read_energy_pj"])[i, j, k], rtol=1e-9)


def _preset(name: str) -> Any:
    from importlib import resources

    return resources.files("tstack.presets") / "area" / f"{name}.json"


def test_gemmini_breakdown_is_made_of_its_parts() -> None:
    hw = load_hardware("gemmini-baseline")
    area = design_area(hw, tables=load_tables())
    parts = area.pe_array_mm2 + area.scratchpad_mm2 + area.accumulator_mm2 + area.l2_mm2 + area.nonlinear_units_mm2
    assert area.total_mm2 == pytest.approx(parts)
    assert area.tech_node_nm == 22 and "hwcomponents-22nm" in area.source
    assert area.pe_array_mm2 == pytest.approx(256 * area.pe_um2 / 1e6)
    assert area.l2_mm2 == 0.0  # Gemmini's preset has no L2
    # the macros read as Gemmini's: a 128-bit scratchpad row in 4 banks, a 512-bit accumulator row in 2
    assert [(m.capacity_bytes, m.width_bits, m.banks) for m in sram_macros(hw)] == [
        (256 * KIB, 128, 4),
        (64 * KIB, 512, 2),
    ]


def test_bigger_memories_and_arrays_cost_more_area_and_energy_per_byte() -> None:
    hw = load_hardware("gemmini-baseline")
    small, big = (
        design_area(hw, tables=load_tables()),
        design_area(hw.with_level("scratchpad", capacity_bytes=1024 * KIB), tables=load_tables()),
    )
    assert big.scratchpad_mm2 > 2.5 * small.scratchpad_mm2
    assert big.pe_array_mm2 == small.pe_array_mm2
    wide = design_area(replace(hw, pe=replace(hw.pe, rows=32, cols=32)), tables=load_tables())
    assert wide.pe_array_mm2 == pytest.approx(4 * small.pe_array_mm2)
    e_small = memory_energies(hw, tables=load_tables()).of("scratchpad").read_pj_per_byte
    e_big = (
        memory_energies(hw.with_level("scratchpad", capacity_bytes=1024 * KIB), tables=load_tables())
        .of("scratchpad")
        .read_pj_per_byte
    )
    assert e_big > e_small


def test_integer_nonlinear_units_cost_more_than_relu_units() -> None:
    """gemmini-ibert's I-BERT units against gemmini-rebalanced's ReLU/pool units (same memories)."""
    rebalanced, ibert = (
        design_area(load_hardware("gemmini-rebalanced"), tables=load_tables()),
        design_area(load_hardware("gemmini-ibert"), tables=load_tables()),
    )
    assert ibert.scratchpad_mm2 == rebalanced.scratchpad_mm2
    assert ibert.normalization_unit_mm2 > 0.0 == rebalanced.normalization_unit_mm2
    assert ibert.nonlinear_units_mm2 > 5 * rebalanced.nonlinear_units_mm2


def test_every_preset_is_priced() -> None:
    for name in ("gemmini-baseline", "gemmini-rebalanced", "gemmini-ibert", "gemmini-ibert-timeloop", "paper-analytic"):
        area = design_area(load_hardware(name), tables=load_tables())
        assert 0.05 < area.total_mm2 < 50.0, name


def test_the_hand_table_reproduces_the_presets_energies() -> None:
    """The presets' 1.25 pJ/B SRAM, 160 pJ/B DRAM and 0.3 pJ MAC are Horowitz's 45 nm figures, kept as a table."""
    hw = load_hardware("gemmini-baseline")
    design = design_of(hw)
    energies = memory_energies(hw, tables=load_tables(HAND_TABLE))
    for level in design.memories:
        assert energies.of(level.name).read_pj_per_byte == pytest.approx(level.read_energy_pj_per_byte)
        assert energies.of(level.name).write_pj_per_byte == pytest.approx(level.write_energy_pj_per_byte)
    assert energies.mac_energy_pj == pytest.approx(hw.pe.mac_energy_pj)


def test_table_energies_replace_the_hand_ones() -> None:
    hw = load_hardware("gemmini-baseline")
    priced = with_table_energies(hw, dram=Dram.LPDDR4, tables=load_tables())
    energies = memory_energies(hw, dram=Dram.LPDDR4, tables=load_tables())
    for level in design_of(priced).memories:
        assert level.read_energy_pj_per_byte == energies.of(level.name).read_pj_per_byte
    assert priced.pe.mac_energy_pj == energies.mac_energy_pj != hw.pe.mac_energy_pj
    assert design_of(priced).dram.read_energy_pj_per_byte == load_tables().dram_pj_per_byte(Dram.LPDDR4)


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message and message
    return message


def test_a_design_outside_the_grid_is_one_line() -> None:
    hw = load_hardware("gemmini-baseline").with_level("scratchpad", capacity_bytes=64 * 1024 * KIB)
    with pytest.raises(AreaTableError) as exc:
        design_area(hw, tables=load_tables())
    message = _one_line(exc)
    assert "capacity" in message and "outside" in message and "gemmini-baseline" in message


def test_an_unknown_node_or_table_is_one_line() -> None:
    with pytest.raises(AreaTableError) as exc:
        tables_for_node(7)
    assert "7 nm" in _one_line(exc) and "22 nm" in str(exc.value)
    with pytest.raises(AreaTableError) as exc:
        load_tables("hwcomponents-3nm")
    assert "known:" in _one_line(exc)


def test_a_table_without_sram_area_is_refused_in_one_line() -> None:
    with pytest.raises(AreaTableError) as exc:
        design_area(load_hardware("gemmini-baseline"), tables=load_tables(HAND_TABLE))
    assert "no SRAM area" in _one_line(exc)


def test_a_malformed_table_is_one_line() -> None:
    doc = copy.deepcopy(_power_law_doc())
    doc["sram"]["area_mm2"][0][0][0] = -1.0
    with pytest.raises(AreaTableError) as exc:
        tables_from_document(doc, origin="bad.json")
    assert "bad.json" in _one_line(exc)


def test_an_op_without_a_datapath_is_one_line() -> None:
    hw = load_hardware("gemmini-ibert")
    assert hw.activations is not None
    hw = replace(hw, activations=ActivationUnits(count=16, ops=frozenset({"gelu", "sort"})))
    with pytest.raises(Exception) as exc:
        design_area(hw, tables=load_tables())
    assert "sort" in _one_line(exc)


def test_the_live_path_says_what_it_needs_on_python_311() -> None:
    import sys

    if sys.version_info >= (3, 12):
        pytest.skip("the live path runs on this Python (tests/unit/hardware/test_area_cacti.py exercises it)")
    with pytest.raises(LiveAreaError) as exc:
        live_tables(22)
    assert "3.12" in _one_line(exc)
