"""Predicted vs measured run time of the commands `tstack.commands.budget` guards.

Each case runs in a fresh interpreter (so that no mapping cache from an earlier case helps it) and times only the
work, not the import; the estimate is the one the command checks against its limit. Prints one row per case:
the counted work, the predicted seconds, the measured seconds (min of --repeats) and their ratio.

    .venv/bin/python benchmarks/bench_work_estimate.py [--repeats 2] [--only simulate]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

# name, command, keyword arguments of the case (a model, a sequence length, ...)
CASES: list[tuple[str, str, dict[str, object]]] = [
    ("simulate llama-2-7b l=1024 gemmini", "simulate", {"model": "llama-2-7b", "seq": 1024}),
    ("simulate llama-2-7b l=4096 gemmini", "simulate", {"model": "llama-2-7b", "seq": 4096}),
    ("simulate llama-2-70b l=8192 gemmini", "simulate", {"model": "llama-2-70b", "seq": 8192}),
    ("simulate bert-base l=512 gemmini", "simulate", {"model": "bert-base", "seq": 512}),
    ("simulate gpt2 l=1024 exhaustive", "simulate", {"model": "gpt2", "seq": 1024, "mapper": "exhaustive"}),
    ("simulate llama-2-7b l=1024 exhaustive", "simulate", {"model": "llama-2-7b", "seq": 1024, "mapper": "exhaustive"}),
    ("simulate gpt2 l=64 cosa", "simulate", {"model": "gpt2", "seq": 64, "mapper": "cosa"}),
    ("map llama-2-7b l=4096 prefill", "map", {"model": "llama-2-7b", "seq": 4096, "phase": "prefill"}),
    ("map resnet50", "map", {"model": "resnet50"}),
    ("analyze llama-2-70b l=262144", "analyze", {"model": "llama-2-70b", "seq": 262144}),
    ("mapspace 10 ops x 200,000 tstack", "mapspace", {"semantics": "tstack", "samples": 200_000}),
    ("mapspace 10 ops x 20,000 nest", "mapspace", {"semantics": "nest", "samples": 20_000}),
]

_RUN = r"""
import json, sys, time
from tstack.api import _parse_phase, _spec, analyze, map_model, simulate
from tstack.commands import budget
from tstack.mapping.matmul.mappers import parse_mapper
from tstack.workload import build_workload

kind, case = sys.argv[1], json.loads(sys.argv[2])
if kind == "mapspace":
    from tstack.mapping.mapspace import PAPER_OPS, Semantics, characterize
    from tstack.spec.hardware import load_hardware
    from tstack.spec.timeloop import gemmini_timeloop_files

    sem, n = Semantics(case["semantics"]), case["samples"]
    hw = load_hardware("gemmini-baseline")
    est = budget.mapspace_estimate(len(PAPER_OPS), n, sem.value)
    t0 = time.perf_counter()
    for name, shape in PAPER_OPS.items():
        characterize(name, shape, hw, n, 0, sem, timeloop=gemmini_timeloop_files())
else:
    spec = _spec(case["model"])
    phase = _parse_phase(case.get("phase"), spec)
    w = build_workload(spec, case.get("seq"), phase=phase)
    if kind == "analyze":
        est = budget.analyze_estimate([w])
        t0 = time.perf_counter()
        analyze(spec, [case["seq"]], phase=phase)
    elif kind == "map":
        est = budget.map_estimate(w)
        t0 = time.perf_counter()
        map_model(spec, "gemmini-baseline", case.get("seq"), phase=phase)
    else:
        mapper = case.get("mapper", "gemmini")
        est = budget.simulate_estimate(w, parse_mapper(mapper))
        t0 = time.perf_counter()
        simulate(spec, "gemmini-baseline", case.get("seq"), phase=phase, mapper=mapper)
print(json.dumps({"measured_s": time.perf_counter() - t0, "predicted_s": est.seconds, "work": est.work}))
"""


def run_case(kind: str, case: dict[str, object]) -> dict[str, float | str]:
    """Predicted and measured seconds of one case, in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _RUN, kind, json.dumps(case)], capture_output=True, text=True, check=True
    )
    result: dict[str, float | str] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", default=None, help="run the cases whose name contains this text")
    args = parser.parse_args()
    print(f"{'case':<40} {'predicted s':>12} {'measured s':>11} {'ratio':>6}  work")
    for name, kind, case in CASES:
        if args.only and args.only not in name:
            continue
        runs = [run_case(kind, case) for _ in range(args.repeats)]
        measured = min(float(r["measured_s"]) for r in runs)
        predicted = float(runs[0]["predicted_s"])
        print(f"{name:<40} {predicted:>12.3f} {measured:>11.3f} {predicted / measured:>6.2f}  {runs[0]['work']}")


if __name__ == "__main__":
    main()
