"""Timeloop mapspace constraints read into nest mapspaces (tstack.mapping.timeloop.constraints)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import tstack
from tstack.errors import InfeasibleError, SpecError
from tstack.mapping.mapspace import timeloop_hardware
from tstack.mapping.matmul.loopnest import ORDERS, MatmulShape
from tstack.mapping.nest import matmul as nest
from tstack.mapping.timeloop.constraints import read_nest_constraints
from tstack.spec.timeloop import constraint_presets, load_nest_constraints

BYPASS = [
    {"target": "Registers", "type": "bypass", "keep": ["Weights"], "bypass": ["Inputs", "Outputs"]},
    {"target": "Accumulator", "type": "bypass", "keep": ["Outputs"], "bypass": ["Inputs", "Weights"]},
    {"target": "Scratchpad", "type": "bypass", "keep": ["Inputs", "Weights"], "bypass": ["Outputs"]},
]


@pytest.fixture(scope="module")
def tl():
    return timeloop_hardware(tstack.load_hardware("gemmini-baseline"))


def test_gemmini_preset_reads_as_its_file_says() -> None:
    c = load_nest_constraints("gemmini")
    # slots: DRAM, scratchpad, accumulator, registers, spatial; dims m, n, k (P, K, C)
    assert c.fixed == ((0, 0, 0), (1, 1, 1), (0, 0, 0), (1, 1, 1), (1, 0, 0))
    assert c.maximum == ((0, 0, 0),) * 4 + ((0, 16, 16),)  # K<=16 over the columns, C<=16 over the rows
    assert c.orders[nest.DRAM] == (ORDERS.index(("m", "n", "k")),)
    assert c.orders[nest.ACCUMULATOR] == (ORDERS.index(("n", "k", "m")),)
    assert set(constraint_presets()) == {"gemmini", "dosa-random", "dosa-real-gemmini"}


def test_spatial_directives_land_on_their_own_dims() -> None:
    """K<=16 at the Scratchpad caps n's spatial factor (columns) and C<=16 at the Accumulator k's (rows); the
    Accumulator's K=1 must not fix n's spatial factor to 1."""
    doc = [
        {"target": "Accumulator", "type": "spatial", "factors": "R=1 S=1 P=1 Q=1 C<=8 K=1 N=1"},
        {"target": "Scratchpad", "type": "spatial", "factors": "R=1 S=1 P=1 Q=1 N=1 C=1 K<=4"},
    ]
    c = read_nest_constraints(doc)
    assert c.fixed[nest.SPATIAL_SLOT] == (1, 0, 0)
    assert c.maximum[nest.SPATIAL_SLOT] == (0, 4, 8)


def test_dosa_random_is_the_free_spatial_nest_mapspace(tl) -> None:
    """DOSA's random-search mapspace draws, seed for seed, what `--semantics nest-free` draws, at the same cost."""
    shape = MatmulShape(512, 768, 768)
    dosa, _ = nest.sample(shape, tl, 4000, np.random.default_rng(3), load_nest_constraints("dosa-random"))
    free, _ = nest.sample(shape, tl, 4000, np.random.default_rng(3), nest.Spatial.FREE)
    assert np.array_equal(dosa.factors, free.factors) and np.array_equal(dosa.spatial_k, free.spatial_k)
    assert np.array_equal(dosa.orders[:, :3], free.orders[:, :3])  # registers: one loop, its order is moot
    np.testing.assert_array_equal(nest.costs(shape, dosa, tl).edp, nest.costs(shape, free, tl).edp)


