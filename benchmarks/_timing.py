"""Wall-clock timing shared by the benchmark scripts (a sibling module: they run as `python benchmarks/x.py`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], Any], repeats: int = 5) -> float:
    """The fastest of `repeats` timed calls of `fn`, in seconds, after one untimed warm-up call (imports, preset
    parsing, caches): the minimum is the least disturbed by a noisy machine."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
