"""Multi-level loop nests of a 7-loop convolution (Timeloop's mapping form) on Gemmini's storage hierarchy, priced
under Timeloop's rules: the conv counterpart of `tstack.mapping.nest.matmul` (matmuls), on the same four levels.

The problem is Timeloop's `cnn-layer` (dims R, S, P, Q, C, K, N; Inputs[N, C, P*stride + R, Q*stride + S],
Weights[C, K, R, S], Outputs[N, K, P, Q]). A nest gives every dim a temporal factor at each level (DRAM, Scratchpad,
Accumulator, Registers) and every level its own loop order (any permutation of the seven dims); C is unrolled over the
PE rows (at the Accumulator) and K over the PE columns (at the Scratchpad), as Gemmini's mapspace has it. The
Scratchpad keeps Inputs and Weights, one Accumulator per column keeps Outputs, one Register per PE keeps one weight.

Cost, as timeloop-model (NVlabs/timeloop eb92a7d, `src/loop-analysis/nest-analysis.cpp`) computes it; the rules that
differ from the matmul's are the Inputs' sliding window:
* Tiles are Timeloop's axis-aligned boxes: an input tile spans ((P_t - 1) * stride + R_t) x ((Q_t - 1) * stride + S_t)
  rows x columns (the box of its corner points, so with stride > R_t the rows it skips are counted too).
* Weights and Outputs (whose tiles never partly overlap) follow `nest`'s reuse rule: a level's tile is refilled for
  every trip of the loops above it down to the innermost iterating loop that indexes the tensor.
* Inputs at the Scratchpad: Timeloop fills the *delta* between the tile an iteration of the DRAM loops needs and the
  tile the previous one held, but (`OperationSpace::SaveAndSubtractIfSameStride`) only while the tile keeps moving by
  the same translation: when the translation changes (a wrap of an inner loop, another loop moving) it refetches the
  whole tile and forgets the translation; the next move then takes a delta again. And it does not walk every iteration
  (`gExtrapolateUniformTemporal`): each loop runs its iteration 0, then iteration 1 standing for the other trips - 1
  (its delta scaled by them). `_input_fills` replays exactly that walk (2^7 steps over the DRAM loops, vectorized
  over the nests), so a halo is reused only where Timeloop reuses it.
* No reuse at the MACs (as `nest`): inputs are read from the Scratchpad and outputs updated in an Accumulator once
  per temporal step of the whole nest and per PE row / column in use; accumulator reads = updates - outputs; every
  accumulator fill but an output's first reads a partial sum back from DRAM.
* Latency and energy as `nest.costs` (Timeloop's per-level bandwidths; per-access energies).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from tstack.errors import InfeasibleError, SpecError
from tstack.mapping.conv.loopnest import ConvShape
from tstack.mapping.nest import factorization
from tstack.mapping.nest.matmul import (
    ACCUMULATOR,
    DRAM,
    LEVELS,
    REGISTERS,
    SCRATCHPAD,
    NestCosts,
    NestHardware,
    format_loop_nest,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

DIMS = ("R", "S", "P", "Q", "C", "K", "N")  # Timeloop's cnn-layer order
R, S, P, Q, C, K, N = range(7)
RELEVANT: dict[str, tuple[int, ...]] = {"weights": (R, S, C, K), "inputs": (R, S, P, Q, C, N), "outputs": (P, Q, K, N)}


def bounds(shape: ConvShape) -> IntArray:
    """The seven bounds in `DIMS` order."""
    return np.array([shape.r, shape.s, shape.p, shape.q, shape.c, shape.k, shape.n], dtype=np.int64)


@dataclass(frozen=True, slots=True)
class ConvNests:
    """An array of conv nests: temporal factors (count, level, dim in `DIMS` order), per-level loop orders (count,
    level, 7: dim indices, outermost first), the spatial factors of K (PE columns) and C (PE rows)."""

    factors: IntArray
    orders: IntArray
    spatial_k: IntArray
    spatial_c: IntArray

    def __len__(self) -> int:
        return len(self.factors)

    def take(self, index: IntArray) -> ConvNests:
        return ConvNests(self.factors[index], self.orders[index], self.spatial_k[index], self.spatial_c[index])

    def loop_nest(self, i: int) -> str:
        """Nest `i` printed outermost first (loops of one trip left out)."""
        loops = [[(DIMS[d], int(self.factors[i, lv, d])) for d in self.orders[i, lv]] for lv in range(len(LEVELS))]
        spatial = {
            SCRATCHPAD: ("K", int(self.spatial_k[i]), "PE columns"),
            ACCUMULATOR: ("C", int(self.spatial_c[i]), "PE rows"),
        }
        return format_loop_nest(LEVELS, loops, spatial)


def _below(nests: ConvNests, level: int) -> IntArray:
    """Per dim, the extent of a tile of `level`: its factors and those of the levels below, spatial included."""
    out: IntArray = nests.factors[:, level:, :].prod(axis=1)
    if level <= SCRATCHPAD:
        out[:, K] *= nests.spatial_k
    if level <= ACCUMULATOR:
        out[:, C] *= nests.spatial_c
    return out


def _input_box(extent: IntArray, stride: int) -> IntArray:
    """Input tile extents (N, C, H, W) of a tile of these dim extents: Timeloop's box of the sliding window."""
    h = (extent[:, P] - 1) * stride + extent[:, R]
    w = (extent[:, Q] - 1) * stride + extent[:, S]
    return np.stack([extent[:, N], extent[:, C], h, w], axis=1)


