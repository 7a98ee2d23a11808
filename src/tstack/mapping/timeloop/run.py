"""Run the real Timeloop (`timeloop-model`, bundled at `../shared/tools/timeloop`) on tstack nests and read back what
it reports, so tests and benchmarks can hold tstack's nest model against it.

The pieces:
* `locate_timeloop` finds the tool's folder (env `TSTACK_TIMELOOP_DIR`, else `<repo>/../shared/tools/timeloop`,
  else `/work/shared/tools/timeloop`) and `probe` checks it really runs here (its runtime libraries are installed);
  both raise `TimeloopUnavailableError` saying exactly why not.
* `matmul_problem` writes a matmul as Gemmini's Timeloop problem, a CNN layer (P = M, C = K, K = N, other dims 1);
  `gemmini_like_arch` writes a Gemmini-shaped v0.3 architecture (DRAM, Scratchpad, one Accumulator per PE column,
  one Registers per PE) with chosen array, capacities and bandwidths; tstack's restated presets are read at the
  boundary (`tstack.spec.timeloop.preset_arch`).
* `run_model` runs timeloop-model in its own directory and `parse_stats` reads `timeloop-model.stats.txt`: per level
  and dataspace the scalar reads, updates and fills summed over the utilized instances, the energy, the cycles.
* `nest_hardware` turns an architecture and Timeloop's own per-access energies into the `NestHardware` that prices
  nests under Timeloop's conventions (every DRAM access one DRAM word; see its docstring).
* With an L2 (`tstack.mapping.nest.l2`): `L2Arch` writes a Gemmini-like architecture with an L2 keeping every tensor
  and on-chip bandwidth limits and gives the five-level model's hardware; `l2_nest_to_timeloop` writes a five-level
  nest as a mapping; `compare_l2` and `crosscheck_l2` hold the two against each other.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tstack.errors import SpecError
from tstack.mapping.matmul.loopnest import MatmulShape
from tstack.mapping.nest import matmul as nest
from tstack.mapping.nest.matmul import NestHardware, Nests
from tstack.mapping.timeloop.arch import TimeloopArch, read_timeloop_arch
from tstack.mapping.timeloop.mapping_io import nest_to_timeloop

DATASPACES = ("Weights", "Inputs", "Outputs")
STAT_FILE = "timeloop-model.stats.txt"
_DEFAULT_DIR = Path("/work/shared/tools/timeloop")


class TimeloopUnavailableError(RuntimeError):
    """Timeloop cannot run here; the message says why (not found, libraries missing, ...)."""


class TimeloopFailedError(RuntimeError):
    """timeloop-model ran but produced no statistics (a rejected mapping, a bad file); the message has its output."""


def locate_timeloop(repo: Path | None = None) -> Path:
    """The folder of the bundled Timeloop (its `bin/timeloop-model`, `problem-shapes/`): `$TSTACK_TIMELOOP_DIR`, else
    `<repo>/../shared/tools/timeloop`, else `/work/shared/tools/timeloop`. Raises `TimeloopUnavailableError` naming
    every place looked at."""
    repo = repo if repo is not None else Path(__file__).resolve().parents[3]
    env = os.environ.get("TSTACK_TIMELOOP_DIR")
    candidates = [Path(env)] if env else [repo.parent / "shared" / "tools" / "timeloop", _DEFAULT_DIR]
    for folder in candidates:
        if (folder / "bin" / "timeloop-model").is_file() and (folder / "problem-shapes").is_dir():
            return folder
    where = "TSTACK_TIMELOOP_DIR=" + env if env else " or ".join(str(c) for c in candidates)
    raise TimeloopUnavailableError(f"no Timeloop (bin/timeloop-model beside problem-shapes/) in {where}")


def matmul_problem(shape: MatmulShape) -> dict[str, Any]:
    """A matmul M x N x K as Gemmini's Timeloop problem: a CNN layer with P = M, C = K (reduction), K = N."""
    if shape.batch != 1:
        raise SpecError(f"a Timeloop problem is one matmul; batch {shape.batch} is priced as {shape.batch} runs")
    instance = {"R": 1, "S": 1, "P": shape.m, "Q": 1, "C": shape.k, "K": shape.n, "N": 1}
    return {"problem": {"shape": "cnn-layer", "instance": instance}}


