"""Speed of the model of record (issue 15): the multi-level nest model `tstack.mapping.nest.matmul` (checked access for
access against real Timeloop) and its one-tile special case `tstack.mapping.matmul.cost.matmul_costs`, on BERT-Base FFN1
(512 x 3072 x 768), beside ZigZag's mapper and Timeloop's own mapper on the same op.

Measured (wall clock, `time.perf_counter`; one warm-up call, then the minimum of N calls):
1. mapping evaluations per second: `nest.costs` over >= 1,000,000 valid nests of FFN1 on gemmini-baseline, drawn
   once with `nest.sample` (free spatial factors: the widest nest space) and not timed; `nest.sample` + `nest.costs`
   together; `matmul_costs` over the whole one-tile mapspace (under Timeloop's options, where it equals the nest
   model) and over 1,000,000 mappings drawn from it;
2. the exhaustive FFN1 optimum: `mappers.exhaustive` (what `simulate --mapper exhaustive` runs per op), and every
   nest of Gemmini's Timeloop mapspace (constraints preset `gemmini`) enumerated, priced and the best taken;
3. the whole BERT-Base encoder, `tstack.simulate("bert-base", "gemmini-baseline", 512, mapper="exhaustive")`, with
   every mapping cache cleared before each call;
4. ZigZag's LOMA search on FFN1 (benchmarks/bench_zigzag.py's setup and functions) beside tstack's exhaustive search
   on the same machine description;
5. Timeloop's mapper (the bundled ../shared/tools/timeloop/bin/timeloop-mapper) on FFN1 with Gemmini's published
   arch and mapspace files (tstack presets timeloop/arch/gemmini.yaml, timeloop/constraints/gemmini.yaml), 2 threads,
   EDP: a random-pruned search stopped by its victory condition (500 suboptimal mappings in a row) and a linear-pruned
   walk of the whole mapspace (stopped by SIGINT at --timeloop-limit seconds if unfinished); its wall time to the
   best mapping (from the time-stamped improvement lines it prints) and that best's EDP; beside tstack's time to the
   best of the same mapspace (enumerated, priced with Timeloop's own per-access energies read from the mapper's
   statistics, `timeloop.run.nest_hardware`), that best's EDP under tstack and under `timeloop-model`, and Timeloop's
   best priced by tstack.

Run: python benchmarks/bench_model_of_record.py [--nests N] [--repeats N] [--timeloop-limit S] [--skip-zigzag]
(a benchmark, run by hand; never a timed test)
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import itertools
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import yaml

import tstack
from tstack.hardware import design
from tstack.hardware.types import Hardware
from tstack.mapping.mapspace import TIMELOOP_OPTIONS, timeloop_hardware
from tstack.mapping.matmul import mappers
from tstack.mapping.matmul.cost import OperandBits, matmul_costs
from tstack.mapping.matmul.loopnest import DIMS, ORDERS, MatmulShape
from tstack.mapping.matmul.mappers import exhaustive, full_mapspace
from tstack.mapping.nest import factorization
from tstack.mapping.nest import matmul as nest
from tstack.mapping.nest import one_tile as nest_one_tile
from tstack.mapping.nest.matmul import NestConstraints, NestHardware, Nests
from tstack.mapping.timeloop.mapping_io import nest_from_timeloop, nest_to_timeloop
from tstack.mapping.timeloop.run import (
    ModelStats,
    TimeloopUnavailableError,
    arch_reading,
    locate_timeloop,
    matmul_problem,
    nest_hardware,
    parse_stats,
    run_model,
)
from tstack.simulate import engine
from tstack.simulate.engine import ModelResult
from tstack.spec.timeloop import load_nest_constraints, preset_arch

HERE = Path(__file__).resolve().parent
PRESETS = HERE.parent / "src" / "tstack" / "presets" / "timeloop"
FFN1 = MatmulShape(512, 3072, 768)
IntArray = npt.NDArray[np.int64]
T = TypeVar("T")


def min_time(fn: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Minimum wall seconds of `repeats` calls after one warm-up call, and the last result."""
    result = fn()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


