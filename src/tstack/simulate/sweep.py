"""Design-space grids: vary memory sizes (or the array size) of a design and simulate each point (Fig. 13).

An `Axis` arrives as a value: `tstack.spec.sweep.parse_axis` reads the `--set NAME=V1,V2` text (sizes like 64K)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from tstack.errors import SpecError
from tstack.hardware.design import with_capacities
from tstack.hardware.types import Hardware, PEArray


@dataclass(frozen=True, slots=True)
class Axis:
    """One swept parameter: a memory level's capacity (by level name) or `pe` (a square array's side)."""

    name: str
    values: tuple[int, ...]


MAX_PE_SIDE = 2**14  # the bounds of a hardware file's array side and memory sizes (tstack.spec.hardware)
MAX_CAPACITY = 2**50
MAX_POINTS = 10_000  # designs in one sweep: each is a whole-model simulation


def apply(hw: Hardware, axis: Axis, value: int) -> Hardware:
    """`hw` with the axis set to `value`: a square array of side `value`, or one level's capacity in bytes."""
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
