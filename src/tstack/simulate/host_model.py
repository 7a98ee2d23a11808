"""The Gemmini baseline's host CPU predicted from code: measured instruction counts priced by an in-order Rocket model.

On the paper's baseline (Kim, Hooper et al. 2023, section 3.4.1) Softmax, LayerNorm, GELU, the residual adds and the
(de)quantization around every matmul run in float on the Rocket core that hosts Gemmini. This module turns the
dynamic instruction counts of C kernels doing that work (`benchmarks/host_kernels/kernels.c`, counted under qemu-user
by `benchmarks/host_kernels/measure.py`, stored in `presets/host/rocket-kernels.json` and read by `tstack.spec.host`,
which hands them here as `KernelCounts` values) into cycles per element:

    cycles/element = (instructions                      one issue slot each: Rocket is single-issue, in order
                      + dependence stalls                a consumer waits max(0, latency(producer) - distance)
                      + iterative-unit stalls            divide/sqrt and mul/div units are not pipelined
                      + branch mispredictions x penalty  1-bit BHT: one misprediction per outcome change
                      ) / elements
                     + L1 line fills x miss latency / elements   blocking D-cache (nMSHRs = 0), no prefetcher

Every constant is labelled with its source in `ROCKET`. What the model leaves out (stated, not hidden): a stall
does not shorten later dependence distances (so stalls are a slight overestimate where they cluster), the I-cache
always hits (the kernels are a few hundred bytes), dirty-line write-backs overlap the refill, and the data every
host op touches comes from DRAM (BERT-Base's host tensors at l = 512 are 0.4 to 12 MB, beyond the 512 KiB L2).

The host and Gemmini share one clock: Gemmini is a RoCC accelerator inside the Rocket tile (ucb-bar/gemmini
README, "Gemmini is implemented as a RoCC accelerator"), so host cycles are accelerator cycles (ratio 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from tstack.hardware.dma_model import FIRESIM_DDR3
from tstack.hardware.types import HostCPU


@dataclass(frozen=True, slots=True)
class RocketTiming:
    """An in-order, single-issue Rocket core with its FPU, as configured by rocket-chip's `WithNBigCores` (the core
    of Chipyard's `GemminiRocketConfig`). Latencies are cycles from issue until a dependent instruction may issue
    (1 = back to back). Sources: chipsalliance/rocket-chip at c1dda58 (tile/FPU.scala `FPUParams`,
    rocket/Configs.scala `WithNBigCores`, rocket/RocketCore.scala `RocketCoreParams`, rocket/BTB.scala `BHTParams`,
    rocket/HellaCache.scala `DCacheParams`); berkeley-hardfloat `DivSqrtRecFN_small` for divide/sqrt."""

    latency: tuple[tuple[str, int], ...] = (
        ("int_alu", 1),  # single-cycle ALU with full bypassing
        ("jump", 1),
        ("branch", 1),
        ("store", 1),
        ("other", 1),
        ("load", 2),  # RocketCoreParams.fastLoadWord = true: word/doubleword load data bypassed, one bubble
        ("load_byte", 3),  # fastLoadByte = false: byte/halfword loads align in WB, two bubbles
        ("fp_load", 3),  # FP load data enters the FPU at WB (FPU.scala dmem_resp path), two bubbles
        ("fp_fma_s", 3),  # FPUParams.sfmaLatency = 3 (add, sub, mul, fused multiply-add, single)
        ("fp_fma_d", 4),  # FPUParams.dfmaLatency = 4 (double: glibc's expf/erff compute in double)
        ("fp_misc", 2),  # FPUParams.fpmuLatency = 2 (FPToFP: sign injection, min/max, s<->d conversion)
        ("int_to_fp", 2),  # FPUParams.ifpuLatency = 2 (IntToFP: fcvt.s.w, fmv.w.x)
        ("fp_to_int", 2),  # FPToInt result written back through the core's MEM stage like a load (estimate)
        ("int_mul", 10),  # MulDivParams(mulUnroll = 8): 64/8 = 8 iterations plus issue and writeback
        ("int_div", 66),  # divUnroll = 1: one quotient bit per cycle, 64 bits plus setup (early out ignored)
        ("fp_divsqrt_s", 27),  # DivSqrtRecFN_small, radix 2: one bit per cycle, 24-bit significand + 3
        ("fp_divsqrt_d", 56),  # the same for the 53-bit significand
    )
    #: cycles an iterative unit stays busy (a second operation waits): the same as its latency
    occupancy: tuple[tuple[str, int], ...] = (
        ("int_mul", 10),
        ("int_div", 66),
        ("fp_divsqrt_s", 27),
        ("fp_divsqrt_d", 56),
    )
    #: assumed: a branch resolves in the execute stage and the front end refetches, 3 bubbles
    mispredict_penalty: float = 3.0
    #: DCacheParams blockBytes = 64 (Chipyard CacheBlockBytes)
    line_bytes: int = 64
    #: WithNBigCores: DCacheParams(nSets = 64, nWays = 4) x 64 B = 16 KiB
    l1d_bytes: int = 16 * 1024
    #: cycles a demand miss stalls the core (blocking cache: WithNBigCores sets nMSHRs = 0): the same DRAM round trip
    #: the DMA sees (`tstack.hardware.dma_model.FIRESIM_DDR3`, 52.8 cycles)
    miss_latency: float = FIRESIM_DDR3.latency_cycles
    #: host cycles per accelerator cycle: one clock domain (Gemmini is a RoCC accelerator in the Rocket tile)
    clock_ratio: float = 1.0
    source: str = "predicted: in-order Rocket model (tstack.simulate.host_model), rocket-chip c1dda58 parameters"

    def latency_of(self, kind: str) -> int:
        return dict(self.latency).get(kind, 1)

    def occupancy_of(self, kind: str) -> int:
        return dict(self.occupancy).get(kind, 1)


@dataclass(frozen=True, slots=True)
class KernelCounts:
    """One kernel's measured dynamic instruction counts (a run of `rows` x `row_length` elements)."""

    name: str
    elements: int
    instructions: int
    instructions_blocks_method: int
    by_class: tuple[tuple[str, int], ...]
    calls: tuple[tuple[str, int], ...]
    dependences: tuple[tuple[str, int], ...]  # "class:distance|class:distance" -> count (one key per consumer)
    branch_transitions: int
    stream_bytes_per_element: float  # bytes each element brings into L1 from memory (reads and write-allocates)

    def per_element(self, kind: str) -> float:
        return dict(self.by_class).get(kind, 0) / self.elements


