"""How long `tstack.simulate` takes: the whole BERT-Base encoder at l = 512 on every hardware preset, cold
(first call, mapper cache empty) and warm, plus GPT-2 generating 512 tokens (one matmul shape per step).

Run: python benchmarks/bench_simulate.py
"""

from __future__ import annotations

import time

import tstack
from tstack.simulate.engine import _gemmini_mapping
from tstack.spec import preset_names


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    tstack.load_model("bert-base")  # import and preset parsing out of the way
    for hw in preset_names("hardware"):
        _gemmini_mapping.cache_clear()
        cold = timed(lambda h=hw: tstack.simulate("bert-base", h, 512))
        warm = min(timed(lambda h=hw: tstack.simulate("bert-base", h, 512)) for _ in range(5))
        print(f"bert-base l=512 on {hw:20s} cold {cold * 1e3:7.1f} ms   warm {warm * 1e3:7.1f} ms")
    _gemmini_mapping.cache_clear()
    gen = timed(lambda: tstack.simulate("gpt2", "paper-analytic", 512))
    print(f"gpt2 generate l=512 on paper-analytic   cold {gen * 1e3:7.1f} ms")


if __name__ == "__main__":
    main()
