"""Mappings in and out: Timeloop-style mapping YAML, and Gemmini tile triples.

Two forms. One-tile mappings (`Mapping`): Timeloop's format lists, per storage level, the tiling factors of each problem
dimension and the loop permutation (inner to outer). tstack's matmul mapping has three levels: DRAM (temporal, the tile
loops in `order`), the on-chip buffers (temporal, within a tile) and the array (spatial: K over rows, N over columns).
Dimension names follow Timeloop's GEMM convention here: M rows, N output columns, K reduction. Factors must divide
(perfect factorization), so the product of a dimension's factors equals its bound; anything else is an error naming the
dimension. Multi-level nests (`tstack.mapping.nest.matmul.Nests`): every level of Gemmini's Timeloop description, in its
naming (`nest_to_timeloop`, `nest_from_timeloop`), so a nest found here runs in Timeloop with that description.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tstack.errors import InfeasibleError, SpecError
from tstack.hardware.types import Hardware
from tstack.mapping.conv.loopnest import CONV_DIMS, ConvMapping, ConvShape
from tstack.mapping.matmul.gemmini_tiler import GemminiTiling
from tstack.mapping.matmul.loopnest import DIMS as NEST_DIMS
from tstack.mapping.matmul.loopnest import ORDERS, Mapping, MatmulShape
from tstack.mapping.nest.matmul import NestHardware, Nests
from tstack.mapping.nest.matmul import tiles as nest_tiles

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


def names_conv_dims(data: Any) -> bool:
    """Whether a mapping document's factors name a conv-only dimension (R, S, P, Q or C)."""
    levels = data.get("mapping") if isinstance(data, dict) else None
    if not isinstance(levels, list):
        return False
    names = {
        part.partition("=")[0]
        for d in levels
        if isinstance(d, dict) and isinstance(d.get("factors"), str)
        for part in d["factors"].split()
    }
    return bool(names & {"R", "S", "P", "Q", "C"})


