"""tstack's mapping search against ZigZag's on the same layer: BERT-Base FFN1 (512 x 768 x 3072, int8, 16x16 WS,
256 KiB scratchpad / 64 KiB accumulator, 16 B/cycle).

ZigZag (PyPI `zigzag-dse`, plus `six`, which it imports without declaring) runs the setup of peers.md §2.3 exactly:
the accelerator, spatial mapping and workload files in benchmarks/zigzag/ are peers.md Appendix A verbatim (config v1:
forced double buffering), searched by LOMA at lpf_limit 6 with opt = EDP. tstack's exhaustive mapper searches its own
mapspace on `gemmini-baseline` with the 16 B/cycle bus and ZigZag's per-access energies converted to pJ per byte, so
the two models price the same hardware.

Reported:
* the search time of each (min of N after a warm-up, CPU time of this process; ZigZag's LOMA runs in-process) and
  their ratio, with the mappings each evaluated;
* the best mapping each finds and its energy, latency and EDP under each tool's own model;
* cross-evaluation: tstack's best loop nest fed to ZigZag as a complete `temporal_ordering` (ZigZag's memory
  allocator then places it, as it places LOMA's orderings), and ZigZag's best placed in tstack's mapspace as the
  nearest mapping tstack can express (the DRAM-level loops' tile bounds; tstack keeps one tile per dim for all
  operands, ZigZag's mappings are uneven).

Run: python benchmarks/bench_zigzag.py [--repeats N]   (skips with a message if zigzag is not installed)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tstack
from tstack.hardware.types import Hardware
from tstack.mapping.matmul.cost import OperandBits, evaluate
from tstack.mapping.matmul.loopnest import Mapping, MatmulShape
from tstack.mapping.matmul.mappers import exhaustive, full_mapspace

HERE = Path(__file__).resolve().parent / "zigzag"
ACCELERATOR, SPATIAL, WORKLOAD = HERE / "gemmini_like.yaml", HERE / "mapping_ws.yaml", HERE / "ffn1.yaml"
FFN1 = MatmulShape(512, 3072, 768)  # tstack: M rows streamed, N outputs, K reduction (ZigZag: D, K, C)
LPF_LIMIT = 6

# ZigZag's per-access energies in gemmini_like.yaml (pJ per access of the port width), as pJ per byte
SPAD_READ, SPAD_WRITE = 100.0 / 16, 110.0 / 16  # 128-bit ports
ACC_READ, ACC_WRITE = 220.0 / 64, 240.0 / 64  # 512-bit ports
DRAM_PJ_PER_BYTE = 1024.0 / 16  # 128-bit port, 8 pJ/bit
MAC_PJ = 0.3


def matched_hardware() -> Hardware:
    """gemmini-baseline with ZigZag's bus (16 B/cycle) and energies: the same machine under both models."""
    hw = tstack.load_hardware("gemmini-baseline")
    energies = {
        "accumulator": (ACC_READ, ACC_WRITE),
        "scratchpad": (SPAD_READ, SPAD_WRITE),
        "dram": (DRAM_PJ_PER_BYTE, DRAM_PJ_PER_BYTE),
    }
    for name, (read_pj, write_pj) in energies.items():
        hw = hw.with_level(name, read_energy_pj_per_byte=read_pj, write_energy_pj_per_byte=write_pj)
    hw = hw.with_link("dram", "scratchpad", 16.0)
    return replace(hw, name="gemmini-zigzag-matched", pe=replace(hw.pe, mac_energy_pj=MAC_PJ))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """ZigZag logs at INFO and prints progress; keep the benchmark's output readable."""
    logging.disable(logging.CRITICAL)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


@dataclass(frozen=True)
class ZigZagRun:
    energy_pj: float
    latency_cycles: float
    evaluated: int
    loops: list[tuple[str, int]]  # temporal loops, innermost first
    cme: Any


def run_zigzag(mapping_file: Path, dump: str) -> ZigZagRun:
    from zigzag.api import get_hardware_performance_zigzag
    from zigzag.cost_model import cost_model

    counter = {"n": 0}
    original = cost_model.CostModelEvaluation.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        counter["n"] += 1
        original(self, *args, **kwargs)

    cost_model.CostModelEvaluation.__init__ = counting  # type: ignore[method-assign]
    try:
        with quiet():
            energy, _latency, cmes = get_hardware_performance_zigzag(
                workload=str(WORKLOAD),
                accelerator=str(ACCELERATOR),
                mapping=str(mapping_file),
                opt="EDP",
                dump_folder=dump,
                lpf_limit=LPF_LIMIT,
                loma_show_progress_bar=False,
                temporal_mapping_search_engine="loma",
                temporal_mapping_type="uneven",
            )
    finally:
        cost_model.CostModelEvaluation.__init__ = original  # type: ignore[method-assign]
    cme = cmes[0][1][0][0]
    loops = temporal_loops(cme)
    return ZigZagRun(float(energy), float(cme.latency_total2), counter["n"], loops, cme)


def temporal_loops(cme: Any) -> list[tuple[str, int]]:
    """The W operand's temporal loops, innermost first, as (dim, size) (every operand sees the same loop order)."""
    tm = cme.temporal_mapping
    for op in tm.mapping_dic_origin:
        if str(op) == "W":
            return [(str(dim), int(size)) for level in tm.mapping_dic_origin[op] for dim, size in level]
    raise RuntimeError("no W operand in ZigZag's temporal mapping")


