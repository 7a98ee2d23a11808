"""tstack's nest models checked against the real Timeloop: what each Timeloop count is in tstack, the comparison of
one nest, the plans of random nests (matmuls, 7-loop convolutions, matmuls with an L2) and the parallel runs
(`tests/golden/test_timeloop_crosscheck*.py`, `benchmarks/timeloop_crosscheck.py`, benchmarks/RESULTS-timeloop.md).
Running the binary and reading its output is `tstack.mapping.timeloop.run`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tstack.mapping.conv.loopnest import ConvShape
from tstack.mapping.matmul.loopnest import DIMS, ORDERS, MatmulShape
from tstack.mapping.nest import conv as conv_nest
from tstack.mapping.nest import l2 as nest_l2
from tstack.mapping.nest import matmul as nest
from tstack.mapping.nest.conv import ConvNests
from tstack.mapping.nest.matmul import NestConstraints, Nests, Spatial
from tstack.mapping.timeloop.arch import TimeloopArch
from tstack.mapping.timeloop.mapping_io import GEMMINI_PROBLEM_DIMS, GEMMINI_TARGETS, NEST_TO_GEMMINI, nest_to_timeloop
from tstack.mapping.timeloop.run import (
    DATASPACES,
    ModelStats,
    arch_reading,
    gemmini_like_arch,
    matmul_problem,
    nest_hardware,
    run_model,
    timeloop_cycles,
)

# Timeloop's stats (level, dataspace) and what each count is in tstack's nest model (`nest.accesses`): reads,
# updates, fills; "macs" = m x n x k, "updates-mn" = accumulator updates - m x n, "0" = none.
COUNT_MAP: dict[tuple[str, str], tuple[str, str, str]] = {
    ("DRAM", "Weights"): ("dram_to_scratchpad_weights", "0", "0"),
    ("DRAM", "Inputs"): ("dram_to_scratchpad_inputs", "0", "0"),
    ("DRAM", "Outputs"): ("partial_sum_refills", "accumulator_evictions", "0"),
    ("Scratchpad", "Weights"): ("scratchpad_to_registers_weights", "0", "dram_to_scratchpad_weights"),
    ("Scratchpad", "Inputs"): ("scratchpad_to_array_inputs", "0", "dram_to_scratchpad_inputs"),
    ("Accumulator", "Outputs"): ("updates-mn", "accumulator_updates", "accumulator_evictions"),
    ("Registers", "Weights"): ("macs", "0", "scratchpad_to_registers_weights"),
}


@dataclass(frozen=True, slots=True)
class Comparison:
    """One nest priced by timeloop-model and by tstack's nest model (given Timeloop's per-access energies)."""

    label: str  # arch / shape / constraints / draw
    nest_text: str  # the nest, printed
    counts: dict[str, tuple[int, int]]  # "Level.Dataspace.kind" -> (Timeloop, tstack)
    timeloop_cycles: int
    tstack_latency: float  # tstack's exact latency
    tstack_cycles: int  # tstack's counts through Timeloop's floating-point ceiling (`timeloop_cycles`)
    timeloop_energy_pj: float  # the sum of Timeloop's per-level energies
    timeloop_total_pj: float  # Timeloop's pJ/Compute total x computes (printed to 0.01 pJ/compute)
    tstack_energy_pj: float  # `nest.costs` with Timeloop's per-access energies
    block_rounding_pj: float  # Timeloop's rounding of tstack's counts up to whole vector accesses (see `compare`)
    computes: int

    @property
    def count_mismatches(self) -> dict[str, tuple[int, int]]:
        return {k: v for k, v in self.counts.items() if v[0] != v[1]}

    @property
    def energy_error(self) -> float:
        """Relative error of tstack's energy with Timeloop's vector rounding added."""
        return (self.tstack_energy_pj + self.block_rounding_pj) / self.timeloop_energy_pj - 1

    @property
    def energy_error_costs_only(self) -> float:
        """Relative error of `nest.costs`'s energy alone."""
        return self.tstack_energy_pj / self.timeloop_energy_pj - 1


