"""Mapping speed on BERT-Base FFN1 (512 x 3072 x 768, int8, 16x16 WS, 256 KiB / 64 KiB): mappings evaluated per second
by the vectorized cost model, the exhaustive optimum, 100,000 random valid mappings, and the exhaustive mapping of every
op of the BERT-Base encoder at l = 512, and 100,000 random multi-level nests drawn and costed. For scale, peers.md
measured ZigZag's default search on the same layer at about 3 s CPU (1.85 ms per evaluated mapping);
benchmarks/bench_zigzag.py runs ZigZag and tstack side by side (results in benchmarks/RESULTS-mapping.md).

Run: python benchmarks/bench_mapping.py
"""

from __future__ import annotations

import numpy as np

import tstack
from _timing import best_of
from tstack.mapping.mapspace import timeloop_hardware
from tstack.mapping.matmul.cost import OperandBits
from tstack.mapping.matmul.loopnest import MatmulShape
from tstack.mapping.matmul.mappers import evaluate_space, exhaustive, full_mapspace, random_search
from tstack.mapping.nest import matmul as nest
from tstack.simulate.engine import _searched_mapping


def main() -> None:
    hw = tstack.load_hardware("gemmini-baseline")
    ffn1 = MatmulShape(512, 3072, 768)
    space = full_mapspace(ffn1)
    big = space.take(np.random.default_rng(0).integers(0, len(space), 1_000_000))
    seconds = best_of(lambda: evaluate_space(ffn1, big, hw, OperandBits(), hw.cost_options), 3)
    print(f"vectorized cost model: {len(big) / seconds / 1e6:.2f} M mappings/s ({seconds:.3f} s for 1,000,000)")
    print(f"exhaustive optimum of FFN1 ({len(space):,} mappings): {best_of(lambda: exhaustive(ffn1, hw)) * 1e3:.1f} ms")
    rng = np.random.default_rng(0)
    print(f"100,000 random valid mappings: {best_of(lambda: random_search(ffn1, hw, 100_000, rng)) * 1e3:.1f} ms")

    tl = timeloop_hardware(hw)

    def nests() -> None:
        drawn, _ = nest.sample(ffn1, tl, 100_000, rng, nest.Spatial.FREE)
        nest.costs(ffn1, drawn, tl)

    print(f"100,000 random valid multi-level nests (free spatial) drawn and costed: {best_of(nests, 3) * 1e3:.0f} ms")

    def encoder() -> None:
        _searched_mapping.cache_clear()
        tstack.simulate("bert-base", hw, 512, mapper="exhaustive")

    print(f"BERT-Base encoder l=512, every op mapped exhaustively: {best_of(encoder, 3) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
