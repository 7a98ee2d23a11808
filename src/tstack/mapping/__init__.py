"""How one op is tiled, ordered and unrolled onto a design, and what that costs.

Where to start, by question:

* What does a mapping cost? The cost model of record is the loop-nest model under Timeloop's rules: `nest` (matmuls
  on Gemmini's four storage levels), `nest_l2` (with an L2), `conv_nest` (7-loop convolutions), each checked access
  for access against the real Timeloop (`timeloop_crosscheck`, tests/golden/test_timeloop_crosscheck*.py). The one-tile
  models that `simulate` searches, `cost` (matmuls) and `conv_cost` (convolutions), are its special case with
  Gemmini's extras as named `CostOptions` (tests/unit/test_model_of_record.py).
* Which mapping? `mappers` (Gemmini's heuristic via `gemmini_tiler`, exhaustive, random), `conv_mappers`, `cosa`
  (CP-SAT), `nest_search` (descent over nests).
* How wide is the space? `mapspace` (the paper's Figs. 18-20, under several readings), `timeloop_sampler` (Timeloop's
  random mapper reproduced).
* Timeloop's files: `timeloop_io` (mappings in and out), `timeloop_constraints` (mapspace constraints),
  `timeloop_arch` (architectures), `timeloop_run` (running the real binary and reading its output).
* The shapes and orders: `loopnest` (matmul shapes, one-tile mappings), `conv` (convolution shapes and mappings),
  `nest_one_tile` (one-tile mappings as nests), `factorization` (a bound's ordered factorizations).
"""
