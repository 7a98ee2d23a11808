"""The one-tile model is the nest model's special case: on every mapping both express, under Timeloop's options, the
two give the same latency, energy and DRAM traffic (and the nest model is the one checked against real Timeloop)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tstack
from tstack.hardware.types import FillDrain, Hardware
from tstack.mapping.mapspace import TIMELOOP_OPTIONS, timeloop_hardware
from tstack.mapping.matmul.cost import OperandBits, matmul_costs
from tstack.mapping.matmul.loopnest import MatmulShape
from tstack.mapping.nest import matmul as nest
from tstack.mapping.nest import one_tile as nest_one_tile


@pytest.fixture(scope="module")
def design() -> Hardware:
    """gemmini-baseline as Timeloop sees it (whole buffers, Timeloop's cycle model), and DRAM energies that differ for
    reads and writes so their split is checked too."""
    hw = timeloop_hardware(tstack.load_hardware("gemmini-baseline"))
    return hw.with_level("dram", read_energy_pj_per_byte=150.0, write_energy_pj_per_byte=170.0)


def _shared(shape: MatmulShape, hw: Hardware) -> nest.Nests:
    """Every one-tile mapping of `shape` whose nest folds its tiles over the array as the one-tile model does (the
    same number of array passes: tile sides that are multiples of the array side, or within it), valid in both."""
    every = nest_one_tile.one_tile_nests(shape, hw)
    f = every.factors
    tn = f[:, nest.ACCUMULATOR, nest.N] * every.spatial_n
    tk = f[:, nest.ACCUMULATOR, nest.K] * every.spatial_k
    same_folds = (-(-tn // hw.pe.cols) == tn // every.spatial_n) & (-(-tk // hw.pe.rows) == tk // every.spatial_k)
    return every.take(np.flatnonzero(same_folds))


def _compare(shape: MatmulShape, hw: Hardware) -> int:
    nests = _shared(shape, hw)
    f = nests.factors
    tiles = [
        f[:, nest.ACCUMULATOR, j] * s for j, s in ((nest.M, 1), (nest.N, nests.spatial_n), (nest.K, nests.spatial_k))
    ]
    one_tile = matmul_costs(shape, *tiles, nests.orders[:, nest.DRAM], hw, OperandBits(), TIMELOOP_OPTIONS)
    feasible = one_tile.feasible
    assert feasible.mean() > 0.5  # the per-column accumulator split is the only capacity rule that differs
    as_nests = nest.costs(shape, nests.take(np.flatnonzero(feasible)), hw)
    np.testing.assert_allclose(one_tile.dram_bytes[feasible], as_nests.dram_bytes, rtol=1e-12)
    np.testing.assert_allclose(one_tile.latency_cycles[feasible], as_nests.latency_cycles, rtol=1e-12)
    np.testing.assert_allclose(one_tile.energy_pj[feasible], as_nests.energy_pj, rtol=1e-12)
    return int(feasible.sum())


@pytest.mark.parametrize(
    "shape",
    [MatmulShape(512, 768, 768), MatmulShape(512, 3072, 768), MatmulShape(512, 512, 64), MatmulShape(48, 80, 96)],
    ids=["mha", "ffn1", "qk", "small"],
)
def test_one_tile_equals_nest_on_every_shared_mapping(shape: MatmulShape, design: Hardware) -> None:
    assert _compare(shape, design) > 100


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    m=st.integers(1, 96),
    n=st.sampled_from([8, 16, 24, 32, 48, 64, 96]),
    k=st.sampled_from([4, 16, 32, 48, 80, 128]),
)
def test_one_tile_equals_nest_on_random_shapes(m: int, n: int, k: int, design: Hardware) -> None:
    _compare(MatmulShape(m, n, k), design)


def test_the_gemmini_extras_are_what_separates_them(design: Hardware) -> None:
    """Each Gemmini option on top of Timeloop's model adds what the nest model does not have: the exposed first load,
    systolic fill/drain per tile, un-hidden weight preload (cycles), weights preloaded again per tile (energy)."""
    shape = MatmulShape(512, 768, 768)
    nests = _shared(shape, design)
    f = nests.factors
    tiles = [
        f[:, nest.ACCUMULATOR, j] * s for j, s in ((nest.M, 1), (nest.N, nests.spatial_n), (nest.K, nests.spatial_k))
    ]
    base = matmul_costs(shape, *tiles, nests.orders[:, nest.DRAM], design, OperandBits(), TIMELOOP_OPTIONS)
    ok = base.feasible
    changes: list[dict[str, Any]] = [
        {"first_load_exposed": True},
        {"fill_drain": FillDrain.PER_TILE},
        {"preload_hidden": False},
        {"weights_stay_in_array": False},
    ]
    for change in changes:
        options = replace(TIMELOOP_OPTIONS, **change)
        extra = matmul_costs(shape, *tiles, nests.orders[:, nest.DRAM], design, OperandBits(), options)
        worse = extra.edp[ok] / base.edp[ok]
        assert np.all(worse >= 1 - 1e-12) and np.any(worse > 1), change
