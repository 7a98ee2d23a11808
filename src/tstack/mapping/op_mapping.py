"""One matmul op of a model mapped by `tstack.api.map_model`: the exhaustive mapper's best mapping beside Gemmini's
heuristic. A mapping type, so the renderers (`tstack.report`) read it without importing the API."""

from __future__ import annotations

from dataclasses import dataclass

from tstack.mapping.conv.loopnest import ConvShape
from tstack.mapping.conv.mappers import ConvMapperResult
from tstack.mapping.matmul.loopnest import MatmulShape
from tstack.mapping.matmul.mappers import MapperResult


@dataclass(frozen=True, slots=True)
class OpMapping:
    """One matmul op: the exhaustive mapper's best mapping and Gemmini's heuristic, under the same cost model. A
    convolution (`conv_shape`) has its im2col matmul's `best`, and in `conv` its best 7-loop conv mapping when that
    is better (as `simulate --mapper exhaustive` chooses)."""

    op_name: str
    shape: MatmulShape
    best: MapperResult
    heuristic: MapperResult
    conv: ConvMapperResult | None = None
    conv_shape: ConvShape | None = None

    @property
    def best_edp(self) -> float:
        return self.best.edp if self.conv is None else self.conv.edp

    @property
    def best_latency_cycles(self) -> float:
        return self.best.latency_cycles if self.conv is None else self.conv.latency_cycles
