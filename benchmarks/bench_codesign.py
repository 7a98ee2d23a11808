"""Designs priced per second: random designs of the `gemmini` co-design space x every op of BERT-Base (l = 512),
each op at its best mapping (exhaustive mapper), in-process (plain `simulate_workload` and the op-window cache) and on
a local Ray instance with 2 workers. Measured wall-clock, the best of --repeats runs (min-of-N); each design is new
to every pricer (cold caches), and each repeat prices other designs.

    python benchmarks/bench_codesign.py --designs 16 --repeats 3
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from tstack.codesign import DesignPricer, build_design
from tstack.codesign.space import HardwareSpace
from tstack.hardware.types import Hardware
from tstack.mapping.matmul.mappers import parse_mapper
from tstack.simulate import simulate_workload
from tstack.spec import load_model
from tstack.spec.codesign import load_hardware_space
from tstack.workload import Workload, build_workload


def _designs(space: HardwareSpace, n: int, seed: int) -> list[Hardware]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        genes = {name: values[int(rng.integers(len(values)))] for name, values in space.choices}
        out.append(build_design(space, space.params(genes)))
    return out


def _price_all(designs: list[Hardware], workload: Workload) -> float:
    pricer = DesignPricer()
    return float(sum(pricer.price(workload, hw).edp for hw in designs))


def _best_rate(n: int, repeats: int, run: Callable[[int], object]) -> float:
    """Designs per second of the fastest of `repeats` timed calls (min-of-N: the least disturbed by other jobs);
    `run(r)` prices `n` designs new to its pricer, different at each repeat `r`."""
    best_s = float("inf")
    for r in range(repeats):
        t0 = time.perf_counter()
        run(r)
        best_s = min(best_s, time.perf_counter() - t0)
    return n / best_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--designs", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for name in ("designs", "workers", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")  # 0 workers would price nothing
    space = load_hardware_space("gemmini")
    workload = build_workload(load_model("bert-base"), 512)
    mapper = parse_mapper("exhaustive")
    n, repeats = args.designs, args.repeats
    _price_all(_designs(space, 2, 99), workload)  # warm-up: imports, numpy

    def simulate(r: int) -> None:
        for hw in _designs(space, n, 100 + r):
            simulate_workload(workload, hw, mapper=mapper)

    def cached(r: int) -> None:
        _price_all(_designs(space, n, 200 + r), workload)

    rows = [
        ("in-process, simulate_workload (every op)", _best_rate(n, repeats, simulate)),
        ("in-process, DesignPricer", _best_rate(n, repeats, cached)),
    ]
    import ray

    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    price = ray.remote(num_cpus=1)(_price_all)
    ray.get([price.remote(_designs(space, 1, 98 - i), workload) for i in range(args.workers)])  # warm workers

    def on_ray(r: int) -> None:
        designs = _designs(space, n, 300 + r)
        ray.get([price.remote(designs[i :: args.workers], workload) for i in range(args.workers)])

    rows.append((f"local Ray, {args.workers} workers, DesignPricer", _best_rate(n, repeats, on_ray)))
    ray.shutdown()
    for label, rate in rows:
        print(f"{label:45s} {rate:7.1f} designs/s (measured, best of {repeats} x {n} designs)")


if __name__ == "__main__":
    main()
