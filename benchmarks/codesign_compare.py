"""Joint vs sequential co-design at an equal area budget, perplexity limit and evaluation budget, over seeds.

    python benchmarks/codesign_compare.py --seeds 0 1 2 --evaluations 60 --json codesign-compare.json

Each (seed, strategy) is what ``tstack codesign --strategy S --evaluations N --seed K --perplexity-limit L`` runs
(the same problem: the `cpu` shape space, the `gemmini` hardware space, the component area model, table energies,
the proxy perplexity, and by default the area budget of the base design gemmini-ibert), in-process on in-memory
storage. It prints a Markdown table per seed and one aggregated over the seeds: the hypervolume of each strategy's
feasible front in (EDP, area, perplexity), the best feasible EDP, and the wall-clock time per evaluation.

The hypervolume is that of the front against a reference point common to every run (`tstack.codesign.compare`:
2 x the EDP of the base design running the largest shape, the area budget, the perplexity limit), as a fraction of
the box from (0, 0, the largest shape's perplexity) to that point, so 1.0 would dominate the whole box. EDP,
latency and energy are predicted (the cost model of record), area predicted (the area model), perplexity the proxy
surrogate.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

from tstack.codesign import (
    Candidate,
    CodesignConfig,
    CodesignProblem,
    Evaluator,
    HardwareParams,
    Sampler,
    Strategy,
    build_design,
    run_codesign,
)
from tstack.codesign.compare import HypervolumeBox, hypervolume_box
from tstack.commands.codesign import component_area_mm2
from tstack.nas.proxy import ProxyPerplexity
from tstack.nas.space import Architecture
from tstack.spec.codesign import load_hardware_space
from tstack.spec.nas_space import load_space


@dataclass(frozen=True, slots=True)
class Run:
    """One strategy's search at one seed, as measured here."""

    seed: int
    strategy: str
    hypervolume_fraction: float
    best_edp: float | None
    best_key: str | None
    front_size: int
    feasible: int
    evaluations: int  # evaluations that ran (repeated proposals are not re-evaluated)
    wall_s: float

    @property
    def s_per_evaluation(self) -> float:
        return self.wall_s / max(1, self.evaluations)


def _problem(args: argparse.Namespace) -> CodesignProblem:
    shapes = load_space(args.space)
    hw_space = load_hardware_space(args.hardware_space)
    budget = component_area_mm2(hw_space.base) if args.area_budget is None else args.area_budget
    return CodesignProblem(shapes, hw_space, component_area_mm2, ProxyPerplexity(shapes), budget, args.perplexity_limit)


def _run(problem: CodesignProblem, box: HypervolumeBox, args: argparse.Namespace, seed: int, strategy: Strategy) -> Run:
    config = CodesignConfig(strategy, args.evaluations, args.batch, sampler=Sampler(args.sampler), seed=seed)
    t0 = time.perf_counter()
    result = run_codesign(problem, config, storage="memory", study_name=f"compare-{seed}")
    wall = time.perf_counter() - t0
    front = result.front()
    best = result.best()
    hv = box.fraction(front)
    best_edp, best_key = (None, None) if best is None else (best.edp, best.candidate.key)
    return Run(seed, strategy.value, hv, best_edp, best_key, len(front), sum(result.feasible), result.n_evaluations,
               wall)  # fmt: skip


def _row(r: Run) -> str:
    best = "none feasible" if r.best_edp is None else f"{r.best_edp:.4g}"
    return (f"| {r.seed} | {r.strategy} | {r.hypervolume_fraction:.4f} | {best} | {r.front_size} | {r.feasible} | "
            f"{r.evaluations} | {r.s_per_evaluation:.2f} | `{r.best_key}` |")  # fmt: skip


def _aggregate(runs: list[Run]) -> list[str]:
    lines = ["| strategy | hypervolume, mean ± sd | best EDP, geometric mean | best EDP, mean | s / evaluation, mean |",
             "|---|---|---|---|---|"]  # fmt: skip
    for strategy in dict.fromkeys(r.strategy for r in runs):
        mine = [r for r in runs if r.strategy == strategy]
        hv = [r.hypervolume_fraction for r in mine]
        edps = [r.best_edp for r in mine if r.best_edp is not None]
        sd = statistics.stdev(hv) if len(hv) > 1 else 0.0
        geo = statistics.geometric_mean(edps) if edps else float("nan")
        mean = statistics.fmean(edps) if edps else float("nan")
        spe = statistics.fmean(r.s_per_evaluation for r in mine)
        lines.append(f"| {strategy} | {statistics.fmean(hv):.4f} ± {sd:.4f} | {geo:.4g} | {mean:.4g} | {spe:.2f} |")
    seeds = sorted({r.seed for r in runs})
    by = {(r.seed, r.strategy): r for r in runs}
    hv_wins = sum(
        by[s, "joint"].hypervolume_fraction > by[s, "sequential"].hypervolume_fraction
        for s in seeds
        if (s, "joint") in by and (s, "sequential") in by
    )
    edp_wins = sum(
        (by[s, "joint"].best_edp or float("inf")) < (by[s, "sequential"].best_edp or float("inf"))
        for s in seeds
        if (s, "joint") in by and (s, "sequential") in by
    )
    lines.append("")
    lines.append(f"joint has the larger hypervolume at {hv_wins} of {len(seeds)} seeds and the lower best EDP at "
                 f"{edp_wins} of {len(seeds)}.")  # fmt: skip
    return lines