def to_gemmini_triple(mapping: Mapping, dim: int) -> GemminiTiling:
    """Tile sizes in DIM x DIM blocks, as `tiled_matmul(..., tile_I, tile_J, tile_K, ...)` takes them."""
    if mapping.order != ("m", "n", "k"):
        raise SpecError(f"Gemmini's tiled_matmul loops i, j, k (outer to inner); this mapping orders {mapping.order}")
    return GemminiTiling(-(-mapping.tile_m // dim), -(-mapping.tile_n // dim), -(-mapping.tile_k // dim))


# Multi-level nests (tstack.mapping.nest.matmul) in the naming of Gemmini's Timeloop description (paper-digest §5.4):
# its problem is a CNN layer (R, S, P, Q, C, K, N), a matmul M x N x K runs as P = M, C = K (reduction), K = N (output
# columns); the levels are DRAM, Scratchpad, Accumulator and Registers; the column spatial factor is the
# Scratchpad's, the row (reduction) one the Accumulator's, as in its mapspace.yaml.
GEMMINI_PROBLEM_DIMS = ("R", "S", "P", "Q", "C", "K", "N")
NEST_TO_GEMMINI = {"m": "P", "n": "K", "k": "C"}
GEMMINI_TARGETS = ("DRAM", "Scratchpad", "Accumulator", "Registers")  # outermost first, as nest.LEVELS
GEMMINI_KEEPS = {
    "DRAM": ["Weights", "Inputs", "Outputs"],
    "Scratchpad": ["Inputs", "Weights"],
    "Accumulator": ["Outputs"],
    "Registers": ["Weights"],
}
GEMMINI_SPATIAL = {"Scratchpad": "n", "Accumulator": "k"}  # which matmul dim each spatial directive unrolls


def _gemmini_factors(values: dict[str, int]) -> str:
    return " ".join(f"{d}={values.get(d, 1)}" for d in GEMMINI_PROBLEM_DIMS)


def nest_to_timeloop(nests: Nests, i: int = 0) -> dict[str, Any]:
    """Nest `i` as a Timeloop mapping (a dict) for Gemmini's Timeloop description: per level a temporal directive
    (factors and permutation, inner to outer, the unit dims innermost), the two spatial directives and the bypass
    directives of its mapspace.yaml."""
    directives: list[dict[str, Any]] = []
    for lv in reversed(range(len(GEMMINI_TARGETS))):
        target = GEMMINI_TARGETS[lv]
        factors = {NEST_TO_GEMMINI[d]: int(nests.factors[i, lv, j]) for j, d in enumerate(NEST_DIMS)}
        order = ORDERS[int(nests.orders[i, lv])]
        permutation = "RSQN" + "".join(NEST_TO_GEMMINI[d] for d in reversed(order))
        directives.append({"target": target, "type": "temporal", "factors": _gemmini_factors(factors),
                           "permutation": permutation})  # fmt: skip
        if target in GEMMINI_SPATIAL:
            dim = GEMMINI_SPATIAL[target]
            side = int(nests.spatial_n[i] if dim == "n" else nests.spatial_k[i])
            name = NEST_TO_GEMMINI[dim]
            rest = "".join(d for d in GEMMINI_PROBLEM_DIMS if d != name)
            directives.append({"target": target, "type": "spatial", "factors": _gemmini_factors({name: side}),
                               "permutation": name + rest})  # fmt: skip
    return {"mapping": [*directives, *_bypass_directives()]}


def _parse_problem_factors(text: Any, where: str) -> dict[str, int]:
    """Factors over the conv-layer problem's seven dims (R, S, P, Q, C, K, N); a dim not named is 1."""
    if not isinstance(text, str):
        raise SpecError(f"{where}: factors must be a string like 'R=3 S=3 P=7 Q=7 C=16 K=16 N=1'")
    out = dict.fromkeys(GEMMINI_PROBLEM_DIMS, 1)
    for part in text.split():
        name, _, value = part.partition("=")
        if name not in out or not value.isdigit() or int(value) <= 0:
            raise SpecError(
                f"{where}: bad factor {part!r}; write one of {', '.join(GEMMINI_PROBLEM_DIMS)} = a positive integer"
            )
        out[name] = int(value)
    return out


def _bypass_directives() -> list[dict[str, Any]]:
    """The keep/bypass rules of Gemmini's mapspace.yaml, one directive per level."""
    return [
        {
            "target": t,
            "type": "bypass",
            "keep": keep,
            "bypass": [x for x in ("Weights", "Inputs", "Outputs") if x not in keep],
        }
        for t, keep in GEMMINI_KEEPS.items()
    ]


def _parse_matmul_factors(text: Any, where: str) -> dict[str, int]:
    out = _parse_problem_factors(text, where)
    extra = [d for d in ("R", "S", "Q", "N") if out[d] != 1]
    if extra:
        raise SpecError(f"{where}: a matmul has no {', '.join(extra)} loop (P = M, C = K, K = N); set them to 1")
    return out


def nest_from_timeloop(data: Any, shape: MatmulShape, hw: Hardware, origin: str = "mapping") -> Nests:
    """A nest from a Timeloop mapping for Gemmini's description (`nest_to_timeloop`'s format; bypass directives
    are read past, the bypass rules being the architecture's). Checks every factor product against its bound and
    every tile against its buffer, naming what is wrong."""
    levels = data.get("mapping") if isinstance(data, dict) else None
    if not isinstance(levels, list) or not levels:
        raise SpecError(f"{origin}: expected a top-level 'mapping:' list of directives")
    factors = np.ones((1, len(GEMMINI_TARGETS), 3), dtype=np.int64)
    orders = np.zeros((1, len(GEMMINI_TARGETS)), dtype=np.int64)
    spatial = {"n": 1, "k": 1}
    targets = {t.lower(): lv for lv, t in enumerate(GEMMINI_TARGETS)}
    for i, d in enumerate(levels):
        where = f"{origin}: mapping[{i}]"
        if not isinstance(d, dict):
            raise SpecError(f"{where}: each directive needs target and type")
        kind, target = str(d.get("type", "")), str(d.get("target", ""))
        if kind == "bypass":
            continue
        if target.lower() not in targets:
            raise SpecError(f"{where}: unknown target {target!r}; Gemmini's levels are {', '.join(GEMMINI_TARGETS)}")
        lv = targets[target.lower()]
        f = _parse_matmul_factors(d.get("factors"), where)
        if kind == "temporal":
            factors[0, lv] = [f[NEST_TO_GEMMINI[x]] for x in NEST_DIMS]
            perm = [c for c in str(d.get("permutation", "PCK")).upper() if c in ("P", "C", "K")]
            if sorted(perm) != ["C", "K", "P"]:
                raise SpecError(f"{where}: the permutation must order P, C and K (inner to outer)")
            back = {v: k for k, v in NEST_TO_GEMMINI.items()}
            orders[0, lv] = ORDERS.index(tuple(back[c] for c in reversed(perm)))
        elif kind == "spatial":
            dim = GEMMINI_SPATIAL.get(GEMMINI_TARGETS[lv])
            other = [x for x in ("P", "C", "K") if f[x] != 1 and (dim is None or x != NEST_TO_GEMMINI[dim])]
            if dim is None or other:
                raise SpecError(
                    f"{where}: Gemmini unrolls only K (output columns) at the Scratchpad and C (the reduction) at "
                    "the Accumulator"
                )
            spatial[dim] = f[NEST_TO_GEMMINI[dim]]
        else:
            raise SpecError(f"{where}: type must be temporal, spatial or bypass, got {kind!r}")
    nests = Nests(factors, orders, np.array([spatial["n"]]), np.array([spatial["k"]]))
    products = factors[0].prod(axis=0) * np.array([1, spatial["n"], spatial["k"]])
    for j, (d, bound) in enumerate(zip(NEST_DIMS, (shape.m, shape.n, shape.k), strict=True)):
        if products[j] != bound:
            g = NEST_TO_GEMMINI[d]
            raise SpecError(
                f"{origin}: the factors of {g} multiply to {products[j]}, but {g} = {bound}; fix the factors"
            )
    check_nest_fits(nests, hw, origin)
    return nests


def check_nest_fits(nests: Nests, hw: Hardware, origin: str) -> None:
    """Raise naming the first buffer (or array side) nest 0 overflows."""
    nh = NestHardware.of(hw)
    t = nest_tiles(nests)
    spad = int(t["scratchpad_inputs"][0] + t["scratchpad_weights"][0])
    checks = [
        (spad, nh.scratchpad_elements, "the Scratchpad tile (inputs + weights)", "elements"),
        (int(t["accumulator_outputs"][0]), nh.accumulator_elements_per_column, "an Accumulator's output tile",
         "entries per PE column"),
        (int(t["register_weights"][0]), 1, "a PE register's weight tile", "weight"),
        (int(nests.spatial_n[0]), nh.cols, "the K (column) spatial factor", "PE columns"),
        (int(nests.spatial_k[0]), nh.rows, "the C (row) spatial factor", "PE rows"),
    ]  # fmt: skip
    for used, limit, what, unit in checks:
        if used > limit:
            raise SpecError(f"{origin}: {what} needs {used} but {hw.name} has {limit} {unit}; move factors outward")


# 7-loop conv mappings (tstack.mapping.conv.loopnest) in the same naming: Gemmini's Timeloop problem *is* a conv layer
# (tstack's N, K, C, P, Q, R, S are Timeloop's N, K, C, P, Q, R, S). The DRAM directive holds the tile loops in the
# mapping's order; the tile sits at the Accumulator level in tstack's weight-stationary order (R, S, K, C outer; N, P, Q
# streamed); C is unrolled over the rows and K over the columns by the largest divisor of the tile up to the array
# side (Timeloop needs perfect factors; where a tile is not a multiple of the side, tstack prices the folds instead).
_CONV_ONCHIP_PERMUTATION = "QPNCKSR"  # inner to outer: tstack's on-chip order R, S, K, C, N, P, Q reversed


def _largest_divisor_upto(value: int, side: int) -> int:
    return max(d for d in range(1, min(value, side) + 1) if value % d == 0)


def conv_to_timeloop(mapping: ConvMapping, shape: ConvShape, hw: Hardware) -> dict[str, Any]:
    """A conv mapping as a Timeloop mapping for Gemmini's Timeloop description; every tile must divide its bound."""
    bounds = dict(zip(CONV_DIMS, shape.bounds, strict=True))
    tiles = dict(zip(CONV_DIMS, mapping.tiles, strict=True))
    for d in CONV_DIMS:
        if bounds[d] % tiles[d]:
            raise SpecError(
                f"tile {d}={tiles[d]} does not divide {d}={bounds[d]}; Timeloop mappings need perfect factors"
            )
    rows = mapping.spatial_c or _largest_divisor_upto(tiles["C"], hw.pe.rows)
    cols = mapping.spatial_k or _largest_divisor_upto(tiles["K"], hw.pe.cols)
    onchip = {**tiles, "C": tiles["C"] // rows, "K": tiles["K"] // cols}
    dram = {d: bounds[d] // tiles[d] for d in CONV_DIMS}
    ones = dict.fromkeys(GEMMINI_PROBLEM_DIMS, 1)
    return {
        "mapping": [
            {"target": "Registers", "type": "temporal", "factors": _gemmini_factors(ones), "permutation": "QPNCKSR"},
            {"target": "Accumulator", "type": "temporal", "factors": _gemmini_factors(onchip),
             "permutation": _CONV_ONCHIP_PERMUTATION},
            {"target": "Accumulator", "type": "spatial", "factors": _gemmini_factors({"C": rows}),
             "permutation": "CRSPQKN"},
            {"target": "Scratchpad", "type": "temporal", "factors": _gemmini_factors(ones), "permutation": "QPNCKSR"},
            {"target": "Scratchpad", "type": "spatial", "factors": _gemmini_factors({"K": cols}),
             "permutation": "KRSPQCN"},
            {"target": "DRAM", "type": "temporal", "factors": _gemmini_factors(dram),
             "permutation": "".join(reversed(mapping.order))},
            *_bypass_directives(),
        ]
    }  # fmt: skip


def conv_from_timeloop(data: Any, shape: ConvShape, hw: Hardware, origin: str = "mapping") -> ConvMapping:
    """A conv mapping from a Timeloop mapping for Gemmini's description: the DRAM directive gives the order and the
    tile loops, every other level's factors multiply into the tile, the Accumulator's spatial C and the Scratchpad's
    spatial K give the array's unrolling (on-chip permutations are tstack's fixed weight-stationary order and are read
    past). Checks every factor product against its bound and the tiles against the design, naming what is wrong."""
    levels = data.get("mapping") if isinstance(data, dict) else None
    if not isinstance(levels, list) or not levels:
        raise SpecError(f"{origin}: expected a top-level 'mapping:' list of directives")
    product = dict.fromkeys(CONV_DIMS, 1)
    tile = dict.fromkeys(CONV_DIMS, 1)
    order: tuple[str, ...] | None = None
    spatial: dict[str, int | None] = {"C": None, "K": None}
    for i, d in enumerate(levels):
        where = f"{origin}: mapping[{i}]"
        if not isinstance(d, dict):
            raise SpecError(f"{where}: each directive needs target and type")
        kind, target = str(d.get("type", "")), str(d.get("target", "")).lower()
        if kind == "bypass":
            continue
        if target not in {t.lower() for t in GEMMINI_TARGETS}:
            raise SpecError(
                f"{where}: unknown target {d.get('target')!r}; Gemmini's levels are {', '.join(GEMMINI_TARGETS)}"
            )
        f = _parse_problem_factors(d.get("factors"), where)
        for dim in CONV_DIMS:
            product[dim] *= f[dim]
            if target != "dram":
                tile[dim] *= f[dim]
        if kind == "temporal" and target == "dram":
            perm = [c for c in str(d.get("permutation", "")).upper() if c in CONV_DIMS]
            if sorted(perm) != sorted(CONV_DIMS):
                raise SpecError(
                    f"{where}: the DRAM permutation must order all of {', '.join(CONV_DIMS)} (inner to outer)"
                )
            order = tuple(reversed(perm))
        elif kind == "spatial":
            unrolled = {"accumulator": "C", "scratchpad": "K"}.get(target)
            if unrolled is None or any(f[x] != 1 for x in CONV_DIMS if x != unrolled):
                raise SpecError(
                    f"{where}: Gemmini unrolls only K (output channels) at the Scratchpad and C at the Accumulator"
                )
            spatial[unrolled] = f[unrolled]
        elif kind != "temporal":
            raise SpecError(f"{where}: type must be temporal, spatial or bypass, got {kind!r}")
    for dim, bound in zip(CONV_DIMS, shape.bounds, strict=True):
        if product[dim] != bound:
            raise SpecError(
                f"{origin}: the factors of {dim} multiply to {product[dim]}, but {dim} = {bound}; fix the factors"
            )
    if order is None:
        raise SpecError(f"{origin}: no DRAM temporal directive; it gives the loop order over the tiles")
    mapping = ConvMapping(tuple(tile[d] for d in CONV_DIMS), order, spatial["C"], spatial["K"])
    try:
        mapping.check(shape, hw)
    except InfeasibleError as exc:
        raise SpecError(f"{origin}: {exc}") from None
    return mapping
