"""Co-design search: hardware x model shape under an area budget and a perplexity limit, on Optuna storage.

Three strategies at an equal budget of proposals (one proposal is one candidate priced and scored):

- ``sequential`` (the paper's order): the first `hardware_share` of the budget searches the hardware alone for the
  base model (the shape space's largest architecture), minimizing the metric under the area budget; the rest
  searches model shapes on the best design found, minimizing (metric, perplexity) under the perplexity limit.
- ``joint``: one multi-objective search over hardware and shape together, minimizing (metric, area, perplexity)
  under both constraints.
- ``alternating``: `rounds` rounds of the sequential strategy's two phases, each round's hardware phase searching
  for the best shape found so far, warm-started from the previous round (`tstack.codesign.alternating`).

All use the same sampler (Optuna's TPE, multi-objective where there are several objectives, with the constraints
as Optuna constraints; or random search), so a comparison measures the strategy, not the optimizer.

Determinism, crash safety and Ray. A phase asks its proposals in batches of `batch`; proposal s (its "slot") is
asked from a sampler seeded by (seed, slot), after every proposal of the earlier batches is told and before any of
its own batch is. So a proposal depends only on the seed and the finished history, never on where evaluations ran
or on a crash: evaluations run in-process or on Ray actors, and a killed search, rerun, fails the trials its dead
run left running and re-enqueues their parameters in the same slots (an interrupted evaluation is redone once; a
finished one is never repeated or lost). A proposal equal to an earlier finished one reuses its values (``cached``,
no evaluation). What a later phase fixes (the sequential shape phase's design; the alternating rounds' shapes,
designs and warm starts) is derived from the earlier phases' stored results, so a resumed search derives the same.
One driver runs a study at a time (the workers are Ray's actors).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tstack.codesign.alternating import phase_names, round_budgets, run_alternating
from tstack.codesign.evaluate import CodesignProblem, Evaluation, Evaluator, perplexity_source
from tstack.codesign.executors import Executor, LocalExecutor, RayExecutor
from tstack.codesign.front import pareto_mask_nd
from tstack.codesign.phases import (
    CodesignSearchError,
    Phase,
    PhaseSpec,
    Sampler,
    best_hardware,
    make_sampler,
    phase_spec,
    run_phase,
    stored_evaluations,
)
from tstack.codesign.space import PARAMETERS, HardwareParams, NonlinearUnits, build_design
from tstack.errors import SpecError
from tstack.nas.search import connect_ray, open_storage

if TYPE_CHECKING:
    import optuna

DEFAULT_STUDY = "tstack-codesign"
STUDY_FORMAT = 1


class Strategy(StrEnum):
    SEQUENTIAL = "sequential"
    JOINT = "joint"
    ALTERNATING = "alternating"


@dataclass(frozen=True, slots=True)
class CodesignConfig:
    """How to search: strategy, budget of proposals, batch width, sampler, seed; `rounds` for the alternating
    strategy only."""

    strategy: Strategy = Strategy.JOINT
    evaluations: int = 60
    batch: int = 4
    hardware_share: float = 0.5
    sampler: Sampler = Sampler.TPE
    seed: int = 0
    rounds: int = 2

    def __post_init__(self) -> None:
        if self.evaluations < 2:
            raise SpecError(f"a co-design search needs at least 2 evaluations, got {self.evaluations}")
        if self.batch < 1:
            raise SpecError(f"the batch must be at least 1, got {self.batch}")
        if not 0.0 < self.hardware_share < 1.0:
            raise SpecError(f"hardware_share must be in (0, 1), got {self.hardware_share}")

        if self.strategy is Strategy.ALTERNATING:
            round_budgets(self.evaluations, self.hardware_share, self.rounds)  # refuses too few evaluations

    def phase_plan(self) -> list[tuple[str, Phase, int]]:
        """(study suffix, kind, proposals) of each phase of the strategy, in order; `evaluations` in all."""
        if self.strategy is Strategy.JOINT:
            return [(Phase.JOINT.value, Phase.JOINT, self.evaluations)]
        if self.strategy is Strategy.ALTERNATING:
            budgets = [b for pair in round_budgets(self.evaluations, self.hardware_share, self.rounds) for b in pair]
            return [(name, kind, b) for (name, kind), b in zip(phase_names(self.rounds), budgets, strict=True)]
        first = min(self.evaluations - 1, max(1, round(self.evaluations * self.hardware_share)))
        return [
            (Phase.HARDWARE.value, Phase.HARDWARE, first),
            (Phase.SHAPE.value, Phase.SHAPE, self.evaluations - first),
        ]


@dataclass(frozen=True, slots=True)
class CodesignResult:
    """A strategy's outcome, read back from storage: every distinct candidate evaluated, and the counts."""

    strategy: Strategy
    evaluations: tuple[Evaluation, ...]
    feasible: tuple[bool, ...]
    n_proposals: int
    n_evaluations: int  # evaluations that ran (proposals minus cached repeats)
    n_failed: int
    chosen_hardware: HardwareParams | None  # sequential, alternating: the design its (last) shape phase searched on

    def front(self) -> list[Evaluation]:
        """Feasible candidates that are Pareto-optimal in (EDP, area, perplexity), by EDP."""
        pool = [e for e, ok in zip(self.evaluations, self.feasible, strict=True) if ok]
        if not pool:
            return []
        mask = pareto_mask_nd([(e.edp, e.area_mm2, e.perplexity) for e in pool])
        return sorted((e for e, m in zip(pool, mask, strict=True) if m), key=lambda e: (e.edp, e.candidate.key))

    def best(self, metric: Callable[[Evaluation], float] = lambda e: e.edp) -> Evaluation | None:
        """The feasible candidate with the lowest `metric` (default EDP)."""
        pool = [e for e, ok in zip(self.evaluations, self.feasible, strict=True) if ok]
        return min(pool, key=lambda e: (metric(e), e.candidate.key)) if pool else None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Library code never prints: Optuna's per-trial lines and experimental-feature warnings off for a call."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(before)