def gemmini_like_arch(
    *,
    rows: int,
    cols: int,
    scratchpad_bytes: int,
    accumulator_entries: int,
    dram_bytes_per_cycle: float,
    scratchpad_bytes_per_cycle: float | None = None,
    accumulator_words_per_cycle: float | None = None,
    accumulator_word_bits: int = 32,
) -> dict[str, Any]:
    """A v0.3 architecture in the shape of Gemmini's `arch_default.yaml` (8-bit DRAM and Scratchpad words, one
    Accumulator per PE column of `accumulator_entries` words, one weight Registers per PE), with these sizes and
    bandwidths (`shared_bandwidth`, words per cycle; None leaves a level unlimited)."""

    def bandwidth(value: float | None) -> dict[str, float]:
        return {} if value is None else {"shared_bandwidth": value}

    spad_width = 128
    dram = {
        "name": "DRAM",
        "class": "DRAM",
        "attributes": {"instances": 1, "word-bits": 8, "block_size": 64, "shared_bandwidth": dram_bytes_per_cycle},
    }
    spad = {
        "name": "Scratchpad",
        "class": "SRAM",
        "attributes": {
            "entries": scratchpad_bytes,
            "depth": scratchpad_bytes * 8 // spad_width,
            "width": spad_width,
            "instances": 1,
            "meshX": 1,
            "word-bits": 8,
            "n_rdwr_ports": 2,
            "n_banks": 4,
            **bandwidth(scratchpad_bytes_per_cycle),
        },
    }
    acc = {
        "name": "Accumulator",
        "class": "SRAM",
        "attributes": {
            "entries": accumulator_entries,
            "depth": accumulator_entries,
            "width": accumulator_word_bits,
            "instances": cols,
            "word-bits": accumulator_word_bits,
            "network-word-bits": 16,
            "n_rdwr_ports": 2,
            "n_banks": 2,
            **bandwidth(accumulator_words_per_cycle),
        },
    }
    regs = {
        "name": "Registers",
        "class": "SRAM",
        "attributes": {
            "depth": 1,
            "width": 8,
            "entries": 1,
            "instances": rows * cols,
            "word-bits": 8,
            "n_rdwr_ports": 2,
            "n_banks": 1,
        },
    }
    macc = {"name": "MACC", "class": "intmac", "attributes": {"datawidth": 8, "word-bits": 8}}
    pe_rows = {"name": f"PERows[0..{rows - 1}]", "local": [regs, macc]}
    pe_cols = {"name": f"PECols[0..{cols - 1}]", "local": [acc], "subtree": [pe_rows]}
    chip = {"name": "Chip", "attributes": {"technology": "40nm"}, "local": [spad], "subtree": [pe_cols]}
    system = {"name": "System", "local": [dram], "subtree": [chip]}
    return {"architecture": {"version": 0.3, "subtree": [system]}}  # fmt: skip


def arch_reading(arch: Mapping[str, Any], name: str = "arch") -> TimeloopArch:
    """What tstack's nest model reads from an architecture dict (`tstack.mapping.timeloop.arch`)."""
    return read_timeloop_arch(dict(arch), name, name)


