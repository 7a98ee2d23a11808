"""tstack's nest model against the real Timeloop, as a table (benchmarks/RESULTS-timeloop.md).

Draws random valid nests on each architecture of the cross-check (`timeloop.crosscheck.crosscheck_archs`:
Gemmini's arch_default, DOSA's Gemmini, an 8 x 32 Gemmini-like design with on-chip bandwidth limits), runs the bundled
`timeloop-model` on each and prints, per architecture: mappings, how many have every access count equal, cycles
equal (as Timeloop computes them from the counts; and exactly the ceiling of tstack's latency), and the largest
energy error (tstack given Timeloop's per-access energies, with register fills and Timeloop's vector rounding; of
`nest.costs` alone, on all matmuls and on the BERT-Base ones; of `nest.costs` plus register fills on BERT-Base).
The same plan as tests/golden/test_timeloop_crosscheck.py with the default arguments. With `--l2`, the same table
for five-level nests on the design with an L2 (`timeloop.crosscheck.l2_crosscheck_archs`, `nest.l2`; the plan of
tests/golden/test_timeloop_crosscheck_l2.py with `--per-arch 120`).

Run: python benchmarks/timeloop_crosscheck.py [--per-arch N] [--seed S] [--workers W] [--l2]
"""

from __future__ import annotations

import argparse
import math
import time

from tstack.mapping.timeloop import crosscheck as tc
from tstack.mapping.timeloop import run as tr
from tstack.spec.timeloop import crosscheck_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-arch", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--l2", action="store_true", help="five-level nests on the design with an L2")
    args = parser.parse_args()
    folder = tr.locate_timeloop()
    start = time.perf_counter()
    if args.l2:
        results = tc.crosscheck_l2(folder, tc.l2_crosscheck_archs(), args.per_arch, args.seed, args.workers)
    else:
        presets, constraints = crosscheck_files(tc.CROSSCHECK_ARCH_PRESETS, tc.CROSSCHECK_CONSTRAINT_PRESETS)
        archs = tc.crosscheck_archs(presets)
        results = tc.crosscheck(folder, archs, args.per_arch, args.seed, args.workers, constraints=constraints)
    seconds = time.perf_counter() - start
    print(
        "| architecture | mappings | counts equal | cycles equal (Timeloop's rounding) | cycles = ceil(tstack latency) "
        f"| max energy error | `{'nest_l2' if args.l2 else 'nest'}.costs` alone: max error, all / BERT-Base |"
    )
    print("|---|---|---|---|---|---|---|")
    for row, cs in zip(tc.summary_rows(results), results.values(), strict=True):
        bert = [c for c in cs if "/bert-" in c.label]
        bert_error = max(abs(c.energy_error_costs_only) for c in bert) if bert else math.nan
        print(
            f"| {row['arch']} | {row['mappings']} | {row['counts_equal']} | {row['cycles_equal']} "
            f"| {row['cycles_equal_ceil']} | {row['max_energy_error']:.4%} "
            f"| {row['max_energy_error_costs_only']:.2%} / {bert_error:.2%} |"
        )
    total = sum(len(cs) for cs in results.values())
    print(f"\n{total} timeloop-model runs in {seconds:.1f} s ({args.workers} workers); seed {args.seed}")


if __name__ == "__main__":
    main()
