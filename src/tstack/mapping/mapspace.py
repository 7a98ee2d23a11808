"""Mapspace characterization (the paper's Figs. 18-20): how EDP spreads over random valid mappings of an op.

Four semantics (`Semantics`), selectable in `characterize` and `tstack mapspace --semantics`:

* `tstack` (default): tstack's mapspace (`tstack.mapping.mappers`): any divisor tile per dim, the six DRAM loop
  orders, the whole 16x16 array unrolled (tiles folded over it), double-buffered memories, the hardware's
  `CostOptions`. Measured (gemmini-baseline, 100,000 samples, seed 0): 10th-percentile relative EDP 15.7 (BERT
  MHA) and 18.1 (FFN) against the paper's 9.42 / 9.84, 1.57% / 1.36% within 3x (paper 1.70% / 1.48%), spans ~4e6.
* `timeloop`: the mapspace of the paper's tool as the Gemmini repo describes it (paper-digest §5.4,
  `modeling/timeloop/mapspace/mapspace.yaml`, restated as the constraints preset `gemmini`), priced with Timeloop's
  reuse rule by the nest model (`tstack.mapping.nest`, below): spatial factors free (C <= 16 over the PE rows,
  K <= 16 over the columns, any divisor, so a mapping may use part of the array); the DRAM permutation fixed
  (`CSRKQPN` inner to outer: tokens outermost, then output columns, reduction innermost) and the accumulator's
  (`QPNCSRK`, weight stationary); scratchpad and register temporal factors 1; one accumulator per PE column; whole
  buffers; no fill/drain. The random draw is uniform over the valid factorizations, as Timeloop's random mapper.
  The hardware (capacities, bandwidth, energies) stays the design's; Timeloop's 40 nm Accelergy energies and its
  8 words/cycle DRAM are not copied. Measured (gemmini-baseline, 100,000 samples, seed 0): p10 36.9 / 42.8 (BERT
  MHA / FFN; paper 9.42 / 9.84), 0.26% / 0.19% within 3x (paper 1.70% / 1.48%), spans 4.0e4 / 4.4e4. Of the 94 ways
  to split the reduction 768 over DRAM x accumulator x rows <= 16, 10 use all 16 rows, so the typical mapping uses
  part of the array and is far from the best. (Until 2026-11-30 this semantics priced the same mappings with the
  one-tile model of `tstack.mapping.cost`, which looks for reuse without skipping one-trip loops: with the reduction
  wholly on chip it re-read the input tile for every output-column tile, which Timeloop does not; that gave
  22.4 / 23.5 and 0.60% / 0.55%.)
* `nest` and `nest-free`: multi-level loop nests (`tstack.mapping.nest`): a temporal factor for every dimension at
  each of DRAM, scratchpad, accumulator and registers and a loop order per level (Timeloop's mapping form over the
  Gemmini description's four storage levels, without mapspace.yaml's fixed permutations and unit factors), costed
  with Timeloop's reuse rule and cycle model; `nest` unrolls the whole array, `nest-free` any spatial factor up to
  the array side. This is the space the paper counts: a BERT-Base Q/K/V projection has 1.39e12 such mappings with
  free spatial factors ("more than 10^12", §5.2) and 5.6e9 with the whole array. The reference is the best of the
  samples and of every one-tile mapping written as a nest. Measured (gemmini-baseline, 100,000 samples, seed 0):
  `nest` p10 3.84 / 5.05 (BERT MHA / FFN), 7.5% / 5.6% within 3x, spans 9.1e3 / 9.8e3; `nest-free` p10 60.6 /
  71.3, 0.12% / 0.09%, spans 3.3e5 / 3.5e5 (with Timeloop's accumulator rule, section I). Under Timeloop's model
  the spatial choice decides the statistics: the readings that unroll the whole array land below the paper's p10
  and above its within-3x share, those with free spatial factors the other way
  (benchmarks/RESULTS-mapping.md, section D).
* `timeloop-ids`: real Timeloop's random mapper on Gemmini's published Timeloop files, reproduced. The mapspace of
  `timeloop` on the array, capacities and 8 B/cycle DRAM of the Gemmini repo's `arch_default.yaml`, drawn as
  Timeloop draws (`tstack.mapping.timeloop_sampler`: uniform mapping IDs, factorization x loop permutation x
  spatial X/Y split x bypass, the IDs whose spatial factors overflow a fanout or whose tiles do not fit rejected,
  so mappings that leave the array idle are over-weighted), priced by the nest model with Timeloop's own per-access
  energies (its `pat` model, measured), EDP relative to the best sample as a Timeloop run reports it. Measured
  against the bundled Timeloop (benchmarks/RESULTS-mapping.md, section G; 100,000 samples): BERT-Base MHA p10 43.6
  / 0.30% within 3x real, 43.0 +- 2.1 / 0.35% +- 0.07% over ten tstack seeds; FFN W1 48.0 / 0.27% real, 47.1 +-
  0.6 / 0.28% +- 0.02%. `--sampler timeloop-ids` (`characterize(id_space=)`) applies the same draw to any
  constraints file and Timeloop architecture, with the design's energies.
* `--constraints` (`characterize(constraints=)`): any Timeloop mapspace-constraints file for Gemmini's hierarchy
  (`tstack.mapping.timeloop_constraints`), or the presets `gemmini` (= `timeloop`), `dosa-random` (DOSA's
  random-search mapspace, = `nest-free`) and `dosa-real-gemmini` (Gemmini's with the DRAM order free).

Convolutions. Under `tstack` semantics the ResNet-50 ops (`PAPER_CONVS`) are mapped as 7-loop convolutions
(`tstack.mapping.conv`, `conv_mappers`: N, K, C, P, Q, R, S tiles, C over the PE rows and K over the columns, any DRAM
order, input tiles with their sliding-window halo) unless `im2col=True`, which maps their im2col matmuls as before;
`MapspaceStats.shape` stays the im2col matmul, `MapspaceStats.conv` holds the conv, and the heuristic is Gemmini's tiler
on the im2col matmul (what `tstack simulate` prices a conv at). The `timeloop` and nest semantics map convs as im2col
matmuls. Measured (gemmini-baseline, 100,000 samples, seed 0; benchmarks/RESULTS-mapping.md, section C): p10 / within 3x
of the best go from 8.54 / 3.72% (im2col) to 10.1 / 4.2% (7-loop) for 3x3/512 (paper 7.44 / 1.58%) and from 16.8 / 3.23%
to 15.8 / 3.9% for 1x1/2048 (paper 12.06 / 2.62%), sampling a valid tiling uniformly and then one of its orders
(`random_conv` default, as the matmul mapspace and Timeloop's random mapper). Sampled uniformly over distinct loop nests
instead (`weighting="mapping"`), small tiles with many orders dominate: 63.3 / 0.32% and 39.7 / 0.83%.

Result (gemmini-baseline, 100,000 samples, benchmarks/RESULTS-mapping.md): under Timeloop's model the spatial
choice decides the statistics. Every mapspace a published file describes (Gemmini's, DOSA's two) draws the spatial
factors with the temporal ones and lands above the paper's p10 and below its within-3x share; unrolling the whole
array (`nest`) lands on the other side. The paper's run (Timeloop version, mapper settings, energy tables, DRAM
bandwidth, mapspace file of February 2023) is not published, and no reading is fitted to it.
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
from tstack.mapping import nest, nest_one_tile
from tstack.mapping.conv import ConvShape
from tstack.mapping.conv_mappers import ConvMapperResult, count_valid_conv, exhaustive_conv, random_conv
from tstack.mapping.loopnest import Mapping, MatmulShape
from tstack.mapping.mappers import MapperResult, divisors, exhaustive, gemmini, random_search, valid_mappings
from tstack.mapping.nest import NestConstraints, NestResult, Spatial
from tstack.mapping.timeloop_arch import TimeloopArch
from tstack.mapping.timeloop_files import TimeloopFiles
from tstack.mapping.timeloop_sampler import IdSpace, TimeloopEnergies, sample_ids, subspace_sizes, timeloop_energies


class Semantics(StrEnum):
    TSTACK = "tstack"
    TIMELOOP = "timeloop"
    NEST = "nest"  # multi-level nests, the whole array unrolled (tstack.mapping.nest)
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
    `tstack.mapping.timeloop_constraints`) samples the nest mapspace they describe, whatever `semantics` says; `arch`
    (a Timeloop architecture, `tstack.mapping.timeloop_arch`) puts the nests on its array, capacities and
    bandwidths, with the design's energies. `id_space` (`tstack.mapping.timeloop_sampler`) draws the nests as
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
    """Random valid multi-level nests of the constrained mapspace (`tstack.mapping.nest`), EDP relative to the best
    nest known: the best sample or the best valid one-tile mapping (tiles dividing the bounds) written as a nest that
    the constraints allow, whichever is lower. The samples' own minimum is what a Timeloop run reports; the one-tile
    candidates make the reference closer to the true optimum of a space too large to enumerate. The heuristic is
    Gemmini's tiling with each tile rounded down to a divisor (a nest has no padded edge tiles)."""
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
    """Timeloop's random mapper on a nest mapspace (`tstack.mapping.timeloop_sampler.sample_ids`): valid mappings in
    proportion to the mapping IDs that construct them, priced by the nest model, EDP relative to the best sample (the
    reference a Timeloop run reports). With `energies` (Timeloop's measured table), the per-access energies are
    Timeloop's own for Gemmini's `arch_default.yaml` (its `pat` model, measured: `timeloop_sampler.timeloop_energies`),
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
