"""tstack's nest model against the real Timeloop (needs the bundled `timeloop-model`; see `timeloop_available`).

300 random valid nests (100 per architecture: Gemmini's arch_default, DOSA's Gemmini with its on-chip bandwidth
limits, and an 8 x 32 Gemmini-like design with scratchpad, accumulator and DRAM bandwidth limits), drawn uniformly by
`nest.sample` from five mapspace cuts (free spatial factors, the whole array unrolled, Gemmini's and DOSA's constraint
files) on BERT-Base matmuls and small odd ones, are exported with tstack's Timeloop writer and priced by
`timeloop-model`. Per level and dataspace every count Timeloop reports (reads, updates, fills) must equal tstack's
(`nest.accesses`), the cycles must equal (as Timeloop computes them from the counts: `timeloop.run.timeloop_cycles`),
and the energy must be within 0.5% once tstack takes Timeloop's per-access energies from Timeloop's own output.

Skips, saying why, when Timeloop cannot run here (not found, runtime libraries missing); with TSTACK_REQUIRE_TIMELOOP=1
(as .ci/run sets) it fails instead.
"""

from __future__ import annotations

import pytest

from tests.golden.timeloop_checks import assert_counts_equal, assert_cycles_equal, assert_energy_within
from tstack.mapping.timeloop import crosscheck as tc
from tstack.mapping.timeloop import run as tr
from tstack.spec.timeloop import crosscheck_files

pytestmark = pytest.mark.slow  # ~20 s on 2 cores: 300 timeloop-model runs; needs the bundled Timeloop (see above)

PER_ARCH = 100
ENERGY_TOLERANCE = 0.005
PRESET_ARCHS, CONSTRAINTS = crosscheck_files(tc.CROSSCHECK_ARCH_PRESETS, tc.CROSSCHECK_CONSTRAINT_PRESETS)


@pytest.fixture(scope="module")
def results(timeloop_available):
    return tc.crosscheck(
        timeloop_available, tc.crosscheck_archs(PRESET_ARCHS), PER_ARCH, seed=0, workers=2, constraints=CONSTRAINTS
    )


ARCHS = list(tc.crosscheck_archs(PRESET_ARCHS))


def test_the_plan_is_diverse():
    """At least 200 nests on three architectures, every (matmul, mapspace cut) pair drawn on each, and the nests
    differ (runs without Timeloop)."""
    total = 0
    for name, doc in tc.crosscheck_archs(PRESET_ARCHS).items():
        plan = tc.draw_plan(tr.arch_reading(doc, name), PER_ARCH, 0, CONSTRAINTS)
        total += len(plan)
        pairs = {tuple(d.label.split("/")[1:3]) for d in plan}
        assert len(pairs) == len(tc.CROSSCHECK_SHAPES) * len(tc.CROSSCHECK_CUTS)
        distinct = {(d.shape, d.nests.loop_nest(0)) for d in plan}
        assert len(distinct) > 0.9 * len(plan)
    assert total >= 200 and len(ARCHS) >= 3


@pytest.mark.parametrize("arch", ARCHS)
def test_access_counts_equal_timeloop(results, arch):
    """Every count of every level and dataspace: DRAM, Scratchpad, Accumulator (reads = updates - m x n, fills =
    every residency of a tile) and Registers; and the MACs."""
    assert_counts_equal(results[arch], 7 * 3)  # every (level, dataspace) of Gemmini's hierarchy was compared


@pytest.mark.parametrize("arch", ARCHS)
def test_cycles_equal_timeloop(results, arch):
    """Timeloop's cycles equal tstack's counts through Timeloop's own cycle formula, and tstack's latency (the exact
    quotient) differs from them only by Timeloop's floating-point ceiling."""
    assert_cycles_equal(results[arch])


@pytest.mark.parametrize("arch", ARCHS)
def test_energy_within_half_a_percent(results, arch):
    """tstack's energy (`nest.costs` with Timeloop's per-access energies, plus register fills and Timeloop's rounding
    to whole vector accesses, both from tstack's counts) within 0.5% of Timeloop's; the parts read from Timeloop add
    up to its printed total (to the 0.01 pJ/compute it prints)."""
    assert_energy_within(results[arch], ENERGY_TOLERANCE)


def test_large_matmuls_need_no_rounding_correction(results):
    """On BERT-Base matmuls, `nest.costs`'s own energy (register fills included) is already within 0.5%: Timeloop's
    vector rounding matters only on tiny matmuls."""
    for cs in results.values():
        for c in cs:
            if "/bert-" in c.label:
                error = c.energy_error_costs_only
                assert abs(error) <= ENERGY_TOLERANCE, f"{c.label}: {error:+.4%}"
