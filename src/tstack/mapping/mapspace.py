"""Mapspace characterization (the paper's Figs. 18-20): how EDP spreads over random valid mappings of an op.

Readings of "the mapspace" (`Semantics`, `characterize(semantics=)`, `tstack mapspace --semantics`), because the
paper's statistics depend on which space is sampled and how:

* `tstack` (default): tstack's one-tile mapspace (`tstack.mapping.matmul.mappers`): any divisor tile per dimension, the
  six DRAM loop orders, the whole array unrolled (tiles folded over it), double-buffered memories, the hardware's
  `CostOptions`.
* `timeloop`: the mapspace of the paper's tool as the Gemmini repo describes it (`modeling/timeloop/mapspace/
  mapspace.yaml`, the constraints preset `gemmini`), priced by the nest model with Timeloop's reuse rule: spatial
  factors free up to the array side, the DRAM and accumulator permutations fixed, scratchpad and register temporal
  factors 1, one accumulator per PE column, whole buffers, no fill/drain; drawn uniformly over the valid
  factorizations, as Timeloop's random mapper. The design's capacities, bandwidth and energies are kept.
* `nest` and `nest-free`: multi-level loop nests (`tstack.mapping.nest.matmul`), a temporal factor for every dimension
  at each storage level and a loop order per level, costed with Timeloop's reuse rule and cycle model; `nest` unrolls
  the whole array, `nest-free` allows any spatial factor up to the array side. This is the space the paper counts
  ("more than 10^12" mappings of a BERT-Base projection with free spatial factors). The reference is the best of
  the samples and of every one-tile mapping written as a nest.
* `timeloop-ids`: real Timeloop's random mapper on Gemmini's published Timeloop files, reproduced
  (`tstack.mapping.timeloop.sampler`: uniform mapping IDs over factorization x permutation x spatial split x bypass,
  the invalid ones rejected), priced with Timeloop's own per-access energies; `characterize(id_space=)` applies
  the same draw to any constraints file and architecture.
* `--constraints` (`characterize(constraints=)`): any Timeloop mapspace-constraints file for Gemmini's hierarchy
  (`tstack.mapping.timeloop.constraints`), or the presets `gemmini`, `dosa-random`, `dosa-real-gemmini`.

Convolutions under `tstack` semantics are mapped as 7-loop convolutions (`tstack.mapping.conv.loopnest`, `conv.mappers`)
unless `im2col=True`; the other semantics map them as im2col matmuls.

What each reading gives beside the paper's numbers, and why none is fitted to them, is in
benchmarks/RESULTS-mapping.md (sections B-G); the paper's own Timeloop run configuration is not published.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from tstack.errors import InfeasibleError
from tstack.hardware.design import single_buffered
from tstack.hardware.types import CostOptions, FillDrain, Hardware, PartialSums
from tstack.mapping.conv.loopnest import ConvShape
from tstack.mapping.conv.mappers import ConvMapperResult, count_valid_conv, exhaustive_conv, random_conv
from tstack.mapping.matmul.loopnest import Mapping, MatmulShape
from tstack.mapping.matmul.mappers import MapperResult, divisors, exhaustive, gemmini, random_search, valid_mappings
from tstack.mapping.nest import matmul as nest
from tstack.mapping.nest import one_tile as nest_one_tile
from tstack.mapping.nest.matmul import NestConstraints, NestResult, Spatial
from tstack.mapping.timeloop.arch import TimeloopArch
from tstack.mapping.timeloop.files import TimeloopFiles
from tstack.mapping.timeloop.sampler import IdSpace, TimeloopEnergies, sample_ids, subspace_sizes, timeloop_energies


class Semantics(StrEnum):
    TSTACK = "tstack"
    TIMELOOP = "timeloop"
    NEST = "nest"  # multi-level nests, the whole array unrolled (tstack.mapping.nest.matmul)
    NEST_FREE = "nest-free"  # multi-level nests, any spatial factor up to the array side
    TIMELOOP_IDS = "timeloop-ids"  # Gemmini's Timeloop files drawn as Timeloop's random mapper draws (mapping IDs)


# Timeloop's cycle model: bandwidth-bound max over levels, no preload or fill/drain; outputs accumulate on chip (the
# fixed DRAM permutation keeps the reduction innermost, so no partial sum leaves the accumulator)
TIMELOOP_OPTIONS = CostOptions(
    preload_hidden=True,
    fill_drain=FillDrain.NONE,
    partial_sums=PartialSums.ACCUMULATE,
    overlap_transfers=True,
    shared_bandwidth=True,
    skip_one_trip_loops=True,
    first_load_exposed=False,
)


def timeloop_hardware(hw: Hardware) -> Hardware:
    """The design as Timeloop sees it: whole buffers per tile (no double buffering), Timeloop's cycle model."""
    return replace(single_buffered(hw), cost_options=TIMELOOP_OPTIONS)


