"""tstack's 7-loop conv nest model (`nest.conv`) against the real Timeloop (needs the bundled `timeloop-model`).

300 random valid conv nests (100 per architecture: Gemmini's arch_default, DOSA's Gemmini with its on-chip bandwidth
limits, and the 8 x 32 Gemmini-like design with scratchpad, accumulator and DRAM limits), drawn uniformly by
`nest.conv.sample` (any loop order at every level, C over the PE rows, K over the columns) on ResNet-50 layers and small
odd convs (1x1 and 3x3, strides 1 and 2), are exported as Timeloop mappings of Gemmini's cnn-layer problem and priced
by `timeloop-model`. Per level and dataspace every count (reads, updates, fills) must equal tstack's, the cycles must
equal (`timeloop.run.timeloop_cycles` on tstack's counts), and the energy must be within 0.5% once tstack takes
Timeloop's per-access energies from its own output. The inputs' sliding window is the point: Timeloop fills only the
halo delta while the tile keeps the same translation and extrapolates each loop from its first two iterations
(`nest.conv`'s docstring); a share of the nests must take that path.

Skips, saying why, when Timeloop cannot run here; with TSTACK_REQUIRE_TIMELOOP=1 it fails instead.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.golden.timeloop_checks import assert_counts_equal, assert_cycles_equal, assert_energy_within
from tstack.mapping.nest import conv as conv_nest
from tstack.mapping.timeloop import crosscheck as tc
from tstack.mapping.timeloop import run as tr
from tstack.spec.timeloop import crosscheck_files, preset_arch

pytestmark = pytest.mark.slow  # ~15 s on 2 cores: 300 timeloop-model runs

PER_ARCH = 100
ENERGY_TOLERANCE = 0.005
PRESET_ARCHS, _ = crosscheck_files(tc.CROSSCHECK_ARCH_PRESETS, ())
ARCHS = list(tc.crosscheck_archs(PRESET_ARCHS))


@pytest.fixture(scope="module")
def results(timeloop_available):
    return tc.crosscheck_conv(timeloop_available, tc.crosscheck_archs(PRESET_ARCHS), PER_ARCH, seed=0, workers=2)


def test_the_plan_is_diverse():
    """At least 100 nests on at least two architectures, every conv on each, strides 1 and 2, 1x1 and 3x3, the nests
    differ, and a share of them reuse an input halo (runs without Timeloop)."""
    total = halo = 0
    for name, doc in tc.crosscheck_archs(PRESET_ARCHS).items():
        plan = tc.conv_draw_plan(tr.arch_reading(doc, name), PER_ARCH, 0)
        total += len(plan)
        assert {d.label.split("/")[1] for d in plan} == set(tc.CONV_CROSSCHECK_SHAPES)
        assert len({(d.shape, d.nests.loop_nest(0)) for d in plan}) > 0.9 * len(plan)
        for d in plan:
            whole = conv_nest.whole_window_input_fills(d.shape, d.nests)
            halo += int(conv_nest.accesses(d.shape, d.nests)["dram_to_scratchpad_inputs"][0] < whole[0])
    shapes = tc.CONV_CROSSCHECK_SHAPES.values()
    assert {s.stride for s in shapes} == {1, 2} and {s.r for s in shapes} == {1, 3}
    assert total >= 100 and len(ARCHS) >= 2
    assert halo >= 0.1 * total


@pytest.mark.parametrize("arch", ARCHS)
def test_access_counts_equal_timeloop(results, arch):
    """Every count of every level and dataspace (DRAM, Scratchpad, Accumulator, Registers) and the MACs."""
    assert_counts_equal(results[arch], 7 * 3)


@pytest.mark.parametrize("arch", ARCHS)
def test_cycles_equal_timeloop(results, arch):
    assert_cycles_equal(results[arch])


@pytest.mark.parametrize("arch", ARCHS)
def test_energy_within_half_a_percent(results, arch):
    assert_energy_within(results[arch], ENERGY_TOLERANCE)


def test_pricing_is_vectorized():
    """The model prices an array of nests at once, and each nest alone the same."""
    shape = tc.CONV_CROSSCHECK_SHAPES["r50-conv2-3x3"]
    hw = tr.nest_hardware(tr.arch_reading(preset_arch("gemmini"), "gemmini"), None)
    nests = conv_nest.sample(shape, hw, 64, np.random.default_rng(3))
    together = conv_nest.accesses(shape, nests)
    for i in (0, 17, 63):
        alone = conv_nest.accesses(shape, nests.take(np.array([i])))
        assert all(int(together[k][i]) == int(alone[k][0]) for k in together)
