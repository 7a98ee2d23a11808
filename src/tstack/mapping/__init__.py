"""How one op is tiled, ordered and unrolled onto a design, and what that costs.

Where to start, by question (each subpackage's `__init__` names its entry points):

* What does a mapping cost? The cost model of record is the loop-nest model under Timeloop's rules, `nest`
  (matmuls on Gemmini's four storage levels, with an L2, and 7-loop convolutions), each checked access for access
  against the real Timeloop (`timeloop.crosscheck`, tests/golden/test_timeloop_crosscheck*.py). The one-tile models
  that `simulate` searches, `matmul.cost` and `conv.cost`, are its special case with Gemmini's extras as named
  `CostOptions` (tests/unit/mapping/nest/test_model_of_record.py).
* Which mapping? `matmul.mappers` (Gemmini's heuristic via `matmul.gemmini_tiler`, exhaustive, random),
  `matmul.cosa` (CP-SAT), `conv.mappers`, `nest.search` (descent over nests).
* How wide is the space? `mapspace` (the paper's Figs. 18-20, under several readings), `timeloop.sampler`
  (Timeloop's random mapper reproduced).
* Timeloop's files and binary: `timeloop` (architectures, constraints, mappings in and out, running
  `timeloop-model`).
* One op of a model as mapped (`op_mapping`), what `tstack map` reports.
"""
