"""Multi-level loop nests of a matmul (Timeloop's mapping form) on Gemmini's storage hierarchy, and their cost.

Gemmini as its Timeloop description draws it (paper-digest §5.4, `arch_default.yaml`): DRAM keeps every tensor; the
scratchpad keeps inputs A[m, k] and weights B[k, n]; one accumulator per PE column keeps outputs C[m, n]; one
register per PE keeps one weight. n is unrolled over the PE columns (between the scratchpad and the accumulators)
and k over the PE rows (between an accumulator and its registers: the rows reduce into one accumulator).

A nest gives every dimension a temporal factor at each of the four storage levels and every level its own loop
order; a dimension's factors (temporal and spatial) multiply to its bound (perfect factorization). Unlike
`tstack.mapping.matmul.loopnest.Mapping` (one on-chip tile and a DRAM order), the scratchpad and the accumulator tile
independently and each level orders its loops: the mapspace the paper counts when it says that, "considering only
tiling, spatio-temporal mapping and loop order", a BERT attention layer has more than 10^12 mappings (§5.2;
`space_size`). `NestConstraints` cut that space as Timeloop's mapspace constraints do (fixed and capped factors per
level, allowed loop orders; `tstack.mapping.timeloop.constraints` reads them from a Timeloop file), and `sample`
draws uniformly from the valid nests of any such cut.

Cost, Timeloop's model as its documentation states it (every choice here, none fitted):
* Reuse. A level's tile of a tensor is refilled from the next level out that keeps the tensor whenever the loops
  above it move to another tile: the fills are the product of the trip counts of the loops above the level,
  outermost first, down to the innermost loop (of more than one trip) that indexes the tensor; loops inside that
  one reuse the tile (stationarity). A spatial loop multiplies a tensor's fills when it indexes the tensor and
  multicasts otherwise (inputs across the columns); k across the rows reduces spatially into one accumulator update.
* No reuse at the MACs. A MAC holds nothing: inputs (kept nowhere between the scratchpad and the MACs) are read from
  the scratchpad, and outputs (kept nowhere below the accumulator) updated in the accumulator, once per temporal
  iteration of the whole nest and per array row (inputs) or column (outputs), whatever the innermost loop; so with
  a reduction loop innermost every step is a read-modify-write. Timeloop's rule (timeloop-model, checked in
  tests/golden/test_timeloop_crosscheck.py), not the stationarity rule above.
* Outputs. Timeloop's accounting: the accumulator is written once per update and once per fill (every residency of
  a tile, its first, zero-initialised, one included) and read once per update that is not an output's first
  (reads = updates - m x n); draining a tile to DRAM is a DRAM update, not an accumulator read. Every fill but an
  output's first reads a partial sum back from DRAM and every eviction but the last writes one, at the
  accumulator's width (`acc_bytes_per_word`; Timeloop moves them as DRAM words: acc_bytes_per_word = 1 prices as it
  does); the last write is 8-bit.
* Capacity. Whole buffers (Timeloop checks a tile against the whole buffer: no double buffering), the accumulator
  split evenly over the columns, one weight per PE register.
* Latency: max(compute cycles, DRAM bytes / DRAM bandwidth), compute = the product of the temporal factors.
  Gemmini's description gives no on-chip level a bandwidth, so by default none is limited; a description that
  does (Timeloop's `shared_bandwidth`, in words per cycle: DOSA's Gemmini arch gives the scratchpad 32 and each
  accumulator 2) adds the scratchpad's bytes read and written / its bandwidth and one accumulator's words read and
  written / its bandwidth to the max (`NestHardware` fields, None = unlimited).
* Energy: MACs x MAC energy + the bytes read and written at each level x its per-byte energies; a register's
  accesses are part of the MAC's energy.
The hardware numbers (capacities, DRAM bandwidth, energies) are the design's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from functools import cache
from typing import ClassVar, Self

import numpy as np
import numpy.typing as npt

from tstack.errors import InfeasibleError, SpecError
from tstack.hardware.design import design_of
from tstack.hardware.types import Hardware
from tstack.mapping.matmul.loopnest import DIMS, ORDERS, MatmulShape
from tstack.mapping.matmul.mappers import divisors
from tstack.mapping.nest.factorization import draw_factorizations, factorization_count

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

LEVELS = ("dram", "scratchpad", "accumulator", "registers")  # outermost first
M, N, K = 0, 1, 2  # dimension indices, as in loopnest.DIMS
DRAM, SCRATCHPAD, ACCUMULATOR, REGISTERS = range(4)
RELEVANT = {"inputs": (M, K), "weights": (K, N), "outputs": (M, N)}  # the dimensions indexing each tensor
# loops above each boundary, in the flattened nest (3 per level, outermost level first)
ABOVE_SCRATCHPAD, ABOVE_ACCUMULATOR, ABOVE_REGISTERS, ABOVE_MACS = 3, 6, 9, 12


class Spatial(StrEnum):
    FULL = "full"  # n over the columns and k over the rows by the largest divisor up to the array side
    FREE = "free"  # any divisor up to the array side (mapspace.yaml's K<=16 and C<=16)


@dataclass(frozen=True, slots=True)
class Nests:
    """An array of nests: temporal factors (count, level, dim), per-level orders (indices into ORDERS, outermost
    first) and the spatial factors of n (PE columns, below the scratchpad) and k (PE rows, below the accumulator).
    `LEVELS` names the storage levels, outermost first; a deeper hierarchy is a subclass that names its own."""

    LEVELS: ClassVar[tuple[str, ...]] = LEVELS

    factors: IntArray
    orders: IntArray
    spatial_n: IntArray
    spatial_k: IntArray

    def __len__(self) -> int:
        return len(self.factors)

    def take(self, index: IntArray) -> Self:
        return type(self)(self.factors[index], self.orders[index], self.spatial_n[index], self.spatial_k[index])

    def slice(self, start: int, stop: int) -> Self:
        return type(self)(*(getattr(self, f.name)[start:stop] for f in fields(self)))

    @classmethod
    def concatenate(cls, parts: Sequence[Nests]) -> Self:
        """The nests of `parts`, in order, as one array."""
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def loop_nest(self, i: int) -> str:
        """Nest `i` printed outermost first, one block per storage level, as Timeloop prints a mapping."""
        loops = [
            [(d, int(self.factors[i, lv, DIMS.index(d)])) for d in ORDERS[int(self.orders[i, lv])]]
            for lv in range(len(self.LEVELS))
        ]
        spatial = {
            self.LEVELS.index("scratchpad"): ("n", int(self.spatial_n[i]), "PE columns"),
            self.LEVELS.index("accumulator"): ("k", int(self.spatial_k[i]), "PE rows"),
        }
        return format_loop_nest(self.LEVELS, loops, spatial)

    def describe(self, i: int) -> dict[str, object]:
        """Nest `i` as plain data: per level its factors by dim and its order; the spatial factors."""
        levels = {
            name: {
                "factors": {d: int(self.factors[i, lv, j]) for j, d in enumerate(DIMS)},
                "order": list(ORDERS[int(self.orders[i, lv])]),
            }
            for lv, name in enumerate(self.LEVELS)
        }
        return {"levels": levels, "spatial": {"n": int(self.spatial_n[i]), "k": int(self.spatial_k[i])}}


def format_loop_nest(
    levels: tuple[str, ...],
    loops: list[list[tuple[str, int]]],
    spatial: dict[int, tuple[str, int, str]],
) -> str:
    """A nest printed outermost first, one block per storage level (`levels`, outermost first): each level's
    `(dim, trips)` loops in order, loops of one trip left out, then the spatial loop `(dim, fanout, across what)`
    that sits below that level, if any."""
    lines, depth = [], 0
    for lv, name in enumerate(levels):
        lines.append("  " * depth + f"---- {name} ----")
        for d, trips in loops[lv]:
            if trips > 1:
                lines.append("  " * depth + f"for {d}{len(levels) - 1 - lv} in [0:{trips})")
                depth += 1
        d, fanout, across = spatial.get(lv, ("", 1, ""))
        if fanout > 1:
            lines.append("  " * depth + f"for {d} in [0:{fanout}) (spatial, {across})")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class NestHardware:
    """What the nest model reads from a design, in elements (8-bit operands, accumulator words of
    `acc_bytes_per_word`)."""

    rows: int
    cols: int
    scratchpad_elements: int
    accumulator_elements_per_column: int
    acc_bytes_per_word: int
    dram_bytes_per_cycle: float
    mac_pj: float
    dram_read_pj_per_byte: float
    dram_write_pj_per_byte: float
    spad_read_pj_per_byte: float
    spad_write_pj_per_byte: float
    acc_read_pj_per_byte: float
    acc_write_pj_per_byte: float
    scratchpad_bytes_per_cycle: float | None = None  # None: unlimited, as Gemmini's Timeloop description has it
    accumulator_words_per_cycle: float | None = None  # per accumulator (per PE column)
    # a weight written into a PE's register; 0 for a tstack design, whose MAC energy includes its registers
    register_write_pj_per_byte: float = 0.0

    @staticmethod
    def of(hw: Hardware | NestHardware) -> NestHardware:
        if isinstance(hw, NestHardware):
            return hw
        design = design_of(hw)
        spad, acc, dram = design.scratchpad, design.accumulator, design.dram
        if design.shared_buffer:
            raise InfeasibleError(
                f"the nest model needs Gemmini's hierarchy (a scratchpad with inputs and weights, a separate "
                f"accumulator); {hw.name!r} has none"
            )
        if design.l2 is not None:
            raise InfeasibleError(
                f"the nest model covers Gemmini's levels (scratchpad, accumulator, DRAM); {hw.name!r} also has "
                f"{design.l2.name}: use --semantics tstack, whose cost model tiles an intermediate level"
            )
        if not design.fill_shared:
            raise InfeasibleError(
                f"the nest model prices DRAM as Timeloop does, one bandwidth for all its traffic; {hw.name!r} fills "
                "its scratchpad and accumulator over separate links: give them one link from DRAM"
            )
        if design.scratchpad_array_bytes_per_cycle is not None or design.accumulator_array_bytes_per_cycle is not None:
            raise InfeasibleError(
                f"the nest model reads on-chip limits from a Timeloop architecture (--timeloop-arch), not from "
                f"{hw.name!r}'s links to the array: remove those links or give the limits as a Timeloop file"
            )
        acc_bytes_per_word = acc.word_bits // 8
        return NestHardware(
            hw.pe.rows,
            hw.pe.cols,
            spad.capacity_bytes,
            acc.capacity_bytes // acc_bytes_per_word // hw.pe.cols,
            acc_bytes_per_word,
            design.dram_bytes_per_cycle,
            hw.pe.mac_energy_pj,
            dram.read_energy_pj_per_byte,
            dram.write_energy_pj_per_byte,
            spad.read_energy_pj_per_byte,
            spad.write_energy_pj_per_byte,
            acc.read_energy_pj_per_byte,
            acc.write_energy_pj_per_byte,
        )


def check_shape(shape: MatmulShape) -> None:
    if min(shape.m, shape.n, shape.k) <= 0:
        raise InfeasibleError(f"matmul {shape.m}x{shape.n}x{shape.k} has a zero dimension; nothing to map")


def _full_side(bound: int, side: int) -> int:
    return max(d for d in divisors(bound) if d <= side)


SPATIAL_SLOT = len(LEVELS)  # a dimension's factor slots: the four temporal levels (outermost first), then spatial
SLOTS = len(LEVELS) + 1


@dataclass(frozen=True, slots=True)
class NestConstraints:
    """A mapspace of nests, as Timeloop's mapspace constraints cut one (read from a Timeloop file with
    `tstack.mapping.timeloop.constraints.read_nest_constraints`). Per slot (`SLOTS`: the four temporal levels, then the
    spatial slot) and dimension (m, n, k): a fixed factor (`fixed`, 0 = free) and a maximum (`maximum`, 0 = none);
    per level the loop orders allowed (indices into ORDERS; 1, 2, 3 or 6 of them, as a Timeloop permutation prefix
    leaves). `fill_array` fixes the spatial factors of n and k to the largest divisor up to the array side (the
    whole array unrolled; Timeloop has no such constraint). m is never unrolled (Gemmini's array takes n over the
    columns and k over the rows)."""

    fixed: tuple[tuple[int, int, int], ...] = ((0, 0, 0),) * len(LEVELS) + ((1, 0, 0),)
    maximum: tuple[tuple[int, int, int], ...] = ((0, 0, 0),) * SLOTS
    orders: tuple[tuple[int, ...], ...] = (tuple(range(len(ORDERS))),) * len(LEVELS)
    fill_array: bool = False
    name: str = "free"

    def __post_init__(self) -> None:
        if len(self.fixed) != SLOTS or len(self.maximum) != SLOTS or len(self.orders) != len(LEVELS):
            raise SpecError(f"nest constraints {self.name!r}: need {SLOTS} factor slots and {len(LEVELS)} levels")
        if self.fixed[SPATIAL_SLOT][M] != 1:
            raise SpecError(f"nest constraints {self.name!r}: m cannot be unrolled over Gemmini's array")
        for lv, allowed in enumerate(self.orders):
            if not allowed or len(ORDERS) % len(allowed) or not set(allowed) <= set(range(len(ORDERS))):
                raise SpecError(f"nest constraints {self.name!r}: level {LEVELS[lv]} allows no valid set of orders")

    @staticmethod
    def of(spatial: Spatial | NestConstraints) -> NestConstraints:
        if isinstance(spatial, NestConstraints):
            return spatial
        return NestConstraints(fill_array=spatial is Spatial.FULL, name=f"nest ({spatial.value} spatial)")


def _slot_factors(
    constraints: NestConstraints, shape: MatmulShape, nh: NestHardware, *, one_weight_register: bool
) -> tuple[IntArray, IntArray]:
    """(fixed, maximum) as (SLOTS, 3) arrays for this op and array: `fill_array` resolved, and, with
    `one_weight_register`, n and k fixed to 1 at the registers (a register holds one weight, so any other factor is
    invalid: fixing them keeps sampling uniform over the valid nests and wastes fewer draws)."""
    fixed = np.array(constraints.fixed, dtype=np.int64)
    maximum = np.array(constraints.maximum, dtype=np.int64)
    if constraints.fill_array:
        fixed[SPATIAL_SLOT, N], fixed[SPATIAL_SLOT, K] = _full_side(shape.n, nh.cols), _full_side(shape.k, nh.rows)
    if one_weight_register:
        fixed[REGISTERS, [N, K]] = np.where(fixed[REGISTERS, [N, K]] == 0, 1, fixed[REGISTERS, [N, K]])
    for j, bound in enumerate((shape.m, shape.n, shape.k)):
        product = int(np.prod(fixed[:, j][fixed[:, j] > 0]))
        if bound % product or (np.all(fixed[:, j] > 0) and product != bound):
            raise InfeasibleError(
                f"nest constraints {constraints.name!r}: the fixed factors of {DIMS[j]} multiply to {product}, "
                f"which does not factor its bound {bound}"
            )
    return fixed, maximum


def _constrained_count(bound: int, fixed: IntArray, maximum: IntArray) -> int:
    """Ordered factorizations of `bound` over the free slots (fixed == 0) with every capped slot under its maximum."""
    rest = bound // int(np.prod(fixed[fixed > 0]))
    free = np.flatnonzero(fixed == 0)
    capped = [int(s) for s in free if maximum[s] > 0]
    uncapped = len(free) - len(capped)
    total = 0
    for values in itertools.product(*([d for d in divisors(rest) if d <= maximum[s]] for s in capped)):
        part = math.prod(values)
        if rest % part == 0:
            total += factorization_count(rest // part, uncapped)
    return total


def _count(shape: MatmulShape, fixed: IntArray, maximum: IntArray, constraints: NestConstraints) -> int:
    total = math.prod(
        _constrained_count(bound, fixed[:, j], maximum[:, j]) for j, bound in enumerate((shape.m, shape.n, shape.k))
    )
    return total * _orders_count(fixed, constraints)


def _orders_count(fixed: IntArray, constraints: NestConstraints) -> int:
    """Loop orders that can differ: a level whose factors are all fixed to 1 has no loops, hence one order."""
    return math.prod(1 if np.all(fixed[lv] == 1) else len(allowed) for lv, allowed in enumerate(constraints.orders))


def space_size(
    shape: MatmulShape, hw: Hardware | NestHardware, spatial: Spatial | NestConstraints = Spatial.FREE
) -> int:
    """Mappings of the nest form, counting only tiling, spatial factors and loop orders (the paper's count): the
    ordered factorizations of each dimension over the four levels and its spatial slot (up to the array side) that
    the constraints allow, times the orders each level allows. Capacity is not applied (`sample` estimates the valid
    share)."""
    check_shape(shape)
    nh = NestHardware.of(hw)
    constraints = NestConstraints.of(spatial)
    fixed, maximum = _slot_factors(constraints, shape, nh, one_weight_register=False)
    for j, side in ((N, nh.cols), (K, nh.rows)):
        cap = maximum[SPATIAL_SLOT, j]
        maximum[SPATIAL_SLOT, j] = side if cap == 0 else min(cap, side)
    return _count(shape, fixed, maximum, constraints)


@cache
def _order_table(allowed: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    """(order, mask of the dims that iterate) -> whether the iterating loops run in a sequence an allowed order has
    (loops of one trip are no loops, so their place does not matter)."""

    def iterating(order: int, mask: int) -> tuple[str, ...]:
        return tuple(d for d in ORDERS[order] if mask >> DIMS.index(d) & 1)

    table = np.zeros((len(ORDERS), 8), dtype=bool)
    for o, mask in itertools.product(range(len(ORDERS)), range(8)):
        table[o, mask] = any(iterating(a, mask) == iterating(o, mask) for a in allowed)
    return table


def satisfies(
    shape: MatmulShape, nests: Nests, hw: Hardware | NestHardware, constraints: NestConstraints
) -> npt.NDArray[np.bool_]:
    """Which nests lie in the constrained mapspace: every fixed factor and maximum met, and every level's iterating
    loops in an order the level allows."""
    nh = NestHardware.of(hw)
    fixed, maximum = _slot_factors(constraints, shape, nh, one_weight_register=False)
    spatial = np.stack([np.ones(len(nests), dtype=np.int64), nests.spatial_n, nests.spatial_k], axis=1)
    slots = np.concatenate([nests.factors, spatial[:, None, :]], axis=1)
    ok: npt.NDArray[np.bool_] = np.all((fixed == 0) | (slots == fixed), axis=(1, 2))
    ok &= np.all((maximum == 0) | (slots <= maximum), axis=(1, 2))
    weights = 1 << np.arange(3)
    for lv, allowed in enumerate(constraints.orders):
        mask = ((nests.factors[:, lv, :] > 1) * weights).sum(axis=1)
        ok &= _order_table(tuple(allowed))[nests.orders[:, lv], mask]
    return ok


def tiles(nests: Nests) -> dict[str, IntArray]:
    """Tile sizes in elements: the scratchpad's input and weight tiles, an accumulator's output tile (per column)."""
    f = nests.factors
    acc_m = f[:, ACCUMULATOR, M] * f[:, REGISTERS, M]  # the factors of the levels below each boundary, multiplied
    acc_n = f[:, ACCUMULATOR, N] * f[:, REGISTERS, N]
    k_sp = f[:, SCRATCHPAD, K] * f[:, ACCUMULATOR, K] * f[:, REGISTERS, K] * nests.spatial_k
    return {
        "scratchpad_inputs": f[:, SCRATCHPAD, M] * acc_m * k_sp,
        "scratchpad_weights": k_sp * (f[:, SCRATCHPAD, N] * acc_n) * nests.spatial_n,
        "accumulator_outputs": acc_m * acc_n,
        "register_weights": f[:, REGISTERS, K] * f[:, REGISTERS, N],
    }


def valid(nests: Nests, hw: NestHardware) -> npt.NDArray[np.bool_]:
    t = tiles(nests)
    return (
        (t["scratchpad_inputs"] + t["scratchpad_weights"] <= hw.scratchpad_elements)
        & (t["accumulator_outputs"] <= hw.accumulator_elements_per_column)
        & (t["register_weights"] <= 1)
        & (nests.spatial_n <= hw.cols)
        & (nests.spatial_k <= hw.rows)
    )


def sample(
    shape: MatmulShape,
    hw: Hardware | NestHardware,
    count: int,
    rng: np.random.Generator,
    spatial: Spatial | NestConstraints = Spatial.FULL,
) -> tuple[Nests, int]:
    """`count` valid nests drawn uniformly: the free factors of each dimension drawn as one uniform factorization,
    orders drawn uniformly from those each level allows, and nests breaking a maximum or a capacity rejected (so
    uniform over the valid nests, as Timeloop's random mapper draws a factorization index and rejects what does not
    fit). Also returns the number of valid nests, estimated from the share of draws that were valid."""
    if count <= 0:
        raise SpecError(f"the nest sampler needs a positive number of samples, got {count}")
    check_shape(shape)
    nh = NestHardware.of(hw)
    constraints = NestConstraints.of(spatial)
    fixed, maximum = _slot_factors(constraints, shape, nh, one_weight_register=True)
    free = [np.flatnonzero(fixed[:, j] == 0) for j in range(3)]
    rest = [bound // int(np.prod(fixed[:, j][fixed[:, j] > 0])) for j, bound in enumerate((shape.m, shape.n, shape.k))]
    allowed = [np.array(a, dtype=np.int64) for a in constraints.orders]
    parts: list[Nests] = []
    kept = drawn = found = 0
    while kept < count:
        batch = max(4 * (count - kept), 4096)
        slots = np.broadcast_to(np.where(fixed == 0, 1, fixed), (batch, SLOTS, 3)).copy()
        for j in range(3):
            slots[:, free[j], j] = draw_factorizations(rest[j], len(free[j]), batch, rng)
        pick = rng.integers(0, len(ORDERS), (batch, len(LEVELS)))
        orders = np.stack([a[pick[:, lv] * len(a) // len(ORDERS)] for lv, a in enumerate(allowed)], axis=1)
        nests = Nests(
            np.ascontiguousarray(slots[:, :SPATIAL_SLOT]),
            orders,
            np.ascontiguousarray(slots[:, SPATIAL_SLOT, N]),
            np.ascontiguousarray(slots[:, SPATIAL_SLOT, K]),
        )
        under_caps = np.all((maximum == 0) | (slots <= maximum), axis=(1, 2))
        ok = np.flatnonzero(under_caps & valid(nests, nh))
        parts.append(nests.take(ok[: count - kept]))
        kept += min(ok.size, count - kept)
        found += ok.size
        drawn += batch
        if drawn > 10_000 * count and kept == 0:
            raise InfeasibleError("no valid nest: no tile of this matmul fits the design's on-chip memories")
    out = Nests.concatenate(parts)
    drawable = math.prod(factorization_count(r, len(f)) for r, f in zip(rest, free, strict=True))
    return out, round(drawable * _orders_count(fixed, constraints) * found / drawn)


@cache
def _fill_table(relevant: tuple[int, int]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Indexed by a level's order x 8 + the mask of its iterating dims (bit j: dim j has more than one trip): whether
    a loop that indexes the tensor iterates at the level, and whether the dim that does not index it then runs
    inside every such loop (its trips reuse the tile: they are not fills)."""
    other = 3 - sum(relevant)
    moving = np.zeros(len(ORDERS) * 8, dtype=bool)
    reused = np.zeros(len(ORDERS) * 8, dtype=bool)
    for o, order in enumerate(ORDERS):
        pos = [order.index(d) for d in DIMS]
        for mask in range(8):
            movers = [r for r in relevant if mask >> r & 1]
            moving[o * 8 + mask] = bool(movers)
            reused[o * 8 + mask] = all(pos[other] > pos[r] for r in movers)
    return moving, reused


def _fills(
    cols: list[IntArray],
    codes: list[npt.NDArray[np.uint8]],
    level_products: list[IntArray],
    relevant: tuple[int, int],
    above: int,
) -> IntArray:
    """How often the tile below the first `above` loops of the flattened nest is (re)filled: the product of the
    trips down to the innermost loop that indexes the tensor and iterates more than once (1 if none does). Computed
    per level, outermost first, from the factors as columns (`cols[level * 3 + dim]`) and each level's order and
    iterating dims (`codes`, see `_fill_table`): the innermost level with an iterating relevant loop decides; the
    levels above it count whole, and in it every loop but the one dim that does not index the tensor when that dim
    runs inside every iterating relevant loop."""
    r0, r1 = relevant
    moving, reused = _fill_table(relevant)
    out: IntArray = np.ones(len(cols[0]), dtype=np.int64)
    outer: IntArray = out
    for lv in range(above // len(DIMS)):
        code = codes[lv]
        relevant_trips = cols[lv * 3 + r0] * cols[lv * 3 + r1]
        within = np.where(reused.take(code), relevant_trips, level_products[lv])
        out = np.where(moving.take(code), outer * within, out)
        outer = outer * level_products[lv]
    return out


def _level_products(cols: list[IntArray]) -> list[IntArray]:
    """Each level's temporal trips multiplied, outermost level first."""
    return [cols[lv * 3 + M] * cols[lv * 3 + N] * cols[lv * 3 + K] for lv in range(len(LEVELS))]


def accesses(shape: MatmulShape, nests: Nests) -> dict[str, IntArray]:
    """Element counts of every transfer the nest makes (see the module docstring for the rules)."""
    return _accesses(shape, nests)[0]


def _accesses(shape: MatmulShape, nests: Nests) -> tuple[dict[str, IntArray], IntArray]:
    """`accesses`, and the temporal iterations of each whole nest (its compute cycles)."""
    flat = nests.factors.reshape(len(nests), -1)
    cols = [flat[:, i].copy() for i in range(flat.shape[1])]  # each strided column read once
    products = _level_products(cols)
    codes = []  # per level: its order x 8 + the mask of its iterating dims, as bytes (`_fill_table`)
    for lv in range(len(LEVELS)):
        iterating = [(cols[lv * 3 + j] > 1).view(np.uint8) for j in (M, N, K)]
        order = nests.orders[:, lv].astype(np.uint8)
        codes.append(
            ((order << 3) | iterating[M] | (iterating[N] << 1) | (iterating[K] << 2)).astype(np.uint8, copy=False)
        )
    t = tiles(nests)
    sn, sk = nests.spatial_n, nests.spatial_k
    acc_tile = t["accumulator_outputs"] * sn  # all columns' accumulators together
    evictions = _fills(cols, codes, products, RELEVANT["outputs"], ABOVE_ACCUMULATOR) * acc_tile
    # temporal iterations of the whole nest: the MACs hold nothing (module docstring)
    steps = products[0] * products[1] * products[2] * products[3]
    counts: dict[str, IntArray] = {
        "dram_to_scratchpad_inputs": _fills(cols, codes, products, RELEVANT["inputs"], ABOVE_SCRATCHPAD)
        * t["scratchpad_inputs"],
        "dram_to_scratchpad_weights": _fills(cols, codes, products, RELEVANT["weights"], ABOVE_SCRATCHPAD)
        * t["scratchpad_weights"],
        "scratchpad_to_registers_weights": _fills(cols, codes, products, RELEVANT["weights"], ABOVE_REGISTERS)
        * sn
        * sk,
        "scratchpad_to_array_inputs": steps * sk,
        "accumulator_updates": steps * sn,
        "accumulator_evictions": evictions,
        "partial_sum_refills": evictions - shape.m * shape.n,
    }
    return counts, steps


@dataclass(frozen=True, slots=True)
class NestCosts:
    latency_cycles: FloatArray
    energy_pj: FloatArray
    dram_bytes: FloatArray

    @property
    def edp(self) -> FloatArray:
        return self.energy_pj * self.latency_cycles


_CHUNK = 16_384  # nests priced at a time by `costs`: their temporaries stay in the CPU's cache (speed only)


def costs(shape: MatmulShape, nests: Nests, hw: Hardware | NestHardware) -> NestCosts:
    """Latency, energy and DRAM traffic of every nest (module docstring); nests must be valid (`valid`)."""
    nh = NestHardware.of(hw)
    if len(nests) <= _CHUNK:
        return _costs(shape, nests, nh)
    parts = [_costs(shape, nests.slice(i, i + _CHUNK), nh) for i in range(0, len(nests), _CHUNK)]
    return NestCosts(*(np.concatenate([getattr(p, a) for p in parts]) for a in NestCosts.__slots__))


def _costs(shape: MatmulShape, nests: Nests, nh: NestHardware) -> NestCosts:
    counts, steps = _accesses(shape, nests)
    a = {k: v.astype(np.float64) for k, v in counts.items()}
    outputs = float(shape.m * shape.n)
    refills = a["partial_sum_refills"]
    dram_read = a["dram_to_scratchpad_inputs"] + a["dram_to_scratchpad_weights"] + refills * nh.acc_bytes_per_word
    dram_write = refills * nh.acc_bytes_per_word + outputs  # spilled partial sums, then the 8-bit outputs
    spad_write = a["dram_to_scratchpad_inputs"] + a["dram_to_scratchpad_weights"]
    spad_read = a["scratchpad_to_array_inputs"] + a["scratchpad_to_registers_weights"]
    acc_write = (a["accumulator_updates"] + a["accumulator_evictions"]) * nh.acc_bytes_per_word  # updates and fills
    acc_read = (a["accumulator_updates"] - outputs) * nh.acc_bytes_per_word  # read-modify-writes (Timeloop's rule)
    energy = (
        shape.m * shape.n * shape.k * nh.mac_pj
        + dram_read * nh.dram_read_pj_per_byte
        + dram_write * nh.dram_write_pj_per_byte
        + spad_read * nh.spad_read_pj_per_byte
        + spad_write * nh.spad_write_pj_per_byte
        + acc_read * nh.acc_read_pj_per_byte
        + acc_write * nh.acc_write_pj_per_byte
        + a["scratchpad_to_registers_weights"] * nh.register_write_pj_per_byte
    )
    dram = dram_read + dram_write
    compute = steps.astype(np.float64)  # the product of the temporal factors
    latency = np.maximum(compute, dram / nh.dram_bytes_per_cycle)
    if nh.scratchpad_bytes_per_cycle is not None:
        latency = np.maximum(latency, (spad_read + spad_write) / nh.scratchpad_bytes_per_cycle)
    if nh.accumulator_words_per_cycle is not None:  # the columns in use share the traffic evenly
        words_per_column = (acc_read + acc_write) / nh.acc_bytes_per_word / nests.spatial_n
        latency = np.maximum(latency, words_per_column / nh.accumulator_words_per_cycle)
    return NestCosts(latency * shape.batch, energy * shape.batch, dram * shape.batch)


@dataclass(frozen=True, slots=True)
class NestResult:
    """One nest and its cost."""

    nests: Nests  # of length 1
    latency_cycles: float
    energy_pj: float
    edp: float

    @staticmethod
    def pick(nests: Nests, cost: NestCosts, i: int) -> NestResult:
        return NestResult(
            nests.take(np.array([i])),
            float(cost.latency_cycles[i]),
            float(cost.energy_pj[i]),
            float(cost.edp[i]),
        )
