"""Mapspace characterization (the paper's Figs. 18-20): how EDP spreads over random valid mappings of an op."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tstack.hardware.types import Hardware
from tstack.mapping.loopnest import MatmulShape
from tstack.mapping.mappers import MapperResult, exhaustive, gemmini, random_search, valid_mappings

# The paper's operators (section 5.5.1), as matmuls M x N x K (M = rows streamed, N = outputs, K = reduction).
# Convolutions enter as their im2col matmuls (output pixels x output channels x C*R*S), so the conv-specific
# 7-loop orders are not part of this mapspace.
PAPER_OPS: dict[str, MatmulShape] = {
    "bert-base-mha": MatmulShape(512, 768, 768),
    "bert-base-ffn": MatmulShape(512, 3072, 768),
    "bert-large-mha": MatmulShape(512, 1024, 1024),
    "bert-large-ffn": MatmulShape(512, 4096, 1024),
    "equal-mac-240x240x512": MatmulShape(240, 240, 512),
    "equal-mac-480x120x512": MatmulShape(480, 120, 512),
    "resnet50-conv1-7x7-64": MatmulShape(112 * 112, 64, 3 * 7 * 7),
    "resnet50-conv5-3x3-512": MatmulShape(7 * 7, 512, 512 * 9),
    "resnet50-conv5-1x1-512": MatmulShape(7 * 7, 512, 2048),
    "resnet50-conv5-1x1-2048": MatmulShape(7 * 7, 2048, 512),
}
# Paper Fig. 19: 10th-percentile relative EDP and share within 3x of the best
PAPER_STATS = {
    "bert-base-mha": (9.42, 0.0170),
    "bert-base-ffn": (9.84, 0.0148),
    "resnet50-conv5-3x3-512": (7.44, 0.0158),
    "resnet50-conv5-1x1-2048": (12.06, 0.0262),
}


@dataclass(frozen=True, slots=True)
class MapspaceStats:
    name: str
    shape: MatmulShape
    valid_mappings: int
    samples: int
    relative_edp: npt.NDArray[np.float64]  # of each sample, to the exhaustive best
    best: MapperResult
    heuristic: MapperResult

    @property
    def p10(self) -> float:
        return float(np.percentile(self.relative_edp, 10))

    @property
    def within_3x(self) -> float:
        return float(np.mean(self.relative_edp <= 3.0))

    @property
    def span(self) -> float:
        return float(self.relative_edp.max())


def characterize(name: str, shape: MatmulShape, hw: Hardware, samples: int, seed: int) -> MapspaceStats:
    valid, _ = valid_mappings(shape, hw)
    best = exhaustive(shape, hw)
    _, costs = random_search(shape, hw, samples, np.random.default_rng(seed))
    return MapspaceStats(name, shape, len(valid), samples, np.asarray(costs.edp / best.edp), best, gemmini(shape, hw))