# The paper's operators (section 5.5.1), as matmuls M x N x K (M = rows streamed, N = outputs, K = reduction).
# Convolutions are listed as their im2col matmuls (output pixels x output channels x C*R*S); `PAPER_CONVS` holds
# them as convolutions, which `characterize` maps with the 7-loop conv mapspace.
PAPER_OPS: dict[str, MatmulShape] = {
    "bert-base-mha": MatmulShape(512, 768, 768),
    "bert-base-ffn": MatmulShape(512, 3072, 768),
    "bert-large-mha": MatmulShape(512, 1024, 1024),
    "bert-large-ffn": MatmulShape(512, 4096, 1024),
    "equal-mac-240x240x512": MatmulShape(240, 240, 512),
    "equal-mac-480x120x512": MatmulShape(480, 120, 512),
    "resnet50-conv1-7x7-64": MatmulShape(112 * 112, 64, 3 * 7 * 7),
    "resnet50-conv5-3x3-512": MatmulShape(7 * 7, 512, 512 * 9),
    "resnet50-conv5-1x1-512": MatmulShape(7 * 7, 512, 2048),
    "resnet50-conv5-1x1-2048": MatmulShape(7 * 7, 2048, 512),
}
# ResNet-50 (He et al. 2016, Table 1; batch 1): conv1 7x7/64 stride 2 on the 224x224 RGB image padded by 3
# (-> 112x112); the last stage (conv5_x) at 7x7 output: 3x3/512, and the bottleneck's 1x1s 2048 -> 512, 512 -> 2048
PAPER_CONVS: dict[str, ConvShape] = {
    "resnet50-conv1-7x7-64": ConvShape.from_input(1, 64, 3, 224, 224, 7, 7, stride=2, padding=3),
    "resnet50-conv5-3x3-512": ConvShape(1, 512, 512, 7, 7, 3, 3),
    "resnet50-conv5-1x1-512": ConvShape(1, 512, 2048, 7, 7, 1, 1),
    "resnet50-conv5-1x1-2048": ConvShape(1, 2048, 512, 7, 7, 1, 1),
}
# Paper Fig. 19: 10th-percentile relative EDP and share within 3x of the best
PAPER_STATS = {
    "bert-base-mha": (9.42, 0.0170),
    "bert-base-ffn": (9.84, 0.0148),
    "resnet50-conv5-3x3-512": (7.44, 0.0158),
    "resnet50-conv5-1x1-2048": (12.06, 0.0262),
}


@dataclass(frozen=True, slots=True)
class MapspaceStats:
    name: str
    shape: MatmulShape
    valid_mappings: int
    samples: int
    relative_edp: npt.NDArray[np.float64]  # of each sample, to the best (exhaustive where the space allows)
    best: MapperResult | ConvMapperResult | NestResult
    heuristic: MapperResult | NestResult
    conv: ConvShape | None = None  # set when the op was mapped as a 7-loop convolution

    @property
    def mapspace(self) -> str:
        if isinstance(self.best, NestResult):
            return "nest"
        return "matmul" if self.conv is None else "conv-7-loop"

    @property
    def p10(self) -> float:
        return float(np.percentile(self.relative_edp, 10))

    @property
    def within_3x(self) -> float:
        return float(np.mean(self.relative_edp <= 3.0))

    @property
    def span(self) -> float:
        return float(self.relative_edp.max())