# -- strategies ----------------------------------------------------------------------------------------------------
def _meta(problem: CodesignProblem, config: CodesignConfig, phase: Phase) -> dict[str, Any]:
    meta = {
        "format": STUDY_FORMAT,
        "phase": phase.value,
        "shapes": problem.shapes.to_dict(),
        "hardware": problem.hardware.to_dict(),
        "area_model": _name(problem.area_mm2),
        "perplexity_model": perplexity_source(problem.perplexity),
        "area_budget_mm2": problem.area_budget_mm2,
        "perplexity_limit": problem.perplexity_limit,
        "metric": problem.metric.value,
        "energies": problem.energies.value,
        "mapper": problem.mapper,
        "strategy": config.strategy.value,
        "batch": config.batch,
        "hardware_share": config.hardware_share,
        "sampler": config.sampler.value,
        "seed": config.seed,
    }
    if config.strategy is Strategy.ALTERNATING:  # only there: studies of the other strategies resume as they were
        meta["rounds"] = config.rounds
    return meta


def _name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or type(fn).__qualname__)


def _open(store: Any, name: str, objectives: int, meta: Mapping[str, Any]) -> optuna.Study:
    import optuna
    from optuna.study import StudyDirection

    directions = [StudyDirection.MINIMIZE] * objectives

    study = optuna.create_study(storage=store, study_name=name, directions=directions, load_if_exists=True)
    stored = study.user_attrs.get("tstack")
    if stored is None:
        study.set_user_attr("tstack", dict(meta))
        return study
    diff = [k for k in meta if stored.get(k) != meta[k]]
    if diff:
        k = diff[0]
        raise CodesignSearchError(f"study {name!r} was created with {k}={stored.get(k)!r}, not {meta[k]!r}; resume it "
                           "with the same settings or pass another --study name")  # fmt: skip
    return study


def check_problem(problem: CodesignProblem) -> None:
    """Refuse, in one line, a problem no candidate can meet: an area budget below the smallest design's area (area
    is taken to grow with every size parameter), a perplexity limit below the largest shape's perplexity; and a
    space the area model cannot price (its largest design is asked first, so a memory outside the area model's
    table fails here, not halfway through the search)."""
    space = problem.hardware
    smallest = {name: min(values, key=lambda v: (isinstance(v, str), v)) for name, values in space.choices}
    largest = {name: max(values, key=lambda v: (isinstance(v, str), v)) for name, values in space.choices}
    if NonlinearUnits.NONE.value in space.values("nonlinear_units"):
        smallest["nonlinear_units"] = NonlinearUnits.NONE.value
    if NonlinearUnits.IBERT.value in space.values("nonlinear_units"):
        largest["nonlinear_units"] = NonlinearUnits.IBERT.value
    problem.area_mm2(build_design(space, space.params(largest)))
    params = space.params(smallest)
    area = float(problem.area_mm2(build_design(space, params)))
    if area > problem.area_budget_mm2:
        raise SpecError(
            f"no design meets the area budget of {problem.area_budget_mm2:g} mm^2: the smallest in space "
            f"{space.name!r} ({params.key}) takes {area:.3g} mm^2; raise --area-budget or shrink the space"
        )
    best_ppl = float(problem.perplexity(problem.shapes.largest()))
    if best_ppl > problem.perplexity_limit:
        raise SpecError(
            f"no shape meets the perplexity limit {problem.perplexity_limit:g}: the largest in space "
            f"{problem.shapes.name!r} has {best_ppl:.4g}; raise --perplexity-limit"
        )


