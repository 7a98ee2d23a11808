"""The one reading of a design: which memory holds what, which link feeds which, what is usable.

Every cost path (matmul and convolution costs, nests, the CP-SAT mapper, the special-function units and the host,
capacity checks, Gemmini's tiler) takes a `Design` from `design_of(hw)` and nothing else reads a `Hardware`'s raw
levels or links (an architecture test enforces it). The reading, computed once per design and cached:

* Roles. The scratchpad is the innermost level holding inputs (it must hold the weights too); the accumulator the
  innermost level holding outputs (it may be the scratchpad itself); an L2 is the first level beyond both that holds
  every tensor, short of the outermost; the outermost level is DRAM. A design with any other level is refused.
* Links (`tstack.hardware.types.Link`). Each on-chip level is filled over the link from its parent (the L2, else
  DRAM); the L2, if any, over the link from DRAM. The scratchpad and the accumulator share their fill link's bandwidth
  when one link feeds both (Gemmini's DMA), each has its own otherwise. A link from the scratchpad or the accumulator
  to the PE array (`ARRAY`) limits the operand reads (or the accumulator's read-modify-writes) that cross it; without
  one they are unlimited, as in Timeloop. "The DRAM link" is the link out of DRAM.
* Double buffering is each level's `double_buffered` (half of it usable per tile); whether transfers overlap compute
  is `CostOptions.overlap_transfers`, whose one default is `CostOptions`'s own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from tstack.errors import InfeasibleError, SpecError
from tstack.hardware.types import ARRAY, Hardware, Link, MemoryLevel, Tensor


@dataclass(frozen=True, slots=True)
class Design:
    """A design as every cost path reads it (module docstring). Bandwidths in bytes per accelerator cycle; None is
    an unlimited link."""

    hardware: Hardware
    scratchpad: MemoryLevel
    accumulator: MemoryLevel
    l2: MemoryLevel | None
    dram: MemoryLevel
    scratchpad_fill_bytes_per_cycle: float
    accumulator_fill_bytes_per_cycle: float
    fill_shared: bool  # one link fills both the scratchpad and the accumulator (their traffic adds on it)
    l2_fill_bytes_per_cycle: float | None  # DRAM -> L2; None without an L2
    scratchpad_array_bytes_per_cycle: float | None
    accumulator_array_bytes_per_cycle: float | None

    @property
    def shared_buffer(self) -> bool:
        """Inputs, weights and outputs share one buffer (no separate accumulator)."""
        return self.scratchpad is self.accumulator

    @property
    def memories(self) -> tuple[MemoryLevel, ...]:
        """The levels innermost first, each once."""
        out = [self.accumulator, self.scratchpad]
        if self.shared_buffer:
            out = [self.scratchpad]
        return (*out, *([self.l2] if self.l2 is not None else []), self.dram)

    @property
    def all_links(self) -> tuple[Link, ...]:
        """Every link as the design file gives it (for display; cost paths use the fields above)."""
        return self.hardware.links

    @property
    def dram_bytes_per_cycle(self) -> float:
        """The link out of DRAM: into the L2, else into the on-chip levels (the scratchpad's, when they differ)."""
        if self.l2_fill_bytes_per_cycle is not None:
            return self.l2_fill_bytes_per_cycle
        return self.scratchpad_fill_bytes_per_cycle

    def check_fits(self, ab_bytes: float, c_bytes: float, ab_what: str, c_what: str, hint: str) -> None:
        """Raise `InfeasibleError` naming the buffer a tile overflows: `ab_bytes` of input and weight tiles in the
        scratchpad, `c_bytes` of partial sums in the accumulator (both in the scratchpad when it is shared)."""
        needs = [(self.scratchpad, ab_bytes, ab_what), (self.accumulator, c_bytes, c_what)]
        if self.shared_buffer:
            needs = [(self.scratchpad, ab_bytes + c_bytes, f"{ab_what} and {c_what}")]
        for level, need, what in needs:
            if need > level.usable_bytes:
                half = " (double-buffered: half of it)" if level.double_buffered else ""
                raise InfeasibleError(
                    f"capacity exceeded: the {what} need {need:,.0f} B of {level.name!r}, which offers "
                    f"{level.usable_bytes:,} B{half}; {hint}"
                )


def design_of(hw: Hardware | Design) -> Design:
    """The reading of `hw` (cached: the same design is read once)."""
    return hw if isinstance(hw, Design) else _read(hw)


def single_buffered(hw: Hardware) -> Hardware:
    """The design with no double-buffered level (a tile may use a whole buffer; transfers cannot hide)."""
    for lv in hw.levels:
        if lv.double_buffered:
            hw = hw.with_level(lv.name, double_buffered=False)
    return hw


def with_capacities(hw: Hardware, capacity_bytes: dict[str, int], name: str | None = None) -> Hardware:
    """The design with some levels resized, by level name."""
    for level, size in capacity_bytes.items():
        hw = hw.with_level(level, capacity_bytes=size)
    return hw if name is None else replace(hw, name=name)


def level_names(hw: Hardware) -> list[str]:
    return [lv.name for lv in hw.levels]


@lru_cache(maxsize=1024)
def _read(hw: Hardware) -> Design:
    def innermost(tensor: Tensor) -> MemoryLevel:
        return next(lv for lv in hw.levels if tensor in lv.holds)

    spad, acc = innermost(Tensor.INPUTS), innermost(Tensor.OUTPUTS)
    if innermost(Tensor.WEIGHTS) is not spad:
        raise SpecError(
            f"hardware {hw.name!r}: inputs and weights must share their innermost level (the scratchpad); "
            f"weights are first held in {innermost(Tensor.WEIGHTS).name!r}, inputs in {spad.name!r}"
        )
    dram = hw.levels[-1]
    if spad is dram or acc is dram:
        raise SpecError(f"hardware {hw.name!r}: needs on-chip levels holding inputs, weights and outputs before DRAM")
    start = max(hw.levels.index(spad), hw.levels.index(acc)) + 1
    middle = [lv for lv in hw.levels[start:-1] if all(t in lv.holds for t in Tensor)]
    l2 = middle[0] if middle else None
    known = {spad.name, acc.name, dram.name} | ({l2.name} if l2 else set())
    extra = [lv.name for lv in hw.levels if lv.name not in known]
    if extra:
        raise SpecError(
            f"hardware {hw.name!r}: level(s) {', '.join(extra)} have no role tstack models (scratchpad, accumulator, "
            "an L2 holding every tensor, DRAM); remove them or make them hold every tensor"
        )
    _check_links(hw)
    parent = l2 if l2 is not None else dram
    spad_link = _link(hw, parent.name, spad.name, required=True)
    acc_link = _link(hw, parent.name, acc.name, required=True)
    assert spad_link is not None and acc_link is not None
    l2_link = _link(hw, dram.name, l2.name, required=True) if l2 is not None else None
    spad_array = _link(hw, spad.name, ARRAY, required=False)
    acc_array = _link(hw, acc.name, ARRAY, required=False) if acc is not spad else spad_array
    return Design(
        hardware=hw,
        scratchpad=spad,
        accumulator=acc,
        l2=l2,
        dram=dram,
        scratchpad_fill_bytes_per_cycle=spad_link.bytes_per_cycle,
        accumulator_fill_bytes_per_cycle=acc_link.bytes_per_cycle,
        fill_shared=spad_link is acc_link,
        l2_fill_bytes_per_cycle=None if l2_link is None else l2_link.bytes_per_cycle,
        scratchpad_array_bytes_per_cycle=None if spad_array is None else spad_array.bytes_per_cycle,
        accumulator_array_bytes_per_cycle=None if acc_array is None else acc_array.bytes_per_cycle,
    )


def _check_links(hw: Hardware) -> None:
    names = level_names(hw)
    seen: set[tuple[str, str]] = set()
    for link in hw.links:
        where = f"hardware {hw.name!r}: link from {link.parent!r}"
        if link.parent not in names:
            raise SpecError(f"{where}: no memory level {link.parent!r}; levels are {names}")
        if not link.children:
            raise SpecError(f"{where}: name the levels it feeds (children), or {ARRAY!r} for the PE array")
        if not link.bytes_per_cycle > 0 or link.bytes_per_cycle == float("inf"):
            raise SpecError(f"{where}: bytes_per_cycle must be a positive finite number, got {link.bytes_per_cycle}")
        for child in link.children:
            if child != ARRAY and child not in names:
                raise SpecError(f"{where}: child {child!r} is no memory level (levels are {names}, or {ARRAY!r})")
            if child != ARRAY and names.index(child) >= names.index(link.parent):
                raise SpecError(f"{where}: child {child!r} is not inside it (levels run innermost to outermost)")
            if (link.parent, child) in seen:
                raise SpecError(f"{where}: {child!r} is fed by two links from the same level; keep one")
            seen.add((link.parent, child))


def _link(hw: Hardware, parent: str, child: str, *, required: bool) -> Link | None:
    for link in hw.links:
        if link.parent == parent and child in link.children:
            return link
    if required:
        raise SpecError(
            f"hardware {hw.name!r}: no link feeds {child!r} from {parent!r}; add one under links:, e.g. "
            f"{{parent: {parent}, children: [{child}], bytes_per_cycle: 16}}"
        )
    return None
