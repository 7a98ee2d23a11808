"""Searching multi-level nests (`tstack.mapping.nest.matmul`) for the least EDP.

The space is too large to enumerate (1.4e12 mappings for a BERT-Base projection), so the search seeds from the best
nests among every one-tile mapping written as a nest (`nest.one_tile.one_tile_nests`: the one-tile optimum is among
them) and random valid nests, then descends: each step evaluates every neighbour of the current nest at once — one
prime factor of one dimension moved to another level (or between a level and the array, with free spatial factors),
or one level's loop order changed — and moves to the best valid one while it is better. The result is never worse
than the one-tile optimum under the same cost, since that is a seed.

Whether a second on-chip tiling level ever beats the one-tile optimum, and how far descents from random nests stop
above it, is measured in benchmarks/RESULTS-mapping.md, section D.
"""

from __future__ import annotations

import numpy as np

from tstack.errors import SpecError
from tstack.hardware.types import Hardware
from tstack.mapping.matmul.loopnest import ORDERS, MatmulShape
from tstack.mapping.nest import factorization
from tstack.mapping.nest import matmul as nest
from tstack.mapping.nest import one_tile as nest_one_tile
from tstack.mapping.nest.matmul import IntArray, NestHardware, NestResult, Nests, Spatial


def neighbours(nests: Nests, i: int, spatial: Spatial) -> Nests:
    """Every nest one move away from nest `i` (module docstring); validity is not checked here."""
    f0, o0 = nests.factors[i], nests.orders[i]
    sn0, sk0 = int(nests.spatial_n[i]), int(nests.spatial_k[i])
    factors, orders, sns, sks = [], [], [], []

    def add(f: IntArray, o: IntArray, sn: int, sk: int) -> None:
        factors.append(f)
        orders.append(o)
        sns.append(sn)
        sks.append(sk)

    levels = len(nest.LEVELS)
    for j in range(3):
        # slots: the temporal levels (a register holds one weight: n and k have no register loop), then the array
        slots = list(range(levels if j == nest.M else nest.REGISTERS))
        spatial_slot = {nest.N: levels, nest.K: levels + 1}.get(j) if spatial is Spatial.FREE else None
        if spatial_slot is not None:
            slots.append(spatial_slot)
        for a in slots:
            value_a = sn0 if a == levels else sk0 if a == levels + 1 else int(f0[a, j])
            for p, _ in factorization.prime_powers(value_a):
                for b in slots:
                    if b == a:
                        continue
                    f, sn, sk = f0.copy(), sn0, sk0
                    for slot, scale in ((a, -1), (b, 1)):
                        if slot == levels:
                            sn = sn * p if scale > 0 else sn // p
                        elif slot == levels + 1:
                            sk = sk * p if scale > 0 else sk // p
                        elif scale > 0:
                            f[slot, j] *= p
                        else:
                            f[slot, j] //= p
                    add(f, o0, sn, sk)
    for lv in range(levels):
        for code in range(len(ORDERS)):
            if code != o0[lv]:
                o = o0.copy()
                o[lv] = code
                add(f0, o, sn0, sk0)
    return Nests(
        np.array(factors, dtype=np.int64),
        np.array(orders, dtype=np.int64),
        np.array(sns, dtype=np.int64),
        np.array(sks, dtype=np.int64),
    )


def search(
    shape: MatmulShape,
    hw: Hardware,
    *,
    samples: int = 20_000,
    starts: int = 8,
    seed: int = 0,
    spatial: Spatial = Spatial.FREE,
) -> NestResult:
    """The least-EDP nest found (module docstring): `starts` descents from the best seeds."""
    if starts <= 0:
        raise SpecError(f"the nest search needs at least one start, got {starts}")
    seeds = nest_one_tile.one_tile_nests(shape, hw)
    if samples > 0:
        drawn, _ = nest.sample(shape, hw, samples, np.random.default_rng(seed), spatial)
        seeds = Nests.concatenate([seeds, drawn])
    seed_edp = nest.costs(shape, seeds, hw).edp
    results = [descend(shape, hw, seeds.take(np.array([i])), spatial) for i in np.argsort(seed_edp)[:starts]]
    return min(results, key=lambda r: r.edp)


def descend(shape: MatmulShape, hw: Hardware, start: Nests, spatial: Spatial = Spatial.FREE) -> NestResult:
    """Steepest descent from a valid nest (`start`, of length 1) to one no valid neighbour improves on."""
    nh = NestHardware.of(hw)
    current, current_edp = start, float(nest.costs(shape, start, hw).edp[0])
    while True:
        around = neighbours(current, 0, spatial)
        around = around.take(np.flatnonzero(nest.valid(around, nh)))
        if len(around) == 0:
            break
        cost = nest.costs(shape, around, hw)
        j = int(np.argmin(cost.edp))
        if cost.edp[j] >= current_edp * (1 - 1e-12):
            break
        current, current_edp = around.take(np.array([j])), float(cost.edp[j])
    return NestResult.pick(current, nest.costs(shape, current, hw), 0)
