"""7-loop convolution mappings (`tstack.mapping.conv.loopnest`, `conv.cost`, `conv.mappers`): legality, the vectorized
cost model against the matmul model and against a loop-nest simulation, and the mappers."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from math import ceil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tstack
from tests.conftest import make_hardware
from tests.integration.test_cli import run
from tests.strategies import cost_options
from tstack.errors import InfeasibleError
from tstack.hardware.types import CostOptions, FillDrain, Hardware
from tstack.mapping.conv.cost import conv_costs, conv_reuse, evaluate_conv
from tstack.mapping.conv.loopnest import (
    CONV_DIMS,
    CONV_ORDERS,
    RELEVANT,
    ConvMapping,
    ConvShape,
    canonical_order,
    order_code,
)
from tstack.mapping.conv.mappers import (
    ConvMapperResult,
    conv_mapspace,
    count_valid_conv,
    exhaustive_conv,
    random_conv,
)
from tstack.mapping.mapspace import PAPER_CONVS, PAPER_OPS, characterize
from tstack.mapping.matmul.cost import OperandBits, matmul_costs
from tstack.mapping.matmul.loopnest import ORDERS
from tstack.mapping.matmul.mappers import divisors, exhaustive

ALL_ORDERS = np.arange(len(CONV_ORDERS))
options = cost_options(vary_l2_tiling=True)


# --- legality and printing


def test_shapes_and_mappings_say_what_is_wrong() -> None:
    hw = make_hardware()
    with pytest.raises(InfeasibleError, match="dimension K must be a positive integer, got 0"):
        ConvShape(1, 0, 3, 7, 7, 3, 3)
    with pytest.raises(InfeasibleError, match="stride must be a positive integer, got 0"):
        ConvShape(1, 8, 3, 7, 7, 3, 3, stride=0)
    with pytest.raises(InfeasibleError, match="tile C must be positive"):
        ConvMapping((1, 1, 0, 1, 1, 1, 1))
    with pytest.raises(InfeasibleError, match="permutation of N, K, C, P, Q, R, S"):
        ConvMapping((1,) * 7, ("N", "K", "C", "P", "Q", "R", "R"))
    with pytest.raises(InfeasibleError, match="unknown conv dimension 'H'"):
        ConvMapping.of(H=3)
    shape = ConvShape(1, 512, 512, 7, 7, 3, 3)
    with pytest.raises(InfeasibleError, match="tile K=1024 is larger than the bound K=512"):
        ConvMapping.of(K=1024).check(shape, hw)
    with pytest.raises(InfeasibleError, match="spatial_c=32 unrolls C over more than the array's 16 rows"):
        ConvMapping((1, 16, 32, 1, 1, 1, 1), spatial_c=32).check(shape, hw)
    with pytest.raises(InfeasibleError, match="spatial_k=16 does not divide tile K=8"):
        ConvMapping((1, 8, 16, 1, 1, 1, 1), spatial_k=16).check(shape, hw)
    # 512 x 512 x 3 x 3 weights = 2.25 MiB: far beyond half of the 256 KiB scratchpad
    with pytest.raises(InfeasibleError, match=r"capacity exceeded: the input and weight tiles need .* 'scratchpad'"):
        evaluate_conv(shape, ConvMapping.of(K=512, C=512, R=3, S=3), hw)
    with pytest.raises(InfeasibleError, match=r"capacity exceeded: the output tile .* 'accumulator'"):
        ConvMapping.of(K=512, P=7, Q=7).check(shape, hw)  # 512 x 49 x 4 B = 98 KiB > 32 KiB usable
    ConvMapping.of(K=16, C=512, P=7, Q=7, R=3, S=3).check(shape, hw)  # the optimum's tiles fit


def test_check_and_the_vectorized_model_agree_on_capacity() -> None:
    shape = ConvShape(2, 64, 32, 7, 7, 3, 3, stride=2)
    hw = make_hardware(scratchpad_bytes=16 * 1024, accumulator_bytes=4 * 1024)
    rng = np.random.default_rng(1)
    tiles = np.stack([rng.integers(1, b + 1, 400) for b in shape.bounds], axis=1)
    spatial_cols = rng.choice([1, 2, 4], 400)
    tiles[:, 1] = np.maximum(tiles[:, 1] // spatial_cols, 1) * spatial_cols  # K tiles divisible by spatial_k
    for spatial in (None, spatial_cols):
        feasible = conv_costs(shape, tiles, np.zeros(400, dtype=np.int64), hw, spatial_cols=spatial).feasible
        for i, t in enumerate(tiles):
            mapping = ConvMapping(tuple(int(x) for x in t), spatial_k=None if spatial is None else int(spatial[i]))
            try:
                mapping.check(shape, hw)
                legal = True
            except InfeasibleError as err:
                assert "capacity exceeded" in str(err)
                legal = False
            assert legal == feasible[i]
        assert 0 < feasible.sum() < len(feasible)


def test_out_of_range_tiles_are_infeasible_in_arrays() -> None:
    shape = ConvShape(1, 16, 16, 4, 4, 3, 3)
    tiles = np.array([[1, 16, 16, 4, 4, 3, 3], [1, 32, 16, 4, 4, 3, 3], [1, 0, 16, 4, 4, 3, 3]])
    costs = conv_costs(shape, tiles, np.zeros(3, dtype=np.int64), make_hardware())
    assert costs.feasible.tolist() == [True, False, False]
    assert np.isinf(costs.latency_cycles[1:]).all()


def test_loop_nest_prints_the_halo_tile_and_the_spatial_level() -> None:
    shape = ConvShape(1, 64, 3, 112, 112, 7, 7, stride=2)
    mapping = ConvMapping.of(("K", "C", "P", "Q", "N", "R", "S"), N=1, K=32, C=3, P=8, Q=16, R=7, S=7)
    text = mapping.loop_nest(shape, 16, 16)
    assert "for K1 in [0:2)" in text and "for P1 in [0:14)" in text and "for Q1 in [0:7)" in text
    assert "input 1x3x21x37" in text  # (8 - 1) * 2 + 7 rows, (16 - 1) * 2 + 7 columns
    assert "for K0 in [0:2)" in text and "for C0 in [0:1)" in text
    assert text.splitlines()[-1].strip() == "for K in [0:16) (spatial, cols)"
    assert shape.h == 229 and shape.w == 229 and shape.im2col() == PAPER_OPS["resnet50-conv1-7x7-64"]


# --- (a) a 1x1 stride-1 conv of one image costs what its im2col matmul costs


def _matmul_order(order: tuple[str, ...], trips: dict[str, int]) -> tuple[str, ...] | None:
    """The matmul order of a 1x1 conv order: P and Q are m, K is n, C is k; one-trip loops hoisted outermost (the
    matmul model counts a one-trip loop at its place, the conv model ignores it: hoisting makes them agree). None
    when P and Q are split by another loop (no single m loop)."""
    to_mm = {"P": "m", "Q": "m", "K": "n", "C": "k"}
    loops = [to_mm[d] for d in order if d in to_mm and trips[d] > 1]
    merged = [d for i, d in enumerate(loops) if i == 0 or loops[i - 1] != d]
    if len(merged) != len(set(merged)):
        return None
    return tuple(d for d in ("m", "n", "k") if d not in merged) + tuple(merged)


@st.composite
def one_by_one(draw: st.DrawFn) -> tuple[ConvShape, tuple[int, ...], int | None, int | None]:
    p, q, k, c = draw(st.integers(1, 12)), draw(st.integers(1, 12)), draw(st.integers(1, 90)), draw(st.integers(1, 90))
    shape = ConvShape(1, k, c, p, q, 1, 1)
    tk, tc = draw(st.integers(1, k)), draw(st.integers(1, c))
    if draw(st.booleans()):  # whole output rows: an m-tile of tp * q pixels, the last one partial
        tp, tq = draw(st.integers(1, p)), q
    else:  # parts of one row: an m-tile of tq pixels, tq dividing q
        tp, tq = 1, draw(st.sampled_from(divisors(q)))
    spatial = draw(st.booleans())
    rows = draw(st.sampled_from([d for d in divisors(tc) if d <= 16])) if spatial else None
    cols = draw(st.sampled_from([d for d in divisors(tk) if d <= 16])) if spatial else None
    return shape, (1, tk, tc, tp, tq, 1, 1), rows, cols


@settings(max_examples=30, deadline=None)
@given(
    problem=one_by_one(),
    opts=options,
    memory=st.sampled_from([(256 * 1024, 64 * 1024, None), (4096, 2048, None), (8192, 4096, 2**16)]),
    bits=st.sampled_from([OperandBits(), OperandBits(out=32, bias=8)]),
)
def test_1x1_conv_costs_exactly_its_im2col_matmul_under_every_order(
    problem: tuple[ConvShape, tuple[int, ...], int | None, int | None],
    opts: CostOptions,
    memory: tuple[int, int, int | None],
    bits: OperandBits,
) -> None:
    shape, tiles, rows, cols = problem
    hw = make_hardware(scratchpad_bytes=memory[0], accumulator_bytes=memory[1], l2_bytes=memory[2])
    mapping = ConvMapping(tiles)
    trips = mapping.trips(shape)
    mm_orders = [_matmul_order(o, trips) for o in CONV_ORDERS]
    keep = np.array([i for i, o in enumerate(mm_orders) if o is not None])
    assert len(keep) >= len(CONV_ORDERS) // 3
    n = len(keep)
    spatial_rows = None if rows is None else np.full(n, rows)
    spatial_cols = None if cols is None else np.full(n, cols)
    conv = conv_costs(shape, np.tile(tiles, (n, 1)), keep, hw, bits, opts, spatial_rows, spatial_cols)
    _, tk, tc, tp, tq, _, _ = tiles
    codes = np.array([ORDERS.index(mm_orders[i]) for i in keep])  # type: ignore[arg-type]
    full = np.ones(n, dtype=np.int64)
    matmul = matmul_costs(
        shape.im2col(), full * tp * tq, full * tk, full * tc, codes, hw, bits, opts, spatial_rows, spatial_cols
    )
    for field in ("compute_cycles", "latency_cycles", "onchip_bytes", "dram_bytes", "energy_pj", "feasible"):
        assert np.array_equal(getattr(conv, field), getattr(matmul, field)), field


# --- (b) the vectorized reuse counts against a loop-nest simulation


def _simulate(shape: ConvShape, tiles: tuple[int, ...], order: tuple[str, ...], bits: OperandBits) -> dict[str, float]:
    """Walk the DRAM loop nest one tile at a time: an operand is fetched whenever the tile it needs differs from
    the one on chip (sized by the actual, possibly partial, tile and, for inputs, its window with halo); an output
    tile written back before its reduction ends is a partial-sum spill, read back on its next visit. Also counts
    what happens inside each tile: weight blocks loaded into the array (a tile of one block keeps it in the PEs while
    the weight tile does not change: Timeloop's registers), stream cycles (every weight block streams the tile's
    pixels), elements read out of the scratchpad, accumulations and accumulator fills (an output tile's visits)."""
    bound = dict(zip(CONV_DIMS, shape.bounds, strict=True))
    tile = dict(zip(CONV_DIMS, tiles, strict=True))
    trips = {d: ceil(bound[d] / tile[d]) for d in CONV_DIMS}
    on_chip: dict[str, tuple[int, ...]] = {}
    fetched = {"inputs": 0, "weights": 0}
    visits: Counter[tuple[int, ...]] = Counter()
    extents: dict[tuple[int, ...], int] = {}
    counts: Counter[str] = Counter()
    for index in itertools.product(*(range(trips[d]) for d in order)):
        at = dict(zip(order, index, strict=True))
        e = {d: min(tile[d], bound[d] - at[d] * tile[d]) for d in CONV_DIMS}
        weights_held = on_chip.get("weights") == tuple(at[d] for d in CONV_DIMS if d in RELEVANT["weights"])
        for tensor, dims in RELEVANT.items():
            key = tuple(at[d] for d in CONV_DIMS if d in dims)
            if on_chip.get(tensor) == key:
                continue
            on_chip[tensor] = key
            if tensor == "inputs":
                h = (e["P"] - 1) * shape.stride + e["R"]
                w = (e["Q"] - 1) * shape.stride + e["S"]
                fetched["inputs"] += e["N"] * e["C"] * h * w
            elif tensor == "weights":
                fetched["weights"] += e["K"] * e["C"] * e["R"] * e["S"]
            else:
                visits[key] += 1
                extents[key] = e["N"] * e["K"] * e["P"] * e["Q"]
        blocks = e["R"] * e["S"] * ceil(e["C"] / 16) * ceil(e["K"] / 16)  # weight blocks of this tile
        pixels = e["N"] * e["P"] * e["Q"]
        counts["tiles"] += 1
        one_block = tile["R"] * tile["S"] == 1 and tile["C"] <= 16 and tile["K"] <= 16  # every tile of the mapping
        if not (one_block and weights_held):
            counts["weight_loads"] += blocks
            counts["weight_reads"] += e["K"] * e["C"] * e["R"] * e["S"]
        counts["stream"] += blocks * pixels
        counts["input_reads"] += pixels * e["R"] * e["S"] * e["C"] * ceil(e["K"] / 16)
        counts["accumulations"] += pixels * e["K"] * ceil(e["C"] / 16) * e["R"] * e["S"]
    passes = {visits[key] for key in visits}
    out_bytes = sum(extents[key] * ((v - 1) * 2 * bits.acc / 8 + bits.out / 8) for key, v in visits.items())
    counts["accumulator_fills"] = sum(extents[key] * v for key, v in visits.items())
    counts["outputs"] = sum(extents.values())
    return {
        "inputs": fetched["inputs"],
        "weights": fetched["weights"],
        "passes": passes.pop() if len(passes) == 1 else -1,  # every output tile is visited equally often
        "out_bytes": out_bytes,
        "onchip_bytes": (fetched["inputs"] * bits.a + fetched["weights"] * bits.b) / 8 + out_bytes,
        **counts,
    }


@st.composite
def small_convs(draw: st.DrawFn) -> tuple[ConvShape, tuple[int, ...], tuple[str, ...]]:
    if draw(st.booleans()):  # 3x3, stride 2
        r, s, stride = 3, 3, 2
    else:
        r, s, stride = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shape = ConvShape(
        draw(st.integers(1, 2)), draw(st.integers(1, 24)), draw(st.integers(1, 24)), draw(st.integers(1, 6)),
        draw(st.integers(1, 6)), r, s, stride,
    )  # fmt: skip
    # tiles anywhere in [1, bound], but at most 4 K/C tiles and 3 P/Q tiles so the walk stays short
    tiles = (
        draw(st.integers(1, shape.n)),
        draw(st.integers(ceil(shape.k / 4), shape.k)),
        draw(st.integers(ceil(shape.c / 4), shape.c)),
        draw(st.integers(ceil(shape.p / 3), shape.p)),
        draw(st.integers(ceil(shape.q / 3), shape.q)),
        draw(st.integers(1, r)),
        draw(st.integers(1, s)),
    )
    return shape, tiles, draw(st.permutations(CONV_DIMS))


@settings(max_examples=150, deadline=None)
@given(
    problem=small_convs(),
    bits=st.sampled_from([OperandBits(), OperandBits(out=32)]),
    fill=st.sampled_from(list(FillDrain)),
)
def test_reuse_counts_equal_a_loop_nest_simulation(
    problem: tuple[ConvShape, tuple[int, ...], tuple[str, ...]], bits: OperandBits, fill: FillDrain
) -> None:
    shape, tiles, order = problem
    hw = make_hardware(scratchpad_bytes=2**30, accumulator_bytes=2**30)
    opts = CostOptions(fill_drain=fill, preload_hidden=False)
    code = np.array([order_code(tuple(order))])
    reuse = conv_reuse(shape, np.array([tiles]), code, opts, hw.pe.rows)
    costs = conv_costs(shape, np.array([tiles]), code, hw, bits, opts)
    ref = _simulate(shape, tiles, tuple(order), bits)
    assert reuse.input_elems[0] == ref["inputs"]
    assert reuse.weight_elems[0] == ref["weights"]
    assert reuse.output_passes[0] == ref["passes"]
    assert costs.onchip_bytes[0] == ref["onchip_bytes"]
    # compute: stream + a 16-cycle preload per weight block + 30 cycles of skew per block, per tile or never
    skew = {FillDrain.PER_FOLD: ref["weight_loads"], FillDrain.PER_TILE: ref["tiles"], FillDrain.NONE: 0}[fill]
    assert costs.compute_cycles[0] == ref["stream"] + 16 * ref["weight_loads"] + 30 * skew
    # energy from the simulated counts and the fixture's per-byte energies (1.25 on chip, 160 DRAM, 0.3 per MAC); the
    # accumulator as Timeloop counts it: a write per accumulation and per fill, a read per accumulation but the first
    fetched = (ref["inputs"] * bits.a + ref["weights"] * bits.b) / 8
    reads = (ref["input_reads"] * bits.a + ref["weight_reads"] * bits.b) / 8
    acc_writes = ref["accumulations"] + ref["accumulator_fills"]
    acc_reads = ref["accumulations"] - ref["outputs"]
    energy = (
        shape.macs * 0.3
        + fetched * 1.25
        + reads * 1.25
        + (acc_writes + acc_reads) * bits.acc / 8 * 1.25
        + ref["onchip_bytes"] * 160
    )
    assert costs.energy_pj[0] == pytest.approx(energy, rel=1e-12)


def test_3x3_stride_2_halo_against_the_simulation_over_many_orders() -> None:
    """Partial tiles in every dim of a 3x3 stride-2 conv, 60 orders: the windows overlap (R > stride)."""
    shape = ConvShape(2, 10, 7, 5, 4, 3, 3, stride=2)
    tiles = (1, 4, 3, 2, 3, 2, 2)
    rng = np.random.default_rng(0)
    codes = rng.choice(len(CONV_ORDERS), 60, replace=False)
    reuse = conv_reuse(shape, np.tile(tiles, (60, 1)), codes, CostOptions(), 16)
    for i, c in enumerate(codes):
        ref = _simulate(shape, tiles, CONV_ORDERS[c], OperandBits())
        assert (reuse.input_elems[i], reuse.weight_elems[i], reuse.output_passes[i]) == (
            ref["inputs"],
            ref["weights"],
            ref["passes"],
        )
    # the whole input once: more than N C H W because the windows of neighbouring tiles overlap
    assert reuse.input_elems.min() > shape.n * shape.c * shape.h * shape.w


# --- the mapspace: dedup of one-trip loops, exact pruning, uniform sampling


@settings(max_examples=15, deadline=None)
@given(problem=small_convs(), opts=options)
def test_orders_differing_in_one_trip_loops_cost_the_same(
    problem: tuple[ConvShape, tuple[int, ...], tuple[str, ...]], opts: CostOptions
) -> None:
    shape, tiles, _ = problem
    hw = make_hardware()
    trips = ConvMapping(tiles).trips(shape)
    canonical = [order_code(canonical_order(o, trips)) for o in CONV_ORDERS]
    every = conv_costs(shape, np.tile(tiles, (len(ALL_ORDERS), 1)), ALL_ORDERS, hw, options=opts)
    hoisted = conv_costs(shape, np.tile(tiles, (len(ALL_ORDERS), 1)), np.array(canonical), hw, options=opts)
    assert np.array_equal(every.energy_pj, hoisted.energy_pj)
    assert np.array_equal(every.latency_cycles, hoisted.latency_cycles)
    distinct = len({canonical[i] for i in ALL_ORDERS})
    assert distinct == np.prod(range(1, sum(t > 1 for t in trips.values()) + 1))


def _brute_force(shape: ConvShape, hw: Hardware) -> tuple[float, int]:
    """Every divisor tiling under all 5040 orders: the best EDP and the number of distinct valid loop nests."""
    tilings = np.array(list(itertools.product(*(divisors(b) for b in shape.bounds))))
    tiles = np.repeat(tilings, len(CONV_ORDERS), axis=0)
    costs = conv_costs(shape, tiles, np.tile(ALL_ORDERS, len(tilings)), hw)
    best = float(np.where(costs.feasible, costs.edp, np.inf).min())
    valid = costs.feasible.reshape(len(tilings), len(CONV_ORDERS)).all(axis=1)  # validity ignores the order
    nests: dict[frozenset[str], int] = {}
    total = 0
    for t in tilings[valid]:
        trips = ConvMapping(tuple(int(x) for x in t)).trips(shape)
        key = frozenset(d for d in CONV_DIMS if trips[d] > 1)
        if key not in nests:
            nests[key] = len({canonical_order(o, trips) for o in CONV_ORDERS})
        total += nests[key]
    return best, total


def test_exhaustive_with_reuse_pruning_finds_the_brute_force_optimum() -> None:
    shape = ConvShape(2, 12, 6, 3, 2, 3, 1, stride=2)
    hw = make_hardware(scratchpad_bytes=1024, accumulator_bytes=512)
    best_edp, nests = _brute_force(shape, hw)
    found = exhaustive_conv(shape, hw)
    assert found.edp == best_edp
    assert count_valid_conv(shape, hw) == nests == len(conv_mapspace(shape, hw))
    assert found.evaluated < nests / 2  # the pruning did prune
    assert evaluate_conv(shape, found.mapping, hw).edp == found.edp


def test_random_mapper_is_uniform_over_distinct_loop_nests_and_seeded() -> None:
    shape = ConvShape(1, 8, 4, 2, 1, 1, 1)
    hw = make_hardware()
    space = conv_mapspace(shape, hw)
    index = {(tuple(t), int(o)): i for i, (t, o) in enumerate(zip(space.tiles, space.order, strict=True))}
    assert len(index) == len(space) == count_valid_conv(shape, hw)
    result, costs = random_conv(shape, hw, 60_000, np.random.default_rng(3), weighting="mapping")
    again, costs2 = random_conv(shape, hw, 60_000, np.random.default_rng(3), weighting="mapping")
    assert np.array_equal(costs.edp, costs2.edp) and again.mapping == result.mapping
    all_costs = space.costs(shape, hw)
    edp_to_count = Counter(np.round(all_costs.edp, 3).tolist())
    seen = Counter(np.round(costs.edp, 3).tolist())
    # mappings of equal EDP are indistinguishable here: each EDP value must be drawn in proportion to its mappings
    expected = {v: c / len(space) * 60_000 for v, c in edp_to_count.items()}
    chi2 = sum((seen[v] - e) ** 2 / e for v, e in expected.items())
    dof = len(expected) - 1
    assert set(seen) <= set(expected)
    assert chi2 < dof + 6 * (2 * dof) ** 0.5
    assert result.edp == min(costs.edp) >= exhaustive_conv(shape, hw).edp


def test_tiling_weighting_draws_every_tiling_equally_often() -> None:
    shape = ConvShape(1, 8, 4, 2, 1, 1, 1)
    hw = make_hardware()
    _, costs = random_conv(shape, hw, 40_000, np.random.default_rng(0))  # the default
    _, by_nest = random_conv(shape, hw, 40_000, np.random.default_rng(0), weighting="mapping")
    # the tiling with every tile whole has one loop nest; under `mapping` it is one of many, under `tiling` one
    # of the 4 x 3 x 2 divisor tilings
    whole = exhaustive_conv(shape, hw)  # here the whole-tensor tiling is the optimum
    assert whole.mapping.tiles == shape.bounds
    share_tiling = np.mean(costs.edp == whole.edp)
    share_nest = np.mean(by_nest.edp == whole.edp)
    assert abs(share_tiling - 1 / 24) < 0.01
    assert abs(share_nest - 1 / count_valid_conv(shape, hw)) < 0.005


# --- (c) against the im2col matmul mapspace, where the comparison means something


@pytest.mark.parametrize("name", ["resnet50-conv5-1x1-512", "resnet50-conv5-1x1-2048"])
def test_1x1_conv_optimum_is_never_worse_than_the_im2col_optimum(name: str) -> None:
    """For a 1x1 stride-1 conv whose im2col tiles of P Q are all P_t x Q or Q_t (7 x 7: 1, 7, 49), every matmul
    mapping has a conv mapping that costs no more (test (a)), so the conv optimum cannot be worse."""
    hw = tstack.load_hardware("gemmini-baseline")
    conv = PAPER_CONVS[name]
    assert exhaustive_conv(conv, hw).edp <= exhaustive(conv.im2col(), hw).edp * (1 + 1e-12)


def test_direct_conv1_is_worse_than_its_im2col_so_no_general_ordering_holds() -> None:
    """Why the conv and im2col optima are not compared in general: the two mapspaces do not contain each other.
    ResNet-50 conv1 has C = 3, so unrolling C over 16 PE rows uses 3 of them, while im2col folds C x R x S = 147
    over the rows; the 7-loop optimum is several times worse. (For 3x3 convs it goes the other way: the im2col
    matrix re-reads every input 9 times.)"""
    hw = tstack.load_hardware("gemmini-baseline")
    conv1, conv3 = PAPER_CONVS["resnet50-conv1-7x7-64"], PAPER_CONVS["resnet50-conv5-3x3-512"]
    assert exhaustive_conv(conv1, hw).edp > 3 * exhaustive(conv1.im2col(), hw).edp
    assert exhaustive_conv(conv3, hw).edp < exhaustive(conv3.im2col(), hw).edp


# --- characterization and the command


def test_characterize_maps_the_resnet_convs_with_seven_loops() -> None:
    hw = tstack.load_hardware("gemmini-baseline")
    name = "resnet50-conv5-1x1-2048"
    stats = characterize(name, PAPER_OPS[name], hw, 3000, seed=0)
    assert stats.conv == PAPER_CONVS[name] and stats.mapspace == "conv-7-loop"
    assert isinstance(stats.best, ConvMapperResult)
    assert stats.valid_mappings == count_valid_conv(stats.conv, hw)
    assert stats.relative_edp.min() >= 1.0 - 1e-12
    again = characterize(name, PAPER_OPS[name], hw, 3000, seed=0)
    assert np.array_equal(again.relative_edp, stats.relative_edp)
    old = characterize(name, PAPER_OPS[name], hw, 3000, seed=0, im2col=True)
    assert old.conv is None and old.mapspace == "matmul"
    assert old.best.edp == pytest.approx(stats.best.edp, rel=1e-12)  # 1x1: the same optimum (see above)
    with pytest.raises(InfeasibleError, match="im2col matmul"):
        characterize(name, PAPER_OPS["bert-base-mha"], hw, 10, seed=0, conv=PAPER_CONVS[name])


def test_mapspace_command_reports_the_conv_mapspace() -> None:
    proc = run("mapspace", "--ops", "resnet50-conv5-3x3-512,bert-base-mha", "--samples", "2000", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "tstack.mapspace/1"
    conv, mha = doc["ops"]
    assert (conv["m"], conv["n"], conv["k"]) == (49, 512, 4608)  # the original fields stay
    assert conv["mapspace"] == "conv-7-loop" and conv["conv"]["R"] == 3 and conv["conv"]["H"] == 9
    assert set(conv["best_mapping"]["tiles"]) == set(CONV_DIMS) and len(conv["best_mapping"]["order"]) == 7
    assert mha["mapspace"] == "matmul" and mha["conv"] is None
    old = run("mapspace", "--ops", "resnet50-conv5-3x3-512", "--samples", "2000", "--im2col", "--json")
    assert old.returncode == 0, old.stderr
    entry = json.loads(old.stdout)["ops"][0]
    assert entry["mapspace"] == "matmul" and entry["best_edp"] > conv["best_edp"]