def characterize(
    name: str,
    shape: MatmulShape,
    hw: Hardware,
    samples: int,
    seed: int,
    semantics: Semantics = Semantics.TSTACK,
    *,
    conv: ConvShape | None = None,
    im2col: bool = False,
    constraints: NestConstraints | None = None,
    arch: TimeloopArch | None = None,
    id_space: IdSpace | None = None,
    timeloop: TimeloopFiles | None = None,
) -> MapspaceStats:
    """`samples` random valid mappings' EDP relative to the exhaustive best, under `semantics` (module docstring).

    A convolution (`conv`, or the `PAPER_CONVS` entry of `name` whose im2col matmul is `shape`) is mapped with the
    7-loop conv mapspace under `tstack` semantics, unless `im2col`. `constraints` (a Timeloop constraints file read by
    `tstack.mapping.timeloop.constraints`) samples the nest mapspace they describe, whatever `semantics` says; `arch`
    (a Timeloop architecture, `tstack.mapping.timeloop.arch`) puts the nests on its array, capacities and
    bandwidths, with the design's energies. `id_space` (`tstack.mapping.timeloop.sampler`) draws the nests as
    Timeloop's random mapper draws mapping IDs, relative to the best sample (`Semantics.TIMELOOP_IDS` is Gemmini's
    files drawn so, priced with Timeloop's energies). `timeloop` is Gemmini's Timeloop files, read
    (`tstack.spec.timeloop.gemmini_timeloop_files`): the `timeloop` and `timeloop-ids` semantics need them."""
    if semantics is Semantics.TIMELOOP_IDS:
        files = _files(semantics, timeloop)
        return _characterize_ids(
            name,
            shape,
            hw,
            samples,
            seed,
            id_space or files.id_space,
            arch or files.arch,
            energies=files.energies,
        )
    if id_space is not None:
        return _characterize_ids(name, shape, hw, samples, seed, id_space, arch, energies=None)
    if constraints is None and semantics is not Semantics.TSTACK:
        constraints = nest_constraints(semantics, timeloop)
    if constraints is not None:
        return _characterize_nest(name, shape, hw, samples, seed, constraints, arch)
    if arch is not None:
        raise InfeasibleError("a Timeloop architecture prices nests: choose a nest semantics or constraints")
    if conv is None and name in PAPER_CONVS and PAPER_CONVS[name].im2col() == shape:
        conv = PAPER_CONVS[name]
    if conv is not None and not im2col:
        if conv.im2col() != shape:
            raise InfeasibleError(f"op {name!r}: the conv's im2col matmul {conv.im2col()} is not its shape {shape}")
        return _characterize_conv(name, conv, hw, samples, seed)
    valid, _ = valid_mappings(shape, hw)
    best = exhaustive(shape, hw)
    _, costs = random_search(shape, hw, samples, np.random.default_rng(seed))
    return MapspaceStats(name, shape, len(valid), samples, np.asarray(costs.edp / best.edp), best, gemmini(shape, hw))


def _characterize_conv(name: str, conv: ConvShape, hw: Hardware, samples: int, seed: int) -> MapspaceStats:
    best = exhaustive_conv(conv, hw)
    _, costs = random_conv(conv, hw, samples, np.random.default_rng(seed))
    shape = conv.im2col()
    relative = np.asarray(costs.edp / best.edp, dtype=np.float64)
    return MapspaceStats(
        name, shape, count_valid_conv(conv, hw), samples, relative, best, gemmini(shape, hw), conv=conv
    )


def _files(semantics: Semantics, timeloop: TimeloopFiles | None) -> TimeloopFiles:
    if timeloop is None:
        raise ValueError(
            f"{semantics.value} semantics draws from Gemmini's Timeloop files: pass "
            "timeloop=tstack.spec.timeloop.gemmini_timeloop_files()"
        )
    return timeloop


def nest_constraints(semantics: Semantics, timeloop: TimeloopFiles | None = None) -> NestConstraints:
    """The nest mapspace of a Timeloop-model semantics (`timeloop`: Gemmini's Timeloop files, for the `timeloop` and
    `timeloop-ids` semantics)."""
    if semantics in (Semantics.TIMELOOP, Semantics.TIMELOOP_IDS):
        return _files(semantics, timeloop).constraints
    if semantics in (Semantics.NEST, Semantics.NEST_FREE):
        return NestConstraints.of(Spatial.FULL if semantics is Semantics.NEST else Spatial.FREE)
    raise ValueError(f"{semantics.value} semantics has no nest mapspace")


