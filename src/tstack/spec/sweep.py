"""A sweep axis from its text form (`--set scratchpad=64K,128K` or `pe=8,16,32`), checked against a design.

The grid itself (`tstack.simulate.sweep`) takes `Axis` values; reading the user's text, with its size suffixes and
limits, is boundary work and lives here."""

from __future__ import annotations

from tstack.errors import SpecError
from tstack.hardware.design import level_names
from tstack.hardware.types import Hardware
from tstack.simulate.sweep import MAX_CAPACITY, MAX_PE_SIDE, Axis
from tstack.spec.hardware import parse_size_bytes


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
