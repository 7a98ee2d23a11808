"""Co-design search: hardware x model shape under an area budget and a perplexity limit, on Optuna storage.

Two strategies at an equal budget of proposals (one proposal is one candidate priced and scored):

- ``sequential`` (the paper's order): the first `hardware_share` of the budget searches the hardware alone for the
  base model (the shape space's largest architecture), minimizing the metric under the area budget; the rest
  searches model shapes on the best design found, minimizing (metric, perplexity) under the perplexity limit.
- ``joint``: one multi-objective search over hardware and shape together, minimizing (metric, area, perplexity)
  under both constraints.

Both use the same sampler (Optuna's TPE, multi-objective where there are several objectives, with the constraints
as Optuna constraints; or random search), so a comparison measures the strategy, not the optimizer.

Determinism, crash safety and Ray. A phase asks its proposals in batches of `batch`; proposal s (its "slot") is
asked from a sampler seeded by (seed, slot), after every proposal of the earlier batches is told and before any of
its own batch is. So a proposal depends only on the seed and the finished history, never on where evaluations ran
or on a crash: evaluations run in-process or on Ray actors, and a killed search, rerun, fails the trials its dead
run left running and re-enqueues their parameters in the same slots (an interrupted evaluation is redone once; a
finished one is never repeated or lost). A proposal equal to an earlier finished one reuses its values (``cached``,
no evaluation). One driver runs a study at a time (the workers are Ray's actors).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tstack.codesign.evaluate import Candidate, CodesignProblem, Evaluation, Evaluator
from tstack.codesign.executors import Executor, LocalExecutor, Outcome, RayExecutor
from tstack.codesign.front import pareto_mask_nd
from tstack.codesign.space import PARAMETERS, HardwareParams, NonlinearUnits, build_design
from tstack.errors import SpecError, TstackError
from tstack.nas.search import connect_ray, open_storage
from tstack.nas.space import Architecture

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

DEFAULT_STUDY = "tstack-codesign"
STUDY_FORMAT = 1


class Strategy(StrEnum):
    SEQUENTIAL = "sequential"
    JOINT = "joint"


class Sampler(StrEnum):
    TPE = "tpe"
    RANDOM = "random"


class Phase(StrEnum):
    """A study of a strategy: what it searches."""

    HARDWARE = "hardware"  # sequential, first: hardware for the base model
    SHAPE = "shape"  # sequential, second: model shapes on the chosen design
    JOINT = "joint"


@dataclass(frozen=True, slots=True)
class CodesignConfig:
    """How to search: strategy, budget of proposals, batch width, sampler, seed."""

    strategy: Strategy = Strategy.JOINT
    evaluations: int = 60
    batch: int = 4
    hardware_share: float = 0.5
    sampler: Sampler = Sampler.TPE
    seed: int = 0

    def __post_init__(self) -> None:
        if self.evaluations < 2:
            raise SpecError(f"a co-design search needs at least 2 evaluations, got {self.evaluations}")
        if self.batch < 1:
            raise SpecError(f"the batch must be at least 1, got {self.batch}")
        if not 0.0 < self.hardware_share < 1.0:
            raise SpecError(f"hardware_share must be in (0, 1), got {self.hardware_share}")

    def phase_budgets(self) -> dict[Phase, int]:
        if self.strategy is Strategy.JOINT:
            return {Phase.JOINT: self.evaluations}
        first = min(self.evaluations - 1, max(1, round(self.evaluations * self.hardware_share)))
        return {Phase.HARDWARE: first, Phase.SHAPE: self.evaluations - first}


@dataclass(frozen=True, slots=True)
class CodesignResult:
    """A strategy's outcome, read back from storage: every distinct candidate evaluated, and the counts."""

    strategy: Strategy
    evaluations: tuple[Evaluation, ...]
    feasible: tuple[bool, ...]
    n_proposals: int
    n_evaluations: int  # evaluations that ran (proposals minus cached repeats)
    n_failed: int
    chosen_hardware: HardwareParams | None  # sequential: the design its shape phase searched on

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


