"""Multi-level nests of a matmul on Gemmini's hierarchy with an L2 between DRAM and the scratchpad/accumulators, and
their cost, under Timeloop's rules (`tstack.mapping.nest.matmul` is the four-level model; this one reuses its helpers).

Five storage levels, outermost first: DRAM, L2 (keeps inputs, weights and outputs: Timeloop's shared buffer level),
Scratchpad (inputs and weights), one Accumulator per PE column (outputs), one weight Register per PE. n is unrolled
over the PE columns (between the scratchpad and the accumulators), k over the PE rows (between an accumulator and
its registers), as in `nest`. Every level has a temporal factor per dimension and its own loop order.

Counts (the rules of `nest`, one level deeper; checked against timeloop-model in
tests/golden/test_timeloop_crosscheck_l2.py):
* Inputs and weights: the L2's tiles are filled from DRAM, the scratchpad's from the L2, by the stationarity rule
  (`nest._fills`: the trips above a level down to the innermost loop that indexes the tensor); the L2 is read once
  per scratchpad fill. Registers and array reads as in `nest`.
* Outputs: the accumulators are updated once per temporal step of the whole nest and column; each residency of an
  accumulator tile is a fill from the L2 and each eviction an update of the L2 (`accumulator_evictions`). The L2 is
  read for every accumulator fill that is not an output's first (`l2_to_accumulator_outputs` = evictions - m x n).
  The L2's output tiles likewise reside `l2_output_residencies` times: each is a fill from DRAM but the first of
  every output (DRAM reads = residencies - m x n) and each eviction a DRAM update (residencies). The L2 is written
  once per update and per fill and read once per accumulator refill (a drain to DRAM is a DRAM update, not an L2
  read).
* Capacity: whole buffers; the L2 holds its input, weight and output tiles (in elements).
* Latency: max(compute, DRAM bytes / DRAM bandwidth, L2 words / L2 bandwidth, scratchpad bytes / its bandwidth,
  one accumulator's words / its bandwidth); None = unlimited.
* Energy: MACs x MAC energy + each level's bytes read and written x its per-byte energies (outputs at the
  accumulator's width `acc_bytes_per_word` in the accumulator, the L2 and DRAM but the last write of each output to
  DRAM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from tstack.errors import InfeasibleError, SpecError
from tstack.mapping.matmul.loopnest import DIMS, ORDERS, MatmulShape
from tstack.mapping.nest import factorization
from tstack.mapping.nest.matmul import (
    RELEVANT,
    FloatArray,
    IntArray,
    K,
    M,
    N,
    NestCosts,
    Nests,
    _fill_table,
    _full_side,
)

LEVELS = ("dram", "l2", "scratchpad", "accumulator", "registers")  # outermost first
DRAM, L2, SCRATCHPAD, ACCUMULATOR, REGISTERS = range(5)
# loops above each boundary in the flattened nest (3 per level, outermost level first)
ABOVE_L2, ABOVE_SCRATCHPAD, ABOVE_ACCUMULATOR, ABOVE_REGISTERS = 3, 6, 9, 12
SLOTS = len(LEVELS) + 1  # a dimension's factor slots: the five temporal levels, then spatial
SPATIAL_SLOT = len(LEVELS)


@dataclass(frozen=True, slots=True)
class L2Nests(Nests):
    """`nest.Nests` over the five levels (an L2 between DRAM and the scratchpad)."""

    LEVELS: ClassVar[tuple[str, ...]] = LEVELS


@dataclass(frozen=True, slots=True)
class L2NestHardware:
    """What the five-level model reads from a design, in elements (8-bit operands, accumulator words of
    `acc_bytes_per_word`): `nest.NestHardware`'s fields and the L2's (capacity, per-byte energies, bandwidth in
    elements per cycle, None = unlimited)."""

    rows: int
    cols: int
    l2_elements: int
    scratchpad_elements: int
    accumulator_elements_per_column: int
    acc_bytes_per_word: int
    dram_bytes_per_cycle: float
    mac_pj: float
    dram_read_pj_per_byte: float
    dram_write_pj_per_byte: float
    l2_read_pj_per_byte: float
    l2_write_pj_per_byte: float
    spad_read_pj_per_byte: float
    spad_write_pj_per_byte: float
    acc_read_pj_per_byte: float
    acc_write_pj_per_byte: float
    l2_bytes_per_cycle: float | None = None
    scratchpad_bytes_per_cycle: float | None = None
    accumulator_words_per_cycle: float | None = None  # per accumulator (per PE column)
    register_write_pj_per_byte: float = 0.0


def tiles(nests: L2Nests) -> dict[str, IntArray]:
    """Tile sizes in elements at each level (an accumulator's per column)."""
    f = nests.factors
    sn, sk = nests.spatial_n, nests.spatial_k
    acc_m = f[:, ACCUMULATOR, M] * f[:, REGISTERS, M]
    acc_n = f[:, ACCUMULATOR, N] * f[:, REGISTERS, N]
    sp_m = f[:, SCRATCHPAD, M] * acc_m
    sp_n = f[:, SCRATCHPAD, N] * acc_n * sn
    sp_k = f[:, SCRATCHPAD, K] * f[:, ACCUMULATOR, K] * f[:, REGISTERS, K] * sk
    l2_m, l2_n, l2_k = f[:, L2, M] * sp_m, f[:, L2, N] * sp_n, f[:, L2, K] * sp_k
    return {
        "l2_inputs": l2_m * l2_k,
        "l2_weights": l2_k * l2_n,
        "l2_outputs": l2_m * l2_n,
        "scratchpad_inputs": sp_m * sp_k,
        "scratchpad_weights": sp_k * sp_n,
        "accumulator_outputs": acc_m * acc_n,
        "register_weights": f[:, REGISTERS, K] * f[:, REGISTERS, N],
    }


def valid(nests: L2Nests, hw: L2NestHardware) -> npt.NDArray[np.bool_]:
    t = tiles(nests)
    return (
        (t["l2_inputs"] + t["l2_weights"] + t["l2_outputs"] <= hw.l2_elements)
        & (t["scratchpad_inputs"] + t["scratchpad_weights"] <= hw.scratchpad_elements)
        & (t["accumulator_outputs"] <= hw.accumulator_elements_per_column)
        & (t["register_weights"] <= 1)
        & (nests.spatial_n <= hw.cols)
        & (nests.spatial_k <= hw.rows)
    )


def _fills(
    cols: list[IntArray],
    codes: list[npt.NDArray[np.uint8]],
    products: list[IntArray],
    relevant: tuple[int, int],
    above: int,
) -> IntArray:
    """`nest._fills` over this model's levels (the innermost level with an iterating relevant loop decides)."""
    r0, r1 = relevant
    moving, reused = _fill_table(relevant)
    out: IntArray = np.ones(len(cols[0]), dtype=np.int64)
    outer: IntArray = out
    for lv in range(above // len(DIMS)):
        code = codes[lv]
        within = np.where(reused.take(code), cols[lv * 3 + r0] * cols[lv * 3 + r1], products[lv])
        out = np.where(moving.take(code), outer * within, out)
        outer = outer * products[lv]
    return out


def accesses(shape: MatmulShape, nests: L2Nests) -> dict[str, IntArray]:
    """Element counts of every transfer the nest makes (module docstring)."""
    return _accesses(shape, nests)[0]


def _accesses(shape: MatmulShape, nests: L2Nests) -> tuple[dict[str, IntArray], IntArray]:
    flat = nests.factors.reshape(len(nests), -1)
    cols = [flat[:, i].copy() for i in range(flat.shape[1])]
    products = [cols[lv * 3 + M] * cols[lv * 3 + N] * cols[lv * 3 + K] for lv in range(len(LEVELS))]
    codes = []
    for lv in range(len(LEVELS)):
        iterating = [(cols[lv * 3 + j] > 1).view(np.uint8) for j in (M, N, K)]
        order = nests.orders[:, lv].astype(np.uint8)
        codes.append(((order << 3) | iterating[M] | (iterating[N] << 1) | (iterating[K] << 2)).astype(np.uint8))
    t = tiles(nests)
    sn, sk = nests.spatial_n, nests.spatial_k
    outputs = shape.m * shape.n
    steps = products[0] * products[1] * products[2] * products[3] * products[4]

    def fills(tensor: str, above: int) -> IntArray:
        return _fills(cols, codes, products, RELEVANT[tensor], above)

    acc_evictions = fills("outputs", ABOVE_ACCUMULATOR) * t["accumulator_outputs"] * sn
    l2_residencies = fills("outputs", ABOVE_L2) * t["l2_outputs"]
    counts: dict[str, IntArray] = {
        "dram_to_l2_inputs": fills("inputs", ABOVE_L2) * t["l2_inputs"],
        "dram_to_l2_weights": fills("weights", ABOVE_L2) * t["l2_weights"],
        "l2_to_scratchpad_inputs": fills("inputs", ABOVE_SCRATCHPAD) * t["scratchpad_inputs"],
        "l2_to_scratchpad_weights": fills("weights", ABOVE_SCRATCHPAD) * t["scratchpad_weights"],
        "scratchpad_to_registers_weights": fills("weights", ABOVE_REGISTERS) * sn * sk,
        "scratchpad_to_array_inputs": steps * sk,
        "accumulator_updates": steps * sn,
        "accumulator_evictions": acc_evictions,
        "l2_to_accumulator_outputs": acc_evictions - outputs,
        "l2_output_residencies": l2_residencies,
        "dram_to_l2_outputs": l2_residencies - outputs,
    }
    return counts, steps


_CHUNK = 16_384


def costs(shape: MatmulShape, nests: L2Nests, hw: L2NestHardware) -> NestCosts:
    """Latency, energy and DRAM traffic of every nest (module docstring); nests must be valid (`valid`)."""
    if len(nests) <= _CHUNK:
        return _costs(shape, nests, hw)
    parts = [_costs(shape, nests.take(np.arange(i, min(i + _CHUNK, len(nests)))), hw)
             for i in range(0, len(nests), _CHUNK)]  # fmt: skip
    return NestCosts(*(np.concatenate([getattr(p, a) for p in parts]) for a in NestCosts.__slots__))


def _costs(shape: MatmulShape, nests: L2Nests, hw: L2NestHardware) -> NestCosts:
    counts, steps = _accesses(shape, nests)
    a = {k: v.astype(np.float64) for k, v in counts.items()}
    outputs = float(shape.m * shape.n)
    ab = hw.acc_bytes_per_word
    operands_in = a["dram_to_l2_inputs"] + a["dram_to_l2_weights"]
    operands_l2 = a["l2_to_scratchpad_inputs"] + a["l2_to_scratchpad_weights"]
    dram_read = operands_in + a["dram_to_l2_outputs"] * ab
    dram_write = (a["l2_output_residencies"] - outputs) * ab + outputs  # spilled partial sums, then the outputs
    l2_read = operands_l2 + a["l2_to_accumulator_outputs"] * ab
    l2_write = operands_in + (a["accumulator_evictions"] + a["l2_output_residencies"]) * ab  # updates and fills
    spad_write = operands_l2
    spad_read = a["scratchpad_to_array_inputs"] + a["scratchpad_to_registers_weights"]
    acc_write = (a["accumulator_updates"] + a["accumulator_evictions"]) * ab
    acc_read = (a["accumulator_updates"] - outputs) * ab
    energy: FloatArray = (
        shape.m * shape.n * shape.k * hw.mac_pj
        + dram_read * hw.dram_read_pj_per_byte
        + dram_write * hw.dram_write_pj_per_byte
        + l2_read * hw.l2_read_pj_per_byte
        + l2_write * hw.l2_write_pj_per_byte
        + spad_read * hw.spad_read_pj_per_byte
        + spad_write * hw.spad_write_pj_per_byte
        + acc_read * hw.acc_read_pj_per_byte
        + acc_write * hw.acc_write_pj_per_byte
        + a["scratchpad_to_registers_weights"] * hw.register_write_pj_per_byte
    )
    dram = dram_read + dram_write
    latency = np.maximum(steps.astype(np.float64), dram / hw.dram_bytes_per_cycle)
    if hw.l2_bytes_per_cycle is not None:
        latency = np.maximum(latency, (l2_read + l2_write) / hw.l2_bytes_per_cycle)
    if hw.scratchpad_bytes_per_cycle is not None:
        latency = np.maximum(latency, (spad_read + spad_write) / hw.scratchpad_bytes_per_cycle)
    if hw.accumulator_words_per_cycle is not None:
        words_per_column = (acc_read + acc_write) / ab / nests.spatial_n
        latency = np.maximum(latency, words_per_column / hw.accumulator_words_per_cycle)
    return NestCosts(latency * shape.batch, energy * shape.batch, dram * shape.batch)


def sample(
    shape: MatmulShape, hw: L2NestHardware, count: int, rng: np.random.Generator, *, fill_array: bool = False
) -> L2Nests:
    """`count` valid nests drawn uniformly: each dimension's factors as one uniform ordered factorization over its
    five temporal slots and its spatial slot (m never unrolled; n and k 1 at the registers, which hold one weight;
    with `fill_array` the spatial factors fixed to the largest divisor up to the array side), each level's order
    uniform, and nests that do not fit rejected."""
    if count <= 0:
        raise SpecError(f"the nest sampler needs a positive number of samples, got {count}")
    if min(shape.m, shape.n, shape.k) <= 0:
        raise InfeasibleError(f"matmul {shape.m}x{shape.n}x{shape.k} has a zero dimension; nothing to map")
    bounds = (shape.m, shape.n, shape.k)
    fixed = np.zeros((SLOTS, 3), dtype=np.int64)
    fixed[SPATIAL_SLOT, M] = 1
    fixed[REGISTERS, [N, K]] = 1
    if fill_array:
        fixed[SPATIAL_SLOT, N], fixed[SPATIAL_SLOT, K] = _full_side(shape.n, hw.cols), _full_side(shape.k, hw.rows)
    free = [np.flatnonzero(fixed[:, j] == 0) for j in range(3)]
    rest = [b // math.prod(int(x) for x in fixed[:, j] if x > 0) for j, b in enumerate(bounds)]
    parts: list[L2Nests] = []
    kept = drawn = 0
    while kept < count:
        batch = max(4 * (count - kept), 4096)
        slots = np.broadcast_to(np.where(fixed == 0, 1, fixed), (batch, SLOTS, 3)).copy()
        for j in range(3):
            slots[:, free[j], j] = factorization.draw_factorizations(rest[j], len(free[j]), batch, rng)
        nests = L2Nests(
            np.ascontiguousarray(slots[:, :SPATIAL_SLOT]),
            rng.integers(0, len(ORDERS), (batch, len(LEVELS))),
            np.ascontiguousarray(slots[:, SPATIAL_SLOT, N]),
            np.ascontiguousarray(slots[:, SPATIAL_SLOT, K]),
        )
        ok = np.flatnonzero(valid(nests, hw))[: count - kept]
        parts.append(nests.take(ok))
        kept += ok.size
        drawn += batch
        if drawn > 10_000 * count and kept == 0:
            raise InfeasibleError("no valid nest: no tile of this matmul fits the design's on-chip memories")
    return L2Nests.concatenate(parts)
