"""A Timeloop architecture description (v0.3's tree, the form of Gemmini's `modeling/timeloop/arch/arch_default.yaml`
and DOSA's Gemmini `arch.yaml`) laid over a tstack design, so `tstack mapspace --timeloop-arch` draws and prices nests
on the description's own array, capacities and bandwidths.

The nest model is Gemmini's hierarchy, so the description must have components named DRAM, Scratchpad, Accumulator
(one per PE column) and Registers (one per PE). Read from it:
* the array: columns = the Accumulator's instances (its `instances`, else the multiplicity of the subtrees around it,
  e.g. `PECols[0..15]`), rows = the Registers' instances (likewise) / columns;
* capacities: `entries` (else `depth` x `width` / `word-bits`) x `word-bits`, the Accumulator's per instance;
* bandwidths: `shared_bandwidth`, else the smaller of `read_bandwidth` and `write_bandwidth`, in words per cycle
  (the DRAM's and the Scratchpad's become bytes per cycle through `word-bits`; an Accumulator's stay words). DRAM
  must have one; an on-chip level without one is unlimited, as Timeloop treats it.
Not read: energies. Timeloop takes them from Accelergy, which tstack does not run, so the per-byte and per-MAC energies
stay the design's (`--hw`); a design's other levels (e.g. an L2) are an error, as in `nest.NestHardware.of`.
Presets and files are read at the boundary (`tstack.spec.timeloop.load_timeloop_arch`); this module reads the
parsed document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from tstack.errors import SpecError
from tstack.hardware.design import design_of, with_capacities
from tstack.hardware.types import Hardware
from tstack.mapping.nest.matmul import NestHardware

_COMPONENTS = ("DRAM", "Scratchpad", "Accumulator", "Registers")
_RANGE = re.compile(r"\[(\d+)\.\.(\d+)\]$")


@dataclass(frozen=True, slots=True)
class TimeloopArch:
    """What the nest model takes from a Timeloop architecture (module docstring)."""

    name: str
    rows: int
    cols: int
    scratchpad_bytes: int
    accumulator_entries_per_column: int
    accumulator_word_bits: int
    dram_bytes_per_cycle: float
    scratchpad_bytes_per_cycle: float | None
    accumulator_words_per_cycle: float | None

    def on(self, design: Hardware) -> tuple[Hardware, NestHardware]:
        """The design with this array, these capacities and this DRAM bandwidth (its energies kept), and the nest
        model's view of it with the on-chip bandwidths."""
        reading = design_of(design)
        spad, acc, dram = reading.scratchpad, reading.accumulator, reading.dram
        hw = with_capacities(
            design,
            {
                spad.name: self.scratchpad_bytes,
                acc.name: self.accumulator_entries_per_column * self.cols * self.accumulator_word_bits // 8,
            },
            name=f"{design.name} + {self.name}",
        )
        hw = hw.with_level(acc.name, word_bits=self.accumulator_word_bits)
        hw = replace(
            hw.with_link(dram.name, spad.name, self.dram_bytes_per_cycle),
            pe=replace(design.pe, rows=self.rows, cols=self.cols),
        )
        nh = replace(
            NestHardware.of(hw),
            scratchpad_bytes_per_cycle=self.scratchpad_bytes_per_cycle,
            accumulator_words_per_cycle=self.accumulator_words_per_cycle,
        )
        return hw, nh


def _components(node: Any, multiplicity: int, out: dict[str, tuple[dict[str, Any], int]], origin: str) -> None:
    """Every `local` component under `node`, with the product of the instance ranges of the subtrees around it."""
    if not isinstance(node, dict):
        raise SpecError(f"{origin}: a subtree must be a mapping with name, local and subtree")
    found = _RANGE.search(str(node.get("name", "")))
    count = int(found.group(2)) - int(found.group(1)) + 1 if found else 1
    if count <= 0:
        raise SpecError(f"{origin}: subtree {node.get('name')!r} has an empty instance range; write [0..N-1]")
    here = multiplicity * count
    local, subtree = node.get("local") or [], node.get("subtree") or []
    if not isinstance(local, list) or not isinstance(subtree, list):
        raise SpecError(f"{origin}: subtree {node.get('name')!r}: local and subtree must be lists")
    for comp in local:
        if isinstance(comp, dict) and "name" in comp:
            attributes = comp.get("attributes") or {}
            if not isinstance(attributes, dict):
                raise SpecError(f"{origin}: {comp['name']}: attributes must be a mapping, got {attributes!r}")
            out[str(comp["name"])] = (dict(attributes), here)
    for child in subtree:
        _components(child, here, out, origin)


