"""Loop-nest mappings of a convolution (7 loops: N, K, C, P, Q, R, S) onto a weight-stationary PE array.

O[n, k, p, q] += I[n, c, p * stride + r, q * stride + s] * W[k, c, r, s]: N images, K output channels, C input
channels, P x Q output pixels, an R x S filter. The input is the padded one, H = (P - 1) * stride + R rows and
W = (Q - 1) * stride + S columns (padding is folded into H and W, so no tile reads outside the input).

A `ConvMapping` says, as the Gemmini Timeloop description maps a conv (paper-digest §5.4, `mapspace.yaml`):

* spatial level: C unrolled over the array's rows, K over its columns (weight-stationary: each PE holds one
  W[k, c, r, s]); by default the whole array, a tile's C and K folded over it as Gemmini folds a matmul's
  reduction and output columns; `spatial_c` / `spatial_k` unroll only that many rows / columns (Timeloop's spatial
  factors, which must divide the tile);
* on-chip level: one tile per dimension. The scratchpad holds an input tile of
  N_t x C_t x ((P_t - 1) * stride + R_t) x ((Q_t - 1) * stride + S_t) (the sliding window's halo) and a weight
  tile of K_t x C_t x R_t x S_t; the accumulator holds the N_t x K_t x P_t x Q_t output tile. Inside a tile the
  array walks (r, s, K-fold, C-fold) weight blocks and streams the tile's N_t x P_t x Q_t output pixels past each;
* DRAM level: the tiles are visited in `order`, a permutation of the seven dims, outermost first. Tiles need not
  divide the bounds: the last tile along a dimension is partial, as in `loopnest.Mapping`.

Which operand a DRAM loop re-fetches depends on which tensors it indexes (`RELEVANT`): weights ignore N, P, Q;
inputs ignore K; outputs ignore C, R, S (the reduction). A loop with one trip indexes nothing (its tile never
changes), so orders that differ only in where their one-trip loops sit are the same loop nest
(`canonical_order`); `tstack.mapping.conv.cost` prices them identically and the mappers enumerate one of each.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from itertools import permutations

from tstack.errors import InfeasibleError
from tstack.hardware.design import design_of
from tstack.hardware.types import Hardware
from tstack.mapping.matmul.cost import OperandBits
from tstack.mapping.matmul.loopnest import MatmulShape

CONV_DIMS: tuple[str, ...] = ("N", "K", "C", "P", "Q", "R", "S")
CONV_ORDERS: tuple[tuple[str, ...], ...] = tuple(permutations(CONV_DIMS))  # index = the order code in arrays
_ORDER_CODE: dict[tuple[str, ...], int] = {o: i for i, o in enumerate(CONV_ORDERS)}

# the dims that index each tensor (a DRAM loop over any other dim re-uses the tensor's tile)
RELEVANT: dict[str, frozenset[str]] = {
    "weights": frozenset("KCRS"),
    "inputs": frozenset("NCPQRS"),
    "outputs": frozenset("NKPQ"),
}


def order_code(order: tuple[str, ...]) -> int:
    """The index of a DRAM loop order (outermost first) in CONV_ORDERS."""
    try:
        return _ORDER_CODE[tuple(order)]
    except KeyError:
        raise InfeasibleError(
            f"a conv loop order must be a permutation of {', '.join(CONV_DIMS)}, got {', '.join(order)}"
        ) from None


@dataclass(frozen=True, slots=True)
class ConvShape:
    """One convolution: n images, k output channels, c input channels, p x q output pixels, an r x s filter."""

    n: int
    k: int
    c: int
    p: int
    q: int
    r: int
    s: int
    stride: int = 1

    def __post_init__(self) -> None:
        for dim, value in (*zip(CONV_DIMS, self.bounds, strict=True), ("stride", self.stride)):
            try:
                positive = operator.index(value) > 0
            except TypeError:
                positive = False
            if not positive:
                what = "stride" if dim == "stride" else f"dimension {dim}"
                raise InfeasibleError(
                    f"convolution {what} must be a positive integer, got {value!r}"
                    + ("" if dim == "stride" else "; a conv with a zero dimension has nothing to map")
                )

    @property
    def bounds(self) -> tuple[int, int, int, int, int, int, int]:
        """The seven loop bounds in CONV_DIMS order."""
        return (self.n, self.k, self.c, self.p, self.q, self.r, self.s)

    @property
    def h(self) -> int:
        """Rows of the (padded) input."""
        return (self.p - 1) * self.stride + self.r

    @property
    def w(self) -> int:
        """Columns of the (padded) input."""
        return (self.q - 1) * self.stride + self.s

    @property
    def macs(self) -> int:
        return self.n * self.k * self.c * self.p * self.q * self.r * self.s

    def im2col(self) -> MatmulShape:
        """The conv as a matmul: output pixels x output channels, reduced over C x R x S."""
        return MatmulShape(self.n * self.p * self.q, self.k, self.c * self.r * self.s)

    @staticmethod
    def from_input(
        n: int, k: int, c: int, h: int, w: int, r: int, s: int, stride: int = 1, padding: int = 0
    ) -> ConvShape:
        """The conv of an h x w input (before padding) with `padding` zeros on every side."""
        rows, cols = h + 2 * padding - r, w + 2 * padding - s
        if rows < 0 or cols < 0:
            raise InfeasibleError(f"a {r}x{s} filter does not fit a {h}x{w} input with padding {padding}")
        return ConvShape(n, k, c, rows // stride + 1, cols // stride + 1, r, s, stride)


def input_tile_extent(p_tile: int, r_tile: int, stride: int) -> int:
    """Input rows (or columns) a tile of p_tile outputs and r_tile filter rows reads: the window with its halo."""
    return (p_tile - 1) * stride + r_tile


def tile_bytes(shape: ConvShape, tiles: tuple[int, ...], bits: OperandBits) -> tuple[float, float]:
    """Bytes of the scratchpad tile (input + weight tiles) and of the accumulator tile (outputs at acc width)."""
    tn, tk, tc, tp, tq, tr, ts = tiles
    inputs = tn * tc * input_tile_extent(tp, tr, shape.stride) * input_tile_extent(tq, ts, shape.stride)
    weights = tk * tc * tr * ts
    return (inputs * bits.a + weights * bits.b) / 8, tn * tk * tp * tq * bits.acc / 8


def canonical_order(order: tuple[str, ...], trips: dict[str, int]) -> tuple[str, ...]:
    """The order with its one-trip loops hoisted outermost (in CONV_DIMS order): the same loop nest."""
    trivial = tuple(d for d in CONV_DIMS if trips[d] == 1)
    return trivial + tuple(d for d in order if trips[d] > 1)


@dataclass(frozen=True, slots=True)
class ConvMapping:
    """On-chip tiles (in CONV_DIMS order, elements), the DRAM loop order (outermost first) and the spatial factors
    (None: the whole array, tiles folded over it). See the module docstring."""

    tiles: tuple[int, ...]
    order: tuple[str, ...] = CONV_DIMS
    spatial_c: int | None = None
    spatial_k: int | None = None

    def __post_init__(self) -> None:
        if len(self.tiles) != len(CONV_DIMS):
            raise InfeasibleError(
                f"a conv mapping has one tile per dimension ({', '.join(CONV_DIMS)}), got {len(self.tiles)} tiles"
            )
        for dim, tile in zip(CONV_DIMS, self.tiles, strict=True):
            if tile <= 0:
                raise InfeasibleError(f"tile {dim} must be positive, got {tile}")
        order_code(self.order)  # raises on a non-permutation
        for name, factor in (("spatial_c", self.spatial_c), ("spatial_k", self.spatial_k)):
            if factor is not None and factor <= 0:
                raise InfeasibleError(f"{name} must be positive, got {factor}")

    @staticmethod
    def of(order: tuple[str, ...] = CONV_DIMS, **tiles: int) -> ConvMapping:
        """A mapping from tiles by name (N=1, K=64, ...); a dim not named gets tile 1."""
        unknown = sorted(set(tiles) - set(CONV_DIMS))
        if unknown:
            raise InfeasibleError(f"unknown conv dimension {unknown[0]!r}; the dimensions are {', '.join(CONV_DIMS)}")
        return ConvMapping(tuple(tiles.get(d, 1) for d in CONV_DIMS), tuple(order))

    @property
    def order_code(self) -> int:
        return order_code(self.order)

    def tile(self, dim: str) -> int:
        return self.tiles[CONV_DIMS.index(dim)]

    def trips(self, shape: ConvShape) -> dict[str, int]:
        return {d: -(-b // t) for d, b, t in zip(CONV_DIMS, shape.bounds, self.tiles, strict=True)}

    def canonical(self, shape: ConvShape) -> ConvMapping:
        """The same loop nest with its one-trip DRAM loops hoisted outermost (what the mappers enumerate)."""
        return ConvMapping(self.tiles, canonical_order(self.order, self.trips(shape)), self.spatial_c, self.spatial_k)

    def check(self, shape: ConvShape, hw: Hardware, bits: OperandBits | None = None) -> None:
        """Raise `InfeasibleError` naming what is wrong if the mapping is not legal for `shape` on `hw`: a tile
        larger than its bound, a spatial fan-out beyond the array or not dividing its tile, or tiles that
        overflow the (double-buffered: half usable) scratchpad or accumulator."""
        for dim, bound, tile in zip(CONV_DIMS, shape.bounds, self.tiles, strict=True):
            if tile > bound:
                raise InfeasibleError(f"tile {dim}={tile} is larger than the bound {dim}={bound}")
        for name, factor, dim, extent, axis in (
            ("spatial_c", self.spatial_c, "C", hw.pe.rows, "rows"),
            ("spatial_k", self.spatial_k, "K", hw.pe.cols, "columns"),
        ):
            if factor is None:
                continue
            if factor > extent:
                raise InfeasibleError(f"{name}={factor} unrolls {dim} over more than the array's {extent} {axis}")
            if self.tile(dim) % factor:
                raise InfeasibleError(f"{name}={factor} does not divide tile {dim}={self.tile(dim)}")
        bits = bits or OperandBits()
        ab_bytes, c_bytes = tile_bytes(shape, self.tiles, bits)
        if self.spatial_k is not None:  # per-column accumulators (see cost.matmul_costs)
            tn, tk, _, tp, tq, _, _ = self.tiles
            c_bytes = tn * tp * tq * -(-tk // self.spatial_k) * hw.pe.cols * bits.acc / 8
        design_of(hw).check_fits(ab_bytes, c_bytes, "input and weight tiles", "output tile", "use smaller tiles")

    def summary(self) -> str:
        """One line: the tiles by dimension, then the DRAM order (outermost first)."""
        return " ".join(f"{d}{t}" for d, t in zip(CONV_DIMS, self.tiles, strict=True)) + f", {''.join(self.order)}"

    def loop_nest(self, shape: ConvShape, rows: int, cols: int) -> str:
        """The mapping printed as a loop nest, DRAM level outermost, as Timeloop prints one."""
        trips = self.trips(shape)
        lines = ["---- DRAM ----"]
        depth = 0
        for d in self.order:
            lines.append("  " * depth + f"for {d}1 in [0:{trips[d]})")
            depth += 1
        tn, tk, tc, tp, tq, tr, ts = self.tiles
        h_t, w_t = input_tile_extent(tp, tr, shape.stride), input_tile_extent(tq, ts, shape.stride)
        lines.append(
            "  " * depth + f"---- on-chip (scratchpad: input {tn}x{tc}x{h_t}x{w_t}, weights {tk}x{tc}x{tr}x{ts}; "
            f"accumulator: outputs {tn}x{tk}x{tp}x{tq}) ----"
        )
        spatial_c = self.spatial_c or rows
        spatial_k = self.spatial_k or cols
        inner = {
            "R": tr,
            "S": ts,
            "K": -(-tk // spatial_k),
            "C": -(-tc // spatial_c),
            "N": tn,
            "P": tp,
            "Q": tq,
        }
        for d in ("R", "S", "K", "C", "N", "P", "Q"):  # per weight block (r, s, K-fold, C-fold), stream the pixels
            lines.append("  " * depth + f"for {d}0 in [0:{inner[d]})")
            depth += 1
        lines.append("  " * depth + f"for C in [0:{spatial_c}) (spatial, rows)")
        lines.append("  " * (depth + 1) + f"for K in [0:{spatial_k}) (spatial, cols)")
        return "\n".join(lines)
