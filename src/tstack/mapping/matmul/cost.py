"""Analytical cost of matmul mappings on a weight-stationary systolic array, evaluated over arrays of mappings.

Model (each choice is a `CostOptions` field of the hardware, default stated there):

* Compute. Weights are held in the array: for each M-tile, every (K-fold of `rows`, N-fold of `cols`) block of B
  is loaded (`rows` cycles, hidden if `preload_hidden`: Gemmini's PEs double-buffer weights) and the tile's M rows
  are streamed through (one row per cycle). Systolic skew adds rows + cols - 2 cycles of fill and drain per fold
  (`FillDrain.PER_FOLD`, SCALE-Sim's array), once per tile (`PER_TILE`, a pipelined array) or never (`NONE`).
* Traffic (loop-nest reuse). The DRAM level iterates over tiles in the mapping's order. A tile of a tensor is
  refetched once per iteration of every loop down to the innermost loop that indexes the tensor and iterates (a
  loop of one trip is no loop, as in Timeloop; with `skip_one_trip_loops` off it is, as in Gemmini's software):
  A[m, k] is re-read for every n-tile when the n loop sits above m or k; B[k, n] for every m-tile likewise. C stays
  in the accumulator across k when k is the innermost of the three loops; otherwise partial sums spill to DRAM at the
  accumulator's width and are read back (`PartialSums.SPILL` forces a spill per K-fold, as SCALE-Sim does).
* Latency. Every link is priced at its own bandwidth, as the design's one reading gives them
  (`tstack.hardware.design`): the link(s) filling the on-chip memories from their parent (DRAM, or the L2), the
  link from DRAM into an L2, and any link to the PE array (operand reads, accumulator writes: they stream with the
  compute). With `overlap_transfers` (double-buffered on-chip memories), a tile's transfers overlap the previous
  tile's compute: latency = max(compute, each link's busy time) + the first tile's load; else compute plus the
  fill and L2 links' times. With `shared_bandwidth` the operands share their link (Gemmini's DMA); else each
  operand has its own port of that bandwidth (SCALE-Sim's USER mode).
* An intermediate level (an L2 that holds every tensor) tiles the matmul once more (`l2_tiling`): by default either
  it keeps all of B and walks M in the fewest chunks whose rows of A and C fit beside it (B read once per chunk),
  or it keeps a column slice of B at a time and streams A past each slice (A read once per slice), whichever moves
  fewer DRAM bytes; `square` uses square tiles of side sqrt(capacity / bytes of an A and a B element), B read once
  per M-tile and A once per N-tile, as the paper's analytic model does. Never more than without the level.
* `bias_matrix`: the bias is read as a full M x N matrix (Gemmini's D operand when not repeated), else ignored as
  a d_out vector.
* Energy: MACs x MAC energy + bytes moved at each level x that level's per-byte read/write energy, including
  on-chip reads of A per N-fold and B per M-tile, and the accumulator as Timeloop counts it (a write per update,
  one update per output per K-fold, and per fill; a read per update but an output's first).
* `first_load_exposed`: with overlapped transfers the first tile's load has nothing to hide behind (Gemmini's
  double buffering); Timeloop's model, a steady state, leaves it out.

Everything after the operand movement (`Traffic`: output passes, the intermediate level, capacity, latency,
energy) is `finish_costs`, which the 7-loop convolution model (`tstack.mapping.conv.cost`) shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tstack.errors import InfeasibleError
from tstack.hardware.design import Design, design_of
from tstack.hardware.types import (
    CostOptions,
    Dataflow,
    FillDrain,
    Hardware,
    L2Tiling,
    PartialSums,
)
from tstack.mapping.matmul.loopnest import ORDERS, Mapping, MatmulShape

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class OperandBits:
    """Bits of A, B, the written output C, and the accumulator's partial sums."""

    a: int = 8
    b: int = 8
    out: int = 8
    acc: int = 32
    bias: int = 0  # bits per element of a full M x N bias matrix read into the accumulator (0: no such read)


