"""One co-design evaluation: a hardware choice and a model shape, priced and scored.

An evaluation builds the design (`build_design`, then `priced_design`: the per-access and MAC energies it is
priced with, by default from the same component table as the area, so that a bigger memory costs more energy per
access as well as more area), asks the area model for its area, prices the model shape on it
through the NAS lookup table rebuilt for that design (`tstack.nas.pricing.build_price_table`, every op at its best
mapping on the model of record) and asks the perplexity objective (the proxy surrogate or a trained supernet) for
the shape's perplexity. Every design is priced, also one over the area budget, so that the search learns how far
over it is; the constraints are applied by the search, not here.

`CodesignProblem` is what every worker needs, picklable: the area model and the perplexity objective must be
module-level callables (or picklable objects such as `ProxyPerplexity`) so Ray can ship them. A trained supernet is
`tstack.nas.search.SupernetObjective`: it pickles as its paths and loads the checkpoint once per process, and its
evaluator measures each shape once per process (a cache by architecture key), so a shape proposed again, with the
same or another design, is not measured again.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from tstack.codesign.pricing import DesignPricer
from tstack.codesign.space import HardwareParams, HardwareSpace, build_design
from tstack.errors import SpecError
from tstack.hardware.area import with_table_energies
from tstack.hardware.types import Hardware
from tstack.nas.pricing import DEFAULT_PHASE, HardwareCost, PriceTable, build_price_table
from tstack.nas.space import Architecture, SearchSpace
from tstack.workload import build_workload

AreaModel = Callable[[Hardware], float]
"""Area of a design in mm^2."""

PerplexityModel = Callable[[Architecture], float]


class Energies(StrEnum):
    """Where a candidate design's per-access and MAC energies come from."""

    TABLE = "table"  # the area model's component table (`tstack.hardware.area.with_table_energies`): CACTI SRAMs
    PRESET = "preset"  # the base design's hand energies for every size, the space's `l2` entry for an added L2


class Metric(StrEnum):
    """The hardware objective a search minimizes."""

    LATENCY = "latency"
    ENERGY = "energy"
    EDP = "edp"


@dataclass(frozen=True, slots=True)
class Candidate:
    """What one evaluation prices: a hardware choice and a model shape."""

    hardware: HardwareParams
    arch: Architecture

    @property
    def key(self) -> str:
        return f"{self.hardware.key}|{self.arch.key}"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A candidate's results: predicted latency and energy (the cost model), area (the area model), perplexity."""

    candidate: Candidate
    latency_cycles: float
    energy_pj: float
    area_mm2: float
    perplexity: float

    @property
    def edp(self) -> float:
        """Energy-delay product in pJ x cycles."""
        return self.energy_pj * self.latency_cycles

    def metric(self, metric: Metric) -> float:
        if metric is Metric.LATENCY:
            return self.latency_cycles
        if metric is Metric.ENERGY:
            return self.energy_pj
        return self.edp

    def to_dict(self) -> dict[str, Any]:
        return {
            "hardware": self.candidate.hardware.to_dict(),
            "hardware_key": self.candidate.hardware.key,
            "arch": self.candidate.arch.key,
            "latency_cycles": self.latency_cycles,
            "energy_pj": self.energy_pj,
            "edp": self.edp,
            "area_mm2": self.area_mm2,
            "perplexity": self.perplexity,
        }


def perplexity_source(fn: Any) -> str:
    """The perplexity model's identity, stored with a study so that a resumed search measures as the first run did:
    its name and, for a supernet (anything with a ``checkpoint``), the checkpoint, corpus and token cap."""
    name = str(getattr(fn, "__qualname__", None) or type(fn).__qualname__)
    checkpoint = getattr(fn, "checkpoint", None)
    if checkpoint is None:
        return name
    corpus = getattr(fn, "corpus", None)
    held_out = "the default corpus" if corpus is None else str(Path(corpus).resolve())
    tokens = getattr(fn, "max_tokens", None)
    return f"{name}({Path(checkpoint).resolve()}; held-out text of {held_out}; max_tokens {tokens})"


def perplexity_is_measured(fn: Any) -> bool:
    """Whether the perplexity model measures (a trained supernet on held-out text) rather than estimates."""
    return getattr(fn, "checkpoint", None) is not None


SUPERNET_FACTOR = 1.03
"""The default perplexity limit with a measured perplexity, as a multiple of the largest shape's: the proxy's limit
of 23 is 1.027 x its largest shape's 22.4, and on the `cpu` supernet about as many random shapes meet either."""


def relative_perplexity_limit(model: PerplexityModel, shapes: SearchSpace, factor: float = SUPERNET_FACTOR) -> float:
    """The perplexity limit `factor` x the perplexity of `shapes`' largest shape under `model` (the best any shape
    has): `tstack codesign`'s default with a supernet, and the study's."""
    return factor * float(model(shapes.largest()))


