"""Matmuls on a weight-stationary array with one on-chip tile level: the shapes, the one-tile cost model that
`simulate` searches, and the mappers over its mapspace.

Entry points:

* `MatmulShape`, `Mapping` (`loopnest`): a matmul C[M, N] += A[M, K] @ B[K, N] and a one-tile mapping of it.
* `evaluate`, `matmul_costs` (`cost`): cycles, traffic and energy of one mapping, or of an array of them at once.
* `best_mapping`, `exhaustive`, `random_search`, `gemmini` (`mappers`): pick a mapping by name (`MapperName`);
  `cosa.cosa` states the same mapspace as a CP-SAT program.
* `tiled_matmul_auto` (`gemmini_tiler`): a port of Gemmini's own software tiler, the heuristic baseline.
"""

from tstack.mapping.matmul.cost import MatmulCosts, evaluate, matmul_costs
from tstack.mapping.matmul.gemmini_tiler import tiled_matmul_auto
from tstack.mapping.matmul.loopnest import Mapping, MatmulShape
from tstack.mapping.matmul.mappers import MapperName, MapperResult, best_mapping, exhaustive, gemmini, random_search

__all__ = [
    "MapperName",
    "MapperResult",
    "Mapping",
    "MatmulCosts",
    "MatmulShape",
    "best_mapping",
    "evaluate",
    "exhaustive",
    "gemmini",
    "matmul_costs",
    "random_search",
    "tiled_matmul_auto",
]
