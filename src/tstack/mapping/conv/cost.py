"""Analytical cost of 7-loop convolution mappings (`tstack.mapping.conv.loopnest`), evaluated over arrays of mappings.

Same hardware model, options and semantics as the matmul model (`tstack.mapping.matmul.cost`, whose docstring states
them); everything after the operand movement (output passes, intermediate level, capacity, latency, energy) is that
module's `finish_costs`, so a 1x1 stride-1 conv of one image costs exactly what its im2col matmul costs
(M = P x Q, N = K, K = C). What is conv-specific:

* Compute. Inside a DRAM tile the array takes every (r, s, K-fold of `cols`, C-fold of `rows`) weight block and
  streams the tile's N_t x P_t x Q_t output pixels past it: stream = N P Q x R S x folds_C x folds_K cycles, one
  weight load per block and pixel tile (preload and fill/drain as the matmul's `CostOptions` say).
* Reuse. A tile of a tensor is re-fetched for every iteration of each DRAM loop that does not index it but sits
  above the innermost loop that does (`conv.RELEVANT`: weights ignore N, P, Q; inputs ignore K; outputs ignore the
  reduction C, R, S, whose passes spill partial sums as the matmul's k loop does). Loops with one trip index
  nothing: their tile does not change, so they neither cause nor break reuse (the matmul model, which always has
  its three loops, counts them at their place; a matmul order with its one-trip loops hoisted outermost prices the
  same, which is how `tests/unit/mapping/conv/test_conv_mapping.py` compares the two).
* Halo. An input tile of (P_t, Q_t, R_t, S_t) covers ((P_t - 1) stride + R_t) x ((Q_t - 1) stride + S_t) x C_t x
  N_t elements, fetched whole each time (overlapping windows of neighbouring tiles are fetched again; no delta
  reuse between consecutive tiles, and with stride > R the window's unused rows are fetched too). Summed over the
  (partial) tiles this is closed-form: sum over (p, r) tiles of the window rows = trips_R x stride x (P - trips_P)
  + trips_P x R.
* Intermediate level (an L2): the matmul's tiling of that level on the conv's im2col view (rows = the N P Q output
  pixels, each reading input bytes / pixels; all K C R S weights): an approximation, since that level's own halo
  reuse is not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tstack.hardware.types import CostOptions, Hardware, PartialSums
from tstack.mapping.conv.loopnest import CONV_DIMS, CONV_ORDERS, RELEVANT, ConvMapping, ConvShape
from tstack.mapping.matmul.cost import (
    Cost,
    L2View,
    MatmulCosts,
    OperandBits,
    Traffic,
    _ceil_div,
    _folds,
    array_extent,
    check_dataflow,
    compute_cycles,
    finish_costs,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
SmallIntArray = npt.NDArray[np.int8]

N, K, C, P, Q, R, S = range(7)  # index of each dim: a column of the (n, 7) tiles, a row of the (7, n) internals

# pos[order_code, dim] = depth of that dim's DRAM loop (0 = outermost)
CONV_POS: IntArray = np.array([[o.index(d) for d in CONV_DIMS] for o in CONV_ORDERS], dtype=np.int64)
_POS_T: SmallIntArray = np.ascontiguousarray(CONV_POS.T.astype(np.int8))  # int8: a seventh of the memory traffic


@dataclass(frozen=True, slots=True)
class ConvReuse:
    """Per-mapping DRAM-level reuse: how often each operand's tile is fetched, before byte widths.

    input_elems: input elements fetched (window halos included, summed over every fetch); weight_elems: weight
    elements fetched; output_passes: passes each output makes through the accumulator's parent (1: written once)."""

    input_elems: FloatArray
    weight_elems: FloatArray
    output_passes: FloatArray


_IRRELEVANT = {t: [i for i, d in enumerate(CONV_DIMS) if d not in dims] for t, dims in RELEVANT.items()}
_RELEVANT_IDX = {t: [i for i, d in enumerate(CONV_DIMS) if d in dims] for t, dims in RELEVANT.items()}


