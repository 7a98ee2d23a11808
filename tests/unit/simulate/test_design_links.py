"""Bandwidth belongs to links: lowering one slows exactly what crosses it (`tstack.hardware.design`)."""

from __future__ import annotations

from dataclasses import replace

import pytest

import tstack
from tstack.errors import SpecError
from tstack.hardware.design import design_of
from tstack.hardware.types import ARRAY, Hardware, Link
from tstack.simulate import ModelResult, OpResult

SEQ = 256


def _run(hw: Hardware) -> ModelResult:
    return tstack.simulate("bert-base", hw, SEQ)


def _by_name(result: ModelResult) -> dict[str, OpResult]:
    return {o.name: o for o in result.ops}


def test_lowering_the_dram_link_slows_the_dram_bound_ops_by_the_same_factor() -> None:
    """On gemmini-ibert the DMA (the link out of DRAM into both on-chip memories) runs at `bw` B/cycle (7.69). At
    1 B/cycle the same tiles move the same bytes, so every op whose time is its DRAM transfer takes `bw` times as
    long, no op gets faster, and every op stays at least its DRAM bytes over the new bandwidth."""
    hw = tstack.load_hardware("gemmini-ibert")
    bw = design_of(hw).dram_bytes_per_cycle
    assert bw > 3
    slow = hw.with_link("dram", "scratchpad", 1.0)
    assert design_of(slow).dram_bytes_per_cycle == 1.0 and design_of(slow).fill_shared
    before, after = _by_name(_run(hw)), _by_name(_run(slow))
    dram_bound = [n for n, o in before.items() if o.dram_bytes and o.latency_cycles <= 1.1 * o.dram_bytes / bw]
    assert len(dram_bound) >= 10
    for name in dram_bound:
        assert after[name].dram_bytes == before[name].dram_bytes
        assert after[name].latency_cycles == pytest.approx(bw * before[name].latency_cycles, rel=0.02), name
    for name, o in after.items():
        assert o.latency_cycles >= before[name].latency_cycles * (1 - 1e-9)
        assert o.latency_cycles >= o.dram_bytes / 1.0 * (1 - 1e-9) or o.where in ("fused", "host"), name
    assert sum(o.latency_cycles for o in after.values()) > 3 * sum(o.latency_cycles for o in before.values())


def test_lowering_the_dram_link_behind_an_l2_slows_what_crosses_it() -> None:
    """paper-analytic: DRAM -> L2 at 64 B/cycle, L2 -> local memories at 16. At 0.5 B/cycle the DRAM link binds: the
    matmuls' latency is at least their DRAM bytes over it; the L2 -> local link was never that slow."""
    hw = tstack.load_hardware("paper-analytic")
    slow = hw.with_link("dram", "l2", 0.5)
    before, after = _by_name(_run(hw)), _by_name(_run(slow))
    matmuls = [n for n, o in after.items() if o.where == "array"]
    assert matmuls
    for name in matmuls:
        assert after[name].dram_bytes == before[name].dram_bytes
        assert after[name].latency_cycles >= after[name].dram_bytes / 0.5 * (1 - 1e-9)
        assert after[name].latency_cycles > before[name].latency_cycles
    local = hw.with_link("l2", "scratchpad", 4.0)  # the on-chip side of the L2 slows the same ops, not DRAM's bytes
    mid = _by_name(_run(local))
    assert all(mid[n].dram_bytes == before[n].dram_bytes for n in matmuls)
    assert all(mid[n].latency_cycles > before[n].latency_cycles for n in matmuls)


@pytest.mark.parametrize(("parent", "bytes_per_cycle"), [("scratchpad", 8.0), ("accumulator", 4.0)])
def test_lowering_an_array_link_slows_the_matmuls_and_nothing_else(parent: str, bytes_per_cycle: float) -> None:
    """A link from an on-chip memory to the PE array carries the matmuls' operand reads (scratchpad) or partial-sum
    writes (accumulator). Narrowing it slows matmuls; every other op, every energy and every DRAM byte is unchanged."""
    hw = tstack.load_hardware("gemmini-ibert")
    wide = replace(hw, links=(*hw.links, Link(parent, (ARRAY,), 1e6)))
    narrow = wide.with_link(parent, ARRAY, bytes_per_cycle)
    base, before, after = _by_name(_run(hw)), _by_name(_run(wide)), _by_name(_run(narrow))
    slowed = 0
    for name, o in after.items():
        assert before[name].latency_cycles == pytest.approx(base[name].latency_cycles, rel=1e-9)  # 1e6: no limit
        assert o.energy_pj == pytest.approx(before[name].energy_pj, rel=1e-12)
        assert o.dram_bytes == before[name].dram_bytes
        if o.where == "array":
            assert o.latency_cycles >= before[name].latency_cycles
            slowed += o.latency_cycles > 1.5 * before[name].latency_cycles
        else:
            assert o.latency_cycles == before[name].latency_cycles, name
    assert slowed >= 6  # the projections and FFN matmuls of every layer at least


