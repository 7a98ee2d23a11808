"""Mappers over the 7-loop convolution mapspace (`tstack.mapping.conv.loopnest`), priced by `tstack.mapping.conv.cost`.

The mapspace: an on-chip tile per dimension, each a divisor of its bound (perfect factorization, as for the matmul
mapspace in `tstack.mapping.matmul.mappers`), times the DRAM loop orders, with the spatial level fixed (C over the
array's rows, K over its columns, tiles folded over the whole array). A mapping is valid when its tiles fit the
double-buffered on-chip memories; validity does not depend on the order.

Orders. Of the 7! = 5040 permutations, those that differ only in where the one-trip loops sit are one loop nest
(a one-trip loop changes no tile), so the mapspace holds each tiling with the t! orders of its t loops of more than
one trip, the one-trip loops hoisted outermost (`canonical_order`): "valid mappings" counts these distinct loop
nests, and `random_conv` samples uniformly over them. `exhaustive_conv` prunes further, exactly: the cost depends
on the order only through which loops each operand's tile is re-fetched under (for each of inputs, weights and
outputs, the set of loops that do not index it above the innermost one that does), so it evaluates one order per
such reuse class per tiling (`distinct="reuse"`) and finds the same optimum as the full enumeration.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import permutations
from typing import Literal

import numpy as np
import numpy.typing as npt

from tstack.errors import InfeasibleError, SpecError
from tstack.hardware.types import CostOptions, Hardware
from tstack.mapping.conv.cost import conv_costs
from tstack.mapping.conv.loopnest import CONV_DIMS, CONV_ORDERS, RELEVANT, ConvMapping, ConvShape, order_code
from tstack.mapping.matmul.cost import MatmulCosts, OperandBits, _ceil_div
from tstack.mapping.matmul.mappers import Objective, best_index, divisors

IntArray = npt.NDArray[np.int64]
Distinct = Literal["loops", "reuse"]
Weighting = Literal["mapping", "tiling"]


@dataclass(frozen=True, slots=True)
class ConvMapperResult:
    mapping: ConvMapping
    latency_cycles: float
    energy_pj: float
    edp: float
    evaluated: int  # mappings the mapper evaluated


@dataclass(frozen=True, slots=True)
class ConvMapspace:
    """Candidate conv mappings as parallel arrays: tiles (n, 7) in CONV_DIMS order, DRAM order codes."""

    tiles: IntArray
    order: IntArray

    def __len__(self) -> int:
        return len(self.order)

    def mapping(self, i: int) -> ConvMapping:
        return ConvMapping(tuple(int(t) for t in self.tiles[i]), CONV_ORDERS[int(self.order[i])])

    def take(self, index: IntArray) -> ConvMapspace:
        return ConvMapspace(self.tiles[index], self.order[index])

    def costs(
        self, shape: ConvShape, hw: Hardware, bits: OperandBits | None = None, options: CostOptions | None = None
    ) -> MatmulCosts:
        return conv_costs(shape, self.tiles, self.order, hw, bits, options)


def _reuse_signature(order: tuple[str, ...], nontrivial: frozenset[str]) -> tuple[frozenset[str], ...]:
    """Per operand, the loops of more than one trip that re-fetch its tile: what the cost depends on."""
    sig = []
    for dims in RELEVANT.values():
        depths = [order.index(d) for d in dims if d in nontrivial]
        innermost = max(depths, default=-1)
        sig.append(frozenset(d for d in nontrivial - dims if order.index(d) < innermost))
    return tuple(sig)


@lru_cache(maxsize=2)
def _order_table(distinct: Distinct) -> tuple[IntArray, IntArray, IntArray]:
    """For every set of loops with more than one trip (a 7-bit mask, bit i = CONV_DIMS[i]): the order codes of its
    distinct orders, concatenated; and each mask's offset and count into them."""
    codes: list[int] = []
    offsets = np.zeros(1 << len(CONV_DIMS), dtype=np.int64)
    counts = np.zeros(1 << len(CONV_DIMS), dtype=np.int64)
    for mask in range(1 << len(CONV_DIMS)):
        nontrivial = [d for i, d in enumerate(CONV_DIMS) if mask >> i & 1]
        trivial = tuple(d for d in CONV_DIMS if d not in nontrivial)
        offsets[mask] = len(codes)
        seen: set[tuple[frozenset[str], ...]] = set()
        for perm in permutations(nontrivial):
            order = trivial + perm
            if distinct == "reuse":
                sig = _reuse_signature(order, frozenset(nontrivial))
                if sig in seen:
                    continue
                seen.add(sig)
            codes.append(order_code(order))
        counts[mask] = len(codes) - offsets[mask]
    return np.array(codes, dtype=np.int64), offsets, counts


@dataclass(frozen=True, slots=True)
class _Tilings:
    """The valid tilings of a conv and, per tiling, the mask of its loops with more than one trip."""

    tiles: IntArray
    mask: IntArray

    def orders_per_tiling(self, distinct: Distinct) -> IntArray:
        return _order_table(distinct)[2][self.mask]


