"""What an accelerator is: PE array, memory levels, special-function units, host CPU, clock.

Everything is frozen and hashable (the hash keys the per-op result cache). Sizes are bytes, bandwidths bytes per
accelerator cycle, energies picojoules; the names say so. Built from YAML by `tstack.spec.hardware`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from tstack.errors import SpecError


class Dataflow(StrEnum):
    WEIGHT_STATIONARY = "weight_stationary"
    OUTPUT_STATIONARY = "output_stationary"


class Tensor(StrEnum):
    """The three operands of a matmul / conv, as memory levels name what they hold."""

    INPUTS = "inputs"
    WEIGHTS = "weights"
    OUTPUTS = "outputs"


class FillDrain(StrEnum):
    PER_FOLD = "per_fold"  # each weight block pays the systolic skew (SCALE-Sim's array)
    PER_TILE = "per_tile"  # folds of a tile pipeline; the skew is paid once per tile
    NONE = "none"


class L2Tiling(StrEnum):
    MIN_TRAFFIC = "min_traffic"  # chunk M (re-read B) or slice N (re-read A), whichever moves fewer bytes
    SQUARE = "square"  # square tiles of side sqrt(capacity / (A and B bytes per element)), the paper's Fig. 11


class PartialSums(StrEnum):
    ACCUMULATE = "accumulate"  # on chip while the loop order allows, spilled otherwise
    SPILL = "spill"  # written out after every K-fold (no on-chip accumulation; SCALE-Sim)


@dataclass(frozen=True, slots=True)
class CostOptions:
    """The modelling choices that tools disagree on, explicit (see `tstack.mapping.matmul.cost` for their meaning).

    Defaults: weights double-buffered in the PEs (preload hidden), fill/drain once per tile, on-chip accumulation,
    transfers overlapped with compute, one shared port per memory interface, an intermediate level tiled for the
    least DRAM traffic, and biases as per-column vectors (`bias_matrix`: a full M x N bias read once, as Gemmini's
    non-repeating D matrix). `skip_one_trip_loops` (Timeloop's rule, the default): a DRAM loop of one trip is no loop,
    so a matmul's tile stays on chip across it; off, every loop of the written nest counts, as Gemmini's software
    (`tiled_matmul_outer`) moves A[i0, k0] and B[k0, j0] in for every (i0, j0, k0) even when K fits one tile.
    `first_load_exposed`: overlapped transfers still wait for the first tile's load (Timeloop's steady state: no).
    `weights_stay_in_array` (Timeloop's registers): a tile that is one weight block keeps it in the PEs across the
    m-tiles that do not change it; off, every tile preloads its weights again (Gemmini)."""

    preload_hidden: bool = True
    fill_drain: FillDrain = FillDrain.PER_TILE
    partial_sums: PartialSums = PartialSums.ACCUMULATE
    overlap_transfers: bool = True
    shared_bandwidth: bool = True
    l2_tiling: L2Tiling = L2Tiling.MIN_TRAFFIC
    bias_matrix: bool = False
    skip_one_trip_loops: bool = True
    first_load_exposed: bool = True
    weights_stay_in_array: bool = True


@dataclass(frozen=True, slots=True)
class PEArray:
    """A rows x cols systolic array; under weight-stationary, rows span the reduction and cols the outputs."""

    rows: int
    cols: int
    dataflow: Dataflow = Dataflow.WEIGHT_STATIONARY
    mac_energy_pj: float = 0.2

    @property
    def macs_per_cycle(self) -> int:
        return self.rows * self.cols


@dataclass(frozen=True, slots=True)
class MemoryLevel:
    """One level of the hierarchy. `holds` lists the tensors it keeps; `word_bits` is the width of what it stores
    (a 32-bit accumulator stores outputs at 32 bits). With `double_buffered`, half the capacity is usable per tile
    so the next tile's transfer overlaps this tile's compute. A level has no bandwidth of its own: bandwidth belongs
    to the `Link`s between levels."""

    name: str
    capacity_bytes: int
    read_energy_pj_per_byte: float
    write_energy_pj_per_byte: float
    holds: frozenset[Tensor]
    banks: int = 1
    word_bits: int = 8
    double_buffered: bool = False

    @property
    def usable_bytes(self) -> int:
        return self.capacity_bytes // 2 if self.double_buffered else self.capacity_bytes


ARRAY = "array"  # the name a link uses for the PE array as its child


@dataclass(frozen=True, slots=True)
class Link:
    """A channel between a memory level (`parent`) and the levels it feeds (`children`; `ARRAY` for the PE array).

    Every byte that moves between the parent and any child, in either direction, crosses the link; its children
    share its `bytes_per_cycle` (Gemmini's DMA: one bus between DRAM and both the scratchpad and the accumulator).
    A level fed by a different bus has a link of its own. How a design's links are read is
    `tstack.hardware.design`."""

    parent: str
    children: tuple[str, ...]
    bytes_per_cycle: float


@dataclass(frozen=True, slots=True)
class NormalizationUnit:
    """Row reductions next to the accumulator (sum, sum of squares, max, sum of exponentials), one pass over an
    accumulator row per reduction; `elements_per_cycle` accumulator elements are read per cycle.

    How many reductions an op needs comes from the integer kernel the activation units run
    (`tstack.kernels.opcount`: I-BERT's LayerNorm and Softmax reduce twice each). `passes` overrides that count per
    op: for a unit that reduces differently (Σx and Σx² in one pass), for an analytic model that counts its own, or
    for an op without a kernel in tstack (RMSNorm)."""

    elements_per_cycle: int
    passes: tuple[tuple[str, int], ...] = ()

    def passes_for(self, op: str) -> int | None:
        """The overriding reduction count for `op`, or None to take the kernel's."""
        return dict(self.passes).get(op)


@dataclass(frozen=True, slots=True)
class ActivationUnits:
    """`count` units applying the element-wise integer arithmetic of the kernels (i-GELU, the i-exp and apply of
    i-Softmax, the apply of i-LayerNorm, ReLU, residual add); `kernels` names the variant they implement
    (`tstack.kernels`: "ibert" or "gemmini"). Each unit takes at most one element per cycle; `ops_per_cycle` is the
    integer operations a unit completes per cycle, None for a datapath pipelined over the whole kernel (one element
    per cycle whatever its operation count, as Gemmini's accumulator read-out applies i-GELU)."""

    count: int
    ops: frozenset[str]
    ops_per_cycle: int | None = None
    kernels: str = "ibert"


@dataclass(frozen=True, slots=True)
class HostCPU:
    """The host that runs whatever the accelerator cannot, in floating point, reading and writing DRAM.

    Costs are accelerator cycles per element (the host's own clock and SIMD width folded in); `source` says where
    each constant comes from (a figure it was calibrated to, or a measurement)."""

    cycles_per_element: tuple[tuple[str, float], ...]
    dequantize_cycles_per_element: float
    requantize_cycles_per_element: float
    dram_bytes_per_cycle: float
    energy_pj_per_cycle: float = 0.0
    source: str = ""

    def cost_per_element(self, op: str) -> float | None:
        return dict(self.cycles_per_element).get(op)


@dataclass(frozen=True, slots=True)
class Hardware:
    """An accelerator. `levels` run innermost to outermost; the last is off-chip DRAM. `links` carry the bandwidths.
    Cost paths never read `levels` or `links` themselves: `tstack.hardware.design.design_of` reads them, once."""

    name: str
    clock_hz: float
    pe: PEArray
    levels: tuple[MemoryLevel, ...]
    links: tuple[Link, ...] = ()
    host: HostCPU | None = None  # None: ops the accelerator cannot run are an error
    normalization: NormalizationUnit | None = None
    activations: ActivationUnits | None = None
    nonlinear_input_bits: int = 8  # width of a matmul output that feeds a non-matmul op (the paper's Fig. 11: 32)
    cost_options: CostOptions = CostOptions()
    fuse_nonlinear: bool = True  # apply SFU ops in the store path of the matmul before them
    description: str = ""
    sources: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.levels:
            raise SpecError(f"hardware {self.name!r}: needs at least one memory level (DRAM)")
        names = [lv.name for lv in self.levels]
        if len(set(names)) != len(names):
            raise SpecError(f"hardware {self.name!r}: memory level names must be unique, got {names}")
        for tensor in Tensor:
            if not any(tensor in lv.holds for lv in self.levels):
                raise SpecError(
                    f"hardware {self.name!r}: no memory level holds {tensor.value}; add it to a level's holds"
                )

    def with_level(self, name: str, **changes: Any) -> Hardware:
        """This design with the fields of memory level `name` changed (e.g. `capacity_bytes=`)."""
        if name not in {lv.name for lv in self.levels}:
            raise SpecError(
                f"hardware {self.name!r} has no memory level {name!r}; it has {[lv.name for lv in self.levels]}"
            )
        levels = tuple(replace(lv, **changes) if lv.name == name else lv for lv in self.levels)
        return replace(self, levels=levels)

    def with_link(self, parent: str, child: str, bytes_per_cycle: float) -> Hardware:
        """This design with the bandwidth of the link from `parent` that feeds `child` changed."""
        for i, link in enumerate(self.links):
            if link.parent == parent and child in link.children:
                links = (*self.links[:i], replace(link, bytes_per_cycle=bytes_per_cycle), *self.links[i + 1 :])
                return replace(self, links=links)
        raise SpecError(f"hardware {self.name!r} has no link from {parent!r} to {child!r}")

    @property
    def peak_macs_per_s(self) -> float:
        return self.pe.macs_per_cycle * self.clock_hz
