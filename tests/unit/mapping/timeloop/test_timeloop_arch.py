"""Timeloop architecture descriptions laid over a tstack design (tstack.mapping.timeloop.arch)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

import tstack
from tests.integration.test_cli import run
from tstack.errors import SpecError
from tstack.hardware.design import design_of
from tstack.mapping.mapspace import Semantics, characterize, timeloop_hardware
from tstack.mapping.matmul.loopnest import MatmulShape
from tstack.mapping.nest import matmul as nest
from tstack.mapping.timeloop.arch import read_timeloop_arch
from tstack.spec.timeloop import ARCH_PRESETS as _PRESETS
from tstack.spec.timeloop import arch_presets, load_timeloop_arch


@pytest.fixture(scope="module")
def dosa_doc():
    return yaml.safe_load((_PRESETS / "dosa-gemmini.yaml").read_text())


def test_presets_read_as_their_files_say() -> None:
    """Gemmini's arch_default: 262,144 8-bit scratchpad entries, 16 accumulators of 1024 x 32 bit, DRAM 8 words of
    8 bits a cycle, nothing limited on chip. DOSA's: half the scratchpad and the accumulators, 32 and 2 words/cycle."""
    assert set(arch_presets()) == {"gemmini", "dosa-gemmini"}
    g = load_timeloop_arch("gemmini")
    assert (g.rows, g.cols, g.scratchpad_bytes, g.accumulator_entries_per_column) == (16, 16, 262_144, 1024)
    assert (g.dram_bytes_per_cycle, g.scratchpad_bytes_per_cycle, g.accumulator_words_per_cycle) == (8.0, None, None)
    d = load_timeloop_arch("dosa-gemmini")
    assert (d.scratchpad_bytes, d.accumulator_entries_per_column, d.accumulator_word_bits) == (131_072, 512, 32)
    assert (d.scratchpad_bytes_per_cycle, d.accumulator_words_per_cycle) == (32.0, 2.0)


def test_arch_replaces_array_capacities_and_dram_bandwidth_but_keeps_energies() -> None:
    design = timeloop_hardware(tstack.load_hardware("gemmini-baseline"))
    hw, nh = load_timeloop_arch("dosa-gemmini").on(design)
    reading, before = design_of(hw), design_of(design)
    assert reading.scratchpad.capacity_bytes == 131_072
    assert reading.accumulator.capacity_bytes == 512 * 16 * 4
    assert reading.dram_bytes_per_cycle == 8.0
    assert reading.dram.read_energy_pj_per_byte == before.dram.read_energy_pj_per_byte
    assert (nh.accumulator_elements_per_column, nh.scratchpad_bytes_per_cycle) == (512, 32.0)


def test_mapspace_on_an_arch_honours_its_bandwidths() -> None:
    """Every drawn nest's latency covers its scratchpad traffic at 32 B/cycle: the arch's limit is applied."""
    shape = MatmulShape(512, 768, 768)
    design = tstack.load_hardware("gemmini-baseline")
    arch = load_timeloop_arch("dosa-gemmini")
    stats = characterize("mha", shape, design, 3000, 0, Semantics.NEST, arch=arch)
    _, nh = arch.on(timeloop_hardware(design))
    drawn, _ = nest.sample(shape, nh, 3000, np.random.default_rng(0), nest.Spatial.FULL)
    a = nest.accesses(shape, drawn)
    spad = sum(a[k] for k in ("dram_to_scratchpad_inputs", "dram_to_scratchpad_weights",
                              "scratchpad_to_array_inputs", "scratchpad_to_registers_weights"))  # fmt: skip
    assert (nest.costs(shape, drawn, nh).latency_cycles >= spad / 32 - 1e-9).all()
    assert (nest.tiles(drawn)["scratchpad_inputs"] + nest.tiles(drawn)["scratchpad_weights"] <= 131_072).all()
    plain = characterize("mha", shape, design, 3000, 0, Semantics.NEST)
    assert stats.p10 != plain.p10  # the arch changed what was drawn and how it was priced


def _columns_from_instances(doc, instances: int) -> None:
    """The PE-column subtree without an instance range and the Accumulator's `instances` at 15."""
    cols = doc["architecture"]["subtree"][0]["subtree"][0]["subtree"][0]
    cols["name"] = "PECols"
    cols["local"][0]["attributes"]["instances"] = instances


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(architecture={"nodes": []}), "v0.4's flat 'nodes:' form is not read"),
        (lambda d: d["architecture"]["subtree"][0]["local"].clear(), "missing DRAM"),
        (
            lambda d: d["architecture"]["subtree"][0]["local"][0]["attributes"].pop("shared_bandwidth"),
            "DRAM needs shared_bandwidth",
        ),
        (
            lambda d: d["architecture"]["subtree"][0]["subtree"][0]["local"][0]["attributes"].update(entries=-1),
            "entries must be a positive finite number",
        ),
        (lambda d: _columns_from_instances(d, 15), "256 Registers do not split evenly over 15 PE columns"),
    ],
)
def test_bad_architectures_name_the_problem(dosa_doc, edit, message) -> None:
    doc = copy.deepcopy(dosa_doc)
    edit(doc)
    with pytest.raises(SpecError, match=message):
        read_timeloop_arch(doc, origin="a.yaml")


def test_mapspace_command_timeloop_arch_option(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text((_PRESETS / "gemmini.yaml").read_text())
    ok = run("mapspace", "--ops", "bert-base-mha", "--samples", "500", "--semantics", "timeloop", "--timeloop-arch",
             str(path), "--json")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert '"semantics": "timeloop on mine"' in ok.stdout
    needs_nests = run("mapspace", "--ops", "bert-base-mha", "--samples", "10", "--timeloop-arch", "gemmini")
    assert needs_nests.returncode == 2 and "--timeloop-arch prices nests" in needs_nests.stderr
    unknown = run("mapspace", "--ops", "bert-base-mha", "--samples", "10", "--semantics", "nest", "--timeloop-arch",
                  "eyeriss")  # fmt: skip
    assert unknown.returncode == 2 and "dosa-gemmini, gemmini" in unknown.stderr