def tiles(shape: ConvShape, nests: ConvNests) -> dict[str, IntArray]:
    """Tile sizes in elements: the Scratchpad's input and weight tiles, one Accumulator's output tile, a Register's."""
    spad = _below(nests, SCRATCHPAD)
    acc = nests.factors[:, ACCUMULATOR:, :].prod(axis=1)  # one column: K's spatial factor excluded
    reg = nests.factors[:, REGISTERS, :]
    return {
        "scratchpad_inputs": _input_box(spad, shape.stride).prod(axis=1),
        "scratchpad_weights": spad[:, R] * spad[:, S] * spad[:, C] * spad[:, K],
        "accumulator_outputs": acc[:, P] * acc[:, Q] * acc[:, K] * acc[:, N],
        "register_weights": reg[:, R] * reg[:, S] * reg[:, C] * reg[:, K],
    }


def valid(shape: ConvShape, nests: ConvNests, hw: NestHardware) -> BoolArray:
    """Which nests fit: factors multiply to the bounds, tiles fit their buffers, spatial factors the array."""
    t = tiles(shape, nests)
    whole = _below(nests, DRAM)
    ok: BoolArray = (
        np.all(whole == bounds(shape), axis=1)
        & (t["scratchpad_inputs"] + t["scratchpad_weights"] <= hw.scratchpad_elements)
        & (t["accumulator_outputs"] <= hw.accumulator_elements_per_column)
        & (t["register_weights"] <= 1)
        & (nests.spatial_k <= hw.cols)
        & (nests.spatial_c <= hw.rows)
    )
    return ok


def _flat_loops(nests: ConvNests, levels: int) -> tuple[IntArray, IntArray]:
    """The loops of the outermost `levels` levels flattened outermost first: (dims, trips), each (count, 7 * levels)."""
    dims = nests.orders[:, :levels, :].reshape(len(nests), -1)
    level_of = np.repeat(np.arange(levels), 7)[None, :]
    trips = nests.factors[np.arange(len(nests))[:, None], level_of, dims]
    return dims, trips


def _fills(nests: ConvNests, relevant: tuple[int, ...], levels: int) -> IntArray:
    """How often the tile below the outermost `levels` levels is (re)filled, for a tensor whose tiles never partly
    overlap: the product of the trips of the loops above, down to the innermost iterating loop that indexes it."""
    dims, trips = _flat_loops(nests, levels)
    moving = np.isin(dims, relevant) & (trips > 1)
    last = np.where(moving.any(axis=1), dims.shape[1] - 1 - np.argmax(moving[:, ::-1], axis=1), -1)
    keep = np.arange(dims.shape[1])[None, :] <= last[:, None]
    out: IntArray = np.where(keep, trips, 1).prod(axis=1)
    return out


@cache
def _walk(loops: int) -> npt.NDArray[np.int8]:
    """The iterations Timeloop's extrapolating walk visits over `loops` nested loops, in its order: every 0/1 vector
    (outermost loop first), lexicographically (1 = the iteration that stands for trips - 1)."""
    return np.array(list(itertools.product((0, 1), repeat=loops)), dtype=np.int8).reshape(-1, loops)


