"""Mappers: choose a `Mapping` for one matmul on one design, all behind one interface.

The mapspace searched here is the cost model's: on-chip tile sizes for M, N and K, each a divisor of its bound
(perfect factorization, as Timeloop's mapper enumerates), times the six DRAM-level loop orders; the spatial level
is fixed by the weight-stationary array (K over rows, N over columns). A mapping is valid when its tiles fit the
double-buffered on-chip memories.

* `gemmini` — Gemmini's own heuristic (`tiled_matmul_auto`), tiles padded to the array as the C code pads them.
* `exhaustive` — every valid mapping, evaluated in one vectorized pass: the ground truth for this mapspace.
* `random` — `samples` mappings drawn uniformly from the valid ones (seeded); returns the best it saw.
* `cosa` — the same mapspace as a constraint program solved by OR-Tools CP-SAT (`tstack.mapping.matmul.cosa`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from tstack.errors import InfeasibleError, SpecError
from tstack.hardware.design import design_of
from tstack.hardware.types import CostOptions, Hardware
from tstack.mapping.matmul.cost import MatmulCosts, OperandBits, matmul_costs
from tstack.mapping.matmul.gemmini_tiler import FusedActivation, GemminiMemory, tiled_matmul_auto
from tstack.mapping.matmul.loopnest import ORDERS, Mapping, MatmulShape

IntArray = npt.NDArray[np.int64]


class MapperName(StrEnum):
    GEMMINI = "gemmini"
    EXHAUSTIVE = "exhaustive"
    RANDOM = "random"
    COSA = "cosa"  # constraint program on OR-Tools CP-SAT (tstack.mapping.matmul.cosa)


class Objective(StrEnum):
    EDP = "edp"
    LATENCY = "latency"
    ENERGY = "energy"


def parse_mapper(name: str) -> MapperName:
    try:
        return MapperName(name)
    except ValueError:
        raise SpecError(f"unknown mapper {name!r}; choose one of: {', '.join(m.value for m in MapperName)}") from None


@dataclass(frozen=True, slots=True)
class MapperResult:
    mapping: Mapping
    latency_cycles: float
    energy_pj: float
    edp: float
    evaluated: int  # mappings the mapper evaluated


@lru_cache(maxsize=1024)
def divisors(n: int) -> tuple[int, ...]:
    small = [d for d in range(1, int(n**0.5) + 1) if n % d == 0]
    return tuple(sorted(set(small + [n // d for d in small])))


@dataclass(frozen=True, slots=True)
class Mapspace:
    """All candidate mappings of a shape as parallel arrays (tiles in elements, order codes)."""

    tile_m: IntArray
    tile_n: IntArray
    tile_k: IntArray
    order: IntArray

    def __len__(self) -> int:
        return len(self.tile_m)

    def mapping(self, i: int) -> Mapping:
        return Mapping(int(self.tile_m[i]), int(self.tile_n[i]), int(self.tile_k[i]), ORDERS[int(self.order[i])])

    def take(self, index: IntArray) -> Mapspace:
        return Mapspace(self.tile_m[index], self.tile_n[index], self.tile_k[index], self.order[index])


#: candidates priced in one vectorized pass: the exhaustive search walks a larger mapspace in slices of this many, so
#: its memory stays near 2^20 x (a few dozen float64 columns), a few hundred MB, however many divisors a shape has
MAX_CANDIDATES_PER_PASS = 1 << 20


def mapspace_chunks(
    shape: MatmulShape, n_tiles: Sequence[int] | None = None, max_candidates: int = MAX_CANDIDATES_PER_PASS
) -> Iterator[Mapspace]:
    """The full mapspace (or, with `n_tiles`, the part whose n tile is one of them) in slices of at most
    `max_candidates` (at least one m tile per slice), in `full_mapspace`'s order."""
    if min(shape.m, shape.n, shape.k) <= 0:
        raise InfeasibleError(f"matmul {shape.m}x{shape.n}x{shape.k} has a zero dimension; nothing to map")
    dm = np.array(divisors(shape.m))
    dn = np.array(divisors(shape.n) if n_tiles is None else n_tiles)
    dk = np.array(divisors(shape.k))
    step = max(1, max_candidates // (len(dn) * len(dk) * len(ORDERS)))
    for start in range(0, len(dm), step):
        grids = np.meshgrid(dm[start : start + step], dn, dk, np.arange(len(ORDERS)), indexing="ij")
        yield Mapspace(*[g.ravel().astype(np.int64) for g in grids])


def best_mapping(
    shape: MatmulShape,
    hw: Hardware,
    bits: OperandBits,
    options: CostOptions,
    objective: Objective = Objective.EDP,
    n_tiles: Sequence[int] | None = None,
    max_candidates: int = MAX_CANDIDATES_PER_PASS,
) -> MapperResult | None:
    """The best mapping of the (optionally n-constrained) full mapspace under `objective`, priced slice by slice
    (the first of equal scores wins, as one pass's argmin would); None when no mapping is feasible."""
    best: MapperResult | None = None
    best_score = np.inf
    evaluated = 0
    for space in mapspace_chunks(shape, n_tiles, max_candidates):
        costs = evaluate_space(shape, space, hw, bits, options)
        score = _score(costs, objective)
        i = int(np.argmin(score))
        evaluated += len(space)
        if score[i] < best_score:
            best_score = float(score[i])
            best = MapperResult(
                space.mapping(i), float(costs.latency_cycles[i]), float(costs.energy_pj[i]), float(costs.edp[i]), 0
            )
    return None if best is None else replace(best, evaluated=evaluated)


def full_mapspace(shape: MatmulShape) -> Mapspace:
    if min(shape.m, shape.n, shape.k) <= 0:
        raise InfeasibleError(f"matmul {shape.m}x{shape.n}x{shape.k} has a zero dimension; nothing to map")
    grids = np.meshgrid(
        np.array(divisors(shape.m)),
        np.array(divisors(shape.n)),
        np.array(divisors(shape.k)),
        np.arange(len(ORDERS)),
        indexing="ij",
    )
    flat = [g.ravel().astype(np.int64) for g in grids]
    return Mapspace(*flat)


def _score(costs: MatmulCosts, objective: Objective) -> npt.NDArray[np.float64]:
    if objective is Objective.LATENCY:
        return costs.latency_cycles
    if objective is Objective.ENERGY:
        return np.where(costs.feasible, costs.energy_pj, np.inf)
    return np.where(costs.feasible, costs.edp, np.inf)


def evaluate_space(
    shape: MatmulShape, space: Mapspace, hw: Hardware, bits: OperandBits, options: CostOptions
) -> MatmulCosts:
    return matmul_costs(shape, space.tile_m, space.tile_n, space.tile_k, space.order, hw, bits, options)


def best_index(costs: MatmulCosts, objective: Objective, what: str) -> int:
    """The index of the best feasible mapping under `objective`; an error naming `what` when none is feasible."""
    score = _score(costs, objective)
    best = int(np.argmin(score))
    if not np.isfinite(score[best]):
        raise InfeasibleError(f"no valid mapping: no tile of this {what} fits the design's on-chip memories")
    return best


def _result(space: Mapspace, costs: MatmulCosts, objective: Objective) -> MapperResult:
    best = best_index(costs, objective, "matmul")
    return MapperResult(
        space.mapping(best),
        float(costs.latency_cycles[best]),
        float(costs.energy_pj[best]),
        float(costs.edp[best]),
        len(space),
    )


def exhaustive(
    shape: MatmulShape,
    hw: Hardware,
    bits: OperandBits | None = None,
    options: CostOptions | None = None,
    objective: Objective = Objective.EDP,
) -> MapperResult:
    bits, options = bits or OperandBits(), options or hw.cost_options
    best = best_mapping(shape, hw, bits, options, objective)
    if best is None:
        raise InfeasibleError("no valid mapping: no tile of this matmul fits the design's on-chip memories")
    return best


def valid_mappings(
    shape: MatmulShape, hw: Hardware, bits: OperandBits | None = None, options: CostOptions | None = None
) -> tuple[Mapspace, MatmulCosts]:
    """The valid part of the full mapspace and its costs."""
    bits, options = bits or OperandBits(), options or hw.cost_options
    space = full_mapspace(shape)
    costs = evaluate_space(shape, space, hw, bits, options)
    keep = np.flatnonzero(costs.feasible)
    if keep.size == 0:
        raise InfeasibleError("no valid mapping: no tile of this matmul fits the design's on-chip memories")
    valid = space.take(keep)
    return valid, evaluate_space(shape, valid, hw, bits, options)


def random_search(
    shape: MatmulShape,
    hw: Hardware,
    samples: int,
    rng: np.random.Generator,
    bits: OperandBits | None = None,
    options: CostOptions | None = None,
    objective: Objective = Objective.EDP,
) -> tuple[MapperResult, MatmulCosts]:
    """`samples` mappings drawn uniformly (with replacement) from the valid ones, evaluated in one pass."""
    if samples <= 0:
        raise SpecError(f"the random mapper needs a positive number of samples, got {samples}")
    bits, options = bits or OperandBits(), options or hw.cost_options
    valid, _ = valid_mappings(shape, hw, bits, options)
    drawn = valid.take(rng.integers(0, len(valid), samples))
    costs = evaluate_space(shape, drawn, hw, bits, options)
    return _result(drawn, costs, objective), costs


def gemmini_memory(hw: Hardware) -> GemminiMemory:
    """Gemmini's software view of a design: a square array, a scratchpad and a separate accumulator."""
    if hw.pe.rows != hw.pe.cols:
        raise InfeasibleError(f"the gemmini mapper needs a square PE array; {hw.name!r} is {hw.pe.rows}x{hw.pe.cols}")
    design = design_of(hw)
    if design.shared_buffer:
        raise InfeasibleError(f"the gemmini mapper needs separate scratchpad and accumulator levels in {hw.name!r}")
    spad, acc = design.scratchpad, design.accumulator
    return GemminiMemory.from_capacities(hw.pe.rows, spad.capacity_bytes, acc.capacity_bytes, spad.banks)


def gemmini(
    shape: MatmulShape,
    hw: Hardware,
    bits: OperandBits | None = None,
    options: CostOptions | None = None,
    act: FusedActivation = FusedActivation.NONE,
) -> MapperResult:
    bits, options = bits or OperandBits(), options or hw.cost_options
    mapping = Mapping.from_gemmini(
        tiled_matmul_auto(shape.m, shape.n, shape.k, gemmini_memory(hw), act=act), hw.pe.rows
    )
    space = Mapspace(
        np.array([mapping.tile_m]),
        np.array([mapping.tile_n]),
        np.array([mapping.tile_k]),
        np.array([mapping.order_code]),
    )
    costs = evaluate_space(shape, space, hw, bits, options)
    return MapperResult(mapping, float(costs.latency_cycles[0]), float(costs.energy_pj[0]), float(costs.edp[0]), 1)
