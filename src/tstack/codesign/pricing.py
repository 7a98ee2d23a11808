"""Pricing a design: every op of a workload at its best mapping on the model of record, repeated layers once.

`DesignPricer.price` returns the same `ModelResult` as `tstack.simulate.simulate_workload` (what `tstack simulate`
prints), op for op, but evaluates each distinct op context once per design. The simulator's result for op i depends
on ops i-2 .. i+1 only: a matmul's cost on where its neighbours run (fused, on the special-function units, on the host
with de/requantization), the placement of op i-1 on ops i-2 and i-1 (whether it follows a matmul, whether fusing it
into that matmul pays), and that of op i+1 on ops i and i+1. So the cache key of op i is that window of ops with
their layer index removed, and the twelve identical layers of BERT-Base share their keys from the second layer on.
The tests check the result against `simulate_workload` on many designs rather than trust the argument.

On a miss the pricer simulates, in one call, the concatenation of the windows it lacks (overlapping windows merged
into runs); an op is read from a run only where its whole window lies inside that run, so a run's first two ops are
context whose own results are not used.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

from tstack.hardware.types import Hardware
from tstack.mapping.matmul.mappers import MapperName, parse_mapper
from tstack.simulate import ModelResult, OpResult, simulate_workload
from tstack.workload.ops import Op, Workload

DEFAULT_MAPPER = "exhaustive"  # each op's best-EDP mapping under the cost model of record
_BEFORE, _AFTER = 2, 1  # the window of ops a result depends on (module docstring)

_Key = tuple[Op | None, ...]


def _anonymous(op: Op) -> Op:
    """The op with its layer made 0 (its `layer` field; its label, which spells the layer, emptied), so the same op
    of two identical layers has one key; block, role and shapes still tell ops apart. Only keys are anonymous: the
    ops simulated are the workload's own."""
    return replace(op, name="", layer=None if op.layer is None else 0)


@dataclass(frozen=True, slots=True)
class PricingStats:
    """What the pricer has done so far: ops asked for, ops it simulated, designs it has seen."""

    ops_requested: int
    ops_simulated: int
    designs: int

    @property
    def hit_rate(self) -> float:
        return 1.0 - self.ops_simulated / self.ops_requested if self.ops_requested else 0.0


class DesignPricer:
    """Prices workloads on designs, caching each op's result per (design, op window); see the module docstring.

    Holds the caches of the `max_designs` designs priced most recently; one pricer per process (Ray workers each
    build their own)."""

    def __init__(self, mapper: str | MapperName = DEFAULT_MAPPER, max_designs: int = 64) -> None:
        self.mapper = mapper if isinstance(mapper, MapperName) else parse_mapper(mapper)
        self.max_designs = max_designs
        self._cache: OrderedDict[Hardware, dict[_Key, OpResult]] = OrderedDict()
        self._requested = 0
        self._simulated = 0

    @property
    def stats(self) -> PricingStats:
        return PricingStats(self._requested, self._simulated, len(self._cache))

    def _design_cache(self, hw: Hardware) -> dict[_Key, OpResult]:
        cache = self._cache.get(hw)
        if cache is None:
            cache = self._cache[hw] = {}
            while len(self._cache) > self.max_designs:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(hw)
        return cache

    def price(self, workload: Workload, hw: Hardware) -> ModelResult:
        """Every op of `workload` on `hw`: equal to `simulate_workload(workload, hw, mapper=...)`."""
        ops = workload.ops
        anon = [_anonymous(op) for op in ops]
        keys: list[_Key] = [
            tuple(anon[j] if 0 <= j < len(ops) else None for j in range(i - _BEFORE, i + _AFTER + 1))
            for i in range(len(ops))
        ]
        cache = self._design_cache(hw)
        missing: dict[_Key, int] = {}
        for i, key in enumerate(keys):
            if key not in cache and key not in missing:
                missing[key] = i
        if missing:
            self._fill(workload, hw, cache, keys, sorted(missing.values()))
        self._requested += len(ops)
        results = tuple(replace(cache[key], name=op.name) for key, op in zip(keys, ops, strict=True))
        return ModelResult(workload, hw, results)

    def _fill(
        self, workload: Workload, hw: Hardware, cache: dict[_Key, OpResult], keys: list[_Key], needed: list[int]
    ) -> None:
        """Simulate the windows of the `needed` op indices as merged runs, in one call, and cache their ops."""
        runs: list[list[int]] = []  # [start, stop) over workload indices
        for i in needed:
            start, stop = max(0, i - _BEFORE), min(len(workload.ops), i + _AFTER + 1)
            if runs and start <= runs[-1][1]:
                runs[-1][1] = max(runs[-1][1], stop)
            else:
                runs.append([start, stop])
        ops: list[Op] = []
        where: list[tuple[int, int]] = []  # (workload index, index in the concatenation) of each op read back
        needed_set = set(needed)
        for start, stop in runs:
            offset = len(ops) - start
            ops.extend(workload.ops[start:stop])
            where.extend((i, i + offset) for i in range(start, stop) if i in needed_set)
        result = simulate_workload(replace(workload, ops=tuple(ops)), hw, mapper=self.mapper)
        self._simulated += len(ops)
        for i, j in where:
            cache[keys[i]] = result.ops[j]
