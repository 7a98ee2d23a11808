"""How fast NAS candidates are priced: building the lookup table (cold, and from the disk cache), then pricing
candidates from it (vectorized over gene indices, from `Architecture` objects, one at a time) against simulating each
candidate whole with `tstack.api.simulate`. The paper's space on gemmini-ibert at l = 512.

Run: python benchmarks/bench_nas_pricing.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from tstack.api import price_table as build_price_table
from tstack.api import simulate
from tstack.simulate.engine import _gemmini_mapping
from tstack.spec.nas_space import load_space


def main() -> None:
    space = load_space("paper")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        for phase in ("prefill", "generate"):
            _gemmini_mapping.cache_clear()
            start = time.perf_counter()
            table = build_price_table(space, "gemmini-ibert", phase=phase, cache_dir=cache)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            build_price_table(space, "gemmini-ibert", phase=phase, cache_dir=cache)
            cached = time.perf_counter() - start
            print(f"table, paper space, {phase:8s}: build {cold:6.2f} s (5 probe models + 2 verification "
                  f"simulations), from the disk cache {cached * 1e3:5.1f} ms")  # fmt: skip
        table = build_price_table(space, "gemmini-ibert", cache_dir=cache)

        n = 100_000
        archs = [space.sample(rng) for _ in range(n)]
        idx = table.gene_indices(archs)
        start = time.perf_counter()
        table.price_indices(idx)
        vec = time.perf_counter() - start
        start = time.perf_counter()
        table.price_many(archs[:20_000])
        many = time.perf_counter() - start
        start = time.perf_counter()
        for a in archs[:2_000]:
            table.price(a)
        single = time.perf_counter() - start
        sims = 20
        start = time.perf_counter()
        for a in archs[:sims]:
            simulate(space.model_spec(a), "gemmini-ibert", space.seq_len, phase="prefill")
        direct = time.perf_counter() - start
        print(f"price_indices (vectorized)    {n / vec:12,.0f} candidates/s")
        print(f"price_many (from Architecture){20_000 / many:12,.0f} candidates/s")
        print(f"price (one at a time)         {2_000 / single:12,.0f} candidates/s")
        print(f"tstack.api.simulate per arch  {sims / direct:12,.1f} candidates/s  "
              f"(table is {direct / sims / (vec / n):,.0f}x faster vectorized)")  # fmt: skip


if __name__ == "__main__":
    main()