def _sampler(config: CodesignConfig, slot: int) -> optuna.samplers.BaseSampler:
    import numpy as np
    import optuna

    seed = int(np.random.SeedSequence([config.seed, slot]).generate_state(1)[0])
    if config.sampler is Sampler.RANDOM:
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)  # constraints: each trial's set_constraint (optuna >= 5)


# -- one phase: asks in batches, evaluates, tells -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Phase:
    phase: Phase
    budget: int
    distributions: Mapping[str, Any]
    decode: Callable[[Mapping[str, Any]], Candidate]
    values: Callable[[Evaluation], list[float]]


def _hardware_distributions(problem: CodesignProblem) -> dict[str, Any]:
    import optuna

    return {
        f"hw.{name}": optuna.distributions.CategoricalDistribution(list(values))
        for name, values in problem.hardware.choices
        if len(values) > 1
    }


def _shape_distributions(problem: CodesignProblem) -> dict[str, Any]:
    import optuna

    return {
        f"shape.{name}": optuna.distributions.CategoricalDistribution(list(values))
        for name, values in problem.shapes.gene_choices().items()
        if len(values) > 1
    }


def _decode_hardware(problem: CodesignProblem, params: Mapping[str, Any]) -> HardwareParams:
    genes = {k[3:]: v for k, v in params.items() if k.startswith("hw.")}
    return problem.hardware.params(genes)


def _decode_shape(problem: CodesignProblem, params: Mapping[str, Any]) -> Architecture:
    genes = {name: int(values[0]) for name, values in problem.shapes.gene_choices().items()}
    genes.update({k[6:]: int(v) for k, v in params.items() if k.startswith("shape.")})
    return problem.shapes.from_genes(genes)


def _run_phase(
    study: optuna.Study, spec: _Phase, problem: CodesignProblem, config: CodesignConfig, executor: Executor
) -> None:
    from optuna.trial import TrialState

    _recover(study, spec)
    while True:
        trials = study.get_trials(deepcopy=False)
        done = {int(t.user_attrs["slot"]) for t in trials if t.state is TrialState.COMPLETE and "slot" in t.user_attrs}
        todo = [s for s in range(spec.budget) if s not in done]
        if not todo:
            return
        first = todo[0] - todo[0] % config.batch
        batch = [s for s in todo if s < first + config.batch]
        claimed = _claim(study, spec, config, batch, trials)
        _evaluate_and_tell(study, spec, problem, executor, claimed)