@dataclass(frozen=True)
class Row:
    what: str
    target: str
    measured: str
    met: str = ""


# ---- the constrained nest mapspace, enumerated ---------------------------------------------------------------------


def factorizations(bound: int, slots: int) -> IntArray:
    """Every ordered factorization of `bound` into `slots` factors, one row each."""
    out = np.ones((1, slots), dtype=np.int64)
    for p, e in factorization.prime_powers(bound):
        powers = p ** factorization.compositions(e, slots)
        out = (out[:, None, :] * powers[None, :, :]).reshape(-1, slots)
    return out


def enumerate_nests(shape: MatmulShape, nh: NestHardware, constraints: NestConstraints) -> tuple[Nests, int]:
    """Every valid nest of a constrained mapspace (each dimension's free factors over its free slots, under the caps;
    every allowed order of every level with a loop), and the size of the space before the capacity check."""
    fixed, maximum = nest._slot_factors(constraints, shape, nh, one_weight_register=True)
    per_dim = []
    for j, bound in enumerate((shape.m, shape.n, shape.k)):
        column = fixed[:, j]
        free = np.flatnonzero(column == 0)
        rest = bound // int(np.prod(column[column > 0]))
        drawn = factorizations(rest, len(free))
        slots = np.tile(np.where(column == 0, 1, column), (len(drawn), 1))
        slots[:, free] = drawn
        cap = maximum[:, j]
        per_dim.append(slots[np.all((cap == 0) | (slots <= cap), axis=1)])
    grid = [g.ravel() for g in np.meshgrid(*(np.arange(len(d)) for d in per_dim), indexing="ij")]
    slots = np.stack([per_dim[j][grid[j]] for j in range(3)], axis=2)  # (count, SLOTS, 3)
    level_orders = [allowed[:1] if np.all(fixed[lv] == 1) else allowed for lv, allowed in enumerate(constraints.orders)]
    combos = np.array(list(itertools.product(*level_orders)), dtype=np.int64)
    which = np.repeat(np.arange(len(slots)), len(combos))
    slots = slots[which]
    every = Nests(
        np.ascontiguousarray(slots[:, : nest.SPATIAL_SLOT]),
        np.tile(combos, (len(slots) // len(combos), 1)),
        np.ascontiguousarray(slots[:, nest.SPATIAL_SLOT, nest.N]),
        np.ascontiguousarray(slots[:, nest.SPATIAL_SLOT, nest.K]),
    )
    return every.take(np.flatnonzero(nest.valid(every, nh))), len(every)


def nest_optimum(shape: MatmulShape, nh: NestHardware, constraints: NestConstraints) -> tuple[Nests, nest.NestCosts]:
    """The exhaustive nest mapper: enumerate the mapspace, price every valid nest, keep the best EDP."""
    space, _ = enumerate_nests(shape, nh, constraints)
    cost = nest.costs(shape, space, nh)
    best = int(np.argmin(cost.edp))
    return space.take(np.array([best])), nest.costs(shape, space.take(np.array([best])), nh)


# ---- 1-3: tstack alone ------------------------------------------------------------------------------------------


def rates(count: int, repeats: int) -> list[Row]:
    hw = tstack.load_hardware("gemmini-baseline")
    nh = NestHardware.of(hw)
    rng = np.random.default_rng(0)
    drawn, _ = nest.sample(FFN1, nh, count, rng, nest.Spatial.FREE)
    seconds, cost = min_time(lambda: nest.costs(FFN1, drawn, nh), repeats)
    assert np.all(np.isfinite(cost.edp)) and np.all(cost.edp > 0)
    rate = len(drawn) / seconds

    def sample_and_cost() -> nest.NestCosts:
        fresh, _ = nest.sample(FFN1, nh, count, rng, nest.Spatial.FREE)
        return nest.costs(FFN1, fresh, nh)

    both, _ = min_time(sample_and_cost, max(1, repeats // 2))
    tl = timeloop_hardware(hw)
    space = full_mapspace(FFN1)

    def one_tile(s: mappers.Mapspace) -> Callable[[], object]:
        return lambda: matmul_costs(FFN1, s.tile_m, s.tile_n, s.tile_k, s.order, tl, OperandBits(), TIMELOOP_OPTIONS)

    whole, _ = min_time(one_tile(space), max(repeats, 20))
    big = space.take(np.random.default_rng(1).integers(0, len(space), count))
    big_s, _ = min_time(one_tile(big), repeats)
    target = ">= 1,000,000 /s"
    return [
        Row(f"`nest.costs`, {len(drawn):,} sampled valid FFN1 nests (free spatial)", target,
            f"**{rate / 1e6:.2f} M/s** ({seconds * 1e3:.0f} ms)", "yes" if rate >= 1e6 else "**no**"),
        Row(f"`nest.sample` + `nest.costs`, {count:,} valid nests", "-",
            f"{count / both / 1e6:.2f} M/s ({both:.2f} s)"),
        Row(f"`matmul_costs` (Timeloop options), whole one-tile mapspace ({len(space):,})", target,
            f"**{len(space) / whole / 1e6:.2f} M/s** ({whole * 1e3:.1f} ms)",
            "yes" if len(space) / whole >= 1e6 else "**no**"),
        Row(f"`matmul_costs` (Timeloop options), {count:,} drawn from it", target,
            f"**{count / big_s / 1e6:.2f} M/s** ({big_s * 1e3:.0f} ms)", "yes" if count / big_s >= 1e6 else "**no**"),
    ]  # fmt: skip


def optimum(repeats: int) -> list[Row]:
    hw = tstack.load_hardware("gemmini-baseline")
    nh = NestHardware.of(hw)
    tl = timeloop_hardware(hw)
    one, result = min_time(lambda: exhaustive(FFN1, hw), max(repeats, 20))
    one_tl, result_tl = min_time(lambda: exhaustive(FFN1, tl, options=TIMELOOP_OPTIONS), max(repeats, 20))
    gemmini = load_nest_constraints("gemmini")
    space, size = enumerate_nests(FFN1, nh, gemmini)
    assert size == nest.space_size(FFN1, nh, gemmini), "the enumeration misses part of the constrained mapspace"
    constrained, (_, best_cost) = min_time(lambda: nest_optimum(FFN1, nh, gemmini), repeats)
    as_nests = nest_one_tile.one_tile_nests(FFN1, tl)
    one_as_nests, _ = min_time(lambda: nest.costs(FFN1, nest_one_tile.one_tile_nests(FFN1, tl), tl), max(repeats, 10))

    def met(s: float) -> str:
        return "yes" if s < 1 else "**no**"

    return [
        Row(f"`mappers.exhaustive`, FFN1, simulate's options ({result.evaluated:,} mappings; best EDP "
            f"{result.edp:.3e})", "< 1 s", f"**{one * 1e3:.1f} ms**", met(one)),
        Row(f"`mappers.exhaustive`, FFN1, Timeloop's options ({result_tl.evaluated:,}; best {result_tl.edp:.3e})",
            "< 1 s", f"**{one_tl * 1e3:.1f} ms**", met(one_tl)),
        Row(f"nest model, every one-tile mapping as a nest ({len(as_nests):,} valid), built and priced", "< 1 s",
            f"{one_as_nests * 1e3:.1f} ms", met(one_as_nests)),
        Row(f"nest model, Gemmini's Timeloop mapspace enumerated ({size:,} nests, {len(space):,} valid), priced, "
            f"best taken (EDP {float(best_cost.edp[0]):.3e})", "< 1 s", f"**{constrained * 1e3:.1f} ms**",
            met(constrained)),
    ]  # fmt: skip


def clear_caches() -> None:
    for cached in (engine._gemmini_mapping, engine._searched_mapping, engine._cosa_mapping, engine._direct_conv):
        cached.cache_clear()
    mappers.divisors.cache_clear()
    design._read.cache_clear()


def encoder(repeats: int) -> list[Row]:
    def run() -> ModelResult:
        clear_caches()
        return tstack.simulate("bert-base", "gemmini-baseline", 512, mapper="exhaustive")

    seconds, result = min_time(run, repeats)
    return [
        Row(f"`simulate('bert-base', 'gemmini-baseline', 512, mapper='exhaustive')`, caches cleared "
            f"(latency {result.latency_cycles:,.0f} cycles)", "< 2 s", f"**{seconds * 1e3:.0f} ms**",
            "yes" if seconds < 2 else "**no**"),
    ]  # fmt: skip


# ---- 4: ZigZag ------------------------------------------------------------------------------------------------------


def load_bench_zigzag() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_zigzag", HERE / "bench_zigzag.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def zigzag(repeats: int) -> list[list[str]]:
    try:  # the installed package (benchmarks/zigzag, its input files, would import as an empty namespace package)
        importlib.import_module("zigzag.api")
    except ImportError:
        return [["ZigZag LOMA", "skipped", "not installed (`pip install -e .[zigzag]`)", "", ""]]
    zz: Any = load_bench_zigzag()
    hw = zz.matched_hardware()
    with tempfile.TemporaryDirectory() as dump:
        zz_s, run = min_time(lambda: zz.run_zigzag(zz.SPATIAL, os.path.join(dump, "search")), repeats)
    ts_s, best = min_time(lambda: exhaustive(FFN1, hw), max(repeats, 20))
    return [
        [f"ZigZag LOMA, lpf_limit {zz.LPF_LIMIT} (bench_zigzag.py's files)", f"{run.evaluated:,}",
         f"**{zz_s:.2f} s**", f"{run.energy_pj * run.latency_cycles:.3e} (ZigZag's model)", ""],
        ["tstack `mappers.exhaustive` on the matched machine", f"{best.evaluated:,}", f"**{ts_s * 1e3:.1f} ms**",
         f"{best.edp:.3e} (tstack's model)", f"{zz_s / ts_s:,.0f}x faster"],
    ]  # fmt: skip


# ---- 5: Timeloop's mapper -----------------------------------------------------------------------------------------

IMPROVEMENT = re.compile(r"^\[\s*\d+\] Utilization = (\S+) \| pJ/Compute =\s*(\S+) \|")
STATS = re.compile(r"^\[(\d+)\] INVALID (\d+) (\d+) ")
SUMMARY = re.compile(r"^\s*Utilization = (\S+) \| pJ/Compute =\s*(\S+)\s*$")


@dataclass(frozen=True)
class MapperRun:
    label: str
    wall_s: float
    to_best_s: float  # arrival of the improvement line of the final best
    finished: bool  # False: stopped by SIGINT at the limit
    visited: tuple[int, int] | None  # mapping IDs visited and valid mappings found, all threads (with log-stats)
    stats: ModelStats
    mapping: dict[str, Any]  # timeloop-mapper.map.yaml

    @property
    def edp(self) -> float:
        return float(self.stats.parts_energy_pj() * self.stats.cycles)


def write_inputs(folder: Path) -> None:
    shutil.copy(PRESETS / "arch" / "gemmini.yaml", folder / "arch.yaml")
    shutil.copy(PRESETS / "constraints" / "gemmini.yaml", folder / "mapspace.yaml")
    (folder / "problem.yaml").write_text(yaml.safe_dump(matmul_problem(FFN1), sort_keys=False))


def run_mapper(tool: Path, folder: Path, label: str, config: dict[str, Any], limit_s: float) -> MapperRun:
    """timeloop-mapper in `folder` (inputs already written) with this mapper section; SIGINT at `limit_s` (Timeloop
    then stops its threads and reports the best so far). Output lines are time-stamped as they arrive (line-buffered
    through `stdbuf` where it exists)."""
    (folder / "mapper.yaml").write_text(yaml.safe_dump({"mapper": config}, sort_keys=False))
    env = {**os.environ, "TIMELOOP_DIR": str(tool), "LD_LIBRARY_PATH": str(tool / "bin")}
    command = [str(tool / "bin" / "timeloop-mapper"), "arch.yaml", "problem.yaml", "mapspace.yaml", "mapper.yaml"]
    if shutil.which("stdbuf"):
        command = ["stdbuf", "-oL", *command]
    lines: list[tuple[float, str]] = []  # every line but the per-mapping statistics
    last_stats: dict[str, tuple[int, int]] = {}  # thread -> (IDs visited, valid), from `[t] INVALID total valid ..`
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)  # fmt: skip
    stop = threading.Timer(limit_s, lambda: process.send_signal(signal.SIGINT))
    stop.start()
    assert process.stdout is not None
    for line in process.stdout:
        if (found := STATS.match(line)) is not None:
            last_stats[found.group(1)] = (int(found.group(2)), int(found.group(3)))
        elif not line.startswith("[") or IMPROVEMENT.match(line):
            lines.append((time.perf_counter() - start, line.rstrip("\n")))
    process.wait()
    wall = time.perf_counter() - start
    stop.cancel()
    finished = not any("Interrupt caught" in text for _, text in lines)
    if process.returncode != 0:
        raise RuntimeError(f"timeloop-mapper exited {process.returncode}: {lines[-5:]}")
    summary = next((m.groups() for _, t in lines if (m := SUMMARY.match(t))), None)
    arrivals = [t for t, text in lines if (hit := IMPROVEMENT.match(text)) and summary and hit.groups() == summary]
    stats = parse_stats((folder / "timeloop-mapper.stats.txt").read_text())
    mapping = yaml.safe_load((folder / "timeloop-mapper.map.yaml").read_text())
    visited = None
    if last_stats:
        visited = (sum(v[0] for v in last_stats.values()), sum(v[1] for v in last_stats.values()))
    return MapperRun(label, wall, min(arrivals) if arrivals else wall, finished, visited, stats, mapping)


def mapping_as_nest(mapping: dict[str, Any], hw: Hardware) -> Nests:
    """Timeloop's printed mapping (`P256` factors, `datatype` directives) in the form `nest_from_timeloop` reads."""
    directives = []
    for d in mapping["mapping"]:
        d = dict(d)
        if d["type"] == "datatype":
            d["type"] = "bypass"
        if "factors" in d:
            d["factors"] = re.sub(r"([A-Z])(\d+)", r"\1=\2", d["factors"])
        directives.append(d)
    return nest_from_timeloop({"mapping": directives}, FFN1, hw, "timeloop-mapper.map.yaml")


def timeloop(repeats: int, limit_s: float) -> list[list[str]]:
    try:
        tool = locate_timeloop(HERE.parent)
    except TimeloopUnavailableError as exc:
        return [["Timeloop", "skipped", str(exc), "", "", ""]]
    common = {"num-threads": 2, "optimization-metrics": ["edp"], "log-stats": False, "log-suboptimal": False,
              "live-status": False}  # fmt: skip
    searches = [
        ("random-pruned, victory-condition 500, timeout 15000",
         {"algorithm": "random-pruned", "victory-condition": 500, "timeout": 15000, **common}, repeats),
        ("linear-pruned, victory-condition 0, timeout 0 (the whole mapspace)",
         {"algorithm": "linear-pruned", "victory-condition": 0, "timeout": 0, **common}, 0),
    ]  # fmt: skip
    runs: list[MapperRun] = []
    with tempfile.TemporaryDirectory(prefix="tl-mapper-") as tmp:
        folder = Path(tmp)
        write_inputs(folder)
        for label, config, n in searches:
            best_run = None
            for _ in range(max(1, n)):
                done = run_mapper(tool, folder, label, config, limit_s)
                best_run = done if best_run is None or done.wall_s < best_run.wall_s else best_run
            assert best_run is not None
            runs.append(best_run)
        # tstack on the same mapspace, with Timeloop's own per-access energies (pat) read from the mapper's stats
        arch = preset_arch("gemmini")
        reading = arch_reading(arch, "gemmini")
        pat = nest_hardware(reading, runs[0].stats)
        gemmini = load_nest_constraints("gemmini")
        ts_s, (best, cost) = min_time(lambda: nest_optimum(FFN1, pat, gemmini), max(repeats, 5))
        space, size = enumerate_nests(FFN1, pat, gemmini)
        best_in_timeloop = run_model(tool, arch, matmul_problem(FFN1), nest_to_timeloop(best, 0))
    fit_check = tstack.load_hardware("gemmini-baseline")  # same capacities as the arch; only for the fit check
    rows = []
    for r in runs:
        theirs = mapping_as_nest(r.mapping, fit_check)
        priced = nest.costs(FFN1, theirs, pat)
        state = "finished" if r.finished else f"**stopped at {limit_s:.0f} s, unfinished**"
        if r.visited is not None:
            state += f" ({r.visited[0]:,} mapping IDs visited, {r.visited[1]:,} valid)"
        text = compact(theirs)
        rows.append([f"Timeloop {r.label}, 2 threads", state, f"**{r.to_best_s:.2f} s** (run {r.wall_s:.1f} s)",
                     f"{r.edp:.4e}", f"{float(priced.edp[0]):.4e}", text])  # fmt: skip
    tl_edp = best_in_timeloop.parts_energy_pj() * best_in_timeloop.cycles
    rows.append([f"tstack: every nest of the same mapspace ({size:,}; {len(space):,} valid) priced, best taken",
                 "finished", f"**{ts_s * 1e3:.1f} ms**", f"{tl_edp:.4e} (timeloop-model on it)",
                 f"{float(cost.edp[0]):.4e}", compact(best)])  # fmt: skip
    return rows


def compact(nests: Nests) -> str:
    """Nest 0 in one line: each level's loops of more than one trip, outermost first, and the spatial factors."""
    parts = []
    for lv, name in enumerate(nest.LEVELS):
        trips = {d: int(nests.factors[0, lv, DIMS.index(d)]) for d in ORDERS[int(nests.orders[0, lv])]}
        loops = [f"{d}{t}" for d, t in trips.items() if t > 1]
        if lv == nest.SCRATCHPAD:
            loops.append(f"n{int(nests.spatial_n[0])}X")
        if lv == nest.ACCUMULATOR:
            loops.append(f"k{int(nests.spatial_k[0])}X")
        if loops:
            parts.append(f"{name}: {' '.join(loops)}")
    return "; ".join(parts)


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nests", type=int, default=1_000_000, help="valid nests priced per timed call")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls after the warm-up")
    parser.add_argument("--zigzag-repeats", type=int, default=2)
    parser.add_argument("--timeloop-limit", type=float, default=300.0, help="seconds before a mapper run is stopped")
    parser.add_argument("--skip-zigzag", action="store_true")
    parser.add_argument("--skip-timeloop", action="store_true")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; Python {sys.version.split()[0]}, "
          f"numpy {np.__version__}; warm-up + min of {args.repeats}, wall time\n")  # fmt: skip
    rows = rates(args.nests, args.repeats) + optimum(args.repeats) + encoder(args.repeats)
    print(table(["measurement (BERT-Base FFN1 512 x 3072 x 768, gemmini-baseline)", "target", "measured", "met"],
                [[r.what, r.target, r.measured, r.met] for r in rows]))  # fmt: skip
    sys.stdout.flush()
    if not args.skip_zigzag:
        print()
        print(table(["FFN1 beside ZigZag (16 B/cycle, ZigZag's energies)", "mappings evaluated",
                     "search time (min)", "best EDP", "ratio"], zigzag(args.zigzag_repeats)))  # fmt: skip
        sys.stdout.flush()
    if not args.skip_timeloop:
        print()
        print(table(["FFN1 on Gemmini's Timeloop files (pat energies)", "search", "time to its best",
                     "best's EDP under Timeloop", "under tstack", "best mapping"],
                    timeloop(3, args.timeloop_limit)))  # fmt: skip
    print(f"\nload after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