def _valid_tilings(shape: ConvShape, hw: Hardware, bits: OperandBits, options: CostOptions) -> _Tilings:
    grids = np.meshgrid(*(np.array(divisors(b), dtype=np.int64) for b in shape.bounds), indexing="ij")
    tiles = np.stack([g.ravel() for g in grids], axis=1)
    feasible = conv_costs(shape, tiles, np.zeros(len(tiles), dtype=np.int64), hw, bits, options).feasible
    tiles = tiles[feasible]
    if len(tiles) == 0:
        raise InfeasibleError(
            f"no valid mapping: no tile of the {shape.k}x{shape.c}x{shape.r}x{shape.s} conv fits the on-chip "
            f"memories of {hw.name!r}"
        )
    nontrivial = _ceil_div(np.array(shape.bounds, dtype=np.int64), tiles) > 1
    mask = (nontrivial * (1 << np.arange(len(CONV_DIMS)))).sum(axis=1)
    return _Tilings(tiles, np.asarray(mask, dtype=np.int64))


def _expand(tilings: _Tilings, distinct: Distinct) -> ConvMapspace:
    """Every tiling with each of its distinct orders."""
    table, offsets, counts = _order_table(distinct)
    reps = counts[tilings.mask]
    starts = np.cumsum(reps) - reps
    within = np.arange(int(reps.sum()), dtype=np.int64) - np.repeat(starts, reps)
    codes = table[np.repeat(offsets[tilings.mask], reps) + within]
    return ConvMapspace(np.repeat(tilings.tiles, reps, axis=0), codes)


def conv_mapspace(
    shape: ConvShape,
    hw: Hardware,
    bits: OperandBits | None = None,
    options: CostOptions | None = None,
    distinct: Distinct = "loops",
) -> ConvMapspace:
    """Every valid mapping: one per distinct loop nest (`loops`), or one per reuse class (`reuse`, module
    docstring); materialized, so mind the size (`count_valid_conv`)."""
    bits, options = bits or OperandBits(), options or hw.cost_options
    return _expand(_valid_tilings(shape, hw, bits, options), distinct)


def count_valid_conv(
    shape: ConvShape, hw: Hardware, bits: OperandBits | None = None, options: CostOptions | None = None
) -> int:
    """Valid mappings (distinct loop nests) without materializing them."""
    bits, options = bits or OperandBits(), options or hw.cost_options
    return int(_valid_tilings(shape, hw, bits, options).orders_per_tiling("loops").sum())


def _result(space: ConvMapspace, costs: MatmulCosts, objective: Objective, evaluated: int) -> ConvMapperResult:
    best = best_index(costs, objective, "conv")
    return ConvMapperResult(
        space.mapping(best),
        float(costs.latency_cycles[best]),
        float(costs.energy_pj[best]),
        float(costs.edp[best]),
        evaluated,
    )


def exhaustive_conv(
    shape: ConvShape,
    hw: Hardware,
    bits: OperandBits | None = None,
    options: CostOptions | None = None,
    objective: Objective = Objective.EDP,
) -> ConvMapperResult:
    """The optimum over every valid mapping, evaluating one order per reuse class (exact; module docstring)."""
    bits, options = bits or OperandBits(), options or hw.cost_options
    space = conv_mapspace(shape, hw, bits, options, distinct="reuse")
    costs = space.costs(shape, hw, bits, options)
    return _result(space, costs, objective, len(space))


def random_conv(
    shape: ConvShape,
    hw: Hardware,
    samples: int,
    rng: np.random.Generator,
    bits: OperandBits | None = None,
    options: CostOptions | None = None,
    objective: Objective = Objective.EDP,
    weighting: Weighting = "tiling",
) -> tuple[ConvMapperResult, MatmulCosts]:
    """`samples` mappings drawn with replacement from the valid mappings, evaluated in one pass.

    `tiling` (default): uniform over valid (tiling, order of the seven loops) pairs, i.e. a valid tiling uniformly
    and then one of its 5040 orders — the matmul mapspace's semantics (every tiling with its six orders) and
    Timeloop's random mapper's (factorization and permutation drawn independently). `mapping`: uniform over
    distinct loop nests (orders differing only in one-trip loops merged), which weighs a tiling with t loops of
    more than one trip by t! and so over-samples small tiles."""
    if samples <= 0:
        raise SpecError(f"the random mapper needs a positive number of samples, got {samples}")
    if weighting not in ("mapping", "tiling"):
        raise SpecError(f"unknown weighting {weighting!r}; choose mapping or tiling")
    bits, options = bits or OperandBits(), options or hw.cost_options
    tilings = _valid_tilings(shape, hw, bits, options)
    table, offsets, _ = _order_table("loops")
    reps = tilings.orders_per_tiling("loops")
    if weighting == "tiling":
        which = rng.integers(0, len(reps), samples)
        within = rng.integers(0, reps[which])
    else:
        ends = np.cumsum(reps)
        draw = rng.integers(0, int(ends[-1]), samples)
        which = np.searchsorted(ends, draw, side="right")
        within = draw - (ends[which] - reps[which])
    space = ConvMapspace(tilings.tiles[which], table[offsets[tilings.mask[which]] + within])
    costs = space.costs(shape, hw, bits, options)
    return _result(space, costs, objective, samples), costs