def _recover(study: optuna.Study, spec: _Phase) -> None:
    """Fail the trials a dead run left running and hand their parameters back to their slots (module docstring)."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        if "slot" in t.user_attrs and set(t.params) == set(spec.distributions):
            study.enqueue_trial(dict(t.params), user_attrs={"slot": t.user_attrs["slot"], "retry_of": t.number})


def _claim(
    study: optuna.Study,
    spec: _Phase,
    config: CodesignConfig,
    batch: list[int],
    trials: Sequence[FrozenTrial],
) -> list[tuple[optuna.Trial, int, Candidate]]:
    """(trial number, slot, candidate) of every slot of the batch: re-enqueued trials first, then fresh asks."""
    from optuna.trial import TrialState

    waiting = [t for t in trials if t.state is TrialState.WAITING and int(t.user_attrs.get("slot", -1)) in batch]
    free = [s for s in batch if s not in {int(t.user_attrs["slot"]) for t in waiting}]
    claimed: list[tuple[optuna.Trial, int, Candidate]] = []
    for _ in waiting:
        trial = study.ask(dict(spec.distributions))  # pops the queue: a re-enqueued trial keeps its slot attr
        slot = int(trial.user_attrs["slot"])
        claimed.append((trial, slot, spec.decode(trial.params)))
    for slot in free:
        study.sampler = _sampler(config, slot)
        trial = study.ask(dict(spec.distributions))
        trial.set_user_attr("slot", slot)
        claimed.append((trial, slot, spec.decode(trial.params)))
    return sorted(claimed, key=lambda c: c[1])


def _evaluate_and_tell(
    study: optuna.Study,
    spec: _Phase,
    problem: CodesignProblem,
    executor: Executor,
    claimed: list[tuple[optuna.Trial, int, Candidate]],
) -> None:
    from optuna.trial import TrialState

    finished = {
        str(t.user_attrs["key"]): t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "key" in t.user_attrs and "cached_from" not in t.user_attrs
    }
    fresh = list({c.key: c for _, _, c in claimed if c.key not in finished}.values())  # each candidate once
    outcomes: dict[str, Outcome] = dict(zip([c.key for c in fresh], executor.map(fresh), strict=True))
    for trial, _slot, candidate in claimed:
        trial.set_user_attr("key", candidate.key)
        trial.set_user_attr("hardware", candidate.hardware.to_dict())
        source = finished.get(candidate.key)
        if source is not None:  # a repeat proposal: the finished trial's values, no evaluation
            for name in ("latency_cycles", "energy_pj", "area_mm2", "perplexity", "violations"):
                trial.set_user_attr(name, source.user_attrs[name])
            trial.set_user_attr("cached_from", source.number)
            _constrain(trial, source.user_attrs["violations"])
            assert source.values is not None
            study.tell(trial, list(source.values))
            continue
        outcome = outcomes[candidate.key]
        if isinstance(outcome, BaseException):
            trial.set_user_attr("error", f"{type(outcome).__name__}: {outcome}"[:500])
            study.tell(trial, state=TrialState.FAIL)
            reason = f"{type(outcome).__name__}: {outcome}"[:300]
            raise CodesignSearchError(f"evaluating {candidate.key} failed ({reason}); fix it and rerun to resume")
        for name in ("latency_cycles", "energy_pj", "area_mm2", "perplexity"):
            trial.set_user_attr(name, float(getattr(outcome, name)))
        violations = list(problem.violations(outcome))
        trial.set_user_attr("violations", violations)
        _constrain(trial, violations)
        study.tell(trial, spec.values(outcome))


def _constrain(trial: optuna.Trial, violations: Sequence[float]) -> None:
    """The area and perplexity constraints as Optuna's (feasible at <= 0), read by the samplers."""
    trial.set_constraint("area_over_budget_mm2", float(violations[0]))
    trial.set_constraint("perplexity_over_limit", float(violations[1]))


class CodesignSearchError(TstackError):
    """An evaluation raised: the search stops, and the same command resumes it."""