def test_partial_permutation_is_a_user_prefix() -> None:
    """Timeloop reads a permutation inner to outer, and a partial one as the innermost loops: "C" at DRAM leaves the
    two orders with k innermost; "CK" one."""
    one = read_nest_constraints({"mapspace_constraints": [{"target": "DRAM", "type": "temporal", "permutation": "C"}]})
    assert {ORDERS[i] for i in one.orders[nest.DRAM]} == {("m", "n", "k"), ("n", "m", "k")}
    two = read_nest_constraints({"constraints": {"targets": [{"target": "DRAM", "type": "temporal",
                                                              "permutation": ["C", "K"]}]}})  # fmt: skip
    assert [ORDERS[i] for i in two.orders[nest.DRAM]] == [("m", "n", "k")]


def test_satisfies_ignores_the_place_of_one_trip_loops(tl) -> None:
    """A level whose only iterating loop is m meets any order constraint on it; one with m and k iterating must
    keep k inside m when the file says so."""
    shape = MatmulShape(64, 64, 64)
    c = read_nest_constraints([{"target": "DRAM", "type": "temporal", "permutation": "CKP"}])  # k, n, m outward
    f = np.ones((2, 4, 3), dtype=np.int64)
    f[:, nest.DRAM] = [(4, 1, 1), (4, 1, 4)]
    f[:, nest.ACCUMULATOR] = [(16, 4, 4), (16, 4, 1)]
    k_outside_m = ORDERS.index(("k", "m", "n"))
    nests = nest.Nests(f, np.array([[k_outside_m, 0, 0, 0]] * 2), np.array([16, 16]), np.array([16, 16]))
    assert nest.satisfies(shape, nests, tl, c).tolist() == [True, False]


def test_a_constraints_file_round_trip(tmp_path, tl) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "mapper": {"algorithm": "random"},
                "mapspace_constraints": [
                    *BYPASS,
                    {"target": "Registers", "type": "temporal", "factors": "C=1 K=1"},
                    {"target": "DRAM", "type": "temporal", "factors": ["C=1"]},
                ],
            }
        )
    )
    c = load_nest_constraints(path)
    assert c.name == "mine" and c.fixed[nest.DRAM] == (0, 0, 1)
    shape = MatmulShape(256, 256, 256)
    drawn, _ = nest.sample(shape, tl, 500, np.random.default_rng(0), c)
    assert (drawn.factors[:, nest.DRAM, 2] == 1).all() and nest.satisfies(shape, drawn, tl, c).all()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"mapping": []}, "expected Timeloop mapspace constraints"),
        ([{"target": "L2", "type": "temporal"}], "unknown target 'L2'"),
        ([{"target": "DRAM", "type": "temporal", "factors": "C<16"}], "bad factor 'C<16'"),
        ([{"target": "DRAM", "type": "temporal", "factors": "R=3"}], "a matmul has no R loop"),
        ([{"target": "Scratchpad", "type": "spatial", "factors": "P<=16"}], "not P at the Scratchpad"),
        ([{"target": "DRAM", "type": "temporal", "permutation": "CCK"}], "at most once"),
        ([{"target": "DRAM", "type": "spread"}], "type must be temporal, spatial or bypass"),
        (
            [{"target": "Scratchpad", "type": "bypass", "keep": ["Inputs", "Weights", "Outputs"]}],
            "keeps Inputs, Weights",
        ),
        ([{"target": "Accumulator", "type": "bypass", "keep": ["Outputs"], "bypass": ["Outputs"]}], "keeps nothing"),
    ],
)
def test_bad_constraints_name_the_problem(doc, message) -> None:
    with pytest.raises(SpecError, match=message):
        read_nest_constraints(doc, origin="f.yaml")


def test_fixed_factors_that_cannot_factor_the_bound_are_refused(tl) -> None:
    c = read_nest_constraints([{"target": "DRAM", "type": "temporal", "factors": "P=3"}])
    with pytest.raises(InfeasibleError, match="multiply to 3, which does not factor its bound 512"):
        nest.sample(MatmulShape(512, 64, 64), tl, 10, np.random.default_rng(0), c)
    with pytest.raises(SpecError, match="unknown mapspace constraints 'nope'"):
        load_nest_constraints("nope")