def tstack_to_zigzag_ordering(mapping: Mapping, rows: int, cols: int) -> list[list[Any]]:
    """tstack's loop nest as ZigZag's temporal_ordering (innermost first). On chip, under WS, each (n, k) block of
    weights streams the tile's m rows: m innermost, then k folds, then n folds; then the DRAM loops inside-out."""
    zz = {"m": "D", "n": "K", "k": "C"}
    shape = FFN1
    inner = [("m", mapping.tile_m), ("k", -(-mapping.tile_k // rows)), ("n", -(-mapping.tile_n // cols))]
    trips = mapping.trips(shape)
    outer = [(d, trips[d]) for d in reversed(mapping.order)]
    return [[zz[d], size] for d, size in inner + outer if size > 1]


def zigzag_to_tstack(cme: Any) -> Mapping:
    """The nearest tstack mapping to a ZigZag nest: the loops at which some operand still sits in DRAM (the most
    of any operand's outermost level) give tstack's DRAM level (order, trip counts); what is inside is the tile."""
    tm = cme.temporal_mapping
    dram_loops = max(  # each operand's outermost level is DRAM; loops innermost first
        ([(str(d), int(s)) for d, s in tm.mapping_dic_origin[op][-1]] for op in tm.mapping_dic_origin), key=len
    )
    full = {"D": FFN1.m, "K": FFN1.n, "C": FFN1.k}
    trips = {"D": 1, "K": 1, "C": 1}
    for d, s in dram_loops:
        trips[d] *= s
    order: list[str] = []
    for d, _ in reversed(dram_loops):  # outermost first
        name = {"D": "m", "K": "n", "C": "k"}[d]
        if name not in order:
            order.append(name)
    for name in ("m", "n", "k"):
        if name not in order:
            order.append(name)
    tiles = {d: full[d] // trips[d] for d in full}
    return Mapping(tiles["D"], tiles["K"], tiles["C"], tuple(order))


def write_fixed_mapping(ordering: list[list[Any]], folder: str) -> Path:
    path = Path(folder) / "mapping_fixed.yaml"
    lines = SPATIAL.read_text().rstrip("\n").splitlines()
    lines.append("  temporal_ordering:")
    lines += [f"    - [{d}, {s}]" for d, s in ordering]
    path.write_text("\n".join(lines) + "\n")
    return path


def min_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Min CPU seconds (process time) of `repeats` calls after one warm-up call, and the last result."""
    result = fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        result = fn()
        best = min(best, time.process_time() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed ZigZag searches after the warm-up")
    args = parser.parse_args()
    try:
        import zigzag  # noqa: F401
    except ImportError as exc:
        print(f"SKIP: ZigZag is not installed ({exc}); `pip install zigzag-dse six` to run this benchmark")
        return

    hw = matched_hardware()
    bits = OperandBits()
    rows, cols = hw.pe.rows, hw.pe.cols
    with tempfile.TemporaryDirectory() as dump:
        zz_s, zz = min_time(lambda: run_zigzag(SPATIAL, os.path.join(dump, "search")), args.repeats)
        ts_s, best = min_time(lambda: exhaustive(FFN1, hw), max(args.repeats, 20))
        ordering = tstack_to_zigzag_ordering(best.mapping, rows, cols)
        ts_in_zz = run_zigzag(write_fixed_mapping(ordering, dump), os.path.join(dump, "fixed"))
    zz_in_ts_mapping = zigzag_to_tstack(zz.cme)
    zz_in_ts = evaluate(FFN1, zz_in_ts_mapping, hw, bits)
    space = len(full_mapspace(FFN1))

    print(f"FFN1 512x768x3072 on {hw.name} (16 B/cycle, ZigZag's energies); ZigZag LOMA lpf_limit {LPF_LIMIT}, opt EDP")
    print(f"search CPU time, min of {args.repeats} after a warm-up:")
    print(
        f"  ZigZag LOMA        {zz_s:8.3f} s   {zz.evaluated:>9,} mappings evaluated "
        f"({zz_s / max(zz.evaluated, 1) * 1e3:.2f} ms each)"
    )
    print(
        f"  tstack exhaustive  {ts_s * 1e3:8.2f} ms  {space:>9,} mappings evaluated ({ts_s / space * 1e9:.0f} ns each)"
    )
    print(
        f"  ratio: tstack's exhaustive search is {zz_s / ts_s:,.0f}x faster "
        f"({(zz_s / max(zz.evaluated, 1)) / (ts_s / space):,.0f}x per mapping)"
    )
    print("best mappings (energy uJ, latency cycles, EDP pJ*cycle):")
    print(
        f"  ZigZag's best under ZigZag:   {zz.energy_pj / 1e6:8.1f} {zz.latency_cycles:12,.0f} "
        f"{zz.energy_pj * zz.latency_cycles:.3e}  loops (inner->outer) {zz.loops}"
    )
    b = best
    print(
        f"  tstack's best under tstack:   {b.energy_pj / 1e6:8.1f} {b.latency_cycles:12,.0f} {b.edp:.3e}  {b.mapping}"
    )
    t = ts_in_zz
    print(
        f"  tstack's best under ZigZag:   {t.energy_pj / 1e6:8.1f} {t.latency_cycles:12,.0f} "
        f"{t.energy_pj * t.latency_cycles:.3e}  temporal_ordering {ordering}"
    )
    print(
        f"  ZigZag's best under tstack:   {zz_in_ts.energy_pj / 1e6:8.1f} {zz_in_ts.latency_cycles:12,.0f} "
        f"{zz_in_ts.edp:.3e}  nearest tstack mapping {zz_in_ts_mapping}"
    )
    print(
        f"  energy of tstack's best vs ZigZag's best: under ZigZag {t.energy_pj / zz.energy_pj - 1:+.1%}, "
        f"under tstack {b.energy_pj / zz_in_ts.energy_pj - 1:+.1%}"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
