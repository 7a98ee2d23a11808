"""tstack's five-level nest model (`nest.l2`: DRAM, L2, Scratchpad, Accumulator, Registers) against the real Timeloop.

120 random valid nests on `gemmini-l2-bw` (a 16 x 16 Gemmini-like design with a 512 KiB L2 keeping every tensor, and
DRAM, L2, scratchpad and accumulator bandwidth limits: `timeloop.crosscheck.l2_crosscheck_archs`), drawn uniformly by
`nest.l2.sample` (free spatial factors, and the whole array unrolled) on BERT-Base matmuls and small odd ones, are
written as Timeloop mappings (`timeloop.crosscheck.l2_nest_to_timeloop`) and priced by `timeloop-model`. Per level and
dataspace every count Timeloop reports (reads, updates, fills) must equal tstack's (`nest.l2.accesses`), the cycles
must equal (through Timeloop's own cycle formula, `timeloop.run.timeloop_cycles`), and the energy must be within 0.5%
once tstack takes Timeloop's per-access energies from Timeloop's own output.

Skips, saying why, when Timeloop cannot run here; with TSTACK_REQUIRE_TIMELOOP=1 (as .ci/run sets) it fails instead.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.golden.timeloop_checks import assert_counts_equal, assert_cycles_equal, assert_energy_within
from tstack.mapping.nest import l2 as nest_l2
from tstack.mapping.timeloop import crosscheck as tc

pytestmark = pytest.mark.slow  # ~5 s on 2 cores: 120 timeloop-model runs; needs the bundled Timeloop (see above)

PER_ARCH = 120
ENERGY_TOLERANCE = 0.005
ARCHS = list(tc.l2_crosscheck_archs())


@pytest.fixture(scope="module")
def results(timeloop_available):
    return tc.crosscheck_l2(timeloop_available, tc.l2_crosscheck_archs(), PER_ARCH, seed=0, workers=2)


def test_the_plan_is_diverse():
    """At least 100 nests, every (matmul, spatial cut) pair drawn, the nests differ, and the output paths the L2 adds
    are exercised: partial sums spilled from the accumulators to the L2, and from the L2 to DRAM (runs without
    Timeloop)."""
    for name, arch in tc.l2_crosscheck_archs().items():
        plan = tc.l2_draw_plan(arch, PER_ARCH, 0)
        assert len(plan) >= 100, name
        assert {tuple(d.label.split("/")[1:3]) for d in plan} == {
            (s, c) for s in tc.CROSSCHECK_SHAPES for c in tc.L2_CROSSCHECK_CUTS
        }
        assert len({(d.shape, d.nests.loop_nest(0)) for d in plan}) > 0.9 * len(plan)
        spills = np.array([
            [int(nest_l2.accesses(d.shape, d.nests)[k][0]) > d.shape.m * d.shape.n
             for k in ("accumulator_evictions", "l2_output_residencies")]
            for d in plan
        ])  # fmt: skip
        assert spills.sum(axis=0).min() >= 10, spills.sum(axis=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_access_counts_equal_timeloop(results, arch):
    """Every count of every level and dataspace: DRAM, L2 (all three dataspaces), Scratchpad, Accumulator and
    Registers; and the MACs."""
    assert_counts_equal(results[arch], 10 * 3)  # every (level, dataspace) of the hierarchy was compared


@pytest.mark.parametrize("arch", ARCHS)
def test_cycles_equal_timeloop(results, arch):
    """Timeloop's cycles equal tstack's counts through Timeloop's cycle formula, and tstack's latency (the exact
    quotient) differs from them only by Timeloop's floating-point ceiling."""
    assert_cycles_equal(results[arch])


@pytest.mark.parametrize("arch", ARCHS)
def test_energy_within_half_a_percent(results, arch):
    """tstack's energy (`nest.l2.costs` with Timeloop's per-access energies, plus Timeloop's rounding to whole vector
    accesses from tstack's counts) within 0.5% of Timeloop's; Timeloop's parts add up to its printed total."""
    assert_energy_within(results[arch], ENERGY_TOLERANCE)


def test_large_matmuls_need_no_rounding_correction(results):
    """On BERT-Base matmuls `nest.l2.costs`'s own energy is within 0.5%: the vector rounding matters only on tiny
    matmuls."""
    for cs in results.values():
        for c in cs:
            if "/bert-" in c.label:
                assert abs(c.energy_error_costs_only) <= ENERGY_TOLERANCE, c.label
