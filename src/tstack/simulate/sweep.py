"""Design-space grids: vary memory sizes (or the array size) of a design and simulate each point (Fig. 13)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from tstack.errors import SpecError
from tstack.hardware.design import level_names, with_capacities
from tstack.hardware.types import Hardware, PEArray
from tstack.spec.hardware import parse_size_bytes


@dataclass(frozen=True, slots=True)
class Axis:
    """One swept parameter: a memory level's capacity (by level name) or `pe` (a square array's side)."""

    name: str
    values: tuple[int, ...]


MAX_PE_SIDE = 2**14  # the bounds of a hardware file's array side and memory sizes (tstack.spec.hardware)
MAX_CAPACITY = 2**50
MAX_POINTS = 10_000  # designs in one sweep: each is a whole-model simulation


def parse_axis(text: str, hw: Hardware) -> Axis:
    """`scratchpad=64K,128K,256K` or `pe=8,16,32`."""
    if "=" not in text:
        raise SpecError(f"--set expects NAME=V1,V2,... (e.g. scratchpad=64K,128K), got {text!r}")
    name, _, raw = text.partition("=")
    name = name.strip()
    levels = level_names(hw)
    if name != "pe" and name not in levels:
        raise SpecError(f"--set {name}: {hw.name!r} has no memory level {name!r}; choose pe or one of {levels}")
    try:
        values = tuple(int(v) if name == "pe" else parse_size_bytes(v) for v in raw.split(",") if v.strip())
    except ValueError as exc:
        raise SpecError(f"--set {name}: {exc}") from None
    if not values or any(v <= 0 for v in values):
        raise SpecError(f"--set {name}: give one or more positive values")
    limit = MAX_PE_SIDE if name == "pe" else MAX_CAPACITY
    if max(values) > limit:
        raise SpecError(f"--set {name}: {max(values):,} is above tstack's limit of {limit:,}")
    if len(set(values)) != len(values):
        raise SpecError(f"--set {name}: a value is given twice; list each value once")
    return Axis(name, values)


def apply(hw: Hardware, axis: Axis, value: int) -> Hardware:
    if axis.name == "pe":
        return replace(hw, pe=PEArray(value, value, hw.pe.dataflow, hw.pe.mac_energy_pj), name=f"{hw.name}")
    return with_capacities(hw, {axis.name: value})


def grid(hw: Hardware, axes: Sequence[Axis]) -> list[tuple[tuple[int, ...], Hardware]]:
    """Every combination of the axes' values, with the design it gives."""
    total = math.prod(len(a.values) for a in axes)
    if total > MAX_POINTS:
        raise SpecError(f"--set axes make {total:,} designs, more than the {MAX_POINTS:,} one sweep may simulate")
    points = []
    for combo in itertools.product(*(a.values for a in axes)):
        design = hw
        for axis, value in zip(axes, combo, strict=True):
            design = apply(design, axis, value)
        points.append((combo, design))
    return points