def test_a_separate_accumulator_link_carries_only_the_outputs() -> None:
    """Two DMA links (scratchpad and accumulator each their own bus): slowing the accumulator's slows the ops whose
    time is their output traffic, never beyond what a shared link of that bandwidth would cost."""
    hw = tstack.load_hardware("gemmini-ibert")
    bw = design_of(hw).dram_bytes_per_cycle
    split = replace(hw, links=(Link("dram", ("scratchpad",), bw), Link("dram", ("accumulator",), bw)))
    reading = design_of(split)
    assert not reading.fill_shared and reading.accumulator_fill_bytes_per_cycle == bw
    shared, parallel = _run(hw), _run(split)
    assert parallel.latency_cycles <= shared.latency_cycles  # two buses never move bytes slower than one
    starved = _run(split.with_link("dram", "accumulator", 0.25))
    assert starved.latency_cycles > parallel.latency_cycles


@pytest.mark.parametrize(
    ("links", "message"),
    [
        ((), r"no link feeds 'scratchpad' from 'dram'"),
        ((Link("dram", ("scratchpad",), 5.0),), r"no link feeds 'accumulator' from 'dram'"),
        ((Link("sram", ("scratchpad", "accumulator"), 5.0),), r"no memory level 'sram'"),
        ((Link("scratchpad", ("dram",), 5.0),), r"child 'dram' is not inside it"),
        ((Link("dram", ("scratchpad", "accumulator"), 0.0),), r"positive finite"),
        ((Link("dram", ("scratchpad", "accumulator", "l3"), 1.0),), r"child 'l3' is no memory level"),
    ],
)
def test_bad_links_get_one_line(links: tuple[Link, ...], message: str) -> None:
    hw = replace(tstack.load_hardware("gemmini-baseline"), links=links)
    with pytest.raises(SpecError, match=message):
        design_of(hw)


def test_old_files_with_level_bandwidths_are_refused_saying_how_to_fix_them(tmp_path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(
        "name: old\nclock_ghz: 1\npe_array: {rows: 16, cols: 16, mac_energy_pj: 0.3}\nmemory:\n"
        "  - {name: accumulator, capacity: 64K, bandwidth_bytes_per_cycle: 5, read_energy_pj_per_byte: 1, "
        "write_energy_pj_per_byte: 1, holds: [outputs], word_bits: 32}\n"
        "  - {name: scratchpad, capacity: 256K, bandwidth_bytes_per_cycle: 5, read_energy_pj_per_byte: 1, "
        "write_energy_pj_per_byte: 1, holds: [inputs, weights]}\n"
        "  - {name: dram, capacity: 16G, bandwidth_bytes_per_cycle: 5, read_energy_pj_per_byte: 1, "
        "write_energy_pj_per_byte: 1, holds: [inputs, weights, outputs]}\n"
    )
    with pytest.raises(SpecError, match=r"memory\.0 \(accumulator\): .* give the links instead, e\.g\. links:") as exc:
        tstack.load_hardware(path)
    assert "\n" not in str(exc.value)


def test_a_file_without_links_is_told_what_to_write(tmp_path) -> None:
    path = tmp_path / "nolinks.yaml"
    path.write_text(
        "name: nolinks\nclock_ghz: 1\npe_array: {rows: 16, cols: 16, mac_energy_pj: 0.3}\nmemory:\n"
        "  - {name: accumulator, capacity: 64K, read_energy_pj_per_byte: 1, write_energy_pj_per_byte: 1, "
        "holds: [outputs], word_bits: 32}\n"
        "  - {name: scratchpad, capacity: 256K, read_energy_pj_per_byte: 1, write_energy_pj_per_byte: 1, "
        "holds: [inputs, weights]}\n"
        "  - {name: dram, capacity: 16G, read_energy_pj_per_byte: 1, write_energy_pj_per_byte: 1, "
        "holds: [inputs, weights, outputs]}\n"
    )
    with pytest.raises(SpecError, match=r"links: missing; .* e\.g\. links: \[\{parent: dram"):
        tstack.load_hardware(path)
