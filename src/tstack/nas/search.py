"""Hardware-aware search over a `SearchSpace`: minimize (perplexity, EDP) with Optuna's ask/tell.

Algorithms:

- ``evolution`` (the paper's, digest §6.4): a population of `population` candidates (the baseline, i.e. the largest
  architecture, plus random ones); each iteration evaluates the population, keeps only its Pareto-optimal members and
  refills the population by mutating retained members, each gene resampled with probability `mutation_prob` (0.2).
  Children are new architectures only (never one the study has already seen), so no evaluation is repeated. When the
  front would fill the population (the paper does not say what then) it is thinned by NSGA-II's crowding distance
  so that at least a quarter of each generation is new children.
- ``nsga2``: Optuna's NSGAIISampler (population `population`), the textbook multi-objective GA.
- ``random``: Optuna's RandomSampler, the baseline any search must beat at equal budget.

One candidate is one Optuna trial: its genes are the trial's params (categorical distributions with the space's
choices), its values are (perplexity, EDP in pJ x cycles), and user attrs hold the architecture key, latency,
energy and, for evolution, its generation.

This module is the public entry; the work is split by job: `search_config` (what to search), `storage` (where the
study lives: journal file, SQL database or memory), `search_loop` (planning, evaluation ownership and crash
recovery: a killed search resumes where it stopped, and several workers may share one study), `executors` (in
process or on Ray) and `results` (the study read back).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tstack.errors import SpecError
from tstack.nas.executors import Executor, LocalExecutor, RayExecutor, connect_ray
from tstack.nas.pricing import PriceTable
from tstack.nas.results import Evaluated, StudyResults, load_results, results_of
from tstack.nas.search_config import (
    ALGORITHMS,
    DEFAULT_STUDY,
    Objective,
    SearchConfig,
    SearchError,
    SearchProgress,
)
from tstack.nas.search_loop import SearchLoop
from tstack.nas.space import Architecture, SearchSpace
from tstack.nas.storage import (
    STUDY_FORMAT,
    check_storage,
    open_storage,
    open_study,
    quiet_optuna,
    redact,
    study_meta,
)

if TYPE_CHECKING:
    import optuna

__all__ = [
    "ALGORITHMS",
    "DEFAULT_STUDY",
    "STUDY_FORMAT",
    "Evaluated",
    "Objective",
    "SearchConfig",
    "SearchError",
    "SearchProgress",
    "StudyResults",
    "SupernetObjective",
    "connect_ray",
    "load_results",
    "open_storage",
    "open_study",
    "redact",
    "results_of",
    "run_search",
    "with_budget",
]


def _sampler(config: SearchConfig, n_trials: int) -> optuna.samplers.BaseSampler:
    """A sampler seeded by the config's seed and the study's size, so a resumed search does not replay the
    proposals it already made (concurrent workers should pass different seeds to avoid duplicate proposals)."""
    import optuna

    seed = int(np.random.SeedSequence([config.seed, n_trials]).generate_state(1)[0])
    if config.algorithm == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=config.population, seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def run_search(
    space: SearchSpace,
    table: PriceTable,
    objective: Objective,
    *,
    storage: str | Path | optuna.storages.BaseStorage,
    study_name: str = DEFAULT_STUDY,
    config: SearchConfig | None = None,
    objective_name: str = "custom",
    ray_address: str | None = None,
    ray_gpus: float = 0.0,
    parallel: int | None = None,
    ray_num_cpus: int | None = None,
    progress: Callable[[SearchProgress], None] | None = None,
    baseline_perplexity: float | None = None,
) -> StudyResults:
    """Search `space` for architectures that minimize (objective perplexity, EDP priced by `table`).

    Resumes the study `study_name` in `storage` if it exists (see `tstack.nas.search_loop` for crash safety and
    several workers, `tstack.nas.executors` for Ray). `baseline_perplexity`, when given, is a stand-alone trained
    baseline's perplexity, recorded in the study for the report's selections.

    Every input is checked, and Ray joined, before the storage is opened: a search refused for bad input leaves
    no journal or database file behind."""
    cfg = config or SearchConfig()
    if table.space != space:
        raise SpecError(f"the price table was built for search space {table.space.name!r}, not {space.name!r}")
    meta = study_meta(space, table, cfg, objective_name)
    check_storage(storage)
    executor: Executor
    if ray_address is not None:
        executor = RayExecutor(objective, ray_address, parallel, ray_gpus, ray_num_cpus)
    else:
        executor = LocalExecutor(objective)
    try:
        store = open_storage(storage)
        with quiet_optuna():
            import optuna

            n_existing = 0
            with contextlib.suppress(KeyError):
                n_existing = len(optuna.load_study(study_name=study_name, storage=store).trials)
            study = open_study(store, study_name, meta, _sampler(cfg, n_existing))
            if baseline_perplexity is not None:
                study.set_user_attr("baseline_perplexity", float(baseline_perplexity))
            SearchLoop(study, space, table, cfg, executor, progress).run()
            return results_of(study)
    finally:
        executor.close()


@dataclass
class SupernetObjective:
    """Perplexity of a sub-network of a trained supernet on held-out text (the paper's objective).

    The evaluator (checkpoint and corpus) is loaded on first use in each process and never pickled, so Ray ships
    only the paths."""

    checkpoint: Path
    corpus: Path | None = None
    max_tokens: int | None = None
    threads: int | None = None
    _evaluator: Any = field(default=None, init=False, repr=False, compare=False)

    def load(self) -> Any:
        if self._evaluator is None:
            from tstack.nas.data import load_corpus
            from tstack.nas.evaluate import PerplexityEvaluator

            kwargs: dict[str, Any] = {"threads": self.threads}
            if self.max_tokens is not None:
                kwargs["max_tokens"] = self.max_tokens
            self._evaluator = PerplexityEvaluator(self.checkpoint, load_corpus(self.corpus), **kwargs)
        return self._evaluator

    def __call__(self, arch: Architecture) -> float:
        return float(self.load().perplexity(arch))

    def __getstate__(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "corpus": self.corpus, "max_tokens": self.max_tokens,
                "threads": self.threads}  # fmt: skip

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._evaluator = None


def with_budget(config: SearchConfig, evaluations: int) -> SearchConfig:
    """The same search capped at `evaluations` objective calls (benchmarks compare algorithms at equal budget)."""
    return replace(config, max_evaluations=evaluations)
