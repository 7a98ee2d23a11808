"""The assertions the three Timeloop cross-checks (matmul, conv, L2 matmul) make on each architecture's comparisons.

Every cross-check prices its nests with `timeloop-model` and with tstack's nest model and asks the same three things
of each `Comparison`: the counts equal, the cycles equal, the energy within a tolerance. They live here once so the
three test files hold only what differs (how the nests are drawn and how many counts a hierarchy has).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from tstack.mapping.timeloop.crosscheck import Comparison


def assert_counts_equal(comparisons: Iterable[Comparison], min_counts: int) -> None:
    """Every count Timeloop reports equals tstack's, and at least `min_counts` of them were compared (every (level,
    dataspace) of the hierarchy: 3 kinds each)."""
    for c in comparisons:
        assert not c.count_mismatches, f"{c.label}: (Timeloop, tstack) {c.count_mismatches}\n{c.nest_text}"
        assert len(c.counts) >= min_counts


def assert_cycles_equal(comparisons: Iterable[Comparison]) -> None:
    """Timeloop's cycles equal tstack's counts through Timeloop's own cycle formula, and tstack's latency (the exact
    quotient) differs from them only by Timeloop's floating-point ceiling."""
    for c in comparisons:
        assert c.timeloop_cycles == c.tstack_cycles, f"{c.label}: {c.timeloop_cycles} != {c.tstack_cycles}"
        low, high = math.ceil(c.tstack_latency * (1 - 1e-12)), math.ceil(c.tstack_latency * (1 + 1e-12))
        assert low <= c.timeloop_cycles <= high, f"{c.label}: Timeloop {c.timeloop_cycles}, tstack {c.tstack_latency}"


def assert_energy_within(comparisons: Iterable[Comparison], tolerance: float) -> None:
    """tstack's energy (Timeloop's vector rounding added) within `tolerance` (relative) of Timeloop's, and Timeloop's
    per-level parts add up to its printed total (to the 0.01 pJ/compute it prints)."""
    for c in comparisons:
        assert abs(c.energy_error) <= tolerance, f"{c.label}: {c.energy_error:+.4%}\n{c.nest_text}"
        assert abs(c.timeloop_energy_pj - c.timeloop_total_pj) <= 0.0051 * c.computes, c.label
