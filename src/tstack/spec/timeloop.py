"""Timeloop-style files read for the core: a user's mapping YAML (`tstack map --mapping FILE`), Timeloop
architectures and mapspace constraints (presets in `src/tstack/presets/timeloop/` or the user's files), and the
measured run of real Timeloop's random mapper on Gemmini's files.

The core reads the parsed documents (`tstack.mapping.timeloop.mapping_io.from_timeloop`,
`timeloop.arch.read_timeloop_arch`, `timeloop.constraints.read_nest_constraints`, `timeloop.sampler.read_id_space`);
finding and reading the files is boundary work and lives here. `gemmini_timeloop_files` bundles what the `timeloop` and
`timeloop-ids` mapspace semantics take (`tstack.mapping.mapspace.characterize(timeloop=...)`).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from tstack.errors import SpecError
from tstack.fileio import read_yaml
from tstack.mapping.nest.matmul import NestConstraints
from tstack.mapping.timeloop.arch import TimeloopArch, read_timeloop_arch
from tstack.mapping.timeloop.constraints import read_nest_constraints
from tstack.mapping.timeloop.files import TimeloopFiles
from tstack.mapping.timeloop.sampler import IdSpace, TimeloopEnergies, read_id_space
from tstack.spec.loading import yaml_preset_or_file

PRESETS = Path(__file__).resolve().parent.parent / "presets" / "timeloop"
ARCH_PRESETS = PRESETS / "arch"
CONSTRAINT_PRESETS = PRESETS / "constraints"
# Real Timeloop's random mapper on Gemmini's files (benchmarks/timeloop_mapper_samples.py writes it): the sampled
# statistics, the subspace sizes it printed and its per-access energies
MEASURED = PRESETS / "measured" / "gemmini-random.json"


def read_mapping_yaml(path: Path) -> Any:
    """The parsed content of a Timeloop-style mapping YAML file, or one line saying why it cannot be read."""
    return read_yaml(path, "mapping")


def arch_presets() -> list[str]:
    """The restated Timeloop architectures (`gemmini`: Gemmini's `arch_default.yaml`; `dosa-gemmini`: DOSA's)."""
    return sorted(p.stem for p in ARCH_PRESETS.glob("*.yaml"))


def constraint_presets() -> list[str]:
    """The restated mapspace constraints (`gemmini`, `dosa-random`, `dosa-real-gemmini`)."""
    return sorted(p.stem for p in CONSTRAINT_PRESETS.glob("*.yaml"))


def load_timeloop_arch(source: str | Path) -> TimeloopArch:
    """An architecture from a preset name (`arch_presets`) or a Timeloop architecture YAML file."""
    data, path = yaml_preset_or_file(source, ARCH_PRESETS, "Timeloop architecture")
    return read_timeloop_arch(data, path.stem, str(path))


def preset_arch(name: str) -> dict[str, Any]:
    """One of tstack's restated Timeloop architectures (`gemmini`, `dosa-gemmini`) as a dict to write back out."""
    data, _ = yaml_preset_or_file(name, ARCH_PRESETS, "Timeloop architecture")
    if not isinstance(data, dict):
        raise SpecError(f"Timeloop architecture {name!r} is not a mapping")
    return data


def load_nest_constraints(source: str | Path) -> NestConstraints:
    """Constraints from a preset name (`constraint_presets`) or a Timeloop constraints YAML file."""
    data, path = yaml_preset_or_file(source, CONSTRAINT_PRESETS, "mapspace constraints")
    return read_nest_constraints(data, path.stem, str(path))


def load_id_space(constraints: str | Path = "gemmini", arch: str | Path | None = "gemmini") -> IdSpace:
    """`read_id_space` of a constraints preset or file (`load_nest_constraints`) on an architecture preset or file
    (`load_timeloop_arch`; None: the design's array, every fanout along X)."""
    data, path = yaml_preset_or_file(constraints, CONSTRAINT_PRESETS, "mapspace constraints")
    arch_data = None
    if arch is not None:
        arch_data, _ = yaml_preset_or_file(arch, ARCH_PRESETS, "Timeloop architecture")
    return read_id_space(data, arch_data, path.stem, str(path))


@cache
def timeloop_measurement() -> dict[str, Any]:
    """Real Timeloop's random-mapper run on Gemmini's published files (`MEASURED`; labelled measured)."""
    data: dict[str, Any] = json.loads(MEASURED.read_text(encoding="utf-8"))
    return data


def timeloop_pat_energies() -> TimeloopEnergies:
    """The per-access energies Timeloop's built-in `pat` model gives Gemmini's `arch_default.yaml`, as printed in
    the measured runs' timeloop-mapper.stats.txt (`MEASURED`); every run must agree."""
    tables = [op["pat_energy_pj_per_access"] for op in timeloop_measurement()["ops"].values()]
    if any(t != tables[0] for t in tables):
        raise SpecError(f"{MEASURED}: the measured runs disagree on Timeloop's per-access energies")
    pj = tables[0]
    return TimeloopEnergies(
        macc_pj=pj["MACC"],
        registers_pj=pj["Registers"],
        accumulator_pj=pj["Accumulator"],
        scratchpad_pj=pj["Scratchpad"],
        dram_pj=pj["DRAM"],
    )


@cache
def gemmini_timeloop_files() -> TimeloopFiles:
    """Gemmini's Timeloop files (the presets `gemmini`) read once: what the `timeloop` and `timeloop-ids` mapspace
    semantics take."""
    return TimeloopFiles(
        constraints=load_nest_constraints("gemmini"),
        id_space=load_id_space("gemmini", "gemmini"),
        arch=load_timeloop_arch("gemmini"),
        energies=timeloop_pat_energies(),
    )


def crosscheck_files(
    arch_names: tuple[str, ...], constraint_names: tuple[str, ...]
) -> tuple[dict[str, dict[str, Any]], dict[str, NestConstraints]]:
    """The architecture documents and constraint mapspaces the Timeloop cross-check draws on
    (`tstack.mapping.timeloop.crosscheck.CROSSCHECK_ARCH_PRESETS`, `CROSSCHECK_CONSTRAINT_PRESETS`), by name."""
    return {n: preset_arch(n) for n in arch_names}, {n: load_nest_constraints(n) for n in constraint_names}
