"""How the mapspace statistics of the paper's Fig. 19 (10th-percentile relative EDP, share within 3x of the best, span)
move with documented choices of a Timeloop description of Gemmini, on the multi-level nest model
(`tstack.mapping.nest.matmul`). Not a fit: every variant comes from a published file, and all are printed.

Mapspaces (100,000 uniform valid nests each, seed 0; the same draws are priced under every hardware variant):
* `whole array`: n over the 16 PE columns and k over the 16 rows fill the array (`--semantics nest`);
* `free spatial`: any spatial factor up to 16 (`--semantics nest-free`). This is also the random-search mapspace
  that DOSA (Hong et al., MICRO 2023, the paper's lab) ships for Gemmini, `dataset/hw/gemmini/mapspace/
  mapspace_random.yaml` of ucb-bar/dosa: free temporal factors and loop orders at DRAM, scratchpad and
  accumulator, only P (= m) at the registers, C <= 16 over the rows and K <= 16 over the columns.

Hardware variants (gemmini-baseline's capacities and energies throughout, as Timeloop sees them: whole buffers):
* DRAM 5 B/cycle (gemmini-baseline's calibrated DMA) or 8 B/cycle (`shared_bandwidth: 8` in both Gemmini's
  `arch_default.yaml` and DOSA's `arch.yaml`);
* on-chip bandwidth unlimited (Gemmini's `arch_default.yaml` gives none) or DOSA's `arch.yaml`: scratchpad
  `shared_bandwidth: 32` (bytes per cycle), each accumulator `shared_bandwidth: 2` (words per cycle).

The reference of "relative EDP" is, per variant, the best of the samples and of every one-tile nest (as
`tstack mapspace --semantics nest`). Run: python benchmarks/mapspace_readings.py [--samples N]
Results: benchmarks/RESULTS-mapping.md, section E.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import numpy.typing as npt

import tstack
from tstack.mapping.mapspace import PAPER_OPS, PAPER_STATS, timeloop_hardware
from tstack.mapping.nest import matmul as nest
from tstack.mapping.nest import one_tile as nest_one_tile
from tstack.spec.timeloop import load_timeloop_arch

OPS = ("bert-base-mha", "bert-base-ffn")


def variants(base: nest.NestHardware) -> dict[str, nest.NestHardware]:
    dosa = load_timeloop_arch("dosa-gemmini")  # its on-chip bandwidths only; capacities stay the design's
    out = {}
    for dram in (5.0, 8.0):
        plain = replace(base, dram_bytes_per_cycle=dram)
        out[f"DRAM {dram:g} B/c, on-chip unlimited"] = plain
        out[f"DRAM {dram:g} B/c, DOSA on-chip bw"] = replace(
            plain,
            scratchpad_bytes_per_cycle=dosa.scratchpad_bytes_per_cycle,
            accumulator_words_per_cycle=dosa.accumulator_words_per_cycle,
        )
    return out


def statistics(relative: npt.NDArray[np.float64]) -> str:
    return f"{np.percentile(relative, 10):6.2f}  {100 * np.mean(relative < 3):5.2f}%  {relative.max():8.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    args = parser.parse_args()
    hw = timeloop_hardware(tstack.load_hardware("gemmini-baseline"))
    base = nest.NestHardware.of(hw)
    print(f"{'op':14s} {'mapspace':13s} {'hardware':36s} {'p10':>6s}  {'<3x':>6s}  {'span':>8s}")
    for op in OPS:
        shape = PAPER_OPS[op]
        p10, share = PAPER_STATS[op]
        print(f"{op:14s} {'paper':13s} {'(Timeloop, configuration unpublished)':36s} {p10:6.2f}  {100 * share:5.2f}%")
        one_tile = nest_one_tile.one_tile_nests(shape, base)
        for label, spatial in (("whole array", nest.Spatial.FULL), ("free spatial", nest.Spatial.FREE)):
            drawn, _ = nest.sample(shape, base, args.samples, np.random.default_rng(0), spatial)
            for name, variant in variants(base).items():
                edp = nest.costs(shape, drawn, variant).edp
                best = min(edp.min(), nest.costs(shape, one_tile, variant).edp.min())
                print(f"{op:14s} {label:13s} {name:36s} {statistics(edp / best)}")


if __name__ == "__main__":
    main()
