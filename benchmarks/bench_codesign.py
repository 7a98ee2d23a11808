"""Designs priced per second: random designs of the `gemmini` co-design space x every op of BERT-Base (l = 512),
each op at its best mapping (exhaustive mapper), in-process (plain `simulate_workload` and the op-window cache) and on
a local Ray instance with 2 workers. Measured wall-clock; each design is new to every pricer (cold caches).

    python benchmarks/bench_codesign.py --designs 24
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tstack.codesign import DesignPricer, build_design, load_hardware_space
from tstack.codesign.space import HardwareSpace
from tstack.hardware.types import Hardware
from tstack.mapping.mappers import parse_mapper
from tstack.simulate import simulate_workload
from tstack.spec import load_model
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--designs", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    space = load_hardware_space("gemmini")
    workload = build_workload(load_model("bert-base"), 512)
    mapper = parse_mapper("exhaustive")
    _price_all(_designs(space, 2, 99), workload)  # warm-up: imports, numpy
    rows = []
    for label, seed in (("simulate_workload", 1), ("DesignPricer", 2)):
        designs = _designs(space, args.designs, seed)
        t0 = time.perf_counter()
        if label == "DesignPricer":
            _price_all(designs, workload)
        else:
            for hw in designs:
                simulate_workload(workload, hw, mapper=mapper)
        rows.append((f"in-process, {label}", args.designs / (time.perf_counter() - t0)))
    import ray

    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    price = ray.remote(num_cpus=1)(_price_all)
    ray.get([price.remote(_designs(space, 1, 98 - i), workload) for i in range(args.workers)])  # warm workers
    designs = _designs(space, args.designs, 3)
    chunks = [designs[i :: args.workers] for i in range(args.workers)]
    t0 = time.perf_counter()
    ray.get([price.remote(chunk, workload) for chunk in chunks])
    rows.append((f"Ray, {args.workers} workers, DesignPricer", args.designs / (time.perf_counter() - t0)))
    ray.shutdown()
    for label, rate in rows:
        print(f"{label:45s} {rate:7.1f} designs/s (measured)")


if __name__ == "__main__":
    main()