def _refetch(trips: IntArray, pos: SmallIntArray, effective: SmallIntArray, tensor: str) -> IntArray:
    """Product of the trips of the loops that do not index `tensor` but sit above the innermost one that does;
    one-trip loops are ignored (they change no tile). Arrays are (7, n): one row per dim."""
    innermost = np.maximum.reduce([effective[i] for i in _RELEVANT_IDX[tensor]])
    out = np.ones(trips.shape[1], dtype=np.int64)
    for i in _IRRELEVANT[tensor]:
        out = out * np.where(pos[i] < innermost, trips[i], 1)
    return out


def _as_tiles(shape: ConvShape, tiles: npt.ArrayLike) -> tuple[IntArray, BoolArray]:
    """Tiles as a (7, n) array (one row per dim) clipped into [1, bound], and which mappings were in range."""
    t = np.asarray(tiles, dtype=np.int64)
    if t.ndim != 2 or t.shape[1] != len(CONV_DIMS):
        raise ValueError(f"tiles must be an (n, {len(CONV_DIMS)}) array in {CONV_DIMS} order, got shape {t.shape}")
    bounds = np.array(shape.bounds, dtype=np.int64)[:, None]
    t = np.ascontiguousarray(t.T)
    in_range = np.asarray(((t >= 1) & (t <= bounds)).all(axis=0), dtype=np.bool_)
    return np.clip(t, 1, bounds), in_range


def _reuse(
    shape: ConvShape, t: IntArray, order_code: npt.ArrayLike, options: CostOptions, rows: int | IntArray
) -> ConvReuse:
    bounds = np.array(shape.bounds, dtype=np.int64)[:, None]
    trips = _ceil_div(bounds, t)
    pos = _POS_T[:, np.asarray(order_code, dtype=np.int64)]
    effective = np.where(trips > 1, pos, np.int8(-1))
    stride = shape.stride
    rows_sum = trips[R] * stride * (shape.p - trips[P]) + trips[P] * shape.r  # window rows over (p, r) tiles
    cols_sum = trips[S] * stride * (shape.q - trips[Q]) + trips[Q] * shape.s
    inputs = shape.n * shape.c * rows_sum * cols_sum * _refetch(trips, pos, effective, "inputs")
    weights = shape.k * shape.c * shape.r * shape.s * _refetch(trips, pos, effective, "weights")
    if options.partial_sums is PartialSums.SPILL:  # one pass per (C-fold, r, s) weight block, as SCALE-Sim spills
        passes = _folds(shape.c, t[C], rows) * shape.r * shape.s
    else:
        passes = _refetch(trips, pos, effective, "outputs")
    return ConvReuse(
        np.asarray(inputs, dtype=np.float64),
        np.asarray(weights, dtype=np.float64),
        np.asarray(passes, dtype=np.float64),
    )


def conv_reuse(
    shape: ConvShape,
    tiles: npt.ArrayLike,
    order_code: npt.ArrayLike,
    options: CostOptions,
    rows: int | IntArray,
) -> ConvReuse:
    """DRAM-level fetch counts of every mapping (module docstring): tiles (n, 7) in CONV_DIMS order, order codes,
    and the array rows C is folded over."""
    t, _ = _as_tiles(shape, tiles)
    return _reuse(shape, t, order_code, options, rows)