@dataclass(frozen=True, slots=True)
class CodesignProblem:
    """What a co-design search optimizes, under which constraints, and how each candidate is priced."""

    shapes: SearchSpace
    hardware: HardwareSpace
    area_mm2: AreaModel
    perplexity: PerplexityModel
    area_budget_mm2: float
    perplexity_limit: float
    metric: Metric = Metric.EDP
    energies: Energies = Energies.TABLE
    mapper: str = "exhaustive"
    table_cache_dir: Path | None = None  # price tables on disk (shared by the workers of one machine); None: memory

    def __post_init__(self) -> None:
        if not (self.area_budget_mm2 > 0 and math.isfinite(self.area_budget_mm2)):
            raise SpecError(f"the area budget must be a positive number of mm^2, got {self.area_budget_mm2}")
        if not (self.perplexity_limit > 0 and math.isfinite(self.perplexity_limit)):
            raise SpecError(f"the perplexity limit must be a positive number, got {self.perplexity_limit}")

    def feasible(self, e: Evaluation) -> bool:
        return e.area_mm2 <= self.area_budget_mm2 and e.perplexity <= self.perplexity_limit

    def violations(self, e: Evaluation) -> tuple[float, float]:
        """(area over budget in mm^2, perplexity over the limit); <= 0 is met (Optuna's constraint convention)."""
        return (e.area_mm2 - self.area_budget_mm2, e.perplexity - self.perplexity_limit)


def priced_design(problem: CodesignProblem, params: HardwareParams) -> Hardware:
    """The design of `params` with the energies the problem prices it with (`Energies`)."""
    hw = build_design(problem.hardware, params)
    if problem.energies is not Energies.TABLE:
        return hw
    if problem.hardware.tables is None:
        raise SpecError(
            f"hardware space {problem.hardware.name!r} has no component table to price energies from: load it with "
            "tstack.spec.codesign (which gives the default table), or choose Energies.PRESET"
        )
    return with_table_energies(hw, tables=problem.hardware.tables)


@dataclass
class Evaluator:
    """Evaluates candidates of one problem, holding per-process caches: designs' price tables and areas.

    With `direct`, a shape is priced by simulating its workload through the op-window cache (`DesignPricer`)
    instead of building the design's whole table, which prices every op of every shape: cheaper when a design
    prices few shapes (the sequential strategy's hardware phase, where each design prices the base model, and the
    joint search, where nearly every proposal is a new design), and equal to the table's price up to the order of
    float sums (the table is checked against the same simulation). The search picks one mode per phase, never per
    process, so a search on Ray prices every candidate as the in-process search does."""

    problem: CodesignProblem
    direct: bool = False
    max_tables: int = 32
    _pricer: DesignPricer | None = field(default=None, repr=False)
    _tables: OrderedDict[Hardware, PriceTable] = field(default_factory=OrderedDict, repr=False)
    _areas: dict[Hardware, float] = field(default_factory=dict, repr=False)

    def table(self, hw: Hardware) -> PriceTable:
        table = self._tables.get(hw)
        if table is None:
            p = self.problem
            table = build_price_table(
                p.shapes, hw, mapper=p.mapper, cache_dir=p.table_cache_dir, use_cache=p.table_cache_dir is not None
            )
            self._tables[hw] = table
            while len(self._tables) > self.max_tables:
                self._tables.popitem(last=False)
        else:
            self._tables.move_to_end(hw)
        return table

    def area(self, hw: Hardware) -> float:
        if hw not in self._areas:
            area = float(self.problem.area_mm2(hw))
            if not (area > 0 and math.isfinite(area)):
                raise SpecError(f"the area model gave {area} mm^2 for {hw.name}; it must give a positive number")
            self._areas[hw] = area
        return self._areas[hw]

    def _direct_cost(self, hw: Hardware, arch: Architecture) -> HardwareCost:
        if self._pricer is None:
            self._pricer = DesignPricer(self.problem.mapper)
        p = self.problem
        workload = build_workload(p.shapes.model_spec(arch), p.shapes.seq_len, phase=DEFAULT_PHASE, lm_head=False)
        result = self._pricer.price(workload, hw)
        return HardwareCost(result.latency_cycles, result.energy_pj)

    def __call__(self, candidate: Candidate) -> Evaluation:
        hw = priced_design(self.problem, candidate.hardware)
        if self.direct and hw not in self._tables:
            cost = self._direct_cost(hw, candidate.arch)
        else:
            cost = self.table(hw).price(candidate.arch)
        return Evaluation(
            candidate,
            cost.latency_cycles,
            cost.energy_pj,
            self.area(hw),
            float(self.problem.perplexity(candidate.arch)),
        )

    def __getstate__(self) -> dict[str, Any]:
        # caches stay in their process
        return {"problem": self.problem, "direct": self.direct, "max_tables": self.max_tables}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.problem = state["problem"]
        self.direct = state["direct"]
        self.max_tables = state["max_tables"]
        self._pricer = None
        self._tables = OrderedDict()
        self._areas = {}
