"""What a NAS search is asked to do: its algorithm and budget (`SearchConfig`), what it reports while it runs
(`SearchProgress`), and the one error it raises for storage, Ray or an objective that keeps failing.

Shared by the search loop, the storage and the executors; `tstack.nas.search` re-exports every name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tstack.errors import SpecError, TstackError
from tstack.nas.space import Architecture

ALGORITHMS = ("evolution", "nsga2", "random")
DEFAULT_STUDY = "tstack-nas"

Objective = Callable[[Architecture], float]
"""Perplexity (lower is better) of one architecture."""


class SearchError(TstackError):
    """A search cannot start or go on: storage, Ray, or an objective that keeps failing."""


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """How to search. `max_evaluations` caps objective calls (default: evolution is bounded by its iterations,
    NSGA-II and random search get population x iterations)."""

    algorithm: str = "evolution"
    population: int = 40
    iterations: int = 40
    mutation_prob: float = 0.2
    seed: int = 0
    max_evaluations: int | None = None
    heartbeat_s: float = 10.0
    stale_after_s: float = 60.0
    max_consecutive_failures: int = 5

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise SpecError(f"unknown search algorithm {self.algorithm!r}; choose one of: {', '.join(ALGORITHMS)}")
        if self.population < 2 or self.iterations < 1:
            raise SpecError("a search needs population >= 2 and iterations >= 1")
        if not 0.0 < self.mutation_prob <= 1.0:
            raise SpecError(f"mutation probability must be in (0, 1], got {self.mutation_prob}")
        if self.max_evaluations is not None and self.max_evaluations < 1:
            raise SpecError("max_evaluations must be at least 1")

    @property
    def budget(self) -> int | None:
        """Most objective calls this search makes (None: evolution, bounded by its iterations)."""
        if self.max_evaluations is not None:
            return self.max_evaluations
        return None if self.algorithm == "evolution" else self.population * self.iterations


@dataclass(frozen=True, slots=True)
class SearchProgress:
    """Where a search stands; `completed` of `total` in `unit`s (evolution: generations, else evaluations)."""

    completed: int
    total: int
    unit: str
    evaluations: int
    front_size: int