@dataclass(frozen=True, slots=True)
class DataspaceStats:
    """One dataspace at one storage level: scalar accesses summed over the level's utilized instances, and the
    energy of all of them."""

    reads: int
    updates: int
    fills: int
    energy_pj: float
    instances: int  # utilized instances (each makes the same accesses: perfect factorizations)
    block_size: int  # words per vector access of the level

    @property
    def accesses(self) -> int:
        return self.reads + self.updates + self.fills

    @property
    def vectors(self) -> int:
        """Vector accesses as Timeloop prices them: per instance and action, ceil(scalar accesses / block size)."""
        per = (self.reads // self.instances, self.updates // self.instances, self.fills // self.instances)
        return self.instances * sum(-(-n // self.block_size) for n in per)


@dataclass(frozen=True, slots=True)
class ModelStats:
    """What timeloop-model reported for one mapping."""

    cycles: int
    computes: int
    mac_energy_pj: float  # all MACs together
    energy_pj: float  # Timeloop's total (its pJ/Compute total x computes), for a check of the parts
    by_level: dict[str, dict[str, DataspaceStats]]  # level -> dataspace -> stats

    def vector_pj(self, level: str) -> float:
        """The level's energy per vector access (Timeloop prices every access of a level alike under its PAT
        model), from the dataspace with most vector accesses; 0 if the level is never accessed."""
        best = max(self.by_level[level].values(), key=lambda s: s.vectors)
        return best.energy_pj / best.vectors if best.vectors else 0.0

    def per_access_pj(self, level: str) -> float:
        """The level's energy per scalar access: per vector access / block size."""
        spaces = self.by_level[level].values()
        return self.vector_pj(level) / next(iter(spaces)).block_size if spaces else 0.0

    @property
    def mac_pj(self) -> float:
        return self.mac_energy_pj / self.computes

    def parts_energy_pj(self) -> float:
        return self.mac_energy_pj + sum(s.energy_pj for lv in self.by_level.values() for s in lv.values())


_LEVEL = re.compile(r"^=== (\w+) ===$")
_FIELD = re.compile(r"^\s+([A-Za-z][A-Za-z ()/\-]*?)\s*:\s*(\S+)")


def parse_stats(text: str) -> ModelStats:
    """Read `timeloop-model.stats.txt`: per storage level and dataspace the scalar reads, updates and fills (per
    instance in the file, multiplied here by the utilized instances), the energy; the MACs; the summary cycles."""
    levels: dict[str, dict[str, DataspaceStats]] = {}
    mac: dict[str, str] = {}
    level: str | None = None
    space: str | None = None
    fields: dict[str, str] = {}

    block: dict[str, int] = {}

    def close() -> None:
        if level is not None and space is not None and fields:
            instances = int(fields["Utilized instances (max)"])
            levels.setdefault(level, {})[space] = DataspaceStats(
                int(fields["Scalar reads (per-instance)"]) * instances,
                int(fields["Scalar updates (per-instance)"]) * instances,
                int(fields["Scalar fills (per-instance)"]) * instances,
                float(fields["Energy (total)"]),
                instances,
                block[level],
            )

    lines = text.splitlines()
    body = lines[: next((i for i, ln in enumerate(lines) if ln.startswith("Networks")), len(lines))]
    for line in body:
        found = _LEVEL.match(line.strip())
        if found:
            close()
            level, space, fields = found.group(1), None, {}
            continue
        stripped = line.strip()
        if level is not None and stripped.rstrip(":") in DATASPACES and stripped.endswith(":"):
            close()
            space, fields = stripped[:-1], {}
            continue
        field = _FIELD.match(line)
        if field and level is not None:
            if space is None:
                mac.setdefault(f"{level}:{field.group(1)}", field.group(2))
                if field.group(1) == "Block size":
                    block[level] = int(field.group(2))
            else:
                fields.setdefault(field.group(1), field.group(2))
    close()
    pattern = re.compile(r"^(Cycles|Computes|\s+Total)\s*[:=]\s*(\S+)$", re.M)
    summary = {m.group(1).strip(): m.group(2) for m in pattern.finditer(text)}
    if "Cycles" not in summary or "Computes" not in summary or "MACC:Energy (total)" not in mac:
        raise TimeloopFailedError("timeloop-model's statistics lack the summary (cycles, computes, MAC energy)")
    computes = int(summary["Computes"])
    return ModelStats(
        cycles=int(summary["Cycles"]),
        computes=computes,
        mac_energy_pj=float(mac["MACC:Energy (total)"]),
        energy_pj=float(summary["Total"]) * computes,
        by_level=levels,
    )


def run_model(
    folder: Path,
    arch: Mapping[str, Any],
    problem: Mapping[str, Any],
    mapping: Mapping[str, Any],
    workdir: Path | None = None,
    timeout_s: float = 120.0,
) -> ModelStats:
    """Run timeloop-model on one mapping, in `workdir` (a fresh temporary directory if None, removed after), and
    parse its statistics. Raises `TimeloopUnavailableError` if it cannot start or load its libraries here,
    `TimeloopFailedError` if it runs but reports no statistics."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="timeloop-") as tmp:
            return run_model(folder, arch, problem, mapping, Path(tmp), timeout_s)
    files = {"arch.yaml": arch, "problem.yaml": problem, "mapping.yaml": mapping}
    for name, doc in files.items():
        (workdir / name).write_text(yaml.safe_dump(dict(doc), sort_keys=False), encoding="utf-8")
    # what the folder's `run` wrapper does, without its library check (`ldconfig -p | grep -q` under pipefail fails
    # at random when grep exits first); a missing library shows as the loader's error instead
    env = {**os.environ, "TIMELOOP_DIR": str(folder)}
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(folder / "bin"), os.environ.get("LD_LIBRARY_PATH")) if p)
    try:
        done = subprocess.run(
            [str(folder / "bin" / "timeloop-model"), *files],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except OSError as exc:
        raise TimeloopUnavailableError(f"cannot start {folder}/bin/timeloop-model: {exc}") from None
    stats = workdir / STAT_FILE
    if done.returncode != 0 or not stats.is_file():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
        if "error while loading shared libraries" in tail:
            raise TimeloopUnavailableError(f"timeloop-model cannot load its libraries: {tail}")
        raise TimeloopFailedError(f"timeloop-model exited {done.returncode} without statistics:\n{tail}")
    return parse_stats(stats.read_text(encoding="utf-8"))


def probe(folder: Path, arch: Mapping[str, Any]) -> None:
    """Run timeloop-model once on a 16 x 16 x 16 matmul on `arch`, a 16 x 16 Gemmini architecture document (the
    preset `gemmini`, `tstack.spec.timeloop.preset_arch`; the whole array unrolled, m at the Scratchpad); raises
    `TimeloopUnavailableError` or `TimeloopFailedError` saying why it does not run."""
    factors = np.ones((1, len(nest.LEVELS), 3), dtype=np.int64)
    factors[0, nest.SCRATCHPAD, nest.M] = 16
    one = Nests(factors, np.zeros((1, len(nest.LEVELS)), dtype=np.int64), np.array([16]), np.array([16]))
    mapping = nest_to_timeloop(one, 0)
    stats = run_model(folder, arch, matmul_problem(MatmulShape(16, 16, 16)), mapping)
    if stats.computes != 16**3:
        raise TimeloopFailedError(f"timeloop-model's probe reported {stats.computes} computes, not {16**3}")


def nest_hardware(arch: TimeloopArch, stats: ModelStats | None) -> NestHardware:
    """The nest model's view of `arch` priced with Timeloop's own energies (from `stats`, any mapping on it).

    Timeloop counts scalar accesses of each level's word; tstack's energies are per byte and its DRAM traffic is in
    bytes. The Scratchpad's and DRAM's words are bytes, so their per-access energies are per-byte ones. Timeloop moves
    every DRAM word of Outputs (partial sums too) as one 8-bit word, while tstack spills partial sums at the
    accumulator's width (`acc_bytes_per_word`): to price under Timeloop's convention `acc_bytes_per_word` is 1 here, so
    the accumulator's per-access energy is its per-byte one and its bandwidth stays in words. Register reads (one per
    MAC) are part of the MAC energy, as tstack prices them. Without `stats` every energy is 0 (for drawing nests)."""

    def pj(level: str) -> float:
        return 0.0 if stats is None else stats.per_access_pj(level)

    return NestHardware(
        rows=arch.rows,
        cols=arch.cols,
        scratchpad_elements=arch.scratchpad_bytes,
        accumulator_elements_per_column=arch.accumulator_entries_per_column,
        acc_bytes_per_word=1,
        dram_bytes_per_cycle=arch.dram_bytes_per_cycle,
        mac_pj=(0.0 if stats is None else stats.mac_pj) + pj("Registers"),
        dram_read_pj_per_byte=pj("DRAM"),
        dram_write_pj_per_byte=pj("DRAM"),
        spad_read_pj_per_byte=pj("Scratchpad"),
        spad_write_pj_per_byte=pj("Scratchpad"),
        acc_read_pj_per_byte=pj("Accumulator"),
        acc_write_pj_per_byte=pj("Accumulator"),
        scratchpad_bytes_per_cycle=arch.scratchpad_bytes_per_cycle,
        accumulator_words_per_cycle=arch.accumulator_words_per_cycle,
        register_write_pj_per_byte=pj("Registers"),
    )


def timeloop_cycles(compute_cycles: int, levels: Sequence[tuple[float | None, Sequence[tuple[int, int]]]]) -> int:
    """Cycles as timeloop-model computes them from access counts (`BufferLevel::ComputePerformance`): per level with a
    `shared_bandwidth` (words per cycle; None = unlimited), per dataspace (Weights, Inputs, Outputs order) the reads
    and the writes (fills + updates) of one instance, each divided by the compute cycles in floating point and
    summed; a level whose demand exceeds its bandwidth slows the nest by bandwidth / demand; its cycles are the
    ceiling of compute cycles / slowdown; the nest's are the largest. This is tstack's latency (max of compute and
    words / bandwidth per level) but for Timeloop's floating-point ceiling, which can add one cycle where the exact
    quotient is an integer."""
    cycles = compute_cycles
    for bandwidth, spaces in levels:
        reads = writes = 0.0
        for r, w in spaces:
            reads += r / compute_cycles
            writes += w / compute_cycles
        if bandwidth is not None and bandwidth < writes + reads:
            cycles = max(cycles, math.ceil(compute_cycles / (bandwidth / (writes + reads))))
    return cycles