def conv_costs(
    shape: ConvShape,
    tiles: npt.ArrayLike,
    order_code: npt.ArrayLike,
    hw: Hardware,
    bits: OperandBits | None = None,
    options: CostOptions | None = None,
    spatial_rows: IntArray | None = None,
    spatial_cols: IntArray | None = None,
) -> MatmulCosts:
    """Cost of every mapping given as an (n, 7) tiles array (CONV_DIMS order, elements) and order codes (indices
    into CONV_ORDERS). A tile outside [1, bound] makes its mapping infeasible. `spatial_rows` / `spatial_cols`
    (per mapping, dividing tile C / tile K) unroll only that many rows / columns, as in `cost.matmul_costs`."""
    check_dataflow(hw)
    bits = bits or OperandBits()
    options = options or hw.cost_options
    t, in_range = _as_tiles(shape, tiles)
    rows, cols = array_extent(hw, spatial_rows, spatial_cols)
    trips = _ceil_div(np.array(shape.bounds, dtype=np.int64)[:, None], t)
    folds_c, folds_k = _folds(shape.c, t[C], rows), _folds(shape.k, t[K], cols)
    pixels = shape.n * shape.p * shape.q  # output pixels: the rows streamed past each weight block
    taps = shape.r * shape.s

    # --- compute: per pixel tile, each (r, s, C-fold, K-fold) weight block streams the tile's pixels; a tile of one
    # weight block may keep it in the PEs across the pixel tiles below its last weight loop (`weights_stay_in_array`,
    # as `cost.matmul_costs`)
    pixel_tiles = trips[N] * trips[P] * trips[Q]
    one_block = (folds_c == trips[C]) & (folds_k == trips[K]) & (t[R] * t[S] == 1)
    pos = _POS_T[:, np.asarray(order_code, dtype=np.int64)]
    below_last_weight_loop = _refetch(trips, pos, np.where(trips > 1, pos, np.int8(-1)), "weights")
    weight_pixel_tiles = np.where(options.weights_stay_in_array & one_block, below_last_weight_loop, pixel_tiles)
    weight_loads = weight_pixel_tiles * taps * folds_c * folds_k
    stream = np.asarray(pixels * taps, dtype=np.float64) * folds_c * folds_k
    compute = compute_cycles(stream, weight_loads, np.prod(trips, axis=0), rows, cols, options)

    # --- traffic by loop-nest reuse
    reuse = _reuse(shape, t, order_code, options, rows)
    a_bytes = reuse.input_elems * bits.a / 8
    b_bytes = reuse.weight_elems * bits.b / 8

    # --- capacity (double buffering is the levels' usable_bytes, as for the matmul)
    in_tile = t[N] * t[C] * ((t[P] - 1) * shape.stride + t[R]) * ((t[Q] - 1) * shape.stride + t[S])
    ab_tile = (in_tile * bits.a + t[K] * t[C] * t[R] * t[S] * bits.b) / 8
    pixel_tile = t[N] * t[P] * t[Q]
    c_tile = pixel_tile * t[K] * bits.acc / 8
    if spatial_cols is not None:  # per-column accumulators, as in matmul_costs
        c_tile = pixel_tile * _ceil_div(t[K], cols) * hw.pe.cols * bits.acc / 8
    input_total = shape.n * shape.c * shape.h * shape.w

    costs = finish_costs(
        hw,
        bits,
        options,
        Traffic(
            a_bytes=a_bytes,
            b_bytes=b_bytes,
            spills=reuse.output_passes,
            out_elems=pixels * shape.k,
            a_reads=pixels * taps * shape.c * folds_k,
            b_reads=shape.k * shape.c * taps * weight_pixel_tiles,
            out_passes=pixels * shape.k * folds_c * taps,
        ),
        L2View(
            m=pixels,
            n=shape.k,
            k=input_total // pixels if input_total % pixels == 0 else input_total / pixels,
            w_bytes=shape.k * shape.c * taps * bits.b / 8,
        ),
        compute=compute,
        ab_tile=ab_tile,
        c_tile=c_tile,
        macs=shape.macs,
        like=t[0],
        batch=1,
        total_macs=shape.macs,
    )
    if in_range.all():
        return costs
    feasible = costs.feasible & in_range
    return MatmulCosts(
        compute_cycles=costs.compute_cycles,
        latency_cycles=np.where(feasible, costs.latency_cycles, np.inf),
        onchip_bytes=costs.onchip_bytes,
        dram_bytes=costs.dram_bytes,
        energy_pj=costs.energy_pj,
        feasible=feasible,
        macs=costs.macs,
        peak_macs_per_cycle=costs.peak_macs_per_cycle,
    )


def evaluate_conv(
    shape: ConvShape,
    mapping: ConvMapping,
    hw: Hardware,
    bits: OperandBits | None = None,
    options: CostOptions | None = None,
) -> Cost:
    """The cost of one mapping, after `ConvMapping.check` (which raises on an illegal one): the vectorized model
    on arrays of length one."""
    mapping.check(shape, hw, bits)
    spatial_rows = None if mapping.spatial_c is None else np.array([mapping.spatial_c])
    spatial_cols = None if mapping.spatial_k is None else np.array([mapping.spatial_k])
    arrays = conv_costs(
        shape,
        np.array([mapping.tiles]),
        np.array([mapping.order_code]),
        hw,
        bits,
        options,
        spatial_rows,
        spatial_cols,
    )
    return Cost.at(arrays)