@dataclass
class _Runner:
    """Runs one strategy's phases on one storage, each phase as its own study (`RunPhase` of the alternating
    strategy)."""

    problem: CodesignProblem
    config: CodesignConfig
    store: Any
    study_name: str
    ray_address: str | None
    ray_workers: int | None
    progress: Callable[[str, int, int], None] | None

    def __call__(self, name: str, spec: PhaseSpec, extra: Mapping[str, Any]) -> list[Evaluation]:
        meta = {**_meta(self.problem, self.config, spec.phase), **extra}
        objectives = 1 if spec.phase is Phase.HARDWARE else 2 if spec.phase is Phase.SHAPE else 3
        study = _open(self.store, f"{self.study_name}:{self.config.strategy.value}:{name}", objectives, meta)
        evaluator = Evaluator(self.problem, direct=spec.phase is not Phase.SHAPE)
        executor: Executor
        if self.ray_address is not None:
            executor = RayExecutor(evaluator, self.ray_workers or _ray_cpus())
        else:
            executor = LocalExecutor(evaluator)
        config = self.config
        try:
            if self.progress is not None:
                self.progress(name, 0, spec.budget)
            run_phase(study, spec, self.problem, lambda slot: make_sampler(config.sampler, config.seed, slot),
                      config.batch, executor)  # fmt: skip
        finally:
            executor.close()
        return stored_evaluations(self.problem, study)


def run_codesign(
    problem: CodesignProblem,
    config: CodesignConfig,
    *,
    storage: str | Path | Any,
    study_name: str = DEFAULT_STUDY,
    ray_address: str | None = None,
    ray_workers: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> CodesignResult:
    """Run (or resume) one strategy's search and read its result back from storage (see the module docstring)."""
    check_problem(problem)
    store = open_storage(storage)
    started = False
    if ray_address is not None:
        started = connect_ray(ray_address, ray_workers if ray_address == "local" else None)
    try:
        with _quiet():
            run = _Runner(problem, config, store, study_name, ray_address, ray_workers, progress)
            plan = config.phase_plan()
            chosen: HardwareParams | None = None
            if config.strategy is Strategy.JOINT:
                run(Phase.JOINT.value, phase_spec(problem, Phase.JOINT, config.evaluations), {})
            elif config.strategy is Strategy.SEQUENTIAL:
                (hw_name, _, hw_budget), (shape_name, _, shape_budget) = plan
                spec = phase_spec(problem, Phase.HARDWARE, hw_budget, shape=problem.shapes.largest())
                chosen = best_hardware(problem, run(hw_name, spec, {}))
                spec = phase_spec(problem, Phase.SHAPE, shape_budget, hardware=chosen)
                run(shape_name, spec, {"chosen_hardware": chosen.key})
            else:
                budgets = list(zip([b for _, _, b in plan[::2]], [b for _, _, b in plan[1::2]], strict=True))
                chosen = run_alternating(problem, budgets, run)
            return _result(problem, config, store, study_name, chosen)
    finally:
        if started:
            from tstack.codesign.executors import import_ray

            import_ray().shutdown()


def _ray_cpus() -> int:
    from tstack.codesign.executors import import_ray

    ray = import_ray()
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _result(
    problem: CodesignProblem, config: CodesignConfig, store: Any, study_name: str, chosen: HardwareParams | None
) -> CodesignResult:
    import optuna
    from optuna.trial import TrialState

    evals: list[Evaluation] = []
    n_prop = n_eval = n_fail = 0
    for name, _, _ in config.phase_plan():
        study = optuna.load_study(study_name=f"{study_name}:{config.strategy.value}:{name}", storage=store)
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state is TrialState.COMPLETE and "carried" not in t.user_attrs]
        n_prop += len(complete)
        n_eval += sum(1 for t in complete if "cached_from" not in t.user_attrs)
        n_fail += sum(1 for t in trials if t.state is TrialState.FAIL)
        seen = {e.candidate.key for e in evals}
        evals += [e for e in stored_evaluations(problem, study) if e.candidate.key not in seen]
    return CodesignResult(
        config.strategy,
        tuple(evals),
        tuple(problem.feasible(e) for e in evals),
        n_prop,
        n_eval,
        n_fail,
        chosen,
    )


__all__ = [
    "PARAMETERS",
    "CodesignConfig",
    "CodesignResult",
    "CodesignSearchError",
    "Phase",
    "Sampler",
    "Strategy",
    "run_codesign",
]