# -- strategies ----------------------------------------------------------------------------------------------------
def _meta(problem: CodesignProblem, config: CodesignConfig, phase: Phase) -> dict[str, Any]:
    return {
        "format": STUDY_FORMAT,
        "phase": phase.value,
        "shapes": problem.shapes.to_dict(),
        "hardware": problem.hardware.to_dict(),
        "area_model": _name(problem.area_mm2),
        "perplexity_model": _name(problem.perplexity),
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
            budgets = config.phase_budgets()
            chosen: HardwareParams | None = None
            for phase, budget in budgets.items():
                meta = _meta(problem, config, phase)
                if phase is Phase.SHAPE:
                    assert chosen is not None
                    meta["chosen_hardware"] = chosen.key
                spec = _phase_spec(problem, phase, budget, chosen)
                objectives = 1 if phase is Phase.HARDWARE else 2 if phase is Phase.SHAPE else 3
                study = _open(store, f"{study_name}:{config.strategy.value}:{phase.value}", objectives, meta)
                evaluator = Evaluator(problem, direct=phase is not Phase.SHAPE)
                executor: Executor
                if ray_address is not None:
                    executor = RayExecutor(evaluator, ray_workers or _ray_cpus())
                else:
                    executor = LocalExecutor(evaluator)
                try:
                    if progress is not None:
                        progress(phase.value, 0, budget)
                    _run_phase(study, spec, problem, config, executor)
                finally:
                    executor.close()
                if phase is Phase.HARDWARE:
                    chosen = _best_hardware(problem, _evaluations(problem, study))
            return _result(problem, config, store, study_name, chosen)
    finally:
        if started:
            from tstack.codesign.executors import import_ray

            import_ray().shutdown()


def _ray_cpus() -> int:
    from tstack.codesign.executors import import_ray

    ray = import_ray()
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _phase_spec(problem: CodesignProblem, phase: Phase, budget: int, chosen: HardwareParams | None) -> _Phase:
    metric = problem.metric
    if phase is Phase.HARDWARE:
        base = problem.shapes.largest()
        return _Phase(
            phase,
            budget,
            _hardware_distributions(problem),
            lambda p: Candidate(_decode_hardware(problem, p), base),
            lambda e: [e.metric(metric)],
        )
    if phase is Phase.SHAPE:
        assert chosen is not None
        fixed = chosen
        return _Phase(phase, budget, _shape_distributions(problem),
                      lambda p: Candidate(fixed, _decode_shape(problem, p)),
                      lambda e: [e.metric(metric), e.perplexity])  # fmt: skip
    return _Phase(phase, budget, {**_hardware_distributions(problem), **_shape_distributions(problem)},
                  lambda p: Candidate(_decode_hardware(problem, p), _decode_shape(problem, p)),
                  lambda e: [e.metric(metric), e.area_mm2, e.perplexity])  # fmt: skip


def _evaluations(problem: CodesignProblem, study: optuna.Study) -> list[Evaluation]:
    """Each distinct candidate's stored results, in trial order."""
    from optuna.trial import TrialState

    out: dict[str, Evaluation] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        key = str(t.user_attrs.get("key"))
        if key in out:
            continue
        a = t.user_attrs
        cand = Candidate(problem.hardware.params(a["hardware"]), Architecture.from_key(key.partition("|")[2]))
        out[key] = Evaluation(cand, float(a["latency_cycles"]), float(a["energy_pj"]), float(a["area_mm2"]),
                              float(a["perplexity"]))  # fmt: skip
    return list(out.values())


def _best_hardware(problem: CodesignProblem, evals: Sequence[Evaluation]) -> HardwareParams:
    within = [e for e in evals if e.area_mm2 <= problem.area_budget_mm2]
    if not within:
        smallest = min(evals, key=lambda e: e.area_mm2)
        raise CodesignSearchError(
            f"no design the hardware phase tried meets the area budget of {problem.area_budget_mm2:g} mm^2 (the "
            f"smallest took {smallest.area_mm2:.3g} mm^2); raise --area-budget or --evaluations"
        )
    return min(within, key=lambda e: (e.metric(problem.metric), e.candidate.key)).candidate.hardware


def _result(
    problem: CodesignProblem, config: CodesignConfig, store: Any, study_name: str, chosen: HardwareParams | None
) -> CodesignResult:
    import optuna
    from optuna.trial import TrialState

    evals: list[Evaluation] = []
    n_prop = n_eval = n_fail = 0
    for phase in config.phase_budgets():
        study = optuna.load_study(study_name=f"{study_name}:{config.strategy.value}:{phase.value}", storage=store)
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state is TrialState.COMPLETE]
        n_prop += len(complete)
        n_eval += sum(1 for t in complete if "cached_from" not in t.user_attrs)
        n_fail += sum(1 for t in trials if t.state is TrialState.FAIL)
        seen = {e.candidate.key for e in evals}
        evals += [e for e in _evaluations(problem, study) if e.candidate.key not in seen]
    return CodesignResult(
        config.strategy,
        tuple(evals),
        tuple(problem.feasible(e) for e in evals),
        n_prop,
        n_eval,
        n_fail,
        chosen,
    )


__all__ = ["PARAMETERS", "CodesignConfig", "CodesignResult", "Phase", "Sampler", "Strategy", "run_codesign"]