def _designs_within(problem: CodesignProblem) -> list[HardwareParams]:
    """Every distinct design of the hardware space within the area budget (the on-chip link is moot without an L2)."""
    space = problem.hardware
    names = [name for name, _ in space.choices]
    designs: dict[str, HardwareParams] = {}
    for combo in itertools.product(*(values for _, values in space.choices)):
        params = space.params(dict(zip(names, combo, strict=True)))
        if params.key not in designs and problem.area_mm2(build_design(space, params)) <= problem.area_budget_mm2:
            designs[params.key] = params
    return list(designs.values())


def _exhaustive(problem: CodesignProblem, runs: list[Run]) -> list[str]:
    """For the largest shape and each run's best shape: the best design within the budget, found by pricing every
    one, against the design the run chose for that shape."""
    designs = _designs_within(problem)
    evaluator = Evaluator(problem, direct=True)
    largest = problem.shapes.largest().key
    wanted = [("largest shape", largest)] + [
        (f"{r.strategy} seed {r.seed}", r.best_key.partition("|")[2]) for r in runs if r.best_key is not None
    ]
    best_of: dict[str, tuple[float, str]] = {}
    lines = [f"{len(designs)} designs within the budget, each priced for every shape below.\n",
             "| shape of | shape | best design for it | its EDP | the run's design | its EDP / the best's |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for label, arch_key in wanted:
        if arch_key not in best_of:
            arch = Architecture.from_key(arch_key)
            best_of[arch_key] = min((evaluator(Candidate(d, arch)).edp, d.key) for d in designs)
        edp, key = best_of[arch_key]
        run = next((r for r in runs if label == f"{r.strategy} seed {r.seed}"), None)
        chosen, gap = ("", "")
        if run is not None and run.best_key is not None and run.best_edp is not None:
            chosen, gap = f"`{run.best_key.partition('|')[0]}`", f"{run.best_edp / edp:.4f}"
        lines.append(f"| {label} | `{arch_key}` | `{key}` | {edp:.4g} | {chosen} | {gap} |")
    return lines


def _run_dict(r: Run) -> dict[str, Any]:
    return {**{f: getattr(r, f) for f in Run.__slots__}, "s_per_evaluation": r.s_per_evaluation}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--evaluations", type=int, default=60)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--sampler", default="tpe", choices=[s.value for s in Sampler])
    parser.add_argument("--space", default="cpu")
    parser.add_argument("--hardware-space", default="gemmini")
    parser.add_argument("--area-budget", type=float, default=None, help="mm^2 (default: the base design's area)")
    parser.add_argument("--perplexity-limit", type=float, default=23.0)
    parser.add_argument("--json", default=None, help="also write every run as JSON to this path")
    parser.add_argument("--exhaustive-hardware", action="store_true",
                        help="also price every design within the budget for each run's best shape")  # fmt: skip
    args = parser.parse_args()
    problem = _problem(args)
    box = hypervolume_box(problem)
    ref = box.reference
    runs = [_run(problem, box, args, seed, strategy) for seed in args.seeds for strategy in Strategy]
    print(f"area budget {problem.area_budget_mm2:.4f} mm^2 (predicted), perplexity limit {problem.perplexity_limit:g}"
          f" (proxy), {args.evaluations} evaluations, batch {args.batch}, sampler {args.sampler}; hypervolume "
          f"reference (EDP {ref[0]:.4g} pJ x cycles, area {ref[1]:.4f} mm^2, perplexity {ref[2]:g})\n")  # fmt: skip
    print("| seed | strategy | hypervolume (fraction) | best EDP (pJ x cycles) | front | feasible | evaluated | "
          "s / evaluation (measured) | best candidate |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(_row(r))
    print()
    print("\n".join(_aggregate(runs)))
    if args.exhaustive_hardware:
        print()
        print("\n".join(_exhaustive(problem, runs)))
    if args.json:
        doc: dict[str, Any] = {
            "schema": "tstack.codesign-compare/1",
            "settings": {k: v for k, v in vars(args).items() if k != "json"},
            "area_budget_mm2": problem.area_budget_mm2,
            "reference": ref,
            "runs": [_run_dict(r) for r in runs],
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