def _input_fills(shape: ConvShape, nests: ConvNests) -> IntArray:
    """Input elements the Scratchpad takes from DRAM: Timeloop's walk over the DRAM loops (module docstring), each
    step's delta against the tile the step before held while the translation holds, the whole tile when it changes."""
    count = len(nests)
    extent = _below(nests, SCRATCHPAD)
    box = _input_box(extent, shape.stride)  # (count, 4): N, C, H, W
    volume = box.prod(axis=1)
    # the translation of the input box (N, C, H, W) when each dim's DRAM loop moves by one
    shift = np.zeros((count, 7, 4), dtype=np.int64)
    shift[:, N, 0] = extent[:, N]
    shift[:, C, 1] = extent[:, C]
    shift[:, P, 2] = extent[:, P] * shape.stride
    shift[:, R, 2] = extent[:, R]
    shift[:, Q, 3] = extent[:, Q] * shape.stride
    shift[:, S, 3] = extent[:, S]
    order = nests.orders[:, DRAM, :]
    trips = np.take_along_axis(nests.factors[:, DRAM, :], order, axis=1)  # (count, 7), outermost first
    loop_shift = np.take_along_axis(shift, order[:, :, None], axis=1)  # (count, 7, 4)
    total: IntArray = np.zeros(count, dtype=np.int64)
    have_prev: BoolArray = np.zeros(count, dtype=bool)
    prev_origin: IntArray = np.zeros((count, 4), dtype=np.int64)
    prev_trans: IntArray = np.zeros((count, 4), dtype=np.int64)
    trans_null: BoolArray = np.ones(count, dtype=bool)
    for step in _walk(7):
        on = step.astype(bool)
        visited = np.all(trips[:, on] > 1, axis=1)
        if not visited.any():
            continue
        weight = (trips[:, on] - 1).prod(axis=1)
        origin = loop_shift[:, on, :].sum(axis=1)
        trans = origin - prev_origin
        overlap = np.clip(box - np.abs(trans), 0, None).prod(axis=1)
        same = trans_null | np.all(trans == prev_trans, axis=1)
        delta = np.where(have_prev & same, volume - overlap, volume)
        total += np.where(visited, delta * weight, 0)
        # the state: a first tile leaves the translation null; a delta after a null one records it; a change resets
        new_null = np.where(have_prev, ~same, True)
        upd = visited
        prev_trans = np.where((upd & have_prev & trans_null)[:, None], trans, prev_trans)
        trans_null = np.where(upd, new_null, trans_null)
        prev_origin = np.where(upd[:, None], origin, prev_origin)
        have_prev = have_prev | upd
    return total


def whole_window_input_fills(shape: ConvShape, nests: ConvNests) -> IntArray:
    """Input elements the Scratchpad would take if every move of a DRAM loop refetched the whole window (the rule of
    Weights and Outputs applied to Inputs): the reference `_input_fills` undercuts where Timeloop reuses a halo."""
    whole: IntArray = _fills(nests, RELEVANT["inputs"], SCRATCHPAD) * tiles(shape, nests)["scratchpad_inputs"]
    return whole


def accesses(shape: ConvShape, nests: ConvNests) -> dict[str, IntArray]:
    """Element counts of every transfer (the keys of `nest.accesses`; see the module docstring for the rules)."""
    return _accesses(shape, nests)[0]


def _accesses(shape: ConvShape, nests: ConvNests) -> tuple[dict[str, IntArray], IntArray]:
    t = tiles(shape, nests)
    sk, sc = nests.spatial_k, nests.spatial_c
    steps = nests.factors.prod(axis=(1, 2))
    outputs = shape.n * shape.k * shape.p * shape.q
    evictions = _fills(nests, RELEVANT["outputs"], ACCUMULATOR) * t["accumulator_outputs"] * sk
    counts: dict[str, IntArray] = {
        "dram_to_scratchpad_inputs": _input_fills(shape, nests),
        "dram_to_scratchpad_weights": _fills(nests, RELEVANT["weights"], SCRATCHPAD) * t["scratchpad_weights"],
        "scratchpad_to_registers_weights": _fills(nests, RELEVANT["weights"], REGISTERS) * sk * sc,
        "scratchpad_to_array_inputs": steps * sc,
        "accumulator_updates": steps * sk,
        "accumulator_evictions": evictions,
        "partial_sum_refills": evictions - outputs,
    }
    return counts, steps


