"""Evolutionary search (the paper's) vs NSGA-II vs random search at equal budget, in hypervolume.

Space: the paper's Table 8 space; hardware cost: tstack's simulator on gemmini-ibert at l = 512 (prefill) through
the lookup table. Objective: by default the LiteTransformerSearch parameter-count surrogate
(`tstack.nas.proxy.ProxyPerplexity`: a perplexity-like number, NOT a measurement); with ``--checkpoint`` the real
held-out perplexity of a trained supernet's sub-networks.

Budget: for each seed, evolution runs `population` x `iterations`; NSGA-II and random search then get exactly as
many objective calls as evolution made. Hypervolume is measured on (perplexity, EDP / baseline EDP) against the
reference (the smallest architecture's perplexity, 1.0) for the surrogate (the nadir of the whole space), or the worst
perplexity any run saw for the supernet; it is reported after 25%, 50% and 100% of the budget (in evaluation order).

Run: python benchmarks/bench_nas_search.py [--seeds 5] [--out tables.md]  (RESULTS-nas-search.md records a run)
     python benchmarks/bench_nas_search.py --checkpoint nas-run/supernet/checkpoint.pt [--corpus PATH]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from tstack.api import price_table as build_price_table
from tstack.nas.pareto import hypervolume_2d, select_within
from tstack.nas.proxy import ProxyPerplexity
from tstack.nas.search import SearchConfig, StudyResults, SupernetObjective, run_search
from tstack.nas.space import SearchSpace
from tstack.spec.nas_space import load_space

ALGORITHMS = ("evolution", "nsga2", "random")
FRACTIONS = (0.25, 0.5, 1.0)


def _hv(res: StudyResults, budget: int, ref: tuple[float, float], base_edp: float) -> float:
    first = sorted(res.evaluated, key=lambda e: e.trial)[:budget]
    return hypervolume_2d([(e.point.perplexity, e.point.edp / base_edp) for e in first], ref)


def run(space: SearchSpace, objective: Any, name: str, population: int, iterations: int, seeds: list[int],
        proxy: bool) -> tuple[str, dict[str, Any]]:  # fmt: skip
    table = build_price_table(space, "gemmini-ibert")
    base_edp = table.price(space.largest()).edp
    runs: dict[tuple[str, int], StudyResults] = {}
    seconds: dict[str, list[float]] = {a: [] for a in ALGORITHMS}
    budgets: dict[int, int] = {}
    for seed in seeds:
        for algorithm in ALGORITHMS:
            cap = None if algorithm == "evolution" else budgets[seed]
            cfg = SearchConfig(algorithm, population, iterations, seed=seed, max_evaluations=cap)
            start = time.perf_counter()
            res = run_search(space, table, objective, storage="memory", config=cfg, objective_name=name)
            seconds[algorithm].append(time.perf_counter() - start)
            runs[(algorithm, seed)] = res
            if algorithm == "evolution":
                budgets[seed] = res.n_evaluations
    if proxy:
        ref = (objective(space.smallest()), 1.0)
    else:
        ref = (max(e.point.perplexity for r in runs.values() for e in r.evaluated), 1.0)
    stats: dict[str, Any] = {}
    for algorithm in ALGORITHMS:
        row: dict[str, Any] = {}
        for frac in FRACTIONS:
            hvs = [_hv(runs[(algorithm, s)], max(1, round(frac * budgets[s])), ref, base_edp) for s in seeds]
            row[frac] = (statistics.mean(hvs), statistics.stdev(hvs) if len(hvs) > 1 else 0.0, hvs)
        gains = {}
        for tol in (0.1, 1.0):
            sel = []
            for s in seeds:
                res = runs[(algorithm, s)]
                assert res.baseline is not None  # every algorithm evaluates the largest architecture first
                sel.append(select_within(res.points(), res.baseline.point, tol))
            gains[tol] = (statistics.mean(x.edp_gain for x in sel), statistics.mean(x.latency_gain for x in sel),
                          statistics.mean(x.energy_gain for x in sel))  # fmt: skip
        row["gains"] = gains
        row["seconds"] = statistics.mean(seconds[algorithm])
        stats[algorithm] = row
    lines = [
        f"### population {population}, {iterations} iterations; budget per seed = evolution's evaluations: "
        + ", ".join(f"seed {s}: {budgets[s]}" for s in seeds),
        "",
        f"Hypervolume on (perplexity, EDP / baseline EDP), reference ({ref[0]:.4f}, 1.0); mean ± stdev over "
        f"{len(seeds)} seeds (higher is better).",
        "",
        "| algorithm | HV at 25% budget | HV at 50% | HV at 100% | per seed (100%) | EDP gain +0.1 / +1 ppl | "
        "s per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for algorithm in ALGORITHMS:
        row = stats[algorithm]
        cells = [f"{row[f][0]:.4f} ± {row[f][1]:.4f}" for f in FRACTIONS]
        per_seed = ", ".join(f"{h:.4f}" for h in row[1.0][2])
        g = row["gains"]
        lines.append(f"| {algorithm} | {' | '.join(cells)} | {per_seed} | {g[0.1][0]:.2f}x / {g[1.0][0]:.2f}x | "
                     f"{row['seconds']:.1f} |")  # fmt: skip
    wins = sum(stats["evolution"][1.0][2][i] > stats["random"][1.0][2][i] for i in range(len(seeds)))  # paired by seed
    lines += ["", f"Evolution beats random search on {wins} of {len(seeds)} seeds at the full budget."]
    return "\n".join(lines), stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--checkpoint", type=Path, default=None, help="supernet checkpoint: real perplexity")
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the markdown tables here")
    parser.add_argument("--max-tokens", type=int, default=None, help="held-out tokens per perplexity (supernet)")
    parser.add_argument("--small-only", action="store_true", help="skip the paper's 40 x 40 budget")
    parser.add_argument("--paper-only", action="store_true", help="skip the small 16 x 10 budget")
    args = parser.parse_args()
    if args.checkpoint is not None:
        objective: Any = SupernetObjective(args.checkpoint, args.corpus, max_tokens=args.max_tokens)
        space = objective.load().space
        name, proxy = "supernet", False
        tokens = f", {args.max_tokens} held-out tokens each" if args.max_tokens else ""
        header = f"Objective: held-out perplexity of sub-networks of {args.checkpoint} (measured{tokens})."
    else:
        space = load_space("paper")
        objective = ProxyPerplexity(space)
        name, proxy = "proxy", True
        header = ("Objective: the parameter-count surrogate ProxyPerplexity = 22.4 x (decoder params / the "
                  "largest's)^-0.04, not a measured perplexity.")  # fmt: skip
    seeds = list(range(args.seeds))
    sections = [header, ""]
    budgets = [(40, 40), (16, 10)]
    if args.small_only:
        budgets = [(16, 10)]
    if args.paper_only:
        budgets = [(40, 40)]
    for population, iterations in budgets:
        text, _ = run(space, objective, name, population, iterations, seeds, proxy)
        print(text, "\n", flush=True)
        sections += [text, ""]
    if args.out is not None:
        args.out.write_text("\n".join(sections))


if __name__ == "__main__":
    main()
