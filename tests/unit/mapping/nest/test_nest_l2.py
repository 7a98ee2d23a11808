"""Five-level nests with an L2 (tstack.mapping.nest.l2): the vectorized access counts against a literal walk of the
nest, the four-level model as the case of a pass-through L2, capacity and bad input. (Against the real Timeloop:
tests/golden/test_timeloop_crosscheck_l2.py.)"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest

from tstack.errors import InfeasibleError, SpecError
from tstack.mapping.matmul.loopnest import DIMS, ORDERS, MatmulShape
from tstack.mapping.nest import l2 as nest_l2
from tstack.mapping.nest import matmul as nest

SMALL = nest_l2.L2NestHardware(
    rows=4, cols=4, l2_elements=400, scratchpad_elements=96, accumulator_elements_per_column=8, acc_bytes_per_word=4,
    dram_bytes_per_cycle=2.0, mac_pj=0.5, dram_read_pj_per_byte=100.0, dram_write_pj_per_byte=120.0,
    l2_read_pj_per_byte=6.0, l2_write_pj_per_byte=7.0, spad_read_pj_per_byte=2.0, spad_write_pj_per_byte=2.5,
    acc_read_pj_per_byte=1.0, acc_write_pj_per_byte=1.5,
)  # fmt: skip


def walk(shape: MatmulShape, nests: nest_l2.L2Nests, i: int) -> dict[str, int]:
    """Execute nest `i` loop by loop and count the elements each transfer moves (as test_nest.py's walk):
    a level's tile is refilled whenever the coordinates the loops above it contribute change; the MACs keep nothing;
    output tiles seen before at a level come back as partial sums (from the L2 into an accumulator, from DRAM into
    the L2)."""
    loops = []  # (dim, trips, stride)
    inner = {d: 1 for d in range(3)}
    for lv in reversed(range(len(nest_l2.LEVELS))):
        if lv == nest_l2.ACCUMULATOR:
            inner[nest.K] *= int(nests.spatial_k[i])
        if lv == nest_l2.SCRATCHPAD:
            inner[nest.N] *= int(nests.spatial_n[i])
        for d in reversed(ORDERS[int(nests.orders[i, lv])]):
            j = DIMS.index(d)
            trips = int(nests.factors[i, lv, j])
            loops.append((j, trips, inner[j]))
            inner[j] *= trips
    loops.reverse()
    assert inner == {0: shape.m, 1: shape.n, 2: shape.k}

    def tile_elements(relevant: tuple[int, ...], above: int, spatial: dict[int, int]) -> int:
        extent = {d: 1 for d in range(3)}
        for d, trips, _ in loops[above:]:
            extent[d] *= trips
        for d, s in spatial.items():
            extent[d] *= s
        return math.prod(extent[d] for d in relevant)

    sn, sk = int(nests.spatial_n[i]), int(nests.spatial_k[i])
    checks = {  # name: (relevant dims, loops above, spatial factors inside the tile, replicas across instances)
        "dram_to_l2_inputs": ((0, 2), 3, {2: sk}, 1),
        "dram_to_l2_weights": ((2, 1), 3, {2: sk, 1: sn}, 1),
        "l2_output_residencies": ((0, 1), 3, {1: sn}, 1),
        "l2_to_scratchpad_inputs": ((0, 2), 6, {2: sk}, 1),
        "l2_to_scratchpad_weights": ((2, 1), 6, {2: sk, 1: sn}, 1),
        "scratchpad_to_registers_weights": ((2, 1), 12, {}, sn * sk),
        "scratchpad_to_array_inputs": ((0, 2), 15, {}, sk),
        "accumulator_updates": ((0, 1), 15, {}, sn),
        "accumulator_evictions": ((0, 1), 9, {}, sn),
    }
    counts = dict.fromkeys(checks, 0)
    last: dict[str, tuple[int, ...] | None] = dict.fromkeys(checks)
    seen: dict[str, set[tuple[int, ...]]] = {"l2_output_residencies": set(), "accumulator_evictions": set()}
    first = dict.fromkeys(seen, 0)
    for idx in itertools.product(*(range(t) for _, t, _ in loops)):
        for name, (relevant, above, spatial, replicas) in checks.items():
            origin = tuple(
                sum(ix * stride for ix, (d, _, stride) in zip(idx[:above], loops[:above], strict=True) if d == r)
                for r in relevant
            )
            if origin != last[name] or above == len(loops):
                last[name] = origin
                counts[name] += tile_elements(relevant, above, spatial) * replicas
                if name in seen and origin not in seen[name]:
                    seen[name].add(origin)
                    first[name] += tile_elements(relevant, above, spatial) * replicas
    counts["dram_to_l2_outputs"] = counts["l2_output_residencies"] - first["l2_output_residencies"]
    counts["l2_to_accumulator_outputs"] = counts["accumulator_evictions"] - first["accumulator_evictions"]
    return counts


@pytest.mark.parametrize("shape", [MatmulShape(8, 12, 16), MatmulShape(12, 8, 6), MatmulShape(16, 16, 8)])
def test_accesses_match_a_literal_walk_of_the_nest(shape):
    drawn = nest_l2.sample(shape, SMALL, 40, np.random.default_rng(5))
    got = nest_l2.accesses(shape, drawn)
    for i in range(len(drawn)):
        assert {k: int(v[i]) for k, v in got.items()} == walk(shape, drawn, i), drawn.loop_nest(i)


def _with_pass_through_l2(nests: nest.Nests) -> nest_l2.L2Nests:
    """Four-level nests with an L2 level of unit factors inserted below DRAM."""
    count = len(nests)
    factors = np.insert(nests.factors, 1, np.ones((count, 3), dtype=np.int64), axis=1)
    orders = np.insert(nests.orders, 1, np.zeros(count, dtype=np.int64), axis=1)
    return nest_l2.L2Nests(factors, orders, nests.spatial_n, nests.spatial_k)


def test_a_pass_through_l2_prices_as_the_four_level_model():
    """An L2 with unit factors, free energies and no bandwidth limit moves what the four-level model moves: operand
    fills from DRAM and to the array equal; and where the scratchpad level has no m or n loop (so the L2's output
    tile is the accumulators'), partial sums go to DRAM exactly as they do without the L2, at the same cost."""
    shape = MatmulShape(48, 64, 96)
    hw4 = nest.NestHardware(
        rows=4, cols=4, scratchpad_elements=96, accumulator_elements_per_column=8, acc_bytes_per_word=4,
        dram_bytes_per_cycle=2.0, mac_pj=0.5, dram_read_pj_per_byte=100.0, dram_write_pj_per_byte=120.0,
        spad_read_pj_per_byte=2.0, spad_write_pj_per_byte=2.5, acc_read_pj_per_byte=1.0, acc_write_pj_per_byte=1.5,
        scratchpad_bytes_per_cycle=3.0, accumulator_words_per_cycle=1.0,
    )  # fmt: skip
    hw5 = replace(
        SMALL, l2_elements=10**9, l2_read_pj_per_byte=0.0, l2_write_pj_per_byte=0.0, scratchpad_bytes_per_cycle=3.0,
        accumulator_words_per_cycle=1.0,
    )  # fmt: skip
    four, _ = nest.sample(shape, hw4, 2000, np.random.default_rng(1), nest.Spatial.FREE)
    five = _with_pass_through_l2(four)
    assert nest_l2.valid(five, hw5).all()
    a4, a5 = nest.accesses(shape, four), nest_l2.accesses(shape, five)
    for k4, k5 in (("dram_to_scratchpad_inputs", "dram_to_l2_inputs"), ("dram_to_scratchpad_inputs",
                   "l2_to_scratchpad_inputs"), ("dram_to_scratchpad_weights", "dram_to_l2_weights"),
                   ("scratchpad_to_registers_weights",) * 2, ("scratchpad_to_array_inputs",) * 2,
                   ("accumulator_updates",) * 2, ("accumulator_evictions",) * 2):  # fmt: skip
        assert np.array_equal(a4[k4], a5[k5]), (k4, k5)
    plain = (four.factors[:, nest.SCRATCHPAD, nest.M] == 1) & (four.factors[:, nest.SCRATCHPAD, nest.N] == 1)
    assert 100 < plain.sum() < len(four)
    assert np.array_equal(a4["partial_sum_refills"][plain], a5["dram_to_l2_outputs"][plain])
    c4, c5 = nest.costs(shape, four, hw4), nest_l2.costs(shape, five, hw5)
    for field in ("latency_cycles", "energy_pj", "dram_bytes"):
        assert np.allclose(getattr(c4, field)[plain], getattr(c5, field)[plain], rtol=1e-12), field
    # elsewhere the L2 keeps partial sums that the four-level model spills to DRAM
    assert np.all(c5.dram_bytes <= c4.dram_bytes) and np.any(c5.dram_bytes < c4.dram_bytes)


def test_the_l2_bandwidth_bounds_latency_only_when_given():
    shape = MatmulShape(16, 16, 8)
    drawn = nest_l2.sample(shape, SMALL, 200, np.random.default_rng(2))
    free = nest_l2.costs(shape, drawn, SMALL).latency_cycles
    slow = nest_l2.costs(shape, drawn, replace(SMALL, l2_bytes_per_cycle=0.05)).latency_cycles
    assert np.all(slow >= free) and np.any(slow > free)


def test_samples_fit_the_l2_and_fill_the_array_when_asked():
    shape = MatmulShape(24, 40, 36)
    drawn = nest_l2.sample(shape, SMALL, 300, np.random.default_rng(3), fill_array=True)
    t = nest_l2.tiles(drawn)
    assert np.all(t["l2_inputs"] + t["l2_weights"] + t["l2_outputs"] <= SMALL.l2_elements)
    assert np.all(drawn.factors.prod(axis=1) * np.stack([np.ones(300), drawn.spatial_n, drawn.spatial_k], 1)
                  == [24, 40, 36])  # fmt: skip
    assert set(drawn.spatial_n.tolist()) == {4} and set(drawn.spatial_k.tolist()) == {4}
    assert np.all(drawn.factors[:, nest_l2.REGISTERS, 1:] == 1)
    assert len(np.unique(drawn.orders[:, nest_l2.L2])) == len(ORDERS)


def test_bad_input_names_the_problem():
    with pytest.raises(SpecError, match="positive number"):
        nest_l2.sample(MatmulShape(4, 4, 4), SMALL, 0, np.random.default_rng(0))
    with pytest.raises(InfeasibleError, match="zero dimension"):
        nest_l2.sample(MatmulShape(0, 4, 4), SMALL, 1, np.random.default_rng(0))
    with pytest.raises(InfeasibleError, match="no valid nest"):
        nest_l2.sample(MatmulShape(4, 4, 4), replace(SMALL, l2_elements=2), 1, np.random.default_rng(0))