def costs(shape: ConvShape, nests: ConvNests, nh: NestHardware) -> NestCosts:
    """Latency, energy and DRAM traffic of every nest, as `nest.costs` prices a matmul's; nests must be valid."""
    counts, steps = _accesses(shape, nests)
    a = {k: v.astype(np.float64) for k, v in counts.items()}
    outputs = float(shape.n * shape.k * shape.p * shape.q)
    refills = a["partial_sum_refills"]
    dram_read = a["dram_to_scratchpad_inputs"] + a["dram_to_scratchpad_weights"] + refills * nh.acc_bytes_per_word
    dram_write = refills * nh.acc_bytes_per_word + outputs
    spad_write = a["dram_to_scratchpad_inputs"] + a["dram_to_scratchpad_weights"]
    spad_read = a["scratchpad_to_array_inputs"] + a["scratchpad_to_registers_weights"]
    acc_write = (a["accumulator_updates"] + a["accumulator_evictions"]) * nh.acc_bytes_per_word
    acc_read = (a["accumulator_updates"] - outputs) * nh.acc_bytes_per_word
    energy = (
        shape.macs * nh.mac_pj
        + dram_read * nh.dram_read_pj_per_byte
        + dram_write * nh.dram_write_pj_per_byte
        + spad_read * nh.spad_read_pj_per_byte
        + spad_write * nh.spad_write_pj_per_byte
        + acc_read * nh.acc_read_pj_per_byte
        + acc_write * nh.acc_write_pj_per_byte
        + a["scratchpad_to_registers_weights"] * nh.register_write_pj_per_byte
    )
    dram = dram_read + dram_write
    latency = np.maximum(steps.astype(np.float64), dram / nh.dram_bytes_per_cycle)
    if nh.scratchpad_bytes_per_cycle is not None:
        latency = np.maximum(latency, (spad_read + spad_write) / nh.scratchpad_bytes_per_cycle)
    if nh.accumulator_words_per_cycle is not None:
        words_per_column = (acc_read + acc_write) / nh.acc_bytes_per_word / nests.spatial_k
        latency = np.maximum(latency, words_per_column / nh.accumulator_words_per_cycle)
    return NestCosts(latency, energy, dram)


def sample(shape: ConvShape, hw: NestHardware, count: int, rng: np.random.Generator) -> ConvNests:
    """`count` valid nests drawn uniformly: each dim's bound split uniformly over its slots (the four levels; C and K
    also their spatial slot; R, S, C, K fixed to 1 at the Registers, which hold one weight), every level's order a
    uniform permutation, nests that do not fit rejected."""
    if count <= 0:
        raise SpecError(f"the conv nest sampler needs a positive number of samples, got {count}")
    b = bounds(shape)
    parts: list[ConvNests] = []
    kept = drawn = 0
    while kept < count:
        batch = max(8 * (count - kept), 4096)
        factors = np.ones((batch, len(LEVELS), 7), dtype=np.int64)
        spatial: dict[int, IntArray] = {C: np.ones(batch, dtype=np.int64), K: np.ones(batch, dtype=np.int64)}
        for d in range(7):
            levels = len(LEVELS) - (d in RELEVANT["weights"])  # no Registers slot for a weight dim
            slots = levels + (d in spatial)
            drawn_f = factorization.draw_factorizations(int(b[d]), slots, batch, rng)
            factors[:, :levels, d] = drawn_f[:, :levels]
            if d in spatial:
                spatial[d] = drawn_f[:, levels]
        orders = np.argsort(rng.random((batch, len(LEVELS), 7)), axis=2).astype(np.int64)
        nests = ConvNests(factors, orders, spatial[K], spatial[C])
        ok = np.flatnonzero(valid(shape, nests, hw))
        parts.append(nests.take(ok[: count - kept]))
        kept += min(ok.size, count - kept)
        drawn += batch
        if drawn > 10_000 * count and kept == 0:
            raise InfeasibleError("no valid conv nest: no tile of this conv fits the design's on-chip memories")
    return ConvNests(*(np.concatenate([getattr(p, a) for p in parts]) for a in ConvNests.__slots__))
