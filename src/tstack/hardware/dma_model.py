"""Gemmini's sustained DMA bandwidth predicted from its design (Little's law), not fitted to the paper's Fig. 13.

A DMA engine that keeps at most `N` requests of `s` bytes in flight over a round trip of `L` cycles sustains

    bandwidth(s) = min(DMA port, memory bus, N * s / L)                    (Little's law: throughput = WIP / latency)

Gemmini's reader and writer each track `max_in_flight_mem_reqs` transactions (DMA.scala: `StreamReader` /
`StreamWriter` built with `nXacts = max_in_flight_mem_reqs`); a request is at most `dma_maxbytes` and moves over a
`dma_buswidth`-bit TileLink port, one beat per cycle. The request size depends on what moves: `mvin` of int8
inputs and weights fetches rows of up to `MAX_BLOCK_LEN` x DIM = 4 x 16 = 64 bytes (gemmini_params.h MAX_BYTES 64),
while `mvout` writes one DIM-wide block row per request: 16 bytes of int8 output, 64 bytes of int32.

The round trip `L` is that of the platform the paper measured on, FireSim: Gemmini's request crosses the system bus
and Chipyard's L2 (InclusiveCache) to FASED's DDR3 model. Its parts, each with a source, are in `FIRESIM_DDR3`.
Every byte from DRAM also crosses the SoC's memory bus (L2 -> memory controller), whose width is in
`FIRESIM_GEMMINI_BUSES`: a 128-bit DMA port behind a 64-bit memory bus moves at most 8 bytes per cycle from DRAM.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DMAConfig:
    """Gemmini's DMA parameters: ucb-bar/gemmini src/main/scala/gemmini/Configs.scala `defaultConfig`, identical at
    commit 073e073 (Aug 2022, the paper's era) and at 8c3f992 (HEAD)."""

    max_in_flight_mem_reqs: int = 16  # Configs.scala defaultConfig
    dma_maxbytes: int = 64  # Configs.scala defaultConfig
    dma_buswidth_bits: int = 128  # Configs.scala defaultConfig
    dim: int = 16  # meshRows x tileRows = 16
    max_block_len: int = 4  # gemmini_params.h: MAX_BYTES 64 / (DIM x 1 byte)

    @property
    def bus_bytes_per_cycle(self) -> float:
        return self.dma_buswidth_bits / 8

    def read_request_bytes(self, elem_bytes: int = 1) -> int:
        """A `mvin` row: up to MAX_BLOCK_LEN blocks of DIM elements, capped at dma_maxbytes."""
        return min(self.dma_maxbytes, self.max_block_len * self.dim * elem_bytes)

    def write_request_bytes(self, elem_bytes: int = 1) -> int:
        """A `mvout` row: one DIM-wide block (gemmini.h sp_tiled_matmul_ws moves C out block by block)."""
        return min(self.dma_maxbytes, self.dim * elem_bytes)


@dataclass(frozen=True, slots=True)
class SoCBuses:
    """Bus widths of the SoC around Gemmini, in bytes per beat (one beat per cycle; one clock domain).

    * `system_bus_bytes`: 16. chipyard `GemminiRocketConfig` adds `WithSystemBusWidth(128)` to `AbstractConfig`
      (ucb-bar/chipyard c8867bec, Jan 2023, config/RocketConfigs.scala); it matches Gemmini's `dma_buswidth`.
    * `memory_bus_bytes`: 8. Neither `GemminiRocketConfig` nor `AbstractConfig` nor FireSim's
      `FireSimGemminiRocketConfig` (firechip TargetConfigs.scala, same commit) changes the memory bus, so it keeps
      rocket-chip's default `MemoryBusKey -> MemoryBusParams(beatBytes = 8)` (chipsalliance/rocket-chip
      subsystem/Configs.scala `BaseSubsystemConfig`, c1dda58). `WithFireSimConfigTweaks` puts the system and memory
      buses at one frequency (1 GHz), so a memory-bus beat is an accelerator cycle.
    """

    system_bus_bytes: int = 16
    memory_bus_bytes: int = 8

    @property
    def dram_bytes_per_cycle(self) -> int:
        """The most DRAM data that can reach any on-chip client per cycle: the narrower of the two buses."""
        return min(self.system_bus_bytes, self.memory_bus_bytes)


@dataclass(frozen=True, slots=True)
class MemoryLatency:
    """The round trip of one DMA request on FireSim's Gemmini target, in accelerator cycles (one clock domain).

    * `soc_cycles`: request and response through the TLB, system bus, L2 (a miss) and memory bus. ccbench's
      pointer chase on a Rocket SoC measured an L2 hit at about 30 cycles load-to-use (ucb-bar/ccbench wiki,
      "Rocket 1 GHz cycle-accurate emulator", C. Celio 2014); we take the L2 traversal as that.
    * DRAM service, FASED's DDR3 FR-FCFS model with the open-page runtime config
      (firesim/firesim sim/custom-runtime-configs/ddr3-FRFCFS-16G-4R-2133-OP.conf: tCAS = tRCD = tRP = 14,
      backendLatency = 2, in controller cycles; FASEDTargetConfigs.scala `FRFCFS16GBQuadRankLLC4MB`, the memory
      model of FireSim's Gemmini build recipe `firesim_rocket_singlecore_gemmini_no_nic_l2_llc4mb_ddr3`,
      deploy/sample-backup-configs/sample_config_build_recipes.yaml at 98fa2f9): a row hit costs tCAS + burst +
      backend, a row miss adds tRP + tRCD. A 64-byte line is a BL8 burst on a 64-bit DDR bus: 4 controller cycles.
    * `row_hit_rate`: Gemmini's row-by-row `mvin` walks a matrix with a stride of its row (768 to 3072 bytes) inside
      an 8 KiB DRAM page (the conf's bank bits start at bit 13), so most requests hit an open row; 0.9 assumed.
    * The FASED controller clock is taken equal to the accelerator clock (assumed: FireSim's target configs put the
      tile and the memory bus on one frequency).
    """

    soc_cycles: float = 30.0
    t_cas: float = 14.0
    t_rcd: float = 14.0
    t_rp: float = 14.0
    burst_cycles: float = 4.0
    backend_cycles: float = 2.0
    row_hit_rate: float = 0.9

    @property
    def row_hit_cycles(self) -> float:
        return self.t_cas + self.burst_cycles + self.backend_cycles

    @property
    def row_miss_cycles(self) -> float:
        return self.t_rp + self.t_rcd + self.row_hit_cycles

    @property
    def latency_cycles(self) -> float:
        dram = self.row_hit_rate * self.row_hit_cycles + (1 - self.row_hit_rate) * self.row_miss_cycles
        return self.soc_cycles + dram


FIRESIM_DDR3 = MemoryLatency()
GEMMINI_DMA = DMAConfig()
FIRESIM_GEMMINI_BUSES = SoCBuses()


def littles_law_bandwidth(request_bytes: float, in_flight: int, latency_cycles: float, bus: float) -> float:
    """Bytes per cycle a DMA sustains with `in_flight` requests of `request_bytes` over a `latency_cycles` round
    trip, capped by the bus."""
    if request_bytes <= 0 or in_flight <= 0 or latency_cycles <= 0:
        raise ValueError("request size, requests in flight and latency must be positive")
    return min(bus, in_flight * request_bytes / latency_cycles)


@dataclass(frozen=True, slots=True)
class DMAPrediction:
    read_bytes_per_cycle: float
    write_bytes_per_cycle: float
    latency_cycles: float

    def effective(self, write_fraction: float) -> float:
        """One bandwidth for a traffic mix with `write_fraction` of the bytes written: the time-weighted (harmonic)
        mean, since reads and writes share the one DMA port's time in tstack's single-link model."""
        if not 0.0 <= write_fraction <= 1.0:
            raise ValueError("write_fraction must be in [0, 1]")
        return 1.0 / ((1 - write_fraction) / self.read_bytes_per_cycle + write_fraction / self.write_bytes_per_cycle)


def predict_dma(
    dma: DMAConfig = GEMMINI_DMA,
    memory: MemoryLatency = FIRESIM_DDR3,
    output_bytes: int = 1,
    buses: SoCBuses = FIRESIM_GEMMINI_BUSES,
) -> DMAPrediction:
    """Sustained read (int8 `mvin`) and write (`mvout` of `output_bytes`-wide elements) bandwidth between DRAM and
    the scratchpad: Little's law under the narrowest of the DMA port and the SoC's buses. Every request is taken to
    miss the SoC's L2 (tstack's Gemmini designs have no L2 level; reuse that hits there would move at the system
    bus's 16 B/cycle)."""
    lat = memory.latency_cycles
    bus = min(dma.bus_bytes_per_cycle, buses.dram_bytes_per_cycle)
    read = littles_law_bandwidth(dma.read_request_bytes(1), dma.max_in_flight_mem_reqs, lat, bus)
    write = littles_law_bandwidth(dma.write_request_bytes(output_bytes), dma.max_in_flight_mem_reqs, lat, bus)
    return DMAPrediction(read, write, lat)