def compare(label: str, shape: MatmulShape, nests: Nests, stats: ModelStats, arch: TimeloopArch) -> Comparison:
    """Nest 0 of `nests` (as run in Timeloop to give `stats`) against tstack: every count of `COUNT_MAP` (and any
    level or dataspace Timeloop reports that the map lacks, as a mismatch against 0), cycles, energy. tstack's
    energy is `nest.costs` on `nest_hardware(arch, stats)` (register fills at Timeloop's register energy); Timeloop
    prices whole vector accesses (per instance and action, ceil(accesses / block size): the
    Scratchpad's block is 16 words, DRAM's 64), so `block_rounding_pj` prices what that rounding adds to tstack's
    counts; it is reported apart from `nest.costs`'s energy."""
    one = nests.take(np.array([0]))
    acc = {k: int(v[0]) for k, v in nest.accesses(shape, one).items()}
    cost = nest.costs(shape, one, nest_hardware(arch, stats))
    sn, sk = int(one.spatial_n[0]), int(one.spatial_k[0])
    return _comparison(label, one.loop_nest(0), acc, shape.m * shape.n, shape.m * shape.n * shape.k, (sn, sk),
                       int(one.factors.prod()), cost, stats, arch)  # fmt: skip


def _comparison(
    label: str,
    nest_text: str,
    acc: dict[str, int],
    outputs: int,
    macs: int,
    spatial: tuple[int, int],
    compute: int,
    cost: nest.NestCosts,
    stats: ModelStats,
    arch: TimeloopArch,
) -> Comparison:
    """One nest's counts (`nest.accesses`' keys), its MACs, output elements, spatial factors (PE columns, rows in
    use), temporal steps and tstack's cost, against Timeloop's `stats` (see `compare`)."""
    acc = acc | {"0": 0, "macs": macs, "updates-mn": acc["accumulator_updates"] - outputs}
    counts: dict[str, tuple[int, int]] = {}
    for level, spaces in stats.by_level.items():
        for space, got in spaces.items():
            want = COUNT_MAP.get((level, space), ("0", "0", "0"))
            for kind, tl, key in zip(("reads", "updates", "fills"), (got.reads, got.updates, got.fills), want,
                                     strict=True):  # fmt: skip
                counts[f"{level}.{space}.{kind}"] = (tl, acc[key])
    sn, sk = spatial
    instances = {"DRAM": 1, "Scratchpad": 1, "Accumulator": sn, "Registers": sn * sk}
    rounding = 0.0
    for (level, space), keys in COUNT_MAP.items():
        spaces = stats.by_level.get(level, {})
        if spaces:
            b, count = next(iter(spaces.values())).block_size, instances[level]
            extra = sum(-(-acc[k] // count // b) * b - acc[k] // count for k in keys)
            rounding += extra * count * stats.per_access_pj(level)
        if space not in stats.by_level.get(level, {}):
            for kind, key in zip(("reads", "updates", "fills"), keys, strict=True):
                counts[f"{level}.{space}.{kind}"] = (-1, acc[key])  # Timeloop did not report it
    counts["MACC.computes"] = (stats.computes, macs)
    demands: list[tuple[float | None, list[tuple[int, int]]]] = [
        (arch.dram_bytes_per_cycle, [(acc["dram_to_scratchpad_weights"], 0), (acc["dram_to_scratchpad_inputs"], 0),
                                     (acc["partial_sum_refills"], acc["accumulator_evictions"])]),
        (arch.scratchpad_bytes_per_cycle, [(acc["scratchpad_to_registers_weights"], acc["dram_to_scratchpad_weights"]),
                                           (acc["scratchpad_to_array_inputs"], acc["dram_to_scratchpad_inputs"])]),
        (arch.accumulator_words_per_cycle, [((acc["updates-mn"]) // sn,
                                             (acc["accumulator_updates"] + acc["accumulator_evictions"]) // sn)]),
    ]  # fmt: skip
    return Comparison(
        label=label,
        nest_text=nest_text,
        counts=counts,
        timeloop_cycles=stats.cycles,
        tstack_latency=float(cost.latency_cycles[0]),
        tstack_cycles=timeloop_cycles(compute, demands),
        timeloop_energy_pj=stats.parts_energy_pj(),
        timeloop_total_pj=stats.energy_pj,
        tstack_energy_pj=float(cost.energy_pj[0]),
        block_rounding_pj=rounding,
        computes=stats.computes,
    )


# The cross-check's plan: architectures, matmuls and mapspace cuts the nests are drawn from.
CROSSCHECK_ARCH_PRESETS = ("gemmini", "dosa-gemmini")


def crosscheck_archs(presets: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Gemmini's arch_default, DOSA's Gemmini (`presets`: the documents of `CROSSCHECK_ARCH_PRESETS`, read by
    `tstack.spec.timeloop.crosscheck_files`), and a third Gemmini-like design: an 8 x 32 array, a 64 KiB
    scratchpad at 16 B/cycle, 256-entry accumulators at 1 word/cycle each, DRAM at 4 B/cycle."""
    return {
        **{name: dict(presets[name]) for name in CROSSCHECK_ARCH_PRESETS},
        "gemmini-8x32-bw": gemmini_like_arch(rows=8, cols=32, scratchpad_bytes=64 * 1024, accumulator_entries=256,
                                             dram_bytes_per_cycle=4, scratchpad_bytes_per_cycle=16,
                                             accumulator_words_per_cycle=1),
    }  # fmt: skip


CROSSCHECK_SHAPES: dict[str, MatmulShape] = {
    "bert-qkv": MatmulShape(512, 768, 768),  # BERT-Base, sequence 512
    "bert-ffn1": MatmulShape(512, 3072, 768),
    "bert-ffn2": MatmulShape(512, 768, 3072),
    "bert-scores": MatmulShape(512, 512, 64),
    "bert-context": MatmulShape(512, 64, 512),
    "odd-24x40x36": MatmulShape(24, 40, 36),
    "odd-96x48x80": MatmulShape(96, 48, 80),
    "odd-30x42x18": MatmulShape(30, 42, 18),
    "prime-7x11x13": MatmulShape(7, 11, 13),
}
CROSSCHECK_CONSTRAINT_PRESETS = ("gemmini", "dosa-random", "dosa-real-gemmini")
CROSSCHECK_CUTS = ("free", "full", *CROSSCHECK_CONSTRAINT_PRESETS)


def _cut(name: str, constraints: Mapping[str, NestConstraints]) -> Spatial | NestConstraints:
    return {"free": Spatial.FREE, "full": Spatial.FULL}.get(name) or constraints[name]


@dataclass(frozen=True, slots=True)
class Draw:
    label: str
    shape: MatmulShape
    nests: Nests  # one nest


def draw_plan(arch: TimeloopArch, per_arch: int, seed: int, constraints: Mapping[str, NestConstraints]) -> list[Draw]:
    """`per_arch` random valid nests on `arch`: round robin over every (matmul, mapspace cut) pair, each nest
    drawn uniformly (`nest.sample`) from its cut: free spatial factors, the whole array unrolled, and the
    Gemmini and DOSA constraint files (`constraints`, by the names of `CROSSCHECK_CONSTRAINT_PRESETS`)."""
    rng = np.random.default_rng(seed)
    hw = nest_hardware(arch, None)
    pairs = [(s, c) for s in CROSSCHECK_SHAPES for c in CROSSCHECK_CUTS]
    want = {p: per_arch // len(pairs) + (i < per_arch % len(pairs)) for i, p in enumerate(pairs)}
    out: list[Draw] = []
    for (shape_name, cut), count in want.items():
        if count == 0:
            continue
        shape = CROSSCHECK_SHAPES[shape_name]
        drawn, _ = nest.sample(shape, hw, count, rng, _cut(cut, constraints))
        for i in range(len(drawn)):
            out.append(Draw(f"{arch.name}/{shape_name}/{cut}/{i}", shape, drawn.take(np.array([i]))))
    return out


def crosscheck(
    folder: Path,
    archs: Mapping[str, Mapping[str, Any]],
    per_arch: int,
    seed: int = 0,
    workers: int = 2,
    *,
    constraints: Mapping[str, NestConstraints],
) -> dict[str, list[Comparison]]:
    """Draw `per_arch` nests on every architecture (`draw_plan`, with the `constraints` cuts), run timeloop-model on
    each (`workers` at a time) and compare."""
    jobs: list[tuple[str, TimeloopArch, Draw]] = []
    for name, doc in archs.items():
        reading = arch_reading(doc, name)
        jobs += [(name, reading, d) for d in draw_plan(reading, per_arch, seed, constraints)]

    def one(job: tuple[str, TimeloopArch, Draw]) -> Comparison:
        name, reading, d = job
        stats = run_model(folder, archs[name], matmul_problem(d.shape), nest_to_timeloop(d.nests, 0))
        return compare(d.label, d.shape, d.nests, stats, reading)

    return _grouped(list(archs), [job[0] for job in jobs], _parallel(one, jobs, workers))


_Job = TypeVar("_Job")


def _parallel(run: Callable[[_Job], Comparison], jobs: Sequence[_Job], workers: int) -> list[Comparison]:
    """`run` over `jobs`, `workers` timeloop-model processes at a time, in order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, jobs))


def _grouped(names: Sequence[str], owners: Sequence[str], done: Sequence[Comparison]) -> dict[str, list[Comparison]]:
    """The comparisons by architecture (`owners[i]` ran `done[i]`), in the order the architectures were given."""
    out: dict[str, list[Comparison]] = {name: [] for name in names}
    for name, c in zip(owners, done, strict=True):
        out[name].append(c)
    return out


def summary_rows(results: Mapping[str, Sequence[Comparison]]) -> list[dict[str, Any]]:
    """Per architecture: mappings, how many have every count equal, cycles equal (as Timeloop rounds; and exactly
    the ceiling of tstack's latency), the largest energy error (with register fills and vector rounding; and of
    `nest.costs` alone)."""
    rows = []
    for name, cs in results.items():
        rows.append({
            "arch": name,
            "mappings": len(cs),
            "counts_equal": sum(not c.count_mismatches for c in cs),
            "cycles_equal": sum(c.timeloop_cycles == c.tstack_cycles for c in cs),
            "cycles_equal_ceil": sum(c.timeloop_cycles == math.ceil(c.tstack_latency) for c in cs),
            "max_energy_error": max(abs(c.energy_error) for c in cs),
            "max_energy_error_costs_only": max(abs(c.energy_error_costs_only) for c in cs),
        })  # fmt: skip
    return rows


# 7-loop convolutions (`tstack.mapping.nest.conv`): the same harness on Gemmini's cnn-layer problem.
def conv_problem(shape: ConvShape) -> dict[str, Any]:
    """A conv as Gemmini's Timeloop problem (a cnn-layer; both strides `shape.stride`, no dilation)."""
    instance = {"R": shape.r, "S": shape.s, "P": shape.p, "Q": shape.q, "C": shape.c, "K": shape.k, "N": shape.n,
                "Wstride": shape.stride, "Hstride": shape.stride}  # fmt: skip
    return {"problem": {"shape": "cnn-layer", "instance": instance}}


def conv_nest_to_timeloop(nests: ConvNests, i: int = 0) -> dict[str, Any]:
    """Conv nest `i` as a Timeloop mapping for Gemmini's description: per level a temporal directive (factors, and
    its order as a permutation, inner to outer), K unrolled at the Scratchpad, C at the Accumulator, and the bypass
    directives of Gemmini's mapspace.yaml."""
    dims = conv_nest.DIMS

    def factors(values: Sequence[int]) -> str:
        return " ".join(f"{d}={int(v)}" for d, v in zip(dims, values, strict=True))

    directives: list[dict[str, Any]] = []
    for lv in reversed(range(len(nest.LEVELS))):
        target = GEMMINI_TARGETS[lv]
        permutation = "".join(dims[int(d)] for d in reversed(nests.orders[i, lv]))
        directives.append({"target": target, "type": "temporal", "factors": factors(nests.factors[i, lv]),
                           "permutation": permutation})  # fmt: skip
        spatial = {"Scratchpad": (conv_nest.K, nests.spatial_k), "Accumulator": (conv_nest.C, nests.spatial_c)}
        if target in spatial:
            d, side = spatial[target]
            values = [1] * len(dims)
            values[d] = int(side[i])
            rest = "".join(x for x in dims if x != dims[d])
            directives.append({"target": target, "type": "spatial", "factors": factors(values),
                               "permutation": dims[d] + rest})  # fmt: skip
    keep = {"DRAM": ["Weights", "Inputs", "Outputs"], "Scratchpad": ["Inputs", "Weights"],
            "Accumulator": ["Outputs"], "Registers": ["Weights"]}  # fmt: skip
    bypass = [{"target": t, "type": "bypass", "keep": k, "bypass": [x for x in DATASPACES if x not in k]}
              for t, k in keep.items()]  # fmt: skip
    return {"mapping": [*directives, *bypass]}


def compare_conv(label: str, shape: ConvShape, nests: ConvNests, stats: ModelStats, arch: TimeloopArch) -> Comparison:
    """Conv nest 0 of `nests` (as run in Timeloop to give `stats`) against `nest.conv`, as `compare` does a matmul's."""
    one = nests.take(np.array([0]))
    acc = {k: int(v[0]) for k, v in conv_nest.accesses(shape, one).items()}
    cost = conv_nest.costs(shape, one, nest_hardware(arch, stats))
    sn, sk = int(one.spatial_k[0]), int(one.spatial_c[0])
    outputs = shape.n * shape.k * shape.p * shape.q
    return _comparison(label, one.loop_nest(0), acc, outputs, shape.macs, (sn, sk), int(one.factors.prod()), cost,
                       stats, arch)  # fmt: skip


# ResNet-50 layers (batch 1; P, Q the output size) and small odd convs: 1x1 and 3x3, strides 1 and 2
CONV_CROSSCHECK_SHAPES: dict[str, ConvShape] = {
    "r50-conv2-3x3": ConvShape(n=1, k=64, c=64, p=56, q=56, r=3, s=3),
    "r50-conv2-1x1": ConvShape(n=1, k=256, c=64, p=56, q=56, r=1, s=1),
    "r50-conv3-3x3-s2": ConvShape(n=1, k=128, c=128, p=28, q=28, r=3, s=3, stride=2),
    "r50-conv3-down-1x1-s2": ConvShape(n=1, k=512, c=256, p=28, q=28, r=1, s=1, stride=2),
    "r50-conv5-3x3": ConvShape(n=1, k=512, c=512, p=7, q=7, r=3, s=3),
    "small-3x3": ConvShape(n=2, k=16, c=8, p=6, q=6, r=3, s=3),
    "small-3x3-s2": ConvShape(n=1, k=8, c=12, p=4, q=6, r=3, s=3, stride=2),
    "small-1x1-s2": ConvShape(n=2, k=12, c=6, p=5, q=4, r=1, s=1, stride=2),
    "small-1x1": ConvShape(n=4, k=24, c=16, p=3, q=9, r=1, s=1),
}


@dataclass(frozen=True, slots=True)
class ConvDraw:
    label: str
    shape: ConvShape
    nests: ConvNests  # one nest


def conv_draw_plan(arch: TimeloopArch, per_arch: int, seed: int) -> list[ConvDraw]:
    """`per_arch` random valid conv nests on `arch`, round robin over `CONV_CROSSCHECK_SHAPES` (`nest.conv.sample`)."""
    rng = np.random.default_rng(seed)
    hw = nest_hardware(arch, None)
    names = list(CONV_CROSSCHECK_SHAPES)
    out: list[ConvDraw] = []
    for j, name in enumerate(names):
        count = per_arch // len(names) + (j < per_arch % len(names))
        if count == 0:
            continue
        shape = CONV_CROSSCHECK_SHAPES[name]
        drawn = conv_nest.sample(shape, hw, count, rng)
        out += [ConvDraw(f"{arch.name}/{name}/{i}", shape, drawn.take(np.array([i]))) for i in range(len(drawn))]
    return out


def crosscheck_conv(
    folder: Path, archs: Mapping[str, Mapping[str, Any]], per_arch: int, seed: int = 0, workers: int = 2
) -> dict[str, list[Comparison]]:
    """Draw `per_arch` conv nests on every architecture, run timeloop-model on each and compare (`compare_conv`)."""
    jobs: list[tuple[str, TimeloopArch, ConvDraw]] = []
    for name, doc in archs.items():
        reading = arch_reading(doc, name)
        jobs += [(name, reading, d) for d in conv_draw_plan(reading, per_arch, seed)]

    def one(job: tuple[str, TimeloopArch, ConvDraw]) -> Comparison:
        name, reading, d = job
        stats = run_model(folder, archs[name], conv_problem(d.shape), conv_nest_to_timeloop(d.nests, 0))
        return compare_conv(d.label, d.shape, d.nests, stats, reading)

    return _grouped(list(archs), [job[0] for job in jobs], _parallel(one, jobs, workers))


# Matmul nests with an L2 (`tstack.mapping.nest.l2`): Gemmini's hierarchy with a shared L2 between DRAM and the
# scratchpad/accumulators, and on-chip bandwidth limits.
L2_TARGETS = ("DRAM", "L2", "Scratchpad", "Accumulator", "Registers")  # outermost first, as nest_l2.LEVELS
L2_KEEPS = {"DRAM": list(DATASPACES), "L2": list(DATASPACES), "Scratchpad": ["Inputs", "Weights"],
            "Accumulator": ["Outputs"], "Registers": ["Weights"]}  # fmt: skip


@dataclass(frozen=True, slots=True)
class L2Arch:
    """A Gemmini-like architecture with an L2 (`doc` writes it as Timeloop's v0.3 tree): 8-bit DRAM, L2 and
    Scratchpad words, one Accumulator per PE column, one weight Registers per PE; bandwidths in words per cycle
    (Timeloop's `shared_bandwidth`; None leaves a level unlimited)."""

    name: str
    rows: int
    cols: int
    l2_bytes: int
    scratchpad_bytes: int
    accumulator_entries: int
    dram_bytes_per_cycle: float
    l2_bytes_per_cycle: float | None
    scratchpad_bytes_per_cycle: float | None
    accumulator_words_per_cycle: float | None

    def doc(self) -> dict[str, Any]:
        """The architecture: `gemmini_like_arch`'s, with an L2 (256-bit rows, 32-word blocks) beside the Scratchpad in
        the Chip node, listed first (outermost)."""
        arch = gemmini_like_arch(rows=self.rows, cols=self.cols, scratchpad_bytes=self.scratchpad_bytes,
                                 accumulator_entries=self.accumulator_entries,
                                 dram_bytes_per_cycle=self.dram_bytes_per_cycle,
                                 scratchpad_bytes_per_cycle=self.scratchpad_bytes_per_cycle,
                                 accumulator_words_per_cycle=self.accumulator_words_per_cycle)  # fmt: skip
        width = 256
        attributes: dict[str, Any] = {"entries": self.l2_bytes, "depth": self.l2_bytes * 8 // width, "width": width,
                                      "instances": 1, "word-bits": 8, "n_rdwr_ports": 2, "n_banks": 8}  # fmt: skip
        if self.l2_bytes_per_cycle is not None:
            attributes["shared_bandwidth"] = self.l2_bytes_per_cycle
        chip = arch["architecture"]["subtree"][0]["subtree"][0]
        chip["local"] = [{"name": "L2", "class": "SRAM", "attributes": attributes}, *chip["local"]]
        return arch

    def hardware(self, stats: ModelStats | None) -> nest_l2.L2NestHardware:
        """The five-level model's view of this design priced with Timeloop's own energies (from `stats`, any mapping
        on it; 0 without), under Timeloop's conventions as `nest_hardware` (acc_bytes_per_word = 1, register reads in
        the MAC energy, register fills at the register's)."""

        def pj(level: str) -> float:
            return 0.0 if stats is None else stats.per_access_pj(level)

        return nest_l2.L2NestHardware(
            rows=self.rows,
            cols=self.cols,
            l2_elements=self.l2_bytes,
            scratchpad_elements=self.scratchpad_bytes,
            accumulator_elements_per_column=self.accumulator_entries,
            acc_bytes_per_word=1,
            dram_bytes_per_cycle=self.dram_bytes_per_cycle,
            mac_pj=(0.0 if stats is None else stats.mac_pj) + pj("Registers"),
            dram_read_pj_per_byte=pj("DRAM"),
            dram_write_pj_per_byte=pj("DRAM"),
            l2_read_pj_per_byte=pj("L2"),
            l2_write_pj_per_byte=pj("L2"),
            spad_read_pj_per_byte=pj("Scratchpad"),
            spad_write_pj_per_byte=pj("Scratchpad"),
            acc_read_pj_per_byte=pj("Accumulator"),
            acc_write_pj_per_byte=pj("Accumulator"),
            l2_bytes_per_cycle=self.l2_bytes_per_cycle,
            scratchpad_bytes_per_cycle=self.scratchpad_bytes_per_cycle,
            accumulator_words_per_cycle=self.accumulator_words_per_cycle,
            register_write_pj_per_byte=pj("Registers"),
        )


def l2_crosscheck_archs() -> dict[str, L2Arch]:
    """The L2 cross-check's design: a 16 x 16 array, a 512 KiB L2 at 8 B/cycle, a 64 KiB scratchpad at 24 B/cycle,
    256-entry accumulators at 2.5 words/cycle each, DRAM at 2 B/cycle (chosen so that each of compute, DRAM, L2,
    scratchpad and accumulator bandwidth limits some of the drawn nests)."""
    arch = L2Arch("gemmini-l2-bw", rows=16, cols=16, l2_bytes=512 * 1024, scratchpad_bytes=64 * 1024,
                  accumulator_entries=256, dram_bytes_per_cycle=2, l2_bytes_per_cycle=8,
                  scratchpad_bytes_per_cycle=24, accumulator_words_per_cycle=2.5)  # fmt: skip
    return {arch.name: arch}


def l2_nest_to_timeloop(nests: nest_l2.L2Nests, i: int = 0) -> dict[str, Any]:
    """Five-level nest `i` as a Timeloop mapping for `L2Arch`: per level a temporal directive (factors, and its order
    as a permutation, inner to outer, the unit dims innermost), n unrolled at the Scratchpad and k at the
    Accumulator, and the keep/bypass directives (the L2 keeps every dataspace)."""
    directives: list[dict[str, Any]] = []
    for lv in reversed(range(len(L2_TARGETS))):
        target = L2_TARGETS[lv]
        factors = {NEST_TO_GEMMINI[d]: int(nests.factors[i, lv, j]) for j, d in enumerate(DIMS)}
        order = ORDERS[int(nests.orders[i, lv])]
        permutation = "RSQN" + "".join(NEST_TO_GEMMINI[d] for d in reversed(order))
        directives.append({"target": target, "type": "temporal", "factors": _problem_factors(factors),
                           "permutation": permutation})  # fmt: skip
        spatial = {"Scratchpad": ("n", nests.spatial_n), "Accumulator": ("k", nests.spatial_k)}
        if target in spatial:
            dim, side = spatial[target]
            name = NEST_TO_GEMMINI[dim]
            rest = "".join(d for d in GEMMINI_PROBLEM_DIMS if d != name)
            directives.append({"target": target, "type": "spatial", "factors": _problem_factors({name: int(side[i])}),
                               "permutation": name + rest})  # fmt: skip
    bypass = [{"target": t, "type": "bypass", "keep": k, "bypass": [x for x in DATASPACES if x not in k]}
              for t, k in L2_KEEPS.items()]  # fmt: skip
    return {"mapping": [*directives, *bypass]}


def _problem_factors(values: Mapping[str, int]) -> str:
    return " ".join(f"{d}={values.get(d, 1)}" for d in GEMMINI_PROBLEM_DIMS)


# Timeloop's stats (level, dataspace) and what each count is in `nest.l2.accesses`: reads, updates, fills ("macs" =
# m x n x k, "updates-mn" = accumulator updates - m x n, "0" = none).
L2_COUNT_MAP: dict[tuple[str, str], tuple[str, str, str]] = {
    ("DRAM", "Weights"): ("dram_to_l2_weights", "0", "0"),
    ("DRAM", "Inputs"): ("dram_to_l2_inputs", "0", "0"),
    ("DRAM", "Outputs"): ("dram_to_l2_outputs", "l2_output_residencies", "0"),
    ("L2", "Weights"): ("l2_to_scratchpad_weights", "0", "dram_to_l2_weights"),
    ("L2", "Inputs"): ("l2_to_scratchpad_inputs", "0", "dram_to_l2_inputs"),
    ("L2", "Outputs"): ("l2_to_accumulator_outputs", "accumulator_evictions", "l2_output_residencies"),
    ("Scratchpad", "Weights"): ("scratchpad_to_registers_weights", "0", "l2_to_scratchpad_weights"),
    ("Scratchpad", "Inputs"): ("scratchpad_to_array_inputs", "0", "l2_to_scratchpad_inputs"),
    ("Accumulator", "Outputs"): ("updates-mn", "accumulator_updates", "accumulator_evictions"),
    ("Registers", "Weights"): ("macs", "0", "scratchpad_to_registers_weights"),
}


def compare_l2(label: str, shape: MatmulShape, nests: nest_l2.L2Nests, stats: ModelStats, arch: L2Arch) -> Comparison:
    """Five-level nest 0 of `nests` (as run in Timeloop to give `stats`) against `nest.l2`, as `compare` does a
    four-level one: every count of `L2_COUNT_MAP` (a level or dataspace either side lacks is a mismatch), cycles
    through Timeloop's formula, energy with Timeloop's vector rounding of tstack's counts."""
    one = nests.take(np.array([0]))
    acc: dict[str, int] = {k: int(v[0]) for k, v in nest_l2.accesses(shape, one).items()}
    cost = nest_l2.costs(shape, one, arch.hardware(stats))
    sn, sk = int(one.spatial_n[0]), int(one.spatial_k[0])
    acc |= {"0": 0, "macs": shape.m * shape.n * shape.k, "updates-mn": acc["accumulator_updates"] - shape.m * shape.n}
    counts: dict[str, tuple[int, int]] = {}
    for level, spaces in stats.by_level.items():
        for space, got in spaces.items():
            want = L2_COUNT_MAP.get((level, space), ("0", "0", "0"))
            for kind, tl, key in zip(("reads", "updates", "fills"), (got.reads, got.updates, got.fills), want,
                                     strict=True):  # fmt: skip
                counts[f"{level}.{space}.{kind}"] = (tl, acc[key])
    instances = {"DRAM": 1, "L2": 1, "Scratchpad": 1, "Accumulator": sn, "Registers": sn * sk}
    rounding = 0.0
    for (level, space), keys in L2_COUNT_MAP.items():
        spaces = stats.by_level.get(level, {})
        if spaces:
            b, count = next(iter(spaces.values())).block_size, instances[level]
            extra = sum(-(-acc[k] // count // b) * b - acc[k] // count for k in keys)
            rounding += extra * count * stats.per_access_pj(level)
        if space not in spaces:
            for kind, key in zip(("reads", "updates", "fills"), keys, strict=True):
                counts[f"{level}.{space}.{kind}"] = (-1, acc[key])  # Timeloop did not report it
    counts["MACC.computes"] = (stats.computes, acc["macs"])
    demands: list[tuple[float | None, list[tuple[int, int]]]] = [
        (arch.dram_bytes_per_cycle, [(acc["dram_to_l2_weights"], 0), (acc["dram_to_l2_inputs"], 0),
                                     (acc["dram_to_l2_outputs"], acc["l2_output_residencies"])]),
        (arch.l2_bytes_per_cycle, [(acc["l2_to_scratchpad_weights"], acc["dram_to_l2_weights"]),
                                   (acc["l2_to_scratchpad_inputs"], acc["dram_to_l2_inputs"]),
                                   (acc["l2_to_accumulator_outputs"],
                                    acc["accumulator_evictions"] + acc["l2_output_residencies"])]),
        (arch.scratchpad_bytes_per_cycle, [(acc["scratchpad_to_registers_weights"], acc["l2_to_scratchpad_weights"]),
                                           (acc["scratchpad_to_array_inputs"], acc["l2_to_scratchpad_inputs"])]),
        (arch.accumulator_words_per_cycle, [(acc["updates-mn"] // sn,
                                             (acc["accumulator_updates"] + acc["accumulator_evictions"]) // sn)]),
    ]  # fmt: skip
    return Comparison(
        label=label,
        nest_text=one.loop_nest(0),
        counts=counts,
        timeloop_cycles=stats.cycles,
        tstack_latency=float(cost.latency_cycles[0]),
        tstack_cycles=timeloop_cycles(int(one.factors.prod()), demands),
        timeloop_energy_pj=stats.parts_energy_pj(),
        timeloop_total_pj=stats.energy_pj,
        tstack_energy_pj=float(cost.energy_pj[0]),
        block_rounding_pj=rounding,
        computes=stats.computes,
    )


L2_CROSSCHECK_CUTS = ("free", "full")  # spatial factors: any divisor up to the side; the whole array unrolled


@dataclass(frozen=True, slots=True)
class L2Draw:
    label: str
    shape: MatmulShape
    nests: nest_l2.L2Nests  # one nest


def l2_draw_plan(arch: L2Arch, per_arch: int, seed: int) -> list[L2Draw]:
    """`per_arch` random valid five-level nests on `arch` (`nest.l2.sample`), round robin over every (matmul of
    `CROSSCHECK_SHAPES`, cut of `L2_CROSSCHECK_CUTS`) pair."""
    rng = np.random.default_rng(seed)
    hw = arch.hardware(None)
    pairs = [(s, c) for s in CROSSCHECK_SHAPES for c in L2_CROSSCHECK_CUTS]
    out: list[L2Draw] = []
    for i, (shape_name, cut) in enumerate(pairs):
        count = per_arch // len(pairs) + (i < per_arch % len(pairs))
        if count == 0:
            continue
        shape = CROSSCHECK_SHAPES[shape_name]
        drawn = nest_l2.sample(shape, hw, count, rng, fill_array=cut == "full")
        out += [L2Draw(f"{arch.name}/{shape_name}/{cut}/{j}", shape, drawn.take(np.array([j])))
                for j in range(len(drawn))]  # fmt: skip
    return out


def crosscheck_l2(
    folder: Path, archs: Mapping[str, L2Arch], per_arch: int, seed: int = 0, workers: int = 2
) -> dict[str, list[Comparison]]:
    """Draw `per_arch` five-level nests on every L2 architecture, run timeloop-model on each and compare
    (`compare_l2`)."""
    jobs = [(name, d) for name, arch in archs.items() for d in l2_draw_plan(arch, per_arch, seed)]
    docs = {name: arch.doc() for name, arch in archs.items()}

    def one(job: tuple[str, L2Draw]) -> Comparison:
        name, d = job
        stats = run_model(folder, docs[name], matmul_problem(d.shape), l2_nest_to_timeloop(d.nests, 0))
        return compare_l2(d.label, d.shape, d.nests, stats, archs[name])

    return _grouped(list(archs), [job[0] for job in jobs], _parallel(one, jobs, workers))
