"""A port of Gemmini's software tiler, `tiled_matmul_auto` in gemmini-rocc-tests `include/gemmini.h`.

Tiles are counted in DIM x DIM blocks. Under weight-stationary the scratchpad and accumulator are double-buffered,
so half of each is available to a tile. The heuristic starts from the largest square-ish tile the accumulator allows
(or, when LayerNorm/Softmax is fused into the matmul, one full output row of blocks) and then greedily grows J, I
and K in turn while the A and B tiles fit the scratchpad and the C tile fits the accumulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from tstack.errors import InfeasibleError


class FusedActivation(StrEnum):
    NONE = "none"
    RELU = "relu"
    IGELU = "igelu"
    LAYERNORM = "layernorm"  # forces a full output row in the accumulator
    SOFTMAX = "softmax"  # likewise


@dataclass(frozen=True, slots=True)
class GemminiMemory:
    """The software view of Gemmini's memories (gemmini_params.h): DIM, BANK_NUM, BANK_ROWS, ACC_ROWS."""

    dim: int
    bank_num: int
    bank_rows: int
    acc_rows: int

    @staticmethod
    def from_capacities(dim: int, scratchpad_bytes: int, accumulator_bytes: int, banks: int = 4) -> GemminiMemory:
        """Rows hold DIM elements: 1-byte inputs in the scratchpad, 4-byte partial sums in the accumulator."""
        return GemminiMemory(dim, banks, scratchpad_bytes // (banks * dim), accumulator_bytes // (dim * 4))


@dataclass(frozen=True, slots=True)
class GemminiTiling:
    """Tile sizes in DIM blocks: the C tile is tile_i x tile_j blocks, the reduction step tile_k blocks."""

    tile_i: int
    tile_j: int
    tile_k: int
    fits: bool = True  # False when a fused full-row tile overflows the usable (double-buffered) accumulator


def _ceil_blocks(n: int, dim: int) -> int:
    return -(-n // dim)


def tiled_matmul_auto(
    dim_i: int,
    dim_j: int,
    dim_k: int,
    memory: GemminiMemory,
    *,
    act: FusedActivation = FusedActivation.NONE,
    weight_stationary: bool = True,
) -> GemminiTiling:
    """Tile factors for C[dim_i, dim_j] = A[dim_i, dim_k] @ B[dim_k, dim_j], exactly as the C heuristic picks them."""
    dim = memory.dim
    blocks_i, blocks_j, blocks_k = (_ceil_blocks(n, dim) for n in (dim_i, dim_j, dim_k))
    double_buffered = weight_stationary
    spad_rows_total = memory.bank_num * memory.bank_rows
    max_spad_rows = spad_rows_total // 2 if double_buffered else spad_rows_total
    max_acc_rows = memory.acc_rows // 2 if double_buffered else memory.acc_rows

    def spad_rows(i: int, j: int, k: int) -> int:
        return (i * k + k * j) * dim

    def acc_rows(i: int, j: int) -> int:
        return i * j * dim

    if act in (FusedActivation.LAYERNORM, FusedActivation.SOFTMAX):
        # As in the C code, the full output row is taken even when it exceeds the usable accumulator (the baseline's
        # 64 KiB cannot double-buffer a 768-wide row); `GemminiTiling.fits` tells the cost model.
        tile_i, tile_j, tile_k = 1, blocks_j, 1
    else:
        partition_rows = spad_rows_total // 2
        if double_buffered:
            mats_in_partition = (partition_rows // 2) // dim
            mats_in_acc = (memory.acc_rows // 2) // dim
        else:
            mats_in_partition = partition_rows // dim
            mats_in_acc = memory.acc_rows // dim
        max_tile_i_j = math.isqrt(mats_in_acc)
        if max_tile_i_j == 0 or mats_in_partition // max_tile_i_j == 0:
            raise InfeasibleError(
                f"scratchpad ({spad_rows_total} rows) or accumulator ({memory.acc_rows} rows) cannot hold one "
                f"{dim}x{dim} block per operand; enlarge them"
            )
        max_tile_k = mats_in_partition // max_tile_i_j
        tile_i, tile_j, tile_k = min(blocks_i, max_tile_i_j), min(blocks_j, max_tile_i_j), min(blocks_k, max_tile_k)

    while True:  # fill the scratchpad as much as possible, J first, then I, then K
        increased = False
        if (
            spad_rows(tile_i, tile_j + 1, tile_k) <= max_spad_rows
            and acc_rows(tile_i, tile_j + 1) <= max_acc_rows
            and tile_j + 1 <= blocks_j
        ):
            tile_j += 1
            increased = True
        if (
            spad_rows(tile_i + 1, tile_j, tile_k) <= max_spad_rows
            and acc_rows(tile_i + 1, tile_j) <= max_acc_rows
            and tile_i + 1 <= blocks_i
        ):
            tile_i += 1
            increased = True
        if spad_rows(tile_i, tile_j, tile_k + 1) <= max_spad_rows and tile_k + 1 <= blocks_k:
            tile_k += 1
            increased = True
        if not increased:
            fits = spad_rows(tile_i, tile_j, tile_k) <= max_spad_rows and acc_rows(tile_i, tile_j) <= max_acc_rows
            return GemminiTiling(tile_i, tile_j, tile_k, fits)