@dataclass(frozen=True, slots=True)
class MatmulCosts:
    """Per-mapping arrays for all `batch` instances of the matmul; infeasible mappings have infinite latency."""

    compute_cycles: FloatArray
    latency_cycles: FloatArray
    onchip_bytes: FloatArray  # moved between the on-chip level and its parent (DRAM or L2)
    dram_bytes: FloatArray
    energy_pj: FloatArray
    feasible: npt.NDArray[np.bool_]
    macs: int | IntArray
    peak_macs_per_cycle: int

    @property
    def utilization(self) -> FloatArray:
        return np.asarray(self.macs / (self.latency_cycles * self.peak_macs_per_cycle), dtype=np.float64)

    @property
    def edp(self) -> FloatArray:
        return np.asarray(self.energy_pj * self.latency_cycles, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Cost:
    """The cost of one mapping (see `MatmulCosts` for the fields)."""

    compute_cycles: float
    latency_cycles: float
    onchip_bytes: float
    dram_bytes: float
    energy_pj: float
    utilization: float

    @property
    def edp(self) -> float:
        return self.energy_pj * self.latency_cycles

    @staticmethod
    def at(costs: MatmulCosts, i: int = 0) -> Cost:
        """Mapping `i` of a vectorized evaluation."""
        return Cost(
            compute_cycles=float(costs.compute_cycles[i]),
            latency_cycles=float(costs.latency_cycles[i]),
            onchip_bytes=float(costs.onchip_bytes[i]),
            dram_bytes=float(costs.dram_bytes[i]),
            energy_pj=float(costs.energy_pj[i]),
            utilization=float(costs.utilization[i]),
        )


def _ceil_div(a: Any, b: Any) -> Any:
    return -(-a // b)


def _folds(bound: int | IntArray, tile: IntArray, width: int | IntArray) -> IntArray:
    """Array-wide folds needed along one dim: full tiles of `tile`, then the partial last tile."""
    full = bound // tile
    return np.asarray(full * _ceil_div(tile, width) + _ceil_div(bound - full * tile, width), dtype=np.int64)


def _order_positions() -> dict[str, IntArray]:
    """pos[dim][order_code] = depth of that dim's loop (0 = outermost)."""
    return {d: np.array([o.index(d) for o in ORDERS], dtype=np.int64) for d in ("m", "n", "k")}


_POS = _order_positions()


@dataclass(frozen=True, slots=True)
class MatmulShapes:
    """Parallel arrays of matmul shapes, one per mapping (e.g. a decoder's q x K^T at every step)."""

    m: IntArray
    n: IntArray
    k: IntArray
    batch: int = 1

    @property
    def macs(self) -> IntArray:
        return np.asarray(self.batch * self.m * self.n * self.k, dtype=np.int64)


def matmul_costs(
    shape: MatmulShape | MatmulShapes,
    tile_m: IntArray,
    tile_n: IntArray,
    tile_k: IntArray,
    order_code: IntArray,
    hw: Hardware,
    bits: OperandBits | None = None,
    options: CostOptions | None = None,
    spatial_rows: IntArray | None = None,
    spatial_cols: IntArray | None = None,
) -> MatmulCosts:
    """Cost of every mapping given as parallel arrays (tiles in elements, order as an index into ORDERS); the
    shape is one for all mappings or one per mapping.

    `spatial_rows` / `spatial_cols` (per mapping, dividing tile_k / tile_n) unroll only that many of the array's
    rows / columns, as Timeloop's spatial factors do (`tstack.mapping.mapspace`, Timeloop semantics); the tile's
    k and n are then folded over them, and each column's share of the accumulator holds its columns' outputs (the
    Gemmini Timeloop arch gives every PE column its own accumulator), so the C tile must fit
    tile_m x (tile_n / spatial_cols) x cols words. None: the whole array, tiles folded over it as Gemmini does."""
    check_dataflow(hw)
    bits = bits or OperandBits()
    options = options or hw.cost_options
    tm, tn, tk = (
        np.minimum(np.asarray(t, dtype=np.int64), b)
        for t, b in ((tile_m, shape.m), (tile_n, shape.n), (tile_k, shape.k))
    )
    order = np.asarray(order_code, dtype=np.int64)
    rows, cols = array_extent(hw, spatial_rows, spatial_cols)
    m, n, k = shape.m, shape.n, shape.k
    trips_m, trips_n, trips_k = _ceil_div(m, tm), _ceil_div(n, tn), _ceil_div(k, tk)
    folds_k, folds_n = _folds(k, tk, rows), _folds(n, tn, cols)  # array folds summed over the tiles

    # --- traffic between the on-chip level and its parent, by loop-nest reuse
    # Timeloop's rule: a loop of one trip is no loop, so its position counts only when it iterates (-1 otherwise);
    # `skip_one_trip_loops` off walks the written loop nest (Gemmini's software moves operands at every iteration)
    iterating = {d: np.where(t > 1, _POS[d][order], -1) for d, t in (("m", trips_m), ("n", trips_n), ("k", trips_k))}
    pm, pn, pk = (iterating[d] if options.skip_one_trip_loops else _POS[d][order] for d in ("m", "n", "k"))
    a_refetch = np.where(pn < np.maximum(pm, pk), trips_n, 1)
    b_refetch = np.where(pm < np.maximum(pk, pn), trips_m, 1)

    # --- compute: per M-tile, each of the folds_k * folds_n weight blocks streams the tile's rows. A tile of one
    # weight block may keep it in the PEs across the m-tiles below its last k or n loop (`weights_stay_in_array`,
    # Timeloop's registers); otherwise every m-tile loads its blocks again (Gemmini preloads each tile's weights).
    one_block = (folds_k == trips_k) & (folds_n == trips_n)
    stays = options.weights_stay_in_array & one_block
    weight_m_tiles = np.where(stays & ~(iterating["m"] < np.maximum(iterating["k"], iterating["n"])), 1, trips_m)
    weight_loads = weight_m_tiles * folds_k * folds_n
    stream = np.asarray(m, dtype=np.float64) * folds_k * folds_n
    compute = compute_cycles(stream, weight_loads, trips_m * trips_n * trips_k, rows, cols, options)
    a_bytes = m * k * a_refetch * bits.a / 8
    b_bytes = k * n * b_refetch * bits.b / 8
    if options.partial_sums is PartialSums.SPILL:
        spills = np.broadcast_to(folds_k, tm.shape).astype(np.float64)
    else:
        spills = np.where(pk < np.maximum(pm, pn), trips_k, 1).astype(np.float64)

    # --- capacity
    ab_tile = (tm * tk * bits.a + tk * tn * bits.b) / 8
    c_tile = tm * tn * bits.acc / 8
    if spatial_cols is not None:  # per-column accumulators: each used column holds tn / spatial_cols outputs
        c_tile = tm * _ceil_div(tn, cols) * hw.pe.cols * bits.acc / 8

    return finish_costs(
        hw,
        bits,
        options,
        Traffic(
            a_bytes=a_bytes,
            b_bytes=b_bytes,
            spills=spills,
            out_elems=m * n,
            a_reads=m * k * folds_n,
            b_reads=k * n * weight_m_tiles,
            out_passes=m * n * folds_k,
        ),
        L2View(m=m, n=n, k=k, w_bytes=k * n * bits.b / 8),
        compute=compute,
        ab_tile=ab_tile,
        c_tile=c_tile,
        macs=m * n * k,
        like=tm,
        batch=shape.batch,
        total_macs=shape.macs,
    )


def check_dataflow(hw: Hardware) -> None:
    if hw.pe.dataflow is not Dataflow.WEIGHT_STATIONARY:
        raise InfeasibleError(
            f"{hw.name!r}: the cost model implements weight-stationary arrays; {hw.pe.dataflow.value} is not "
            f"modelled yet, so set pe_array.dataflow: weight_stationary"
        )


def array_extent(
    hw: Hardware, spatial_rows: IntArray | None, spatial_cols: IntArray | None
) -> tuple[int | IntArray, int | IntArray]:
    """The rows and columns a mapping unrolls over: the whole array, or its own spatial factors."""
    rows: int | IntArray = hw.pe.rows if spatial_rows is None else np.asarray(spatial_rows, dtype=np.int64)
    cols: int | IntArray = hw.pe.cols if spatial_cols is None else np.asarray(spatial_cols, dtype=np.int64)
    return rows, cols


def compute_cycles(
    stream: FloatArray,
    weight_loads: Any,
    dram_tiles: Any,
    rows: int | IntArray,
    cols: int | IntArray,
    options: CostOptions,
) -> FloatArray:
    """Weight-stationary compute: rows streamed past every weight block, plus preload and fill/drain (module
    docstring). `weight_loads` counts the weight blocks loaded into the array, `dram_tiles` the DRAM-level tiles."""
    preload = np.zeros_like(stream) if options.preload_hidden else weight_loads * np.asarray(rows, np.float64)
    skew = rows + cols - 2
    if options.fill_drain is FillDrain.PER_FOLD:
        fill = weight_loads * np.asarray(skew, np.float64)
    elif options.fill_drain is FillDrain.PER_TILE:
        fill = dram_tiles * np.asarray(skew, np.float64)
    else:
        fill = np.zeros_like(stream)
    return np.asarray(stream + preload + fill, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Traffic:
    """Per-mapping operand movement of one matmul-like problem (A = streamed inputs, B = weights, C = outputs).

    a_bytes / b_bytes: bytes of A and B fetched into the on-chip level; spills: passes each output makes through
    the accumulator's parent (1 = written once); out_elems: output elements; a_reads / b_reads: elements of A and
    B read out of the on-chip level into the array; out_passes: accumulator read-modify-writes per output summed
    (elements)."""

    a_bytes: Any
    b_bytes: Any
    spills: Any
    out_elems: Any
    a_reads: Any
    b_reads: Any
    out_passes: Any


@dataclass(frozen=True, slots=True)
class L2View:
    """The problem as the intermediate level's tiling sees it: m rows of k A-elements and n outputs each, and the
    whole weight tensor of w_bytes."""

    m: Any
    n: Any
    k: Any
    w_bytes: Any


def finish_costs(
    hw: Hardware,
    bits: OperandBits,
    options: CostOptions,
    traffic: Traffic,
    l2: L2View,
    *,
    compute: FloatArray,
    ab_tile: Any,
    c_tile: Any,
    macs: Any,
    like: IntArray,
    batch: int,
    total_macs: int | IntArray,
) -> MatmulCosts:
    """Output traffic, the intermediate level, capacity, latency and energy from the operand movement (module
    docstring); shared by the matmul and the convolution models."""
    a_bytes, b_bytes, spills = traffic.a_bytes, traffic.b_bytes, traffic.spills
    # every pass but the last writes partial sums at accumulator width and later reads them back
    c_bytes = traffic.out_elems * ((spills - 1) * 2 * bits.acc / 8 + bits.out / 8)

    design = design_of(hw)
    ab_level, c_level, middle = design.scratchpad, design.accumulator, design.l2
    bias_bytes = traffic.out_elems * bits.bias / 8
    c_bytes = c_bytes + bias_bytes
    onchip = a_bytes + b_bytes + c_bytes
    if middle is not None:
        m, n, k, w_bytes = l2.m, l2.n, l2.k, l2.w_bytes
        a_total, c_total = m * k * bits.a / 8, m * n * bits.out / 8 + bias_bytes
        if options.l2_tiling is L2Tiling.SQUARE:
            # square tiles of A and B filling the level: B re-read per M-tile, A per N-tile, C and bias once
            side = math.isqrt(int(middle.usable_bytes * 8 / (bits.a + bits.b)))
            by_square = _ceil_div(m, side) * w_bytes + _ceil_div(n, side) * a_total + c_total
            dram = np.minimum(np.broadcast_to(by_square, onchip.shape), onchip).astype(np.float64)
        else:
            # keep all of B and walk M in the fewest chunks whose A and C rows fit beside it (B re-read per
            # chunk), or keep a column slice of B and stream A past it (A re-read per slice): the cheaper
            row_bytes = (k * bits.a + n * bits.out + n * bits.bias) / 8
            room = middle.usable_bytes - w_bytes
            m_chunks = np.maximum(1, _ceil_div(m * row_bytes, np.maximum(room, 1e-9)))
            by_m = np.where(room >= row_bytes, m_chunks * w_bytes + a_total + c_total, np.inf)
            n_chunks = np.maximum(1, _ceil_div(w_bytes, middle.usable_bytes))
            by_n = w_bytes + n_chunks * a_total + c_total
            dram = np.minimum(np.minimum(by_m, by_n), onchip).astype(np.float64)
    else:
        dram = onchip

    # --- capacity
    if design.shared_buffer:
        feasible = ab_tile + c_tile <= ab_level.usable_bytes
    else:
        feasible = (ab_tile <= ab_level.usable_bytes) & (c_tile <= c_level.usable_bytes)

    # --- latency: every link's bytes over its bandwidth
    array_read_bytes = traffic.a_reads * bits.a / 8 + traffic.b_reads * bits.b / 8
    accumulator_write_bytes = traffic.out_passes * bits.acc / 8
    fill, array = link_cycles(design, options, a_bytes, b_bytes, c_bytes, array_read_bytes, accumulator_write_bytes)
    transfer_cycles = [fill]
    if middle is not None:
        assert design.l2_fill_bytes_per_cycle is not None
        transfer_cycles.append(np.asarray(dram / design.l2_fill_bytes_per_cycle, dtype=np.float64))
    streaming = np.maximum.reduce([compute, *array]) if array else compute
    latency: FloatArray
    if options.overlap_transfers:
        first_load = ab_tile / design.scratchpad_fill_bytes_per_cycle if options.first_load_exposed else 0.0
        latency = np.maximum.reduce([streaming, *transfer_cycles]) + first_load
    else:
        latency = streaming + np.sum(transfer_cycles, axis=0)

    # --- energy
    e: FloatArray = np.broadcast_to(macs * hw.pe.mac_energy_pj, like.shape).astype(np.float64)
    e = e + (a_bytes + b_bytes) * ab_level.write_energy_pj_per_byte
    e = e + (traffic.a_reads * bits.a / 8 + traffic.b_reads * bits.b / 8) * ab_level.read_energy_pj_per_byte
    # the accumulator as Timeloop counts it: written once per update and once per fill (every residency of an output
    # tile, its zeroed first one included), read once per update that is not an output's first; a drain to DRAM is
    # not an accumulator read
    acc_bytes_per_word = bits.acc / 8
    fills = traffic.out_elems * spills
    e = e + (traffic.out_passes + fills) * acc_bytes_per_word * c_level.write_energy_pj_per_byte
    e = e + (traffic.out_passes - traffic.out_elems) * acc_bytes_per_word * c_level.read_energy_pj_per_byte
    dram_pj = design.dram.read_energy_pj_per_byte, design.dram.write_energy_pj_per_byte
    if middle is not None:
        e = e + onchip * (middle.read_energy_pj_per_byte + middle.write_energy_pj_per_byte) / 2
        e = e + dram * (dram_pj[0] + dram_pj[1]) / 2
    else:  # reads: A, B, partial sums and bias back; writes: partial sums out and the outputs
        psum_bytes = traffic.out_elems * (spills - 1) * acc_bytes_per_word
        e = e + (a_bytes + b_bytes + psum_bytes + bias_bytes) * dram_pj[0]
        e = e + (psum_bytes + traffic.out_elems * bits.out / 8) * dram_pj[1]

    return MatmulCosts(
        compute_cycles=np.asarray(compute * batch, dtype=np.float64),
        latency_cycles=np.where(feasible, latency * batch, np.inf),
        onchip_bytes=np.asarray(onchip * batch, dtype=np.float64),
        dram_bytes=np.asarray(dram * batch, dtype=np.float64),
        energy_pj=np.asarray(e * batch, dtype=np.float64),
        feasible=np.asarray(feasible),
        macs=total_macs,
        peak_macs_per_cycle=hw.pe.macs_per_cycle,
    )


def link_cycles(
    design: Design,
    options: CostOptions,
    a_bytes: Any,
    b_bytes: Any,
    c_bytes: Any,
    array_read_bytes: Any,
    accumulator_write_bytes: Any,
) -> tuple[FloatArray, list[FloatArray]]:
    """Cycles the links of the on-chip side are busy, per mapping: (fill, [array links]).

    Fill: the link(s) carrying A and B into the scratchpad and C between the accumulator and its parent; when one
    link feeds both their bytes add, separate links run in parallel; with `shared_bandwidth` off each operand has a
    port of its link's bandwidth (SCALE-Sim's USER mode). Array links, where the design limits them: A and B read out
    of the scratchpad, partial sums written into the accumulator; they stream with the compute."""
    shape = np.broadcast_shapes(*(np.shape(x) for x in (a_bytes, b_bytes, c_bytes)))

    def busy(nbytes: Any, bytes_per_cycle: float) -> FloatArray:
        return np.broadcast_to(np.asarray(nbytes / bytes_per_cycle, dtype=np.float64), shape)

    spad_bw, acc_bw = design.scratchpad_fill_bytes_per_cycle, design.accumulator_fill_bytes_per_cycle
    if not options.shared_bandwidth:
        fill = np.maximum(busy(np.maximum(a_bytes, b_bytes), spad_bw), busy(c_bytes, acc_bw))
    elif design.fill_shared:
        fill = busy(a_bytes + b_bytes + c_bytes, spad_bw)
    else:
        fill = np.maximum(busy(a_bytes + b_bytes, spad_bw), busy(c_bytes, acc_bw))
    array: list[FloatArray] = []
    spad_array, acc_array = design.scratchpad_array_bytes_per_cycle, design.accumulator_array_bytes_per_cycle
    if design.shared_buffer and spad_array is not None:
        array.append(busy(array_read_bytes + accumulator_write_bytes, spad_array))
    else:
        if spad_array is not None:
            array.append(busy(array_read_bytes, spad_array))
        if acc_array is not None:
            array.append(busy(accumulator_write_bytes, acc_array))
    return fill, array


def evaluate(
    shape: MatmulShape,
    mapping: Mapping,
    hw: Hardware,
    bits: OperandBits | None = None,
    options: CostOptions | None = None,
) -> Cost:
    """The cost of one mapping: the vectorized model on arrays of length one."""
    arrays = matmul_costs(
        shape,
        np.array([mapping.tile_m]),
        np.array([mapping.tile_n]),
        np.array([mapping.tile_k]),
        np.array([mapping.order_code]),
        hw,
        bits,
        options,
    )
    return Cost.at(arrays)
