"""Ordered factorizations of a loop bound into per-level factors: counted, enumerated per prime, drawn uniformly.

The mapspaces of every nest model (`nest`, `nest.l2`, `nest.conv`) and Timeloop's sampler are products of these:
a bound's factorizations over k slots are the independent splits of each prime's exponent over the slots.
"""

from __future__ import annotations

import math
from functools import cache
from itertools import combinations_with_replacement

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def prime_powers(n: int) -> list[tuple[int, int]]:
    """`n` factored into (prime, exponent) pairs, smallest prime first."""
    out, p = [], 2
    while p * p <= n:
        e = 0
        while n % p == 0:
            n, e = n // p, e + 1
        if e:
            out.append((p, e))
        p += 1
    if n > 1:
        out.append((n, 1))
    return out


@cache
def compositions(exponent: int, slots: int) -> IntArray:
    """Every way to split `exponent` over `slots` ordered slots, one row each."""
    rows = []
    for combo in combinations_with_replacement(range(slots), exponent):
        rows.append(np.bincount(np.array(combo, dtype=np.int64), minlength=slots))
    return np.array(rows, dtype=np.int64).reshape(-1, slots)


def draw_factorizations(bound: int, slots: int, count: int, rng: np.random.Generator) -> IntArray:
    """`count` ordered factorizations of `bound` into `slots` factors, uniform over all of them: each prime's
    exponent is split uniformly over the slots, independently (the factorizations are the product of those)."""
    out = np.ones((count, slots), dtype=np.int64)
    for p, e in prime_powers(bound):
        comps = compositions(e, slots)
        out *= p ** comps[rng.integers(0, len(comps), count)]
    return out


def factorization_count(bound: int, slots: int) -> int:
    """How many ordered factorizations of `bound` into `slots` factors there are."""
    if slots == 0:
        return int(bound == 1)
    return math.prod(math.comb(e + slots - 1, slots - 1) for _, e in prime_powers(bound))
