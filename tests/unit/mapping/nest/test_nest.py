"""Multi-level loop nests (tstack.mapping.nest.matmul): the vectorized access counts against a literal walk of the nest,
the one-tile special case against the one-tile cost model, the mapspace count, sampling and bad input."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest

from tstack.errors import InfeasibleError, SpecError
from tstack.hardware.design import design_of, with_capacities
from tstack.mapping.mapspace import PAPER_OPS, Semantics, characterize, timeloop_hardware
from tstack.mapping.matmul.cost import OperandBits, matmul_costs
from tstack.mapping.matmul.loopnest import DIMS, ORDERS, MatmulShape
from tstack.mapping.nest import matmul as nest
from tstack.mapping.nest import one_tile as nest_one_tile
from tstack.report.simulate_doc import document_fields
from tstack.spec.hardware import load_hardware


@pytest.fixture(scope="module")
def baseline():
    return timeloop_hardware(load_hardware("gemmini-baseline"))


@pytest.fixture(scope="module")
def small_hw(baseline):
    """A 4x4 array with buffers small enough that capacity binds on small matmuls."""
    sized = with_capacities(baseline, {"scratchpad": 96, "accumulator": 4 * 4 * 8})
    return replace(sized, pe=replace(baseline.pe, rows=4, cols=4))


def walk(shape: MatmulShape, nests: nest.Nests, i: int) -> dict[str, int]:
    """Execute nest `i` loop by loop and count the elements each transfer moves: a level's tile of a tensor is
    the set of element coordinates its inner loops touch, and it is refilled whenever the coordinates the outer
    loops contribute to it change. Outputs also track which tiles were seen before (partial sums come back).
    The MACs keep nothing, so the transfers into them (inputs from the scratchpad, updates of the accumulator)
    happen on every iteration. (This walk used to let an operand stay in a MAC while only loops that do not index
    it ran: real Timeloop charges every iteration, a read-modify-write per reduction step; see
    tests/golden/test_timeloop_crosscheck.py.)"""
    loops = []  # (dim, trips, stride): stride = elements of the dim covered by one iteration of the loop
    inner = {d: 1 for d in range(3)}
    for lv in reversed(range(4)):
        if lv == nest.ACCUMULATOR:
            inner[nest.K] *= int(nests.spatial_k[i])
        if lv == nest.SCRATCHPAD:
            inner[nest.N] *= int(nests.spatial_n[i])
        for d in reversed(ORDERS[int(nests.orders[i, lv])]):
            j = DIMS.index(d)
            trips = int(nests.factors[i, lv, j])
            loops.append((j, trips, inner[j]))
            inner[j] *= trips
    loops.reverse()  # outermost first
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
        "dram_to_scratchpad_inputs": ((0, 2), 3, {2: sk}, 1),
        "dram_to_scratchpad_weights": ((2, 1), 3, {2: sk, 1: sn}, 1),
        "scratchpad_to_registers_weights": ((2, 1), 9, {}, sn * sk),
        "scratchpad_to_array_inputs": ((0, 2), 12, {}, sk),
        "accumulator_updates": ((0, 1), 12, {}, sn),
        "accumulator_evictions": ((0, 1), 6, {}, sn),
    }
    counts = dict.fromkeys(checks, 0)
    last: dict[str, tuple[int, ...] | None] = dict.fromkeys(checks)
    seen_outputs: set[tuple[int, ...]] = set()
    first_output_fills = 0
    for idx in itertools.product(*(range(t) for _, t, _ in loops)):
        for name, (relevant, above, spatial, replicas) in checks.items():
            origin = tuple(
                sum(ix * stride for ix, (d, _, stride) in zip(idx[:above], loops[:above], strict=True) if d == r)
                for r in relevant
            )
            if origin != last[name] or above == len(loops):  # a MAC holds nothing: every iteration moves
                last[name] = origin
                counts[name] += tile_elements(relevant, above, spatial) * replicas
                if name == "accumulator_evictions" and origin not in seen_outputs:
                    seen_outputs.add(origin)
                    first_output_fills += tile_elements(relevant, above, spatial) * replicas
    counts["partial_sum_refills"] = counts["accumulator_evictions"] - first_output_fills
    return counts


@pytest.mark.parametrize("shape", [MatmulShape(8, 12, 16), MatmulShape(12, 8, 6), MatmulShape(16, 16, 8)])
def test_accesses_match_a_literal_walk_of_the_nest(shape, small_hw):
    drawn, _ = nest.sample(shape, small_hw, 60, np.random.default_rng(7), nest.Spatial.FREE)
    got = nest.accesses(shape, drawn)
    for i in range(len(drawn)):
        want = walk(shape, drawn, i)
        assert {k: int(v[i]) for k, v in got.items()} == want, drawn.loop_nest(i)


def test_the_walk_catches_a_wrong_reuse_rule(small_hw):
    """The walk is sharp: counting every loop above a level (no stationarity) disagrees with it."""
    shape = MatmulShape(16, 16, 8)
    drawn, _ = nest.sample(shape, small_hw, 40, np.random.default_rng(3), nest.Spatial.FREE)
    no_reuse = drawn.factors[:, :1, :].prod(axis=(1, 2)) * nest.tiles(drawn)["scratchpad_inputs"]
    walked = np.array([walk(shape, drawn, i)["dram_to_scratchpad_inputs"] for i in range(len(drawn))])
    assert np.any(no_reuse != walked)
    assert np.array_equal(nest.accesses(shape, drawn)["dram_to_scratchpad_inputs"], walked)


def test_one_tile_nests_move_what_the_one_tile_model_moves(baseline):
    """The same mappings priced by the one-tile model (tstack.mapping.matmul.cost, written separately): identical DRAM
    bytes wherever every DRAM loop iterates (the one-tile model does not skip one-trip loops when it looks for
    reuse; the nest, as Timeloop, does), and the same compute cycles."""
    shape = PAPER_OPS["bert-base-mha"]
    one = nest_one_tile.one_tile_nests(shape, baseline)
    got = nest.costs(shape, one, baseline)
    tm = one.factors[:, nest.ACCUMULATOR, 0]
    tn = one.factors[:, nest.ACCUMULATOR, 1] * one.spatial_n
    tk = one.factors[:, nest.ACCUMULATOR, 2] * one.spatial_k
    ref = matmul_costs(
        shape,
        tm,
        tn,
        tk,
        one.orders[:, 0],
        baseline,
        OperandBits(),
        baseline.cost_options,
        one.spatial_k,
        one.spatial_n,
    )
    every_loop_iterates = (one.factors[:, nest.DRAM, :] > 1).all(axis=1)
    assert every_loop_iterates.sum() > 10_000
    np.testing.assert_array_equal(got.dram_bytes[every_loop_iterates], ref.dram_bytes[every_loop_iterates])
    compute = one.factors.prod(axis=(1, 2))
    np.testing.assert_array_equal(compute, ref.compute_cycles)
    np.testing.assert_allclose(
        got.latency_cycles, np.maximum(compute, got.dram_bytes / design_of(baseline).dram_bytes_per_cycle)
    )


def test_onchip_bandwidths_bound_latency_only_when_given(baseline):
    """One 16x16x16 tile streamed through the array (m at the accumulator level, the whole array unrolled): the
    scratchpad is written 256 inputs + 256 weights and read 256 + 256 times (inputs into the rows, weights into the
    registers); each of the 16 accumulators takes 16 updates (16 writes, 0 reads: they start from zero) and one
    fill of its 16-word tile (16 writes; Timeloop counts a tile's first, zero-initialised, residency as a fill and
    its drain to DRAM as a DRAM update only). Counted by hand, so a wrong rule fails here."""
    shape = MatmulShape(16, 16, 16)
    one = nest_one_tile.from_tiles(shape, *(np.array([16]),) * 3, np.array([0]), baseline)
    fast_dram = replace(nest.NestHardware.of(baseline), dram_bytes_per_cycle=1e9)
    assert nest.costs(shape, one, fast_dram).latency_cycles[0] == 16  # compute-bound: nothing on chip limits
    spad = replace(fast_dram, scratchpad_bytes_per_cycle=32.0)
    assert nest.costs(shape, one, spad).latency_cycles[0] == 1024 / 32
    acc = replace(fast_dram, accumulator_words_per_cycle=0.5)
    assert nest.costs(shape, one, acc).latency_cycles[0] == 32 / 0.5
    both = nest.costs(shape, one, replace(spad, accumulator_words_per_cycle=0.5))
    assert both.latency_cycles[0] == 64 and both.energy_pj[0] == nest.costs(shape, one, fast_dram).energy_pj[0]


def test_space_size_counts_every_factorization_and_order(small_hw):
    shape = MatmulShape(8, 12, 6)
    for spatial, side_ok in (
        (nest.Spatial.FULL, lambda b, s: s == max(d for d in range(1, 5) if b % d == 0)),
        (nest.Spatial.FREE, lambda b, s: s <= 4),
    ):

        def splits(bound, slots):
            return [c for c in itertools.product(range(1, bound + 1), repeat=slots) if math.prod(c) == bound]

        count_m = len(splits(8, 4))
        count_n = sum(1 for c in splits(12, 5) if side_ok(12, c[4]))
        count_k = sum(1 for c in splits(6, 5) if side_ok(6, c[4]))
        assert nest.space_size(shape, small_hw, spatial) == count_m * count_n * count_k * 6**4


def test_bert_attention_has_more_than_10_to_the_12_mappings(baseline):
    """Paper §5.2: "more than 10^12 mappings" for a BERT attention layer. The nest form with free spatial factors
    has 1.39e12 for one Q/K/V projection; with the whole array unrolled, 5.6e9."""
    shape = PAPER_OPS["bert-base-mha"]
    assert nest.space_size(shape, baseline, nest.Spatial.FREE) == 1_391_294_646_720
    assert nest.space_size(shape, baseline, nest.Spatial.FULL) == 5_588_352_000


def test_samples_are_valid_and_cover_the_orders(baseline):
    shape = PAPER_OPS["bert-base-ffn"]
    drawn, estimate = nest.sample(shape, baseline, 5000, np.random.default_rng(0), nest.Spatial.FREE)
    hw = nest.NestHardware.of(baseline)
    assert len(drawn) == 5000 and nest.valid(drawn, hw).all()
    products = drawn.factors.prod(axis=1) * np.stack(
        [np.ones(5000, dtype=np.int64), drawn.spatial_n, drawn.spatial_k], axis=1
    )
    assert (products == [shape.m, shape.n, shape.k]).all()
    for lv in range(4):
        assert set(np.unique(drawn.orders[:, lv])) == set(range(6))
    assert 0 < estimate < nest.space_size(shape, baseline, nest.Spatial.FREE)


def test_nest_semantics_in_characterize(baseline):
    hw = load_hardware("gemmini-baseline")
    st = characterize("bert-base-mha", PAPER_OPS["bert-base-mha"], hw, 20_000, 0, Semantics.NEST)
    assert st.mapspace == "nest"
    assert st.relative_edp.min() >= 1.0 - 1e-12
    assert st.heuristic.edp >= st.best.edp
    assert 1e3 < st.span < 1e5  # three to four orders of magnitude
    fields = document_fields(st)
    assert set(fields["best_mapping"]["levels"]) == set(nest.LEVELS)
    assert "---- registers ----" in st.best.nests.loop_nest(0)


def test_bad_input_names_the_problem(baseline):
    with pytest.raises(InfeasibleError, match="zero dimension"):
        nest.sample(MatmulShape(0, 8, 8), baseline, 10, np.random.default_rng(0))
    with pytest.raises(SpecError, match="positive number of samples"):
        nest.sample(MatmulShape(8, 8, 8), baseline, 0, np.random.default_rng(0))
    with pytest.raises(InfeasibleError, match="do not divide"):
        nest_one_tile.from_tiles(MatmulShape(8, 8, 8), *(np.array([x]) for x in (3, 8, 8, 0)), baseline)
    flat = replace(baseline, levels=tuple(lv for lv in baseline.levels if lv.name in ("dram",)))
    with pytest.raises((InfeasibleError, SpecError)):
        nest.NestHardware.of(flat)
    with pytest.raises(InfeasibleError, match="also has l2"):
        nest.NestHardware.of(load_hardware("paper-analytic"))


def test_timeloop_yaml_round_trip(baseline, tmp_path):
    """A nest written in the naming of Gemmini's Timeloop description reads back as the same nest."""
    import yaml

    from tstack.mapping.timeloop.mapping_io import nest_from_timeloop, nest_to_timeloop

    shape = PAPER_OPS["bert-base-ffn"]
    drawn, _ = nest.sample(shape, baseline, 200, np.random.default_rng(5), nest.Spatial.FREE)
    for i in range(len(drawn)):
        text = yaml.safe_dump(nest_to_timeloop(drawn, i), sort_keys=False)
        back = nest_from_timeloop(yaml.safe_load(text), shape, baseline)
        np.testing.assert_array_equal(back.factors[0], drawn.factors[i])
        np.testing.assert_array_equal(back.orders[0], drawn.orders[i])
        assert (back.spatial_n[0], back.spatial_k[0]) == (drawn.spatial_n[i], drawn.spatial_k[i])


