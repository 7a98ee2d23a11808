"""Loop-nest mappings of a matmul onto a weight-stationary PE array with an on-chip tile level and DRAM.

A `Mapping` of C[M, N] += A[M, K] @ B[K, N] says: K is unrolled over the array's rows and N over its columns
(the spatial level); the on-chip level holds an A tile of tile_m x tile_k, a B tile of tile_k x tile_n and a C
tile of tile_m x tile_n; the DRAM level iterates over tiles in `order` (outermost first). Tiles need not divide
the bounds: the last tile along a dimension is partial, as in Gemmini's padded edge tiles, so per dimension the
tiles cover the bound exactly. The mapping-search issue explores these fields; a Gemmini tiling is one point.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

from tstack.errors import InfeasibleError
from tstack.mapping.matmul.gemmini_tiler import GemminiTiling

DIMS = ("m", "n", "k")
ORDERS: tuple[tuple[str, ...], ...] = tuple(permutations(DIMS))  # index = the `order` code in arrays


@dataclass(frozen=True, slots=True)
class MatmulShape:
    """One matmul instance (repeated `batch` times with different operands, e.g. one per head)."""

    m: int
    n: int
    k: int
    batch: int = 1

    @property
    def macs(self) -> int:
        return self.batch * self.m * self.n * self.k


@dataclass(frozen=True, slots=True)
class Mapping:
    tile_m: int
    tile_n: int
    tile_k: int
    order: tuple[str, ...] = ("m", "n", "k")

    def __post_init__(self) -> None:
        if min(self.tile_m, self.tile_n, self.tile_k) <= 0:
            raise InfeasibleError(f"tile sizes must be positive, got {self.tile_m}x{self.tile_n}x{self.tile_k}")
        if tuple(sorted(self.order)) != ("k", "m", "n"):
            raise InfeasibleError(f"loop order must be a permutation of m, n, k, got {self.order}")

    @property
    def order_code(self) -> int:
        return ORDERS.index(self.order)

    def trips(self, shape: MatmulShape) -> dict[str, int]:
        return {
            "m": -(-shape.m // self.tile_m),
            "n": -(-shape.n // self.tile_n),
            "k": -(-shape.k // self.tile_k),
        }

    def loop_nest(self, shape: MatmulShape, rows: int, cols: int) -> str:
        """The mapping printed as a loop nest, DRAM level outermost, as Timeloop prints one."""
        trips = self.trips(shape)
        tiles = {"m": self.tile_m, "n": self.tile_n, "k": self.tile_k}
        lines = ["---- DRAM ----"]
        depth = 0
        if shape.batch > 1:
            lines.append(f"for b in [0:{shape.batch})")
            depth += 1
        for d in self.order:
            lines.append("  " * depth + f"for {d}1 in [0:{trips[d]})")
            depth += 1
        lines.append("  " * depth + "---- on-chip (A, B tiles in scratchpad; C tile in accumulator) ----")
        inner = {"m": tiles["m"], "n": -(-tiles["n"] // cols), "k": -(-tiles["k"] // rows)}
        for d in ("n", "k", "m"):  # weight-stationary: per (n, k) block of weights, stream the m rows
            lines.append("  " * depth + f"for {d}0 in [0:{inner[d]})")
            depth += 1
        lines.append("  " * depth + f"for k in [0:{rows}) (spatial, rows)")
        lines.append("  " * (depth + 1) + f"for n in [0:{cols}) (spatial, cols)")
        return "\n".join(lines)

    @staticmethod
    def from_gemmini(tiling: GemminiTiling, dim: int) -> Mapping:
        """Gemmini's tiled_matmul loops i0 (outer), j0, k0 (inner) over tiles of tile_I x tile_J x tile_K blocks."""
        return Mapping(tiling.tile_i * dim, tiling.tile_j * dim, tiling.tile_k * dim, ("m", "n", "k"))
