"""The result of `tstack.api.analyze`: one model's workload analyses at each requested sequence length, with their
rooflines on a device. A workload type, so the renderers (`tstack.report`) read it without importing the API."""

from __future__ import annotations

from dataclasses import dataclass

from tstack.workload.analysis import WorkloadAnalysis
from tstack.workload.counting import Convention
from tstack.workload.model import AnyModelSpec
from tstack.workload.ops import Phase
from tstack.workload.roofline import RooflineDevice, RooflineResult


@dataclass(frozen=True, slots=True)
class Analysis:
    """One model at each requested sequence length (a CNN has one result, plus its fused variant)."""

    model: AnyModelSpec
    phase: Phase
    convention: Convention
    batch: int
    bits: int
    results: tuple[WorkloadAnalysis, ...]
    rooflines: tuple[RooflineResult, ...] = ()
    fused: WorkloadAnalysis | None = None
    device: RooflineDevice | None = None
