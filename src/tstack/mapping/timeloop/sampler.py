"""Timeloop's random mapper as a sampler of nests: uniform *mapping IDs*, not uniform valid factorizations.

Timeloop (NVlabs/timeloop eb92a7d, Dec 2022; `src/mapspaces/uber.cpp`, `src/mapspaces/subspaces.cpp`,
`src/search/random.cpp`, `src/applications/mapper/mapper-thread.cpp`) indexes a mapspace by an ID with four
coordinates and its `random` search draws each uniformly and independently:
* IndexFactorization: per problem dimension, the ordered factorizations of its bound over the tiling levels that meet
  the fixed (`=`) and maximum (`<=`) factors of the constraints (`Factors(...).PruneMax`), the cartesian product of
  the dimensions' lists. A tiling level is each storage level's temporal loops plus, where the level fans out to more
  than one inner instance, its spatial loops.
* LoopPermutation: per tiling level, the dimensions the constraints' permutation does not name are permuted freely
  (factoradic index over the "infix"), the named ones stay innermost (prefix; after `_`, outermost: suffix). The
  innermost tiling level, and a 1-D spatial level without a user permutation, take the canonical order (one choice).
* Spatial: per spatial level, the X/Y split point of its loop list (loops before it go to X, the rest to Y), one of
  NumDims + 1 = 8 values (a `split:` in the constraints fixes it).
* DatatypeBypass: per dataspace, every storage level but the outermost that the constraints leave open is kept or
  bypassed (`InitDatatypeBypassNestSpace`).
An ID is turned into a mapping and rejected when the X (Y) product of a spatial level's factors exceeds its fanout X
(Y) (`AssignSpatialTilingDirections_Level_Expand`, "mapped fanoutX ... exceeds hardware fanoutX"), or when a tile does
not fit (`PreEvaluationCheck`); the valid ones are evaluated and logged. Two IDs that differ only in the order of
one-trip loops, or in the split of a level whose loops are all one-trip, are the same mapping drawn twice: so every
valid factorization is drawn with a weight, the share of its permutations and splits that place its spatial factors.
On Gemmini's files (`arch_default.yaml`: Accumulator and Registers without `meshX`, so every fanout lies along X;
`mapspace.yaml`: the Accumulator's spatial permutation `QKC` puts C third, the Scratchpad's is canonical, K sixth) a
C over the rows survives 5 of the 8 splits and a K over the columns 2 of 8: mappings that leave the array idle are
over-weighted 1.6x and 4x against the uniform draw over valid factorizations of `tstack.mapping.nest.matmul.sample`.

`sample_ids` reproduces that draw over the nest model's mapspace (vectorized: factorizations as in `nest.sample`,
then each spatial level's position of its unrolled dimension and its split, then the fanout and capacity checks);
`subspace_sizes` gives the four sizes Timeloop prints ("Mapspace Dimension [...] Size"). The nest model is Gemmini's
hierarchy, so a file whose mapspace leaves that hierarchy (a bypass left open, a dimension other than K unrollable
over the columns or C over the rows) is refused with what to add.

Not reproduced: Timeloop gives each subspace's `RandomGenerator128` its own default-seeded engine, so its coordinates
come from identical raw streams and a run has no seed; here they are independent. Against the real binary on
Gemmini's files (benchmarks/RESULTS-mapping.md, section G) the subspace sizes are equal, the valid share of drawn
IDs agrees to four digits and the statistics lie within sampling noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from tstack.errors import InfeasibleError, SpecError
from tstack.hardware.types import Hardware
from tstack.mapping.matmul.loopnest import ORDERS, MatmulShape
from tstack.mapping.nest import factorization
from tstack.mapping.nest import matmul as nest
from tstack.mapping.nest.matmul import K, N, NestConstraints, NestHardware, Nests
from tstack.mapping.timeloop.arch import _components
from tstack.mapping.timeloop.constraints import _directives, read_nest_constraints
from tstack.mapping.timeloop.mapping_io import GEMMINI_KEEPS, GEMMINI_PROBLEM_DIMS, GEMMINI_TARGETS, NEST_TO_GEMMINI

_SPLITS = len(GEMMINI_PROBLEM_DIMS) + 1  # a spatial level's split point: 0..7 loops along X
_DATASPACES = ("Weights", "Inputs", "Outputs")
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class TimeloopEnergies:
    """Per-access energies (pJ) of the components of a Timeloop architecture, as Timeloop's `pat` model prices them
    (for Gemmini's `arch_default.yaml`: measured, `tstack.spec.timeloop.timeloop_pat_energies`)."""

    macc_pj: float
    registers_pj: float
    accumulator_pj: float
    scratchpad_pj: float
    dram_pj: float


class Sampler(StrEnum):
    UNIFORM = "uniform"  # uniform over valid factorizations, orders uniform (tstack.mapping.nest.matmul.sample)
    TIMELOOP_IDS = "timeloop-ids"  # uniform over Timeloop mapping IDs, invalid ones rejected (this module)


@dataclass(frozen=True, slots=True)
class SpatialLevel:
    """One of Gemmini's two spatial levels as Timeloop's mapspace sees it: the Scratchpad fanning out to the
    Accumulators (K = n over the PE columns) or an Accumulator fanning out to its Registers (C = k over the rows)."""

    target: str
    dim: int  # the nest dimension it unrolls (nest.N or nest.K)
    fanout_x: int
    fanout_y: int
    positions: tuple[int, ...]  # where the unrolled dimension can sit in the level's loop list, each equally likely
    split: int | None  # the constraints' split point, or None: drawn from 0.._SPLITS - 1
    permutations: int  # this level's share of the LoopPermutation subspace


@dataclass(frozen=True, slots=True)
class IdSpace:
    """What Timeloop's mapping IDs add to a nest mapspace (module docstring)."""

    constraints: NestConstraints
    spatial: tuple[SpatialLevel, ...]
    temporal_permutations: int  # the temporal levels' share of the LoopPermutation subspace
    bypass: int  # size of the DatatypeBypass subspace
    name: str


def _pattern(permutation: Any) -> tuple[list[str], list[str]]:
    """Timeloop's (prefix, suffix) of a permutation string: inner to outer, `_` separates the outermost suffix."""
    text = str(permutation).split("#")[0].replace(" ", "")
    prefix, _, suffix = text.partition("_")
    return list(prefix), list(suffix)


def _spatial_level(
    target: str, dim: int, fanout: tuple[int, int], directive: dict[str, Any] | None, where: str
) -> SpatialLevel:
    prefix, suffix = _pattern(directive.get("permutation", "")) if directive else ([], [])
    fx, fy = fanout
    name = NEST_TO_GEMMINI["n" if dim == N else "k"]
    if prefix or suffix or (fx > 1 and fy > 1):
        infix = [d for d in GEMMINI_PROBLEM_DIMS if d not in prefix and d not in suffix]  # Timeloop: by dimension ID
        if name in prefix:
            positions: tuple[int, ...] = (prefix.index(name),)
        elif name in suffix:
            positions = (len(prefix) + len(infix) + suffix.index(name),)
        else:
            positions = tuple(range(len(prefix), len(prefix) + len(infix)))
        permutations = math.factorial(len(infix))
    else:
        positions, permutations = (GEMMINI_PROBLEM_DIMS.index(name),), 1  # canonical order
    split = directive.get("split") if directive else None
    if split is not None and (isinstance(split, bool) or not isinstance(split, int) or split < 0):
        raise SpecError(f"{where}: the {target}'s spatial split must be a non-negative integer, got {split!r}")
    return SpatialLevel(target, dim, fx, fy, positions, split, permutations)


def _mesh(attrs: dict[str, Any], multiplicity: int) -> tuple[int, int]:
    """(meshX, meshY) as Timeloop's BufferLevel/ArithmeticUnits::ValidateTopology complete them."""
    instances = int(attrs.get("instances", multiplicity))
    mx, my = attrs.get("meshX"), attrs.get("meshY")
    if mx is not None and my is not None:
        return int(mx), int(my)
    if mx is not None:
        return int(mx), instances // int(mx)
    if my is not None:
        return instances // int(my), int(my)
    return instances, 1


def arch_fanouts(arch: Any, origin: str = "arch") -> dict[str, tuple[int, int]]:
    """Fanout (X, Y) from each of Scratchpad, Accumulator and Registers to the level inside it, from a Timeloop v0.3
    architecture (`ArchProperties::DeriveFanouts`: inner mesh / outer mesh per axis)."""
    root = arch.get("architecture") if isinstance(arch, dict) else None
    if not isinstance(root, dict) or not isinstance(root.get("subtree"), list):
        raise SpecError(f"{origin}: expected a Timeloop v0.3 architecture ('architecture:' with a 'subtree:' list)")
    comps: dict[str, tuple[dict[str, Any], int]] = {}
    for node in root["subtree"]:
        _components(node, 1, comps, origin)
    by_name = {n.lower(): n for n in comps}
    chain = ("scratchpad", "accumulator", "registers", "macc")
    missing = [c for c in chain if c not in by_name]
    if missing:
        raise SpecError(f"{origin}: Timeloop's sampler needs components {', '.join(chain)}; missing {missing[0]}")
    mesh = [_mesh(*comps[by_name[c]]) for c in chain]
    out = {}
    for (outer, inner), target in zip(pairwise(mesh), ("Scratchpad", "Accumulator", "Registers"), strict=True):
        if inner[0] % outer[0] or inner[1] % outer[1]:
            raise SpecError(f"{origin}: the {target}'s mesh {outer} does not divide the one inside it {inner}")
        out[target] = (inner[0] // outer[0], inner[1] // outer[1])
    return out


def _bypass_count(directives: list[Any], where: str) -> int:
    """Size of the DatatypeBypass subspace: per dataspace 2 ** (storage levels but the outermost left open)."""
    inner_to_outer = tuple(reversed(GEMMINI_TARGETS))
    state = {ds: ["X"] * (len(inner_to_outer) - 1) + ["1"] for ds in _DATASPACES}
    for d in directives:
        if isinstance(d, dict) and d.get("type") == "bypass":
            lv = [t.lower() for t in inner_to_outer].index(str(d.get("target", "")).lower())
            for ds in d.get("keep") or []:
                state[str(ds)][lv] = "1"
            for ds in d.get("bypass") or []:
                state[str(ds)][lv] = "0"
    for ds, marks in state.items():
        for lv, mark in enumerate(marks):
            want = "1" if ds in GEMMINI_KEEPS[inner_to_outer[lv]] else "0"
            if mark == "X":
                raise SpecError(
                    f"{where}: Timeloop would draw whether the {inner_to_outer[lv]} keeps {ds}; the nest model is "
                    f"Gemmini's hierarchy, so add a bypass directive for the {inner_to_outer[lv]}"
                )
            if mark != want:
                raise SpecError(f"{where}: the {inner_to_outer[lv]} must {'keep' if want == '1' else 'bypass'} {ds}")
    return 1


def read_id_space(
    constraints: Any, arch: Any | None = None, name: str = "constraints", origin: str = "constraints"
) -> IdSpace:
    """The ID structure of a Timeloop constraints document on an architecture (None: every fanout along X, as
    Timeloop completes a level that gives only `instances`; the array's sides come from the design at sampling)."""
    nest_constraints = read_nest_constraints(constraints, name, origin)
    directives = _directives(constraints, origin)
    by_kind: dict[tuple[str, str], dict[str, Any]] = {}
    for d in directives:
        if isinstance(d, dict):
            by_kind[(str(d.get("target", "")).lower(), str(d.get("type", "")))] = d
    fanouts = arch_fanouts(arch, origin) if arch is not None else None
    if fanouts is not None and fanouts["Registers"] != (1, 1):
        raise SpecError(f"{origin}: the nest model has one MAC per register; Registers fan out {fanouts['Registers']}")
    spatial = []
    for target, dim in (("Scratchpad", N), ("Accumulator", K)):
        directive = by_kind.get((target.lower(), "spatial"))
        where = f"{origin}: {target} spatial"
        _check_spatial_factors(directive, dim, where)
        fanout = fanouts[target] if fanouts is not None else (0, 1)  # 0: the design's array side, set at sampling
        spatial.append(_spatial_level(target, dim, fanout, directive, where))
    temporal = 1
    for target in GEMMINI_TARGETS[:-1]:  # the innermost temporal level (Registers) is canonical in Timeloop
        directive = by_kind.get((target.lower(), "temporal"))
        prefix, suffix = _pattern(directive.get("permutation", "")) if directive else ([], [])
        temporal *= math.factorial(len(GEMMINI_PROBLEM_DIMS) - len(set(prefix) | set(suffix)))
    return IdSpace(nest_constraints, tuple(spatial), temporal, _bypass_count(directives, origin), name)


def _check_spatial_factors(directive: dict[str, Any] | None, dim: int, where: str) -> None:
    """Every matmul dimension but the one this level unrolls must be fixed to 1 (Timeloop would unroll it too)."""
    factors: dict[str, str] = {}
    text = directive.get("factors", "") if directive else ""
    for term in text.split() if isinstance(text, str) else map(str, text):
        key = term.split("<=")[0].split("=")[0]
        factors[key] = term
    own = NEST_TO_GEMMINI["n" if dim == N else "k"]
    for other in NEST_TO_GEMMINI.values():
        if other != own and factors.get(other) != f"{other}=1":
            raise SpecError(
                f"{where}: Timeloop would also unroll {other} here; the nest model unrolls only {own} at this level, "
                f"so add {other}=1 to the factors"
            )


def _resolved(space: IdSpace, nh: NestHardware) -> tuple[SpatialLevel, ...]:
    """The spatial levels with the design's array sides where the space has no architecture; checked against the
    array the nests are priced on."""
    out = []
    for level in space.spatial:
        side = nh.cols if level.dim == N else nh.rows
        if level.fanout_x == 0:
            level = SpatialLevel(level.target, level.dim, side, 1, level.positions, level.split, level.permutations)
        if level.fanout_x * level.fanout_y != side:
            raise InfeasibleError(
                f"the {level.target} fans out to {level.fanout_x} x {level.fanout_y} in the Timeloop architecture, "
                f"but the nests are priced on an array side of {side}"
            )
        out.append(level)
    return tuple(out)


def subspace_sizes(shape: MatmulShape, space: IdSpace, hw: Hardware | NestHardware) -> dict[str, int]:
    """The four subspace sizes Timeloop prints for this problem ("Mapspace Dimension [...] Size")."""
    nh = NestHardware.of(hw)
    fixed, maximum = nest._slot_factors(space.constraints, shape, nh, one_weight_register=False)
    factorizations = math.prod(
        nest._constrained_count(bound, fixed[:, j], maximum[:, j])
        for j, bound in enumerate((shape.m, shape.n, shape.k))
    )
    spatial = _resolved(space, nh)
    return {
        "IndexFactorization": factorizations,
        "LoopPermutation": space.temporal_permutations * math.prod(lv.permutations for lv in spatial),
        "Spatial": math.prod(1 if lv.split is not None else _SPLITS for lv in spatial),
        "DatatypeBypass": space.bypass,
    }


@dataclass(frozen=True, slots=True)
class IdDraw:
    """Valid nests in the order Timeloop's random search would log them, and how many mapping IDs it took."""

    nests: Nests
    ids_drawn: int  # IDs drawn until the last valid one (Timeloop's `INVALID <total>` count)

    @property
    def valid_share(self) -> float:
        return len(self.nests) / self.ids_drawn


def sample_ids(
    shape: MatmulShape, hw: Hardware | NestHardware, count: int, rng: np.random.Generator, space: IdSpace
) -> IdDraw:
    """`count` valid nests drawn as Timeloop's random mapper draws them (module docstring): a uniform index
    factorization (uniform over the factorizations the constraints allow), for each spatial level a uniform
    permutation (only where its unrolled dimension lands matters) and split, loop orders uniform over those each
    level allows; IDs whose spatial factors exceed a fanout or whose tiles do not fit are rejected."""
    if count <= 0:
        raise SpecError(f"the Timeloop ID sampler needs a positive number of samples, got {count}")
    nh = NestHardware.of(hw)
    levels = _resolved(space, nh)
    constraints = space.constraints
    fixed, maximum = nest._slot_factors(constraints, shape, nh, one_weight_register=False)
    free = [np.flatnonzero(fixed[:, j] == 0) for j in range(3)]
    rest = [bound // int(np.prod(fixed[:, j][fixed[:, j] > 0])) for j, bound in enumerate((shape.m, shape.n, shape.k))]
    allowed = [np.array(a, dtype=np.int64) for a in constraints.orders]
    parts: list[Nests] = []
    kept = ids = 0
    while kept < count:
        batch = max(8 * (count - kept), 4096)
        slots = np.broadcast_to(np.where(fixed == 0, 1, fixed), (batch, nest.SLOTS, 3)).copy()
        for j in range(3):
            slots[:, free[j], j] = factorization.draw_factorizations(rest[j], len(free[j]), batch, rng)
        in_space = np.all((maximum == 0) | (slots <= maximum), axis=(1, 2))  # an IndexFactorization ID
        constructed = np.ones(batch, dtype=bool)
        for level in levels:
            factor = slots[:, nest.SPATIAL_SLOT, level.dim]
            position = np.asarray(level.positions, dtype=np.int64)[rng.integers(0, len(level.positions), batch)]
            split = rng.integers(0, _SPLITS, batch) if level.split is None else np.full(batch, level.split)
            along_x = position < split
            constructed &= np.where(along_x, factor <= level.fanout_x, factor <= level.fanout_y)
        pick = rng.integers(0, len(ORDERS), (batch, len(nest.LEVELS)))
        orders = np.stack([a[pick[:, lv] * len(a) // len(ORDERS)] for lv, a in enumerate(allowed)], axis=1)
        nests = Nests(
            np.ascontiguousarray(slots[:, : nest.SPATIAL_SLOT]),
            orders,
            np.ascontiguousarray(slots[:, nest.SPATIAL_SLOT, N]),
            np.ascontiguousarray(slots[:, nest.SPATIAL_SLOT, K]),
        )
        drawn = np.flatnonzero(in_space)
        ok = constructed[drawn] & nest.valid(nests.take(drawn), nh)
        good = drawn[ok][: count - kept]
        if good.size == count - kept:  # IDs up to and including the last valid one taken
            ids += int(np.searchsorted(drawn, good[-1])) + 1
        else:
            ids += drawn.size
        parts.append(nests.take(good))
        kept += good.size
        if ids > 10_000 * count and kept == 0:
            raise InfeasibleError("no valid mapping ID: no tile of this matmul fits the design's on-chip memories")
    out = Nests.concatenate(parts)
    return IdDraw(out, ids)


def timeloop_energies(hw: Hardware | NestHardware, pj: TimeloopEnergies) -> NestHardware:
    """The nest model's view of `hw` priced with the per-access energies `pj` Timeloop's built-in `pat` model gives
    Gemmini's `arch_default.yaml` (measured: printed in timeloop-mapper.stats.txt; read by
    `tstack.spec.timeloop.timeloop_pat_energies`), under Timeloop's
    conventions as `tstack.mapping.timeloop.run.nest_hardware` applies them: DRAM and scratchpad words are bytes;
    accumulator traffic is counted in words (`acc_bytes_per_word` = 1, so partial sums move as one DRAM word, as
    Timeloop moves them); a MAC costs the MACC's energy plus one read of its weight register, and a weight written into
    a register costs a register access. Array, capacities and bandwidths stay `hw`'s."""
    nh = NestHardware.of(hw)
    return replace(
        nh,
        acc_bytes_per_word=1,
        mac_pj=pj.macc_pj + pj.registers_pj,
        dram_read_pj_per_byte=pj.dram_pj,
        dram_write_pj_per_byte=pj.dram_pj,
        spad_read_pj_per_byte=pj.scratchpad_pj,
        spad_write_pj_per_byte=pj.scratchpad_pj,
        acc_read_pj_per_byte=pj.accumulator_pj,
        acc_write_pj_per_byte=pj.accumulator_pj,
        register_write_pj_per_byte=pj.registers_pj,
    )