def test_timeloop_yaml_errors_name_the_problem(baseline):
    from tstack.mapping.timeloop.mapping_io import nest_from_timeloop, nest_to_timeloop

    shape = PAPER_OPS["bert-base-mha"]
    drawn, _ = nest.sample(shape, baseline, 1, np.random.default_rng(0))
    good = nest_to_timeloop(drawn)

    def edited(target: str, kind: str, factors: str) -> dict:
        doc = {"mapping": [dict(d) for d in good["mapping"]]}
        for d in doc["mapping"]:
            if d["target"] == target and d["type"] == kind:
                d["factors"] = factors
        return doc

    with pytest.raises(SpecError, match="factors of P multiply to"):
        nest_from_timeloop(edited("DRAM", "temporal", "R=1 S=1 P=3 Q=1 C=1 K=1 N=1"), shape, baseline)
    with pytest.raises(SpecError, match="no R, S loop"):
        nest_from_timeloop(edited("DRAM", "temporal", "R=3 S=3 P=1 Q=1 C=1 K=1 N=1"), shape, baseline)
    big = {"mapping": [
        {"target": "DRAM", "type": "temporal", "factors": "P=1 C=1 K=48", "permutation": "CKP"},
        {"target": "Scratchpad", "type": "temporal", "factors": "P=512 C=48 K=1", "permutation": "PCK"},
        {"target": "Scratchpad", "type": "spatial", "factors": "K=16"},
        {"target": "Accumulator", "type": "spatial", "factors": "C=16"},
    ]}  # fmt: skip
    overflow = r"Scratchpad tile \(inputs \+ weights\) needs 405504 but gemmini-baseline has 262144"
    with pytest.raises(SpecError, match=overflow):
        nest_from_timeloop(big, shape, baseline)
    wrong_unroll = {"mapping": [{"target": "Scratchpad", "type": "spatial", "factors": "C=16"}]}
    with pytest.raises(SpecError, match="unrolls only K"):
        nest_from_timeloop(wrong_unroll, shape, baseline)
    with pytest.raises(SpecError, match="unknown target 'Buffer'"):
        nest_from_timeloop({"mapping": [{"target": "Buffer", "type": "temporal", "factors": "P=1"}]}, shape, baseline)


