"""The `timeloop` semantics of `tstack.mapping.mapspace`: Gemmini's Timeloop mapspace (mapspace.yaml, the constraints
preset `gemmini`) drawn as multi-level nests and priced with Timeloop's reuse rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tstack
from tests.integration.test_cli import run
from tstack.mapping.mapspace import Semantics, characterize, timeloop_hardware
from tstack.mapping.matmul.cost import OperandBits, matmul_costs
from tstack.mapping.matmul.loopnest import ORDERS, MatmulShape
from tstack.mapping.matmul.mappers import divisors, exhaustive
from tstack.mapping.nest import matmul as nest
from tstack.spec.timeloop import gemmini_timeloop_files, load_nest_constraints

DRAM_ORDER = ORDERS.index(("m", "n", "k"))  # mapspace.yaml's DRAM permutation CSRKQPN, outermost first
ACC_ORDER = ORDERS.index(("n", "k", "m"))  # its accumulator permutation QPNCSRK: weight stationary


@pytest.fixture(scope="module")
def tl():
    return timeloop_hardware(tstack.load_hardware("gemmini-baseline"))


def _gemmini_space(shape: MatmulShape) -> tuple[nest.Nests, np.ndarray, np.ndarray, np.ndarray]:
    """Gemmini's mapspace enumerated directly, as its constraints read: every tile (the accumulator level's factors
    times the spatial ones) and every spatial factor up to 16, DRAM and accumulator orders fixed."""
    rows = []
    for tm in divisors(shape.m):
        for sn in (d for d in divisors(shape.n) if d <= 16):
            for tn in (sn * t for t in divisors(shape.n // sn)):
                for sk in (d for d in divisors(shape.k) if d <= 16):
                    for tk in (sk * t for t in divisors(shape.k // sk)):
                        rows.append((tm, tn, tk, sn, sk))
    tm, tn, tk, sn, sk = (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
    f = np.ones((len(tm), 4, 3), dtype=np.int64)
    f[:, nest.DRAM] = np.stack([shape.m // tm, shape.n // tn, shape.k // tk], axis=1)
    f[:, nest.ACCUMULATOR] = np.stack([tm, tn // sn, tk // sk], axis=1)
    orders = np.zeros((len(tm), 4), dtype=np.int64)
    orders[:, nest.DRAM], orders[:, nest.ACCUMULATOR] = DRAM_ORDER, ACC_ORDER
    return nest.Nests(f, orders, sn, sk), tm, tn, tk


@pytest.mark.parametrize("shape", [MatmulShape(512, 768, 768), MatmulShape(480, 120, 512)])
def test_gemmini_constraints_match_a_direct_enumeration(tl, shape) -> None:
    """The constraint file's count equals the directly enumerated space, every enumerated nest lies in it, and the
    nest model's capacity rule agrees mapping for mapping with the one-tile cost model's (written separately)."""
    gemmini = load_nest_constraints("gemmini")
    space, tm, tn, tk = _gemmini_space(shape)
    assert nest.space_size(shape, tl, gemmini) == len(space)
    assert nest.satisfies(shape, space, tl, gemmini).all()
    fits = nest.valid(space, nest.NestHardware.of(tl))
    order = np.full(len(space), DRAM_ORDER)
    one_tile = matmul_costs(
        shape, tm, tn, tk, order, tl, OperandBits(), tl.cost_options, space.spatial_k, space.spatial_n
    )
    assert np.array_equal(fits, one_tile.feasible)
    _, estimate = nest.sample(shape, tl, 20_000, np.random.default_rng(0), gemmini)
    assert estimate == pytest.approx(int(fits.sum()), rel=0.03)


def test_samples_lie_in_gemmini_mapspace(tl) -> None:
    shape = MatmulShape(512, 3072, 768)
    gemmini = load_nest_constraints("gemmini")
    drawn, _ = nest.sample(shape, tl, 3000, np.random.default_rng(1), gemmini)
    assert nest.satisfies(shape, drawn, tl, gemmini).all()
    assert (drawn.factors[:, [nest.SCRATCHPAD, nest.REGISTERS]] == 1).all()
    assert (drawn.orders[:, nest.DRAM] == DRAM_ORDER).all() and (drawn.orders[:, nest.ACCUMULATOR] == ACC_ORDER).all()
    assert len(np.unique(drawn.spatial_k)) > 4  # partial arrays are drawn, not only 16 x 16


def test_one_trip_loops_give_no_reuse_barrier(tl) -> None:
    """The reduction wholly on chip (the DRAM k loop has one trip) and 2 x 768 DRAM loops over m and n: the input
    tile (256 x 768) stays in the scratchpad while n moves, so inputs cross DRAM once (393,216 B), as Timeloop counts
    it. A model that treats the one-trip k loop as the innermost loop re-reads them 768 times (302 MB): the
    `timeloop` semantics did until 2026-11-30."""
    shape = MatmulShape(512, 768, 768)
    f = np.ones((1, 4, 3), dtype=np.int64)
    f[0, nest.DRAM] = (2, 768, 1)
    f[0, nest.ACCUMULATOR] = (256, 1, 48)
    one = nest.Nests(f, np.array([[DRAM_ORDER, 0, ACC_ORDER, 0]]), np.array([1]), np.array([16]))
    assert nest.satisfies(shape, one, tl, load_nest_constraints("gemmini")).all()
    assert nest.accesses(shape, one)["dram_to_scratchpad_inputs"][0] == 512 * 768


def test_partial_array_is_slower_per_mac(tl) -> None:
    shape = MatmulShape(64, 64, 64)
    space, *_ = _gemmini_space(shape)
    ok = space.take(np.flatnonzero(nest.valid(space, nest.NestHardware.of(tl))))
    cost = nest.costs(shape, ok, tl)
    compute = shape.m * shape.n * shape.k / (ok.spatial_n * ok.spatial_k)
    assert np.allclose(np.maximum(cost.latency_cycles, compute), cost.latency_cycles)
    assert np.array_equal(ok.factors.prod(axis=(1, 2)), compute)


def test_timeloop_characterization_spans_four_orders_and_is_seeded() -> None:
    hw = tstack.load_hardware("gemmini-baseline")
    shape = MatmulShape(512, 768, 768)
    files = gemmini_timeloop_files()
    stats = characterize("mha", shape, hw, 20_000, seed=1, semantics=Semantics.TIMELOOP, timeloop=files)
    assert stats.relative_edp.min() >= 1.0 - 1e-12
    assert 1e3 < stats.span < 1e5  # ~4e4 measured; the paper: up to 1e4
    assert isinstance(stats.best, nest.NestResult)
    tl = timeloop_hardware(hw)
    assert nest.satisfies(shape, stats.best.nests, tl, load_nest_constraints("gemmini")).all()
    again = characterize("mha", shape, hw, 20_000, seed=1, semantics=Semantics.TIMELOOP, timeloop=files)
    assert np.array_equal(again.relative_edp, stats.relative_edp)


def test_default_semantics_unchanged() -> None:
    hw = tstack.load_hardware("gemmini-baseline")
    shape = MatmulShape(512, 768, 768)
    stats = characterize("mha", shape, hw, 5_000, seed=1)
    assert stats.best.edp == exhaustive(shape, hw).edp


def test_mapspace_command_semantics_and_constraints_options(tmp_path) -> None:
    proc = run("mapspace", "--ops", "bert-base-mha", "--samples", "2000", "--semantics", "timeloop", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    op = doc["ops"][0]
    assert op["valid_mappings"] > 10_000 and 1e3 < op["span"] < 1e5 and op["mapspace"] == "nest"
    same = run("mapspace", "--ops", "bert-base-mha", "--samples", "2000", "--constraints", "gemmini", "--json")
    assert json.loads(same.stdout)["ops"][0]["p10_relative_edp"] == op["p10_relative_edp"]
    exported = run("mapspace", "--ops", "bert-base-mha", "--samples", "500", "--semantics", "timeloop", "--export",
                   str(tmp_path))  # fmt: skip
    assert exported.returncode == 0 and (tmp_path / "bert-base-mha.timeloop.yaml").is_file()
    bad = run("mapspace", "--ops", "bert-base-mha", "--samples", "10", "--semantics", "zigzag")
    assert bad.returncode != 0 and "unknown semantics" in bad.stderr
    both = run("mapspace", "--ops", "bert-base-mha", "--samples", "10", "--semantics", "nest", "--constraints",
               "gemmini")  # fmt: skip
    assert both.returncode == 2 and "replaces --semantics" in both.stderr
    unknown = run("mapspace", "--ops", "bert-base-mha", "--samples", "10", "--constraints", "eyeriss")
    assert unknown.returncode == 2 and "dosa-random, dosa-real-gemmini, gemmini" in unknown.stderr
