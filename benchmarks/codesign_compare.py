"""Co-design strategies (sequential, joint, alternating) at an equal area budget, perplexity limit and evaluation
budget, over seeds.

    python benchmarks/codesign_compare.py --seeds 0 1 2 --evaluations 60 --json codesign-compare.json
    python benchmarks/codesign_compare.py --perplexity supernet --supernet codesign-run/supernet --seeds 0 1 2

Each (seed, strategy) is what ``tstack codesign --strategy S --evaluations N --seed K`` runs with the same
perplexity options (the same problem: the `cpu` shape space, the `gemmini` hardware space, the component area
model, table energies, the proxy perplexity or a trained supernet's measured one, and by default the area budget of
the base design gemmini-ibert), in-process on in-memory storage. With ``--perplexity supernet``, ``--supernet`` is a
checkpoint, or a folder where the `cpu` space's supernet is trained as `tstack nas train` does (`TrainConfig.cpu()`
on the shipped corpus; a finished checkpoint there is reused, an interrupted one resumed); the limit is then, unless
given, 1.03 x the largest shape's measured perplexity (`tstack codesign`'s default). One perplexity model serves
every run, so each shape is measured once per invocation. It prints a Markdown table per seed and one aggregated
over the seeds: the hypervolume of each strategy's feasible front in (EDP, area, perplexity), the best feasible EDP,
and the wall-clock time per evaluation (perplexity measurements included).

The hypervolume is that of the front against a reference point common to every run (`tstack.codesign.compare`:
2 x the EDP of the base design running the largest shape, the area budget, the perplexity limit), as a fraction of
the box from (0, 0, the largest shape's perplexity) to that point, so 1.0 would dominate the whole box. EDP,
latency and energy are predicted (the cost model of record), area predicted (the area model), perplexity the proxy
surrogate or measured (the supernet's sub-network on the held-out text).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
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
from tstack.commands.codesign import PerplexitySource, component_area_mm2
from tstack.nas.space import Architecture
from tstack.spec.codesign import load_hardware_space


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


def _checkpoint(args: argparse.Namespace) -> tuple[Path | None, float | None]:
    """The supernet checkpoint, trained into the folder `--supernet` when it is one (`tstack nas train`'s code and
    settings for the space), and the seconds that took (None: nothing trained)."""
    if args.perplexity != "supernet":
        return None, None
    path = Path(args.supernet)
    if path.is_file():
        return path, None
    from tstack.nas.data import load_corpus
    from tstack.nas.train import CHECKPOINT_NAME, TrainConfig, train_supernet
    from tstack.spec.nas_space import load_space

    space = load_space(args.space or "cpu")
    config = TrainConfig.paper() if space.name == "paper" else TrainConfig.cpu()
    started = time.perf_counter()
    done = (path / CHECKPOINT_NAME).is_file()
    checkpoint = train_supernet(space, load_corpus(args.corpus), path, config, threads=args.threads)
    return checkpoint, None if done else time.perf_counter() - started


def _problem(args: argparse.Namespace, checkpoint: Path | None) -> CodesignProblem:
    measured = args.perplexity == "supernet"  # the supernet's options are refused with the proxy
    source = PerplexitySource(args.perplexity, checkpoint, args.corpus if measured else None,
                              args.max_tokens if measured else None, args.threads if measured else None,
                              args.perplexity_limit, args.perplexity_factor)  # fmt: skip
    model, shapes, limit = source.resolve(args.space)
    hw_space = load_hardware_space(args.hardware_space)
    budget = component_area_mm2(hw_space.base) if args.area_budget is None else args.area_budget
    return CodesignProblem(shapes, hw_space, component_area_mm2, model, budget, limit)


def _run(problem: CodesignProblem, box: HypervolumeBox, args: argparse.Namespace, seed: int, strategy: Strategy) -> Run:
    config = CodesignConfig(strategy, args.evaluations, args.batch, sampler=Sampler(args.sampler), seed=seed,
                            rounds=args.rounds)  # fmt: skip
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
    hv_wins: dict[str, int] = {}
    edp_wins: dict[str, int] = {}
    for seed in seeds:
        mine = [r for (s, _), r in by.items() if s == seed]
        top_hv = max(r.hypervolume_fraction for r in mine)
        top_edp = min(float("inf") if r.best_edp is None else r.best_edp for r in mine)
        for r in mine:  # a tie counts for each strategy that shares the best value
            hv_wins[r.strategy] = hv_wins.get(r.strategy, 0) + (r.hypervolume_fraction == top_hv)
            edp_wins[r.strategy] = edp_wins.get(r.strategy, 0) + (r.best_edp == top_edp)
    lines.append("")
    for strategy in dict.fromkeys(r.strategy for r in runs):
        lines.append(f"{strategy} has the largest hypervolume (or shares it) at {hv_wins.get(strategy, 0)} of "
                     f"{len(seeds)} seeds and the lowest best EDP (or shares it) at {edp_wins.get(strategy, 0)} "
                     f"of {len(seeds)}.")  # fmt: skip
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
    parser.add_argument("--strategies", nargs="+", default=[s.value for s in Strategy],
                        choices=[s.value for s in Strategy])  # fmt: skip
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the alternating strategy")
    parser.add_argument("--space", default=None, help="shape space (default: cpu, or the supernet's)")
    parser.add_argument("--hardware-space", default="gemmini")
    parser.add_argument("--area-budget", type=float, default=None, help="mm^2 (default: the base design's area)")
    parser.add_argument("--perplexity", default="proxy", choices=["proxy", "supernet"])
    parser.add_argument("--supernet", default="codesign-run/supernet",
                        help="checkpoint, or folder to train the supernet in (reused when trained)")  # fmt: skip
    parser.add_argument("--corpus", type=Path, default=None, help="training and held-out text (default: shipped)")
    parser.add_argument("--max-tokens", type=int, default=None, help="held-out tokens per perplexity (16384)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (training and perplexity)")
    parser.add_argument("--perplexity-limit", type=float, default=None, help="default: proxy 23, supernet factor")
    parser.add_argument("--perplexity-factor", type=float, default=None, help="x the largest shape's (1.03)")
    parser.add_argument("--json", default=None, help="also write every run as JSON to this path")
    parser.add_argument("--exhaustive-hardware", action="store_true",
                        help="also price every design within the budget for each run's best shape")  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: no spin-waiting on a shared machine
    checkpoint, trained_s = _checkpoint(args)
    if trained_s is not None:
        print(f"trained the supernet into {checkpoint} in {trained_s:.0f} s (measured wall-clock)\n")
    problem = _problem(args, checkpoint)
    box = hypervolume_box(problem)
    ref = box.reference
    strategies = [Strategy(s) for s in args.strategies]
    runs = [_run(problem, box, args, seed, strategy) for seed in args.seeds for strategy in strategies]
    what = "measured, supernet" if args.perplexity == "supernet" else "proxy"
    print(f"area budget {problem.area_budget_mm2:.4f} mm^2 (predicted), perplexity limit {problem.perplexity_limit:.4g}"
          f" ({what}; the largest shape's: {box.floor_perplexity:.4g}), {args.evaluations} evaluations, batch "
          f"{args.batch}, sampler {args.sampler}; hypervolume reference (EDP {ref[0]:.4g} pJ x cycles, area "
          f"{ref[1]:.4f} mm^2, perplexity {ref[2]:.4g})\n")  # fmt: skip
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
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "json"},
            "perplexity_limit": problem.perplexity_limit,
            "supernet_training_s": trained_s,
            "area_budget_mm2": problem.area_budget_mm2,
            "reference": ref,
            "runs": [_run_dict(r) for r in runs],
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
