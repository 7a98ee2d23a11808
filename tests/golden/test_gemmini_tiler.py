"""Gemmini's `tiled_matmul_auto` (gemmini-rocc-tests include/gemmini.h), tile for tile.

The expected triples were produced by compiling the tiling logic of `tiled_matmul_auto` verbatim (its macros,
initial tiles and greedy loop, with DIM 16 and BANK_NUM 4) in a C harness and feeding it BERT-Base's matmuls
(2026-11-29). (That session also compared 18,000 random shapes over six memory sizes; the harness was not kept, so
only the triples below are evidence.)
(I, J, K) are C[I, J] = A[I, K] @ B[K, J]; act 0 none, 2 LayerNorm, 3 i-GELU, 4 Softmax.
"""

from __future__ import annotations

import pytest

from tstack.errors import InfeasibleError
from tstack.mapping.matmul.gemmini_tiler import FusedActivation, GemminiMemory, tiled_matmul_auto

ACTS = {0: FusedActivation.NONE, 2: FusedActivation.LAYERNORM, 3: FusedActivation.IGELU, 4: FusedActivation.SOFTMAX}

# BERT-Base at l = 128 and 512: Q/K/V/out projection (and out fused with LayerNorm), Q x K^T (and fused with
# Softmax), scores x V, W1 (with i-GELU and without), W2 (and fused with LayerNorm).
C_OUTPUT = {
    "baseline 256 KiB / 64 KiB": (
        (256 * 1024, 64 * 1024),
        """128 768 768 0 -> 5 5 48
128 768 768 2 -> 1 48 10
128 128 64 0 -> 5 6 4
128 128 64 4 -> 4 8 4
128 64 128 0 -> 8 4 8
128 3072 768 3 -> 5 5 48
128 3072 768 0 -> 5 5 48
128 768 3072 0 -> 5 5 51
128 768 3072 2 -> 1 48 10
512 768 768 0 -> 5 5 48
512 768 768 2 -> 1 48 10
512 512 64 0 -> 5 6 4
512 512 64 4 -> 1 32 4
512 64 512 0 -> 8 4 32
512 3072 768 3 -> 5 5 48
512 3072 768 0 -> 5 5 48
512 768 3072 0 -> 5 5 51
512 768 3072 2 -> 1 48 10""",
    ),
    "rebalanced 64 KiB / 256 KiB": (
        (64 * 1024, 256 * 1024),
        """128 768 768 0 -> 8 13 6
128 768 768 2 -> 2 48 2
128 128 64 0 -> 8 8 4
128 128 64 4 -> 8 8 4
128 64 128 0 -> 8 4 8
128 3072 768 3 -> 8 13 6
128 3072 768 0 -> 8 13 6
128 768 3072 0 -> 8 13 6
128 768 3072 2 -> 2 48 2
512 768 768 0 -> 11 11 5
512 768 768 2 -> 2 48 2
512 512 64 0 -> 11 11 4
512 512 64 4 -> 4 32 3
512 64 512 0 -> 14 4 7
512 3072 768 3 -> 11 11 5
512 3072 768 0 -> 11 11 5
512 768 3072 0 -> 11 11 5
512 768 3072 2 -> 2 48 2""",
    ),
}


@pytest.mark.parametrize("design", list(C_OUTPUT))
def test_tiles_equal_the_c_heuristic_for_every_bert_base_matmul(design: str) -> None:
    (spad, acc), table = C_OUTPUT[design]
    memory = GemminiMemory.from_capacities(16, spad, acc)
    for line in table.splitlines():
        shape, want = line.split(" -> ")
        i, j, k, act = map(int, shape.split())
        tiling = tiled_matmul_auto(i, j, k, memory, act=ACTS[act])
        assert (tiling.tile_i, tiling.tile_j, tiling.tile_k) == tuple(map(int, want.split())), line


def test_memory_rows_from_capacities() -> None:
    assert GemminiMemory.from_capacities(16, 256 * 1024, 64 * 1024) == GemminiMemory(16, 4, 4096, 1024)
    assert GemminiMemory.from_capacities(16, 64 * 1024, 256 * 1024) == GemminiMemory(16, 4, 1024, 4096)


def test_fused_full_row_is_taken_even_when_it_overflows_the_double_buffer() -> None:
    baseline = GemminiMemory.from_capacities(16, 256 * 1024, 64 * 1024)
    fused = tiled_matmul_auto(512, 768, 3072, baseline, act=FusedActivation.LAYERNORM)
    assert (fused.tile_i, fused.tile_j) == (1, 48) and not fused.fits  # 768 accumulator rows, 512 usable
    assert tiled_matmul_auto(512, 768, 3072, baseline).fits


def test_memory_too_small_for_one_block_is_infeasible() -> None:
    with pytest.raises(InfeasibleError, match="cannot hold one 16x16 block"):
        tiled_matmul_auto(64, 64, 64, GemminiMemory(16, 4, 8, 16))
