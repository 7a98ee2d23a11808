"""The Timeloop mapspace semantics of `tstack.mapping.mapspace` (the Gemmini Timeloop description's mapspace)."""

from __future__ import annotations

import json

import numpy as np

import tstack
from tests.integration.test_cli import run
from tstack.mapping.cost import OperandBits, matmul_costs
from tstack.mapping.loopnest import ORDERS, MatmulShape
from tstack.mapping.mappers import exhaustive
from tstack.mapping.mapspace import (
    TIMELOOP_DRAM_ORDER,
    Semantics,
    characterize,
    timeloop_hardware,
    timeloop_mapspace,
)


def test_full_array_mappings_cost_what_the_default_model_prices_them() -> None:
    """With both spatial factors at 16 the spatial arrays change nothing: same costs as the default call."""
    hw = timeloop_hardware(tstack.load_hardware("gemmini-baseline"))
    shape = MatmulShape(512, 768, 768)
    space = timeloop_mapspace(shape, hw)
    full = np.flatnonzero((space.spatial_rows == 16) & (space.spatial_cols == 16))
    sub = space.take(full)
    with_spatial = sub.costs(shape, hw)
    order = np.full(len(sub), ORDERS.index(TIMELOOP_DRAM_ORDER))
    plain = matmul_costs(shape, sub.tile_m, sub.tile_n, sub.tile_k, order, hw, OperandBits(), hw.cost_options)
    assert np.allclose(with_spatial.energy_pj, plain.energy_pj)
    assert np.array_equal(with_spatial.feasible, plain.feasible)
    assert np.allclose(with_spatial.latency_cycles[plain.feasible], plain.latency_cycles[plain.feasible])


def test_partial_array_is_slower_per_mac() -> None:
    hw = timeloop_hardware(tstack.load_hardware("gemmini-baseline"))
    shape = MatmulShape(64, 64, 64)
    space = timeloop_mapspace(shape, hw)
    costs = space.costs(shape, hw)
    used = space.spatial_rows * space.spatial_cols
    # compute cycles = M x (N / cols used) x (K / rows used): the product of temporal factors
    assert np.allclose(costs.compute_cycles, shape.m * shape.n * shape.k / used)


def test_timeloop_characterization_spans_four_orders_and_is_seeded() -> None:
    hw = tstack.load_hardware("gemmini-baseline")
    shape = MatmulShape(512, 768, 768)
    stats = characterize("mha", shape, hw, 20_000, seed=1, semantics=Semantics.TIMELOOP)
    assert stats.relative_edp.min() >= 1.0 - 1e-12
    assert 1e3 < stats.span < 1e5  # ~2.3e4 measured; the paper: up to 1e4
    assert stats.best.mapping.order == TIMELOOP_DRAM_ORDER
    again = characterize("mha", shape, hw, 20_000, seed=1, semantics=Semantics.TIMELOOP)
    assert np.array_equal(again.relative_edp, stats.relative_edp)


def test_default_semantics_unchanged() -> None:
    hw = tstack.load_hardware("gemmini-baseline")
    shape = MatmulShape(512, 768, 768)
    stats = characterize("mha", shape, hw, 5_000, seed=1)
    assert stats.best.edp == exhaustive(shape, hw).edp


def test_mapspace_command_semantics_option() -> None:
    proc = run("mapspace", "--ops", "bert-base-mha", "--samples", "2000", "--semantics", "timeloop", "--json")
    assert proc.returncode == 0, proc.stderr
    op = json.loads(proc.stdout)["ops"][0]
    assert op["valid_mappings"] > 10_000 and 1e3 < op["span"] < 1e5
    bad = run("mapspace", "--ops", "bert-base-mha", "--samples", "10", "--semantics", "zigzag")
    assert bad.returncode != 0 and "unknown semantics" in bad.stderr