def _characterize_nest(
    name: str,
    shape: MatmulShape,
    hw: Hardware,
    samples: int,
    seed: int,
    constraints: NestConstraints,
    arch: TimeloopArch | None = None,
) -> MapspaceStats:
    """Random valid multi-level nests of the constrained mapspace (`tstack.mapping.nest.matmul`), EDP relative to the
    best nest known: the best sample or the best valid one-tile mapping (tiles dividing the bounds) written as a nest
    that the constraints allow, whichever is lower. The samples' own minimum is what a Timeloop run reports; the
    one-tile candidates make the reference closer to the true optimum of a space too large to enumerate. The heuristic
    is Gemmini's tiling with each tile rounded down to a divisor (a nest has no padded edge tiles)."""
    tl = timeloop_hardware(hw)
    if arch is None:
        nh = nest.NestHardware.of(tl)
    else:
        tl, nh = arch.on(tl)
    drawn, valid_estimate = nest.sample(shape, nh, samples, np.random.default_rng(seed), constraints)
    cost = nest.costs(shape, drawn, nh)
    one_tile = nest_one_tile.one_tile_nests(shape, nh)
    one_tile = one_tile.take(np.flatnonzero(nest.satisfies(shape, one_tile, nh, constraints)))
    one_cost = nest.costs(shape, one_tile, nh)
    heuristic = _heuristic_nest(shape, tl, nh)
    best_sample = int(np.argmin(cost.edp))
    best_one = int(np.argmin(one_cost.edp)) if len(one_tile) else -1
    if best_one < 0 or cost.edp[best_sample] <= one_cost.edp[best_one]:
        best = nest.NestResult.pick(drawn, cost, best_sample)
    else:
        best = nest.NestResult.pick(one_tile, one_cost, best_one)
    relative = np.asarray(cost.edp / best.edp, dtype=np.float64)
    return MapspaceStats(name, shape, valid_estimate, samples, relative, best, heuristic)


def _divisor_at_most(bound: int, limit: int) -> int:
    return max(d for d in divisors(bound) if d <= limit)


def _heuristic_nest(shape: MatmulShape, tl: Hardware, nh: nest.NestHardware) -> NestResult:
    """Gemmini's tiling as a nest: its edge tiles are padded, a nest needs divisors, so each tile is rounded down."""
    g = gemmini(shape, tl).mapping
    heuristic_nest = nest_one_tile.from_mapping(
        Mapping(
            _divisor_at_most(shape.m, g.tile_m),
            _divisor_at_most(shape.n, g.tile_n),
            _divisor_at_most(shape.k, g.tile_k),
            g.order,
        ),
        shape,
        nh,
    )
    return nest.NestResult.pick(heuristic_nest, nest.costs(shape, heuristic_nest, nh), 0)


def _characterize_ids(
    name: str,
    shape: MatmulShape,
    hw: Hardware,
    samples: int,
    seed: int,
    id_space: IdSpace,
    arch: TimeloopArch | None,
    *,
    energies: TimeloopEnergies | None,
) -> MapspaceStats:
    """Timeloop's random mapper on a nest mapspace (`tstack.mapping.timeloop.sampler.sample_ids`): valid mappings in
    proportion to the mapping IDs that construct them, priced by the nest model, EDP relative to the best sample (the
    reference a Timeloop run reports). With `energies` (Timeloop's measured table), the per-access energies are
    Timeloop's own for Gemmini's `arch_default.yaml` (its `pat` model, measured: `timeloop.sampler.timeloop_energies`),
    else the design's.
    `valid_mappings` is the number of valid mapping IDs, estimated from the share of drawn IDs that were valid."""
    tl = timeloop_hardware(hw)
    nh = nest.NestHardware.of(tl)  # a design outside Gemmini's hierarchy is refused here, before any architecture
    if arch is not None:
        tl, nh = arch.on(tl)
    if energies is not None:
        nh = timeloop_energies(nh, energies)
    draw = sample_ids(shape, nh, samples, np.random.default_rng(seed), id_space)
    cost = nest.costs(shape, draw.nests, nh)
    best = nest.NestResult.pick(draw.nests, cost, int(np.argmin(cost.edp)))
    relative = np.asarray(cost.edp / best.edp, dtype=np.float64)
    ids = math.prod(subspace_sizes(shape, id_space, nh).values())
    return MapspaceStats(
        name, shape, round(ids * draw.valid_share), samples, relative, best, _heuristic_nest(shape, tl, nh)
    )