def _number(attrs: dict[str, Any], key: str, where: str) -> float:
    value = attrs[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 2**53:
        raise SpecError(f"{where}: {key} must be a positive finite number, got {value!r}")
    return float(value)


def _words_per_cycle(attrs: dict[str, Any], where: str) -> float | None:
    if "shared_bandwidth" in attrs:
        return _number(attrs, "shared_bandwidth", where)
    given = [_number(attrs, k, where) for k in ("read_bandwidth", "write_bandwidth") if k in attrs]
    return min(given) if given else None


def _entries(attrs: dict[str, Any], where: str) -> int:
    if "entries" in attrs:
        return int(_number(attrs, "entries", where))
    if "depth" in attrs and "width" in attrs:
        return int(_number(attrs, "depth", where) * _number(attrs, "width", where) // _word_bits(attrs, where))
    raise SpecError(f"{where}: give entries (or depth and width) so its capacity is known")


def _word_bits(attrs: dict[str, Any], where: str) -> int:
    return int(_number(attrs, "word-bits", where)) if "word-bits" in attrs else 8


def read_timeloop_arch(data: Any, name: str = "arch", origin: str = "arch") -> TimeloopArch:
    """The array, capacities and bandwidths of a Timeloop v0.3 architecture (module docstring)."""
    root = data.get("architecture") if isinstance(data, dict) else None
    if not isinstance(root, dict) or not isinstance(root.get("subtree"), list):
        raise SpecError(
            f"{origin}: expected a Timeloop v0.3 architecture ('architecture:' with a 'subtree:' list); "
            "v0.4's flat 'nodes:' form is not read"
        )
    comps: dict[str, tuple[dict[str, Any], int]] = {}
    for node in root["subtree"]:
        _components(node, 1, comps, origin)
    by_name = {n.lower(): n for n in comps}
    missing = [c for c in _COMPONENTS if c.lower() not in by_name]
    if missing:
        raise SpecError(
            f"{origin}: the nest model needs Gemmini's components {', '.join(_COMPONENTS)}; missing "
            f"{', '.join(missing)} (found {', '.join(comps) or 'none'})"
        )
    (dram, _), (spad, _) = comps[by_name["dram"]], comps[by_name["scratchpad"]]
    acc, acc_count = comps[by_name["accumulator"]]
    regs, reg_count = comps[by_name["registers"]]
    cols = int(_number(acc, "instances", f"{origin}: Accumulator")) if "instances" in acc else acc_count
    registers = int(_number(regs, "instances", f"{origin}: Registers")) if "instances" in regs else reg_count
    if registers % cols:
        raise SpecError(f"{origin}: {registers} Registers do not split evenly over {cols} PE columns")
    dram_words = _words_per_cycle(dram, f"{origin}: DRAM")
    if dram_words is None:
        raise SpecError(f"{origin}: DRAM needs shared_bandwidth (or read_bandwidth / write_bandwidth)")
    spad_words = _words_per_cycle(spad, f"{origin}: Scratchpad")
    spad_bits = _word_bits(spad, f"{origin}: Scratchpad")
    return TimeloopArch(
        name=name,
        rows=registers // cols,
        cols=cols,
        scratchpad_bytes=_entries(spad, f"{origin}: Scratchpad") * spad_bits // 8,
        accumulator_entries_per_column=_entries(acc, f"{origin}: Accumulator"),
        accumulator_word_bits=_word_bits(acc, f"{origin}: Accumulator"),
        dram_bytes_per_cycle=dram_words * _word_bits(dram, f"{origin}: DRAM") / 8,
        scratchpad_bytes_per_cycle=None if spad_words is None else spad_words * spad_bits / 8,
        accumulator_words_per_cycle=_words_per_cycle(acc, f"{origin}: Accumulator"),
    )
