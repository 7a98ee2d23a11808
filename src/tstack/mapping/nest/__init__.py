"""The cost model of record: multi-level loop nests (Timeloop's mapping form) priced under Timeloop's rules, each
model checked access for access against the real Timeloop (`tstack.mapping.timeloop.crosscheck`).

Entry points, one module per hierarchy (each has `tiles`, `valid`, `accesses`, `costs`, `sample` over arrays of
nests):

* `matmul`: matmuls on Gemmini's four storage levels (`Nests`, `NestHardware`, `NestConstraints`, `NestCosts`).
* `l2`: matmuls with an L2 between DRAM and the scratchpad/accumulators (`L2Nests`, `L2NestHardware`).
* `conv`: 7-loop convolutions (`ConvNests`).
* `one_tile`: the one-tile mappings that `simulate` searches written as nests (`one_tile_nests`), the bridge that
  shows the one-tile model is the nest model's special case.
* `search`: descent over nests for the least EDP; `factorization`: a loop bound's ordered factorizations.
"""

from tstack.mapping.nest.conv import ConvNests
from tstack.mapping.nest.l2 import L2NestHardware, L2Nests
from tstack.mapping.nest.matmul import NestConstraints, NestCosts, NestHardware, NestResult, Nests
from tstack.mapping.nest.one_tile import one_tile_nests

__all__ = [
    "ConvNests",
    "L2NestHardware",
    "L2Nests",
    "NestConstraints",
    "NestCosts",
    "NestHardware",
    "NestResult",
    "Nests",
    "one_tile_nests",
]