@dataclass(frozen=True, slots=True)
class CycleBreakdown:
    """Predicted cycles per element of one kernel, by cause."""

    kernel: str
    instructions: float
    dependence_stalls: float
    unit_stalls: float
    mispredicts: float
    misses: float

    @property
    def total(self) -> float:
        return self.instructions + self.dependence_stalls + self.unit_stalls + self.mispredicts + self.misses


#: bytes per element each kernel streams through L1 (all from DRAM; a write-allocate D-cache fetches output lines):
#: from the kernels' signatures in kernels.c. A softmax or LayerNorm row (2-3 KB) stays in L1 across its passes;
#: LayerNorm's gamma and beta (768 floats each) stay in L1 across rows.
STREAM_BYTES: dict[str, float] = {
    "softmax": 4 + 4,  # x in, y out (float)
    "layernorm": 4 + 4,
    "gelu": 4 + 4,
    "gelu_tanh": 4 + 4,
    "resadd": 4 + 4 + 4,  # two inputs, one output
    "dequantize": 1 + 4,  # int8 in, float out
    "requantize": 4 + 1,  # float in, int8 out
}

#: tstack's host op names (`tstack.simulate.nonlinear.OP_NAMES`) -> the measured kernel that does their work
OP_KERNELS: dict[str, str] = {
    "softmax": "softmax",
    "layernorm": "layernorm",
    "rmsnorm": "layernorm",  # a LayerNorm without the mean: priced as one (an upper bound)
    "gelu": "gelu",
    "swiglu": "gelu_tanh",  # a transcendental per element (SiLU's exp) plus a multiply: the tanh GELU's cost
    "tanh": "gelu_tanh",
    "add": "resadd",
    "batchnorm": "resadd",
    "avgpool": "resadd",
    "maxpool": "resadd",
    "relu": "resadd",
    "rope": "resadd",
}


def _stall(key: str, timing: RocketTiming) -> int:
    """Cycles one consumer waits, given its dependences `class:distance|...` (the longest wait counts)."""
    worst = 0
    for item in key.split("|"):
        kind, _, distance = item.rpartition(":")
        if kind.startswith("busy-"):
            wait = timing.occupancy_of(kind.removeprefix("busy-")) - int(distance)
        else:
            wait = timing.latency_of(kind) - int(distance)
        worst = max(worst, wait)
    return worst


def cycles_per_element(counts: KernelCounts, timing: RocketTiming | None = None) -> CycleBreakdown:
    """Predicted host cycles (in accelerator cycles) per element of one kernel."""
    t = timing or RocketTiming()
    dep = unit = 0
    for key, n in counts.dependences:
        stall = _stall(key, t)
        if stall <= 0:
            continue
        if all(item.startswith("busy-") for item in key.split("|")):
            unit += stall * n
        else:
            dep += stall * n
    e = counts.elements
    misses = counts.stream_bytes_per_element / t.line_bytes * t.miss_latency
    return CycleBreakdown(
        counts.name,
        counts.instructions / e / t.clock_ratio,
        dep / e / t.clock_ratio,
        unit / e / t.clock_ratio,
        counts.branch_transitions * t.mispredict_penalty / e / t.clock_ratio,
        misses / t.clock_ratio,
    )


def predicted_costs(
    counts: Mapping[str, KernelCounts], timing: RocketTiming | None = None
) -> dict[str, CycleBreakdown]:
    """Cycles per element of every measured kernel in `counts` (`tstack.spec.host.measured_counts`)."""
    return {name: cycles_per_element(c, timing) for name, c in counts.items()}


@dataclass(frozen=True, slots=True)
class PredictedHost:
    """A `HostCPU` whose per-element costs come from the measured kernels, and the breakdown behind them."""

    host: HostCPU
    kernels: dict[str, CycleBreakdown] = field(default_factory=dict)


def host_from_counts(
    base: HostCPU, counts: Mapping[str, KernelCounts], timing: RocketTiming | None = None
) -> PredictedHost:
    """`base` (its DRAM port and energy per cycle kept) with every per-element cost predicted from code: the measured
    instruction counts `counts` (`tstack.spec.host.measured_counts`, which reads them; `tstack.spec.host.
    predicted_host` is this over the shipped measurement) priced by `timing`."""
    t = timing or RocketTiming()
    kernels = predicted_costs(counts, t)
    costs = tuple((op, round(kernels[k].total, 2)) for op, k in sorted(OP_KERNELS.items()))
    host = replace(
        base,
        cycles_per_element=costs,
        dequantize_cycles_per_element=round(kernels["dequantize"].total, 2),
        requantize_cycles_per_element=round(kernels["requantize"].total, 2),
        source=f"{t.source}; instruction counts measured under qemu-user (presets/host/rocket-kernels.json)",
    )
    return PredictedHost(host, kernels)
