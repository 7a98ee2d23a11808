"""Gemmini's published Timeloop files as values: what the `timeloop` and `timeloop-ids` mapspace semantics and
`timeloop.sampler.timeloop_energies` take, so the mapping core reads no preset itself.

The files are restated in `src/tstack/presets/timeloop/` (the Gemmini repo's `modeling/timeloop/mapspace/mapspace.yaml`
and `arch/arch_default.yaml`, and a real Timeloop random-mapper run on them, `measured/gemmini-random.json`); the
boundary (`tstack.spec.timeloop.gemmini_timeloop_files`) reads them once and hands this bundle to the core.
"""

from __future__ import annotations

from dataclasses import dataclass

from tstack.mapping.nest.matmul import NestConstraints
from tstack.mapping.timeloop.arch import TimeloopArch
from tstack.mapping.timeloop.sampler import IdSpace, TimeloopEnergies


@dataclass(frozen=True, slots=True)
class TimeloopFiles:
    """Gemmini's Timeloop files, read: the mapspace constraints as a nest mapspace (`timeloop` semantics), the same
    constraints on the architecture as Timeloop's mapping-ID space (`timeloop-ids`), the architecture's array,
    capacities and bandwidths, and the per-access energies Timeloop's `pat` model gives that architecture
    (measured)."""

    constraints: NestConstraints
    id_space: IdSpace
    arch: TimeloopArch
    energies: TimeloopEnergies
