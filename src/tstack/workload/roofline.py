"""Roofline time bounds: each op takes max(FLOPs / peak, bytes / bandwidth) on a device; ops run in sequence.

This is the ideal-reuse bound of the counting layer placed on a device: it assumes every op reaches the device's
peak compute or memory bandwidth, whichever binds, and no overlap between ops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tstack.errors import SpecError
from tstack.workload.analysis import WorkloadAnalysis
from tstack.workload.ops import OpClass


@dataclass(frozen=True, slots=True)
class RooflineDevice:
    """A device as peak operations per second per operand precision (bits) and one memory bandwidth."""

    name: str
    peak_ops_per_s: tuple[tuple[int, float], ...]
    mem_bandwidth_bytes_per_s: float
    description: str = ""
    source: str = ""

    def peak_at(self, bits: int) -> float:
        table = dict(self.peak_ops_per_s)
        if bits not in table:
            raise SpecError(
                f"device {self.name!r} has no peak for {bits}-bit operands; "
                f"it lists {', '.join(str(b) for b in sorted(table))} bits (use --bits one of these)"
            )
        return table[bits]

    def ridge_point(self, bits: int) -> float:
        """Arithmetic intensity (FLOPs per byte) above which an op is compute-bound."""
        return self.peak_at(bits) / self.mem_bandwidth_bytes_per_s


@dataclass(frozen=True, slots=True)
class OpTime:
    name: str
    op_class: OpClass
    compute_s: float
    memory_s: float

    @property
    def time_s(self) -> float:
        return max(self.compute_s, self.memory_s)

    @property
    def compute_bound(self) -> bool:
        return self.compute_s >= self.memory_s


@dataclass(frozen=True, slots=True)
class RooflineResult:
    device: RooflineDevice
    bits: int
    ops: tuple[OpTime, ...]

    @property
    def time_s(self) -> float:
        return sum(o.time_s for o in self.ops)

    def time_by_class_s(self) -> Mapping[OpClass, float]:
        out: dict[OpClass, float] = {}
        for o in self.ops:
            out[o.op_class] = out.get(o.op_class, 0.0) + o.time_s
        return out

    @property
    def compute_bound_share(self) -> float:
        """Fraction of the total time spent in compute-bound ops."""
        total = self.time_s
        return sum(o.time_s for o in self.ops if o.compute_bound) / total if total else 0.0


def roofline(analysis: WorkloadAnalysis, device: RooflineDevice, bits: int = 8) -> RooflineResult:
    peak = device.peak_at(bits)
    bandwidth = device.mem_bandwidth_bytes_per_s
    ops = tuple(
        OpTime(c.name, c.op_class, compute_s=c.flops / peak, memory_s=c.mops_bytes / bandwidth) for c in analysis.ops
    )
    return RooflineResult(device, bits, ops)
