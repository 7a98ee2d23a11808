"""How long `tstack.analyze` takes on the largest workloads: GPT-2 generating 4096 tokens and Llama-2-70B.

Generation is counted in closed form (a vectorized sweep over the step index), so it must stay well under a second.
For scale, the same count done the naive way, one decode step at a time, is timed too (on fewer steps, and
extrapolated linearly). Run: python benchmarks/bench_analyze.py [--repeats N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import time

import tstack
from _timing import best_of
from tstack.workload import ModelSpec, Phase, analyze_workload, build_workload


def unrolled_generate_s(spec: ModelSpec, steps: int) -> float:
    start = time.perf_counter()
    for t in range(1, steps + 1):
        analyze_workload(spec, build_workload(spec, t, phase=Phase.DECODE))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args()
    cases = [
        ("gpt2 generate l=4096", "gpt2", 4096, "generate"),
        ("llama-2-70b generate l=4096", "llama-2-70b", 4096, "generate"),
        ("llama-2-70b decode l=4096", "llama-2-70b", 4096, "decode"),
        ("llama-2-70b prefill l=4096", "llama-2-70b", 4096, "prefill"),
        ("bert-base encoder l=128..4096", "bert-base", None, None),
    ]
    rows = []
    for label, model, seq, phase in cases:
        spec = tstack.load_model(model)
        seconds = best_of(lambda m=spec, s=seq, p=phase: tstack.analyze(m, s, phase=p), args.repeats)
        rows.append({"case": label, "seconds": seconds})
        print(f"{label:34s} {seconds * 1e3:9.2f} ms (best of {args.repeats})")
    for model in ("gpt2", "llama-2-70b"):
        spec = tstack.load_model(model)
        assert isinstance(spec, ModelSpec)
        sample = 64
        naive = unrolled_generate_s(spec, sample) * 4096 / sample
        closed = next(r["seconds"] for r in rows if r["case"] == f"{model} generate l=4096")
        rows.append({"case": f"{model} generate l=4096, one decode step at a time (extrapolated)", "seconds": naive})
        print(
            f"{model} unrolled per-step loop (extrapolated from {sample} steps): {naive:7.2f} s "
            f"-> closed form is {naive / closed:,.0f}x faster"
        )
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as f:
            json.dump({"schema": "tstack.bench-analyze/1", "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
