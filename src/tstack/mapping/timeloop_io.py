"""Mappings in and out: Timeloop-style mapping YAML, and Gemmini tile triples.

Timeloop's format lists, per storage level, the tiling factors of each problem dimension and the loop permutation
(inner to outer). tstack's matmul mapping has three levels: DRAM (temporal, the tile loops in `order`), the on-chip
buffers (temporal, within a tile) and the array (spatial: K over rows, N over columns). Dimension names follow
Timeloop's GEMM convention here: M rows, N output columns, K reduction. Factors must divide (perfect factorization),
so the product of a dimension's factors equals its bound; anything else is an error naming the dimension.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tstack.errors import SpecError
from tstack.mapping.gemmini_tiler import GemminiTiling
from tstack.mapping.loopnest import Mapping, MatmulShape

DIMS = ("M", "N", "K")


def _factors_text(factors: dict[str, int]) -> str:
    return " ".join(f"{d}={factors[d]}" for d in DIMS)


def to_timeloop(mapping: Mapping, shape: MatmulShape, rows: int, cols: int) -> dict[str, Any]:
    """The mapping as Timeloop mapping YAML (a dict); every tile must divide its bound."""
    bounds = {"M": shape.m, "N": shape.n, "K": shape.k}
    tiles = {"M": mapping.tile_m, "N": mapping.tile_n, "K": mapping.tile_k}
    for d in DIMS:
        if bounds[d] % tiles[d]:
            raise SpecError(
                f"tile {d}={tiles[d]} does not divide {d}={bounds[d]}; Timeloop mappings need perfect factors"
            )
    spatial = {"M": 1, "N": min(cols, tiles["N"]), "K": min(rows, tiles["K"])}
    for d in ("N", "K"):
        if tiles[d] % spatial[d]:
            spatial[d] = 1
    onchip = {d: tiles[d] // spatial[d] for d in DIMS}
    dram = {d: bounds[d] // tiles[d] for d in DIMS}
    order = "".join(d.upper() for d in reversed(mapping.order))  # inner to outer
    return {
        "mapping": [
            {"target": "DRAM", "type": "temporal", "factors": _factors_text(dram), "permutation": order},
            {"target": "Buffer", "type": "temporal", "factors": _factors_text(onchip), "permutation": "MKN"},
            {"target": "Buffer", "type": "spatial", "factors": _factors_text(spatial), "permutation": "KN"},
        ]
    }


def _parse_factors(text: Any, where: str) -> dict[str, int]:
    if not isinstance(text, str):
        raise SpecError(f"{where}: factors must be a string like 'M=4 N=2 K=1'")
    out = {d: 1 for d in DIMS}
    for part in text.split():
        name, _, value = part.partition("=")
        if name not in DIMS or not value.isdigit() or int(value) <= 0:
            raise SpecError(f"{where}: bad factor {part!r}; write M=, N= or K= with a positive integer")
        out[name] = int(value)
    return out


def from_timeloop(data: Any, shape: MatmulShape, origin: str = "mapping") -> Mapping:
    """A tstack mapping from Timeloop mapping YAML; checks each dimension's factor product against its bound."""
    levels = data.get("mapping") if isinstance(data, dict) else None
    if not isinstance(levels, list) or not levels:
        raise SpecError(f"{origin}: expected a top-level 'mapping:' list of levels")
    product = {d: 1 for d in DIMS}
    onchip = {d: 1 for d in DIMS}
    order: tuple[str, ...] | None = None
    for i, level in enumerate(levels):
        where = f"{origin}: mapping[{i}]"
        if not isinstance(level, dict) or "factors" not in level:
            raise SpecError(f"{where}: each level needs target, type and factors")
        factors = _parse_factors(level["factors"], where)
        for d in DIMS:
            product[d] *= factors[d]
        if str(level.get("target", "")).upper() == "DRAM":
            perm = str(level.get("permutation", "KNM")).upper()
            if sorted(perm) != ["K", "M", "N"]:
                raise SpecError(f"{where}: permutation must order M, N and K, got {perm!r}")
            order = tuple(d.lower() for d in reversed(perm))
        else:
            for d in DIMS:
                onchip[d] *= factors[d]
    bounds = {"M": shape.m, "N": shape.n, "K": shape.k}
    for d in DIMS:
        if product[d] != bounds[d]:
            raise SpecError(
                f"{origin}: the factors of {d} multiply to {product[d]}, but {d} = {bounds[d]}; fix the factors"
            )
    if order is None:
        raise SpecError(f"{origin}: no DRAM level; the outermost level must target DRAM")
    return Mapping(onchip["M"], onchip["N"], onchip["K"], order)


def load_timeloop(path: Path, shape: MatmulShape) -> Mapping:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read mapping file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return from_timeloop(data, shape, str(path))


def to_gemmini_triple(mapping: Mapping, dim: int) -> GemminiTiling:
    """Tile sizes in DIM x DIM blocks, as `tiled_matmul(..., tile_I, tile_J, tile_K, ...)` takes them."""
    if mapping.order != ("m", "n", "k"):
        raise SpecError(f"Gemmini's tiled_matmul loops i, j, k (outer to inner); this mapping orders {mapping.order}")
    return GemminiTiling(-(-mapping.tile_m // dim), -(-mapping.tile_n // dim), -(-mapping.tile_k // dim))