def test_neighbours_keep_the_factorization(baseline):
    from tstack.mapping.nest.search import neighbours

    shape = PAPER_OPS["bert-base-mha"]
    drawn, _ = nest.sample(shape, baseline, 5, np.random.default_rng(2), nest.Spatial.FREE)
    for i in range(len(drawn)):
        around = neighbours(drawn, i, nest.Spatial.FREE)
        products = around.factors.prod(axis=1) * np.stack(
            [np.ones(len(around), dtype=np.int64), around.spatial_n, around.spatial_k], axis=1
        )
        assert (products == [shape.m, shape.n, shape.k]).all()
        assert (around.factors[:, nest.REGISTERS, 1:] == 1).all()  # no n or k loop inside a PE register
        moved = (around.factors != drawn.factors[i]).any(axis=(1, 2))
        reordered = (around.orders != drawn.orders[i]).any(axis=1)
        respatial = (around.spatial_n != drawn.spatial_n[i]) | (around.spatial_k != drawn.spatial_k[i])
        assert (moved | reordered | respatial).all() and reordered.sum() == 4 * 5


def test_descent_ends_in_a_local_minimum_and_search_never_loses_to_one_tile(baseline):
    from tstack.mapping.nest.search import descend, neighbours, search

    shape = MatmulShape(256, 192, 384)
    hw = nest.NestHardware.of(baseline)
    drawn, _ = nest.sample(shape, baseline, 6, np.random.default_rng(4), nest.Spatial.FREE)
    start_edp = nest.costs(shape, drawn, baseline).edp
    for i in range(len(drawn)):
        end = descend(shape, baseline, drawn.take(np.array([i])))
        assert end.edp <= start_edp[i]
        around = neighbours(end.nests, 0, nest.Spatial.FREE)
        around = around.take(np.flatnonzero(nest.valid(around, hw)))
        assert nest.costs(shape, around, baseline).edp.min() >= end.edp * (1 - 1e-12)
    one_tile = nest.costs(shape, nest_one_tile.one_tile_nests(shape, baseline), baseline).edp.min()
    assert search(shape, baseline, samples=2000).edp <= one_tile
