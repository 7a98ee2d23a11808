"""One-tile mappings (`tstack.mapping.matmul.loopnest.Mapping`: a DRAM tile and a DRAM loop order) written as nests, the
bridge between the one-tile model that `simulate` searches and the nest model of record: the tile sits at the
accumulator level in weight-stationary order, the largest divisor of its n (k) side up to the array unrolled
(tests/unit/mapping/nest/test_model_of_record.py shows the two models equal on such nests)."""

from __future__ import annotations

import numpy as np

from tstack.errors import InfeasibleError
from tstack.hardware.types import Hardware
from tstack.mapping.matmul.loopnest import ORDERS, Mapping, MatmulShape
from tstack.mapping.matmul.mappers import divisors
from tstack.mapping.nest.matmul import ACCUMULATOR, DRAM, LEVELS, IntArray, NestHardware, Nests, check_shape, valid


def from_tiles(
    shape: MatmulShape,
    tile_m: IntArray,
    tile_n: IntArray,
    tile_k: IntArray,
    order: IntArray,
    hw: Hardware | NestHardware,
) -> Nests:
    """One-tile mappings as nests: DRAM loops over the tiles in `order` (indices into ORDERS), the tile at the
    accumulator level in weight-stationary order (n, k outer, m streamed), the largest divisor of the n (k) tile up
    to the array side unrolled. Tiles must divide the bounds."""
    nh = NestHardware.of(hw)
    side_n, side_k = _largest_divisor_upto(tile_n, nh.cols), _largest_divisor_upto(tile_k, nh.rows)
    bad = (shape.m % tile_m) | (shape.n % tile_n) | (shape.k % tile_k)
    if np.any(bad):
        i = int(np.argmax(bad != 0))
        raise InfeasibleError(
            f"tiles {tile_m[i]}x{tile_n[i]}x{tile_k[i]} do not divide the matmul {shape.m}x{shape.n}x{shape.k}; "
            "a nest needs perfect factors"
        )
    f = np.ones((len(tile_m), len(LEVELS), 3), dtype=np.int64)
    f[:, DRAM] = np.stack([shape.m // tile_m, shape.n // tile_n, shape.k // tile_k], axis=1)
    f[:, ACCUMULATOR] = np.stack([tile_m, tile_n // side_n, tile_k // side_k], axis=1)
    orders = np.zeros((len(tile_m), len(LEVELS)), dtype=np.int64)
    orders[:, DRAM] = order
    orders[:, ACCUMULATOR] = ORDERS.index(("n", "k", "m"))
    return Nests(f, orders, side_n.astype(np.int64), side_k.astype(np.int64))


def _largest_divisor_upto(values: IntArray, side: int) -> IntArray:
    out = np.ones_like(values)
    for s in range(2, side + 1):
        out = np.where(values % s == 0, s, out)
    return out


def from_mapping(mapping: Mapping, shape: MatmulShape, hw: Hardware | NestHardware) -> Nests:
    """One mapping as a nest (`from_tiles`)."""

    def one(x: int) -> IntArray:
        return np.array([x], dtype=np.int64)

    return from_tiles(shape, one(mapping.tile_m), one(mapping.tile_n), one(mapping.tile_k), one(mapping.order_code), hw)


def one_tile_nests(shape: MatmulShape, hw: Hardware | NestHardware) -> Nests:
    """Every valid one-tile mapping (tiles dividing the bounds, any DRAM order), as nests."""
    check_shape(shape)
    nh = NestHardware.of(hw)
    grids = np.meshgrid(
        np.array(divisors(shape.m), dtype=np.int64),
        np.array(divisors(shape.n), dtype=np.int64),
        np.array(divisors(shape.k), dtype=np.int64),
        np.arange(len(ORDERS), dtype=np.int64),
        indexing="ij",
    )
    tm, tn, tk, order = (g.ravel() for g in grids)
    every = from_tiles(shape, tm, tn, tk, order, hw)
    return every.take(np.flatnonzero(valid(every, nh)))
